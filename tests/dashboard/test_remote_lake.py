"""The dashboard's reader over a lake on a non-local file system. HDFS cannot run here, so the lake is copied into
fsspec's in-memory file system (``memory://``), which goes through the same code as WebHDFS does: fsspec calls in
salespulse/storage.py and DuckDB reading registered fsspec files; and into a folder served by tests/webhdfs.py, a
stand-in for the namenode's REST API, read by the real WebHDFS client over HTTP. Results must equal the same
queries over the local copy and pandas over the lake's Parquet files."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from fsspec.implementations.memory import MemoryFileSystem

from dashboard.data import LakeRepository
from salespulse.cli import main
from salespulse.kpi_report import SalesFilter
from salespulse.lake import MANIFEST, TABLES, duckdb_scan
from salespulse.scope import Scope
from salespulse.settings import load_settings
from salespulse.storage import Storage, open_storage
from tests.lakes import SampleLake
from tests.webhdfs import serve_webhdfs

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark
PERIOD = SalesFilter.for_dates(pd.Timestamp("2026-09-12").date(), pd.Timestamp("2026-09-18").date())


@pytest.fixture
def remote_lake(sample_lake: SampleLake) -> Iterator[Storage]:
    """A copy of the sample lake in memory://, removed afterwards (fsspec's memory store is process-wide)."""
    fs, root = MemoryFileSystem(), f"/lake-{uuid.uuid4().hex[:8]}"
    fs.put(str(sample_lake.lake), root, recursive=True)
    yield open_storage(f"memory://{root}")
    fs.rm(root, recursive=True)


def gold_from_parquet(lake: Path) -> pd.DataFrame:
    """gold_sales_hourly read with pandas from the directories the manifest lists (no DuckDB, no storage code)."""
    manifest = json.loads((lake / MANIFEST).read_text())
    frames = [pd.read_parquet(lake / rel) for rel in manifest["tables"]["gold_sales_hourly"]]
    return pd.concat(frames, ignore_index=True)


def as_floats(values: dict) -> dict:
    """Money arrives as exact Decimals (counts as ints): compared here as floats, by approx."""
    return {key: float(value) if isinstance(value, Decimal) else value for key, value in values.items()}


def test_remote_lake_queries_equal_local_and_pandas(sample_lake: SampleLake, remote_lake: Storage) -> None:
    assert remote_lake.url(MANIFEST).startswith("memory:///lake-")
    local = LakeRepository(sample_lake.lake, sample_lake.root / "models")
    remote = LakeRepository(remote_lake, sample_lake.root / "models")
    assert remote.data_version() and remote.published_at() == local.published_at()

    by_country = remote.sales_by(ADMIN, SalesFilter(), ("country",)).set_index("country")
    pd.testing.assert_frame_equal(by_country, local.sales_by(ADMIN, SalesFilter(), ("country",)).set_index("country"))
    gold = gold_from_parquet(sample_lake.lake)
    truth = gold.groupby("country")[["orders", "sales", "profit"]].sum()
    assert by_country["orders"].to_dict() == truth["orders"].to_dict()
    assert as_floats(by_country["sales"].to_dict()) == pytest.approx(as_floats(truth["sales"].to_dict()))
    assert as_floats(by_country["profit"].to_dict()) == pytest.approx(as_floats(truth["profit"].to_dict()))

    # a bounded period reads only its days' partitions: the event_date level still comes from the folder names
    kpis = remote.kpis(ADMIN, PERIOD)
    assert as_floats(kpis) == pytest.approx(as_floats(local.kpis(ADMIN, PERIOD)))
    days = pd.to_datetime(gold["event_date"].astype(str)).dt.date
    inside = gold[(days >= PERIOD.start.date()) & (days < PERIOD.end.date())]
    assert kpis["orders"] == inside["orders"].sum() > 0
    assert float(kpis["sales"]) == pytest.approx(float(inside["sales"].sum()))
    pd.testing.assert_frame_equal(remote.sales_over_time(ADMIN, PERIOD, "hour"),
                                  local.sales_over_time(ADMIN, PERIOD, "hour"))
    pd.testing.assert_frame_equal(remote.customers_by(ADMIN, PERIOD, "country"),
                                  local.customers_by(ADMIN, PERIOD, "country"))
    pd.testing.assert_frame_equal(remote.stock(ADMIN, PERIOD), local.stock(ADMIN, PERIOD))


def test_remote_scan_keeps_the_table_contract(remote_lake: Storage) -> None:
    con = duckdb.connect()
    remote_lake.attach(con)
    for table in ("gold_sales_hourly", "silver_sales", "gold_stock"):
        scan = duckdb_scan(remote_lake, table)
        columns = [row[0] for row in con.execute(f"DESCRIBE {scan}").fetchall()]
        assert sorted(columns) == sorted(TABLES[table].column_names), table
    described = {row[0]: row[1] for row in con.execute(f"DESCRIBE {duckdb_scan(remote_lake, 'gold_sales_hourly')}")
                 .fetchall()}
    assert described["event_date"] == "DATE"


def test_remote_data_version_changes_when_a_manifest_is_published(sample_lake: SampleLake,
                                                                  remote_lake: Storage) -> None:
    repo = LakeRepository(remote_lake, "unused-models")
    before, sales_before = repo.data_version(), repo.kpis(ADMIN, SalesFilter())["sales"]
    assert repo.data_version() == before  # unchanged lake, unchanged version
    # publish as the writers do: a new table directory (here a copy of gold's), then the manifest by rename
    fs = remote_lake.fs
    manifest = json.loads(remote_lake.read_text(MANIFEST))
    first = manifest["tables"]["gold_sales_hourly"][0]
    fs.copy(remote_lake.path(first), remote_lake.path("gold/sales_hourly/dir=copy"), recursive=True)
    manifest["tables"]["gold_sales_hourly"].append("gold/sales_hourly/dir=copy")
    manifest["published_at"] = "2026-09-21T16:00:00+00:00"
    fs.pipe(remote_lake.path(".manifest.next"), json.dumps(manifest).encode())
    fs.mv(remote_lake.path(".manifest.next"), remote_lake.path(MANIFEST))
    assert repo.data_version() not in ("", before)
    assert repo.published_at() == "2026-09-21T16:00:00+00:00"
    copied = pd.read_parquet(sample_lake.lake / first)["sales"].sum()
    assert float(repo.kpis(ADMIN, SalesFilter())["sales"]) == pytest.approx(float(sales_before) + float(copied))


def test_kpis_command_reads_a_remote_lake(sample_lake: SampleLake, remote_lake: Storage) -> None:
    runner = CliRunner()
    local = runner.invoke(main, ["kpis", "--lake", str(sample_lake.lake), "--by", "country", "--json"])
    remote = runner.invoke(main, ["kpis", "--lake", remote_lake.uri, "--by", "country", "--json"])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert json.loads(remote.output) == json.loads(local.output)
    assert len(json.loads(remote.output)) == 5  # one row per country


def test_hdfs_lake_read_through_webhdfs_equals_local(sample_lake: SampleLake, tmp_path: Path) -> None:
    """The real WebHDFS client and DuckDB over it, against a WebHDFS server on a copy of the lake."""
    with serve_webhdfs(tmp_path / "hdfs") as namenode:
        shutil.copytree(sample_lake.lake, namenode.local("/salespulse/lake"))
        settings = load_settings(overrides={"paths.lake": "hdfs://namenode:8020/salespulse/lake",
                                            "hdfs.webhdfs_url": namenode.url, "hdfs.user": "salespulse",
                                            "hdfs.version_check_seconds": 0})
        remote = LakeRepository(open_storage(settings.paths.lake, settings.hdfs), sample_lake.root / "models")
        local = LakeRepository(sample_lake.lake, sample_lake.root / "models")
        version = remote.data_version()
        assert as_floats(remote.kpis(ADMIN, PERIOD)) == pytest.approx(as_floats(local.kpis(ADMIN, PERIOD)))
        pd.testing.assert_frame_equal(remote.sales_by(ADMIN, SalesFilter(), ("country", "segment")),
                                      local.sales_by(ADMIN, SalesFilter(), ("country", "segment")))
        assert remote.stream_status(ADMIN) is None and remote.published_at() == local.published_at()

        # an unchanged lake: the same version (HDFS's access times move on every read), no file read again
        reads = namenode.ops["OPEN"]
        for _ in range(5):
            assert remote.data_version() == version
            assert as_floats(remote.kpis(ADMIN, PERIOD)) == pytest.approx(as_floats(local.kpis(ADMIN, PERIOD)))
        assert namenode.ops["OPEN"] == reads
        # each version check is one status call; hdfs.version_check_seconds bounds them per process
        throttled = open_storage(settings.paths.lake, settings.hdfs.model_copy(update={"version_check_seconds": 60}))
        before = namenode.ops["GETFILESTATUS"]
        assert {throttled.version(MANIFEST) for _ in range(50)} == {version}
        assert namenode.ops["GETFILESTATUS"] == before + 1

        # a new publish (the manifest replaced by rename, as the stream does): a new version, recomputed from the
        # same directories, whose listings are not asked for again (published directories never change)
        manifest = namenode.local("/salespulse/lake") / MANIFEST
        manifest.with_name(".next").write_text(manifest.read_text().replace('"published_at"', '"published_at_was"')
                                               .replace("{", '{"published_at": "2026-09-22T00:00:00+00:00", ', 1))
        os.replace(manifest.with_name(".next"), manifest)
        listings = namenode.ops["LISTSTATUS"]
        assert remote.data_version() != version and remote.published_at() == "2026-09-22T00:00:00+00:00"
        assert as_floats(remote.kpis(ADMIN, PERIOD)) == pytest.approx(as_floats(local.kpis(ADMIN, PERIOD)))
        assert namenode.ops["LISTSTATUS"] == listings and namenode.ops["OPEN"] > reads
