"""Local webhook receivers for the alert tests: a real HTTP server on 127.0.0.1 in a thread that keeps the JSON
bodies posted to it, optionally holding each request for a while before answering (a dead receiver)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import serve_handler


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    answered: int = 0  # requests answered (a holding receiver answers after its hold)


@contextmanager
def webhook_receiver(hold_seconds: float = 0.0) -> Iterator[Receiver]:
    """A receiver answering 200 to every POST, ``hold_seconds`` after reading it (cut short when the test ends)."""
    done = threading.Event()
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            receiver.bodies.append(body)
            done.wait(hold_seconds)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")
            receiver.answered += 1

        def log_message(self, *_: Any) -> None:
            pass

    with serve_handler(Handler) as base:
        receiver.url = f"{base}/hook"
        try:
            yield receiver
        finally:
            done.set()  # held requests answer now, so the server can shut down
