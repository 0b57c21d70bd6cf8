"""The dashboard repository's per-version cache under concurrent requests: one computation per key and version,
and per-version tables stay readable for requests that started before a newer version replaced them, then are
dropped; its DuckDB
keeps nothing per file read, is replaced by a new one every few versions, and stays within its memory limit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashboard import data
from dashboard.data import LakeRepository
from salespulse.lake import MANIFEST
from tests.scopes import inside_a_query


def publish(lake: Path, serial: int) -> None:
    """A new data version, as a writer's manifest swap makes one (a new file renamed over the old)."""
    staged = lake / f".manifest-{serial}"
    staged.write_text(json.dumps({"tables": {}, "schemas": {}, "serial": serial}))
    staged.replace(lake / MANIFEST)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[LakeRepository]:
    """A repository whose private readers these tests call directly (inside what a query method sets up)."""
    publish(tmp_path, 0)
    with inside_a_query():
        yield LakeRepository(tmp_path, tmp_path / "models")


def test_concurrent_requests_compute_a_key_once(repo: LakeRepository) -> None:
    calls, start = [], threading.Barrier(8)

    def compute() -> int:
        calls.append(1)
        time.sleep(0.3)  # slow enough that every thread asks while the first computes
        return 42

    def ask() -> None:
        start.wait()
        with inside_a_query():  # a new thread starts outside any query
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


def test_replaced_tables_stay_readable_while_a_computation_runs(repo: LakeRepository, tmp_path: Path) -> None:
    first = repo._table("numbers", "SELECT 1 AS n")

    def request_of_the_first_version() -> list[int]:
        for serial in range(1, 5):  # newer versions published and their tables built while this request runs
            publish(tmp_path, serial)
            repo._table("numbers", f"SELECT {serial + 1} AS n")
        return repo._frame(f"SELECT n FROM {first}")["n"].tolist()

    assert repo._cached(("request",), request_of_the_first_version) == [1]
    # no computation runs any more: only the current version's table is left
    newest = repo._table("numbers", "SELECT 5 AS n")
    assert set(repo._frame("SELECT table_name FROM duckdb_tables()")["table_name"]) == {newest}
    assert repo._frame(f"SELECT n FROM {newest}")["n"].tolist() == [5]


def memory_limit(repo: LakeRepository) -> str:
    return str(repo._frame("SELECT current_setting('memory_limit') AS m")["m"].iloc[0])


def test_the_database_is_renewed_after_some_versions_but_not_while_a_computation_runs(
        repo: LakeRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "DATABASE_VERSIONS", 2)
    original, limit = repo._db, memory_limit(repo)
    first = repo._table("numbers", "SELECT 1 AS n")

    def request_of_the_first_version() -> list[int]:
        for serial in range(1, 5):  # four new versions, each with its table, while this request reads ``first``
            publish(tmp_path, serial)
            repo._table("numbers", f"SELECT {serial + 1} AS n")
        return repo._frame(f"SELECT n FROM {first}")["n"].tolist()

    assert repo._cached(("request",), request_of_the_first_version) == [1]
    assert repo._db is original  # due since the second version, but a computation ran all along
    publish(tmp_path, 5)
    newest = repo._table("numbers", "SELECT 6 AS n")  # the first version seen with nothing running
    assert repo._db is not original
    with pytest.raises(duckdb.ConnectionException):
        original.execute("SELECT 1")  # closed: its memory is given back
    assert repo._frame("SELECT table_name FROM duckdb_tables()")["table_name"].tolist() == [newest]
    assert repo._frame(f"SELECT n FROM {newest}")["n"].tolist() == [6]
    assert memory_limit(repo) == limit  # set up as the first one was


def test_a_table_that_failed_to_build_leaves_nothing_behind(repo: LakeRepository) -> None:
    with pytest.raises(Exception, match="no_such_table"):
        repo._table("numbers", "SELECT * FROM no_such_table")
    assert repo._table("numbers", "SELECT 2 AS n") and all(
        built.ready for versions in repo._tables.values() for built in versions)


def duckdb_bytes(repo: LakeRepository) -> int:
    return int(repo._frame("SELECT sum(memory_usage_bytes) AS b FROM duckdb_memory()")["b"].iloc[0])


def test_files_read_then_replaced_leave_no_memory_behind(repo: LakeRepository, tmp_path: Path) -> None:
    """The stream and compaction replace gold files all the time; a long-running worker reads each new one.
    DuckDB's Parquet footer cache (``parquet_metadata_cache``, off) would keep about 30 KB per file of this
    shape, for ever."""
    table = pa.table({f"m{i}": np.arange(100, dtype="float64") for i in range(20)})
    before = duckdb_bytes(repo)
    for round_ in range(3):
        files = [tmp_path / f"batch-{round_}-{i}.parquet" for i in range(500)]
        for file in files:
            pq.write_table(table, file)
        for start in range(0, len(files), 50):
            listed = ", ".join(f"'{f}'" for f in files[start:start + 50])
            assert repo._frame(f"SELECT sum(m0) AS s FROM read_parquet([{listed}])")["s"].iloc[0] == 50 * 4950
        for file in files:
            file.unlink()
    assert duckdb_bytes(repo) - before < 2_000_000  # 1,500 files: about 45 MB with the footer cache


def test_a_query_over_the_memory_limit_spills_to_a_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(tmp_path, 0)
    monkeypatch.chdir(tmp_path)  # DuckDB's own default spills into the working directory (".tmp")
    small = LakeRepository(tmp_path, tmp_path / "models", memory_mb=64)
    assert small._frame("SELECT current_setting('memory_limit') AS m")["m"].iloc[0] == "61.0 MiB"  # 64 MB
    groups = small._frame("SELECT count(*) AS n, sum(s) AS total FROM (SELECT i % 3000000 AS k, sum(i) AS s "
                          "FROM range(6000000) t(i) GROUP BY k)")  # a hash table of 3M groups: over 64 MB
    assert groups["n"].iloc[0] == 3_000_000 and groups["total"].iloc[0] == 6_000_000 * 5_999_999 // 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST]
