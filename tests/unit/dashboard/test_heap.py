"""The dashboard's C heap settings: with the arena limit, threads allocating at once share at most that many
glibc malloc arenas (counted by glibc's own malloc_stats); without it they get more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.heap import _glibc

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import ctypes, sys, threading
from dashboard.heap import limit_arenas
if sys.argv[1] != "none":
    limit_arenas(int(sys.argv[1]))
start = threading.Barrier(8)
def allocate():
    start.wait()  # all at once, so glibc sees the main arena busy and hands out more
    kept = [bytearray(64) for _ in range(20_000)]
    start.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def arenas(limit: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, limit], capture_output=True, text=True, check=True,
                          timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(_glibc() is None, reason="glibc only: elsewhere limit_arenas does nothing")
def test_threads_share_at_most_the_limited_number_of_arenas() -> None:
    assert arenas("none") > 2  # the test can see arenas being added
    assert 1 <= arenas("2") <= 2
