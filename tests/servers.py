"""Real HTTP servers for tests: the app on a threaded Werkzeug server in the test's process, or a server command
(gunicorn with the project's config) in a process of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from salespulse.settings import ENV_PREFIX

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "conf/gunicorn.conf.py", "dashboard.app:server"]


@contextlib.contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded standard-library HTTP server on a free loopback port until the block ends; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(app: Any) -> Iterator[str]:
    """``app`` (a Dash app, or its Flask server) on a real threaded HTTP server on a free loopback port; yields
    its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, getattr(app, "server", app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    server.shutdown()
    thread.join(10)


@contextlib.contextmanager
def serve_process(cmd: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, stopped by the test (SIGKILL here only if it is still up)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not listen on {port}:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def server_env(lake: Path, port: int, **extra: str) -> dict[str, str]:
    """The test's environment without any SALESPULSE_* of the developer's, serving ``lake`` on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(PYTHONPATH=str(ROOT), SALESPULSE_PATHS__LAKE=str(lake), SALESPULSE_PATHS__MODELS=str(lake.parent / "m"),
               SALESPULSE_DASHBOARD__PORT=str(port), **extra)
    return env
