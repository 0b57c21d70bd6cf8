"""The dashboard repository's per-version cache under concurrent requests: one computation per key and version,
and per-version tables stay readable for requests that started before a newer version replaced them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from dashboard import data
from dashboard.data import LakeRepository
from salespulse.lake import MANIFEST


def publish(lake: Path, serial: int) -> None:
    """A new data version, as a writer's manifest swap makes one (a new file renamed over the old)."""
    staged = lake / f".manifest-{serial}"
    staged.write_text(json.dumps({"tables": {}, "schemas": {}, "serial": serial}))
    staged.replace(lake / MANIFEST)


@pytest.fixture
def repo(tmp_path: Path) -> LakeRepository:
    publish(tmp_path, 0)
    return LakeRepository(tmp_path, tmp_path / "models")


def test_concurrent_requests_compute_a_key_once(repo: LakeRepository) -> None:
    calls, start = [], threading.Barrier(8)

    def compute() -> int:
        calls.append(1)
        time.sleep(0.3)  # slow enough that every thread asks while the first computes
        return 42

    def ask() -> None:
        start.wait()
        results.append(repo._cached(("slow",), compute))

    results: list[int] = []
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 8 and len(calls) == 1


def test_a_failed_computation_is_retried_by_the_next_request(repo: LakeRepository) -> None:
    def failing() -> int:
        raise OSError("file vanished")

    with pytest.raises(OSError):
        repo._cached(("flaky",), failing)
    assert repo._cached(("flaky",), lambda: 7) == 7


def test_replaced_tables_stay_readable_during_the_grace(repo: LakeRepository, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = repo._table("numbers", "SELECT 1 AS n")
    for serial in range(1, 5):  # newer versions published and their tables built while a request reads `first`
        publish(tmp_path, serial)
        repo._table("numbers", f"SELECT {serial + 1} AS n")
    assert repo._frame(f"SELECT n FROM {first}")["n"].tolist() == [1]

    monkeypatch.setattr(data, "SUPERSEDED_TABLE_SECONDS", 0.0)  # past the grace: dropped at the next build
    publish(tmp_path, 5)
    newest = repo._table("numbers", "SELECT 6 AS n")
    tables = set(repo._frame("SELECT table_name FROM duckdb_tables()")["table_name"])
    assert first not in tables and newest in tables
    assert repo._frame(f"SELECT n FROM {newest}")["n"].tolist() == [6]
