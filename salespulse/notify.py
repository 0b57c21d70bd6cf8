"""Posting alert events to the configured webhooks, off the pipeline's path.

``WebhookNotifier.send`` only queues: each webhook has its own bounded queue and thread, which posts with a
timeout and retries with a doubling backoff, so a slow or dead receiver delays only its own messages and never
the evaluation or the batch that queued them. A full queue drops the message and says so. The threads are
daemons: a process that ends does not wait for a dead receiver (``close`` waits a bounded time for the rest).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from salespulse.settings import AlertSettings, WebhookSettings

_STOP = object()


class WebhookNotifier:
    def __init__(self, settings: AlertSettings, say: Callable[[str], None]):
        self.settings, self.say = settings, say
        self.closing = threading.Event()
        self.queues: dict[str, queue.Queue[Any]] = {}
        self.threads: list[threading.Thread] = []
        for hook in settings.webhooks:
            self.queues[hook.name] = queue.Queue(maxsize=settings.queue_size)
            thread = threading.Thread(target=self._deliver, args=(hook,), name=f"salespulse-webhook-{hook.name}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def send(self, bodies: list[dict[str, Any]]) -> None:
        """Queue ``bodies`` for every webhook; never blocks."""
        for name, waiting in self.queues.items():
            for body in bodies:
                try:
                    waiting.put_nowait(body)
                except queue.Full:
                    self.say(f"alerts: webhook {name}: {self.settings.queue_size} messages waiting, one dropped: "
                             f"{body.get('text', '')}")

    def close(self, timeout: float) -> None:
        """Let the queued messages go out for at most ``timeout`` seconds in all, then stop retrying."""
        deadline = time.monotonic() + timeout
        for waiting in self.queues.values():
            with contextlib.suppress(queue.Full):  # its thread is stuck on a dead receiver: not waited for
                waiting.put(_STOP, timeout=max(deadline - time.monotonic(), 0))
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0))
        self.closing.set()

    def _deliver(self, hook: WebhookSettings) -> None:
        waiting = self.queues[hook.name]
        while True:
            body = waiting.get()
            if body is _STOP:
                return
            for attempt in range(self.settings.retries + 1):
                if self.closing.is_set():
                    return
                try:
                    self._post(hook, body)
                    break
                except Exception as err:  # any failure of the receiver or the network: try again later
                    if attempt == self.settings.retries:
                        self.say(f"alerts: webhook {hook.name} failed {attempt + 1} time(s), message dropped: "
                                 f"{type(err).__name__}: {err}")
                    elif self.closing.wait(self.settings.backoff_seconds * 2 ** attempt):
                        return

    def _post(self, hook: WebhookSettings, body: dict[str, Any]) -> None:
        request = urllib.request.Request(hook.url.get_secret_value(), data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as response:
            response.read()
