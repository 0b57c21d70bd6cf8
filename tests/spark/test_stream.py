"""The streaming job on real files, in the test session's Spark: simulator output, a corpus of bad files, late
and duplicate events. Every figure is checked against pandas/DuckDB reading the same landed files."""

from __future__ import annotations

import csv
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from salespulse.cli import main
from salespulse.kpi_report import kpi_totals
from salespulse.lake import MANIFEST, STATUS, duckdb_scan, table_dirs
from salespulse.schema import SALES_EVENT
from salespulse.settings import Settings, load_settings
from spark_jobs.stream import build_stream_session, run_stream
from tests.conftest import read_landing, run_simulator, stock_from_events
from tests.unit.salespulse.test_simulator import valid_mask

pytestmark = pytest.mark.spark
COLUMNS = [c.name for c in SALES_EVENT.columns]


def stream_settings(tmp_path: Path, **stream: object) -> Settings:
    overrides: dict[str, Any] = {
        "paths.landing": str(tmp_path / "landing"), "paths.lake": str(tmp_path / "lake"),
        "paths.checkpoints": str(tmp_path / "checkpoints"), "paths.archive": str(tmp_path / "archive"),
        "stream.processed_files": "keep",
    }
    overrides.update({f"stream.{k}": v for k, v in stream.items()})
    return load_settings(overrides=overrides)


def drain(spark: SparkSession, settings: Settings) -> list[str]:
    lines: list[str] = []
    code = run_stream(spark, settings, lines.append, threading.Event(), available_now=True)
    assert code == 0, "\n".join(lines)
    return lines


def lake_table(settings: Settings, name: str) -> pd.DataFrame:
    scan = duckdb_scan(settings.paths.lake, name)
    return duckdb.sql(f"SELECT * FROM {scan}").df() if scan else pd.DataFrame()


def stream_state(settings: Settings, event: str = "sales") -> dict[str, Any]:
    return json.loads((Path(settings.paths.lake) / MANIFEST).read_text())["streams"][event]


def cents(series: pd.Series) -> int:
    return round(series.astype(float).sum() * 100)


def test_stream_simulator_files_exact_against_pandas(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    # Live clock at the real now: lateness is judged against the files' landing times.
    run_simulator(landing, seconds=4, end_ms=None, rate=1500, bad_rows_pct=2, duplicate_pct=3, late_pct=3)
    # Two files per batch: duplicates held back by the simulator land in a later file, so in a later batch.
    settings = stream_settings(tmp_path, max_files_per_trigger=2, compact_every_batches=1, stock_refresh_seconds=0)
    lines = drain(spark, settings)
    assert sum(line.startswith("stream sales batch") for line in lines) >= 2
    assert any(line.startswith("compact silver_sales") for line in lines), lines

    raw = read_landing(landing / "sales")
    valid = raw[valid_mask(raw)]
    unique = valid.drop_duplicates("order_id")
    state = stream_state(settings)
    assert state["rows_in"] == len(raw)
    assert state["rows_quarantined"] == len(raw) - len(valid)
    assert state["rows_duplicate"] == len(valid) - len(unique) > 0
    assert state["rows_silver"] == len(unique)

    silver = lake_table(settings, "silver_sales")
    assert len(silver) == silver["order_id"].nunique() == len(unique)
    assert cents(silver["sales"]) == cents(unique["sales"])
    quarantine = lake_table(settings, "quarantine_sales")
    assert len(quarantine) == len(raw) - len(valid)
    assert len(quarantine[["source_file", "row_number"]].drop_duplicates()) == len(quarantine)

    by_country = unique.assign(sales=unique["sales"].astype(float), profit=unique["profit"].astype(float))
    expected = by_country.groupby("country")[["sales", "profit"]].sum()
    got = kpi_totals(settings.paths.lake, "country").set_index("country")
    assert set(got.index) == set(expected.index)
    for country in expected.index:
        assert round(got.loc[country, "sales"] * 100) == round(expected.loc[country, "sales"] * 100)
        assert round(got.loc[country, "profit"] * 100) == round(expected.loc[country, "profit"] * 100)
        assert got.loc[country, "orders"] == (unique["country"] == country).sum()

    inventory = read_landing(landing / "inventory")
    assert stream_state(settings, "inventory")["rows_silver"] == len(inventory)
    stock = lake_table(settings, "gold_stock").set_index(["country", "product"])["stock_on_hand"]
    assert stock.to_dict() == pytest.approx(stock_from_events(inventory, unique))
    status = json.loads((Path(settings.paths.lake) / STATUS).read_text())
    assert status["events"]["sales"]["rows_in"] == len(raw)
    history = [batch for batch in status["history"] if batch["event"] == "sales"]  # one entry per sales batch
    assert sum(batch["rows"] for batch in history) == len(raw)
    assert [batch["batch_id"] for batch in history] == sorted({batch["batch_id"] for batch in history})
    assert all(batch["seconds"] > 0 and batch["freshness_seconds"] is not None for batch in history)

    # `salespulse compact` merges what the stream wrote; the published content stays the same.
    dirs_before = len(table_dirs(settings.paths.lake, "gold_sales_hourly"))
    result = CliRunner().invoke(main, ["compact", "--lake", settings.paths.lake])
    assert result.exit_code == 0, result.output
    assert len(table_dirs(settings.paths.lake, "gold_sales_hourly")) < dirs_before or dirs_before == 1
    pd.testing.assert_frame_equal(kpi_totals(settings.paths.lake, "country"), got.reset_index(), rtol=1e-9)

    # Nothing new landed: a second run reads nothing and changes nothing.
    before = (Path(settings.paths.lake) / MANIFEST).read_text()
    drain(spark, settings)
    assert json.loads((Path(settings.paths.lake) / MANIFEST).read_text())["tables"] == json.loads(before)["tables"]


def _write(path: Path, text: str | bytes, landed: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}"
    staging.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    os.utime(staging, (landed.timestamp(), landed.timestamp()))
    staging.rename(path)


def _rows(frame: pd.DataFrame, eol: str = "\n") -> str:
    out: list[str] = []
    writer = csv.writer(_Lines(out), lineterminator=eol)
    writer.writerow(COLUMNS)
    writer.writerows(frame[COLUMNS].itertuples(index=False))
    return "".join(out)


class _Lines:
    def __init__(self, out: list[str]):
        self.out = out

    def write(self, text: str) -> None:
        self.out.append(text)


@pytest.fixture(scope="module")
def good_rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Valid, distinct simulator sales rows to build hand-made files from."""
    out = tmp_path_factory.mktemp("rows")
    run_simulator(out, history_days=0.2, history_rate=0.05, bad_rows_pct=0, duplicate_pct=0, late_pct=0)
    # (their event times are replaced per test)
    rows = read_landing(out / "history" / "sales")
    assert len(rows) >= 40
    return rows[COLUMNS].reset_index(drop=True)


def _at(rows: pd.DataFrame, when: datetime) -> pd.DataFrame:
    return rows.assign(event_time=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"))


def test_stream_bad_file_corpus_keeps_running_and_accounts_for_every_file(
        spark: SparkSession, tmp_path: Path, good_rows: pd.DataFrame) -> None:
    landed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    sales = tmp_path / "landing" / "sales"
    recent = _at(good_rows, landed - timedelta(minutes=30))
    ok, bom, quoted = recent.iloc[0:5], recent.iloc[5:8], recent.iloc[8:10].copy()
    quoted.loc[quoted.index[0], "product"] = "Pa\nseo"  # a quoted newline inside a field: one record, bad product
    huge = recent.iloc[10:11].assign(customer_id="x" * 1_000_000)  # a 1 MB field is still just a value
    reordered = recent.iloc[11:13][list(reversed(COLUMNS))]
    files: dict[str, str | bytes] = {
        "a-ok.csv": _rows(ok),
        "b-empty.csv": "",
        "c-header-only.csv": ",".join(COLUMNS) + "\n",
        "d-wrong-columns.csv": "id,when,amount\n1,2026-01-01,5\n2,2026-01-02,6\n",
        "e-reordered.csv": ",".join(reversed(COLUMNS)) + "\n" + "\n".join(
            ",".join(str(v) for v in r) for r in reordered.itertuples(index=False)) + "\n",
        # Binary noise as the "header" line, then one short record.
        "f-garbage.csv": bytes(b for b in range(256) if b not in b'\n\r"') * 8 + b"\n\x00\xff,\x01\n",
        "g-bom-crlf.csv": "\ufeff" + _rows(bom, eol="\r\n"),
        "h-quoted-newline.csv": _rows(quoted),
        "i-huge-field.csv": _rows(huge),
    }
    for name, text in files.items():
        _write(sales / name, text, landed)
    settings = stream_settings(tmp_path, max_files_per_trigger=3)
    drain(spark, settings)

    reasons = lake_table(settings, "quarantine_sales")
    reasons["file"] = reasons["source_file"].str.rsplit("/", n=1).str[-1]
    got = reasons.groupby(["file", "reason"]).size().to_dict()
    assert got == {  # a file whose header does not fit is one entry, whatever its rows
        ("d-wrong-columns.csv", "bad_header"): 1,
        ("e-reordered.csv", "bad_header"): 1,
        ("f-garbage.csv", "bad_header"): 1,
        ("h-quoted-newline.csv", "unknown_category"): 1,
    }
    silver = lake_table(settings, "silver_sales")
    expected_ids = set(ok["order_id"]) | set(bom["order_id"]) | {quoted["order_id"].iloc[1]} | set(huge["order_id"])
    assert set(silver["order_id"]) == expected_ids
    assert silver.loc[silver["order_id"] == huge["order_id"].iloc[0], "customer_id"].str.len().item() == 1_000_000
    state = stream_state(settings)
    assert state["rows_in"] == state["rows_silver"] + state["rows_quarantined"] + state["rows_duplicate"]
    assert (state["rows_silver"], state["rows_quarantined"]) == (len(expected_ids), 4)


def test_stream_bad_header_file_is_one_quarantine_entry_and_the_rest_loads(
        spark: SparkSession, tmp_path: Path, good_rows: pd.DataFrame) -> None:
    landed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    sales = tmp_path / "landing" / "sales"
    recent = _at(good_rows, landed - timedelta(minutes=30))
    first, second, renamed = recent.iloc[0:6], recent.iloc[6:12], recent.iloc[12:20]
    header = ["revenue" if c == "sales" else c for c in COLUMNS]
    _write(sales / "a-ok.csv", _rows(first), landed)
    _write(sales / "b-notes.txt", "Remember: the March files come next week.\nAsk Bob about Canada.\n", landed)
    # Valid rows under a header with one column renamed: loading them by position would be a guess.
    _write(sales / "c-renamed.csv", ",".join(header) + "\n" + _rows(renamed).split("\n", 1)[1], landed)
    _write(sales / "d-ok.csv", _rows(second), landed)
    settings = stream_settings(tmp_path, max_files_per_trigger=2)
    lines = drain(spark, settings)

    quarantine = lake_table(settings, "quarantine_sales")
    quarantine["file"] = quarantine["source_file"].str.rsplit("/", n=1).str[-1]
    assert sorted(zip(quarantine["file"], quarantine["reason"], quarantine["row_number"], strict=True)) == [
        ("b-notes.txt", "bad_header", 0), ("c-renamed.csv", "bad_header", 0)]
    raw = {file: dict(entry) for file, entry in zip(quarantine["file"], quarantine["raw"], strict=True)}
    assert (raw["c-renamed.csv"]["_header"], raw["c-renamed.csv"]["_missing"]) == (", ".join(header), "sales")
    assert raw["b-notes.txt"]["_header"] == "Remember: the March files come next week."
    assert raw["b-notes.txt"]["_missing"] == ", ".join(COLUMNS)
    assert raw["c-renamed.csv"]["_detail"].splitlines()[-1] == "  missing: sales"
    loaded = pd.concat([first, second])
    silver = lake_table(settings, "silver_sales")
    assert sorted(silver["order_id"]) == sorted(loaded["order_id"])
    assert cents(silver["sales"]) == cents(loaded["sales"])
    state = stream_state(settings)
    assert (state["rows_in"], state["rows_silver"], state["rows_quarantined"], state["files"]) == (
        len(loaded) + 2, len(loaded), 2, 4)
    assert state["quarantined_by_reason"] == {"bad_header": 2}
    said = [line for line in lines if line.endswith("quarantined as one entry")]
    assert len(said) == 2 and any("c-renamed.csv: bad header, missing: sales" in line for line in said)


def test_stream_late_future_and_duplicate_events(spark: SparkSession, tmp_path: Path, good_rows: pd.DataFrame) -> None:
    landed = datetime.now(timezone.utc).replace(minute=30, second=0, microsecond=0) - timedelta(hours=2)
    sales = tmp_path / "landing" / "sales"
    first = pd.concat([
        _at(good_rows.iloc[0:3], landed - timedelta(minutes=10)),
        _at(good_rows.iloc[3:4], landed - timedelta(hours=5)),  # late but allowed: updates an old hour
        _at(good_rows.iloc[4:5], landed - timedelta(hours=7)),  # later than the 6 h allowed: quarantined
        _at(good_rows.iloc[5:6], landed + timedelta(hours=30)),  # beyond the 24 h future tolerance
        _at(good_rows.iloc[0:1], landed - timedelta(minutes=10)),  # the same order twice in one file
    ])
    second = pd.concat([
        _at(good_rows.iloc[1:3], landed - timedelta(minutes=10)),  # orders the previous batch already stored
        _at(good_rows.iloc[6:8], landed),
    ])
    _write(sales / "1.csv", _rows(first), landed)
    _write(sales / "2.csv", _rows(second), landed + timedelta(seconds=1))
    settings = stream_settings(tmp_path, max_files_per_trigger=1, allowed_lateness_hours=6)
    lines = drain(spark, settings)
    assert sum(line.startswith("stream sales batch") for line in lines) == 2

    state = stream_state(settings)
    assert state["quarantined_by_reason"] == {"late_event": 1, "future_event_time": 1}
    assert (state["rows_in"], state["rows_silver"], state["rows_duplicate"]) == (11, 6, 3)

    def shown(time: datetime) -> str:
        return f"{time:%Y-%m-%d %H:%M:%S} UTC"

    quarantine = lake_table(settings, "quarantine_sales")
    assert dict(zip(quarantine["reason"], quarantine["reason_detail"], strict=True)) == {
        "late_event": f"event_time: {shown(landed - timedelta(hours=7))} is more than 6 h before its file's "
                      f"landing time {shown(landed)}",
        "future_event_time": f"event_time: {shown(landed + timedelta(hours=30))} is more than 24 h after its "
                             f"file's landing time {shown(landed)}"}
    silver = lake_table(settings, "silver_sales")
    assert sorted(silver["order_id"]) == sorted(good_rows["order_id"].iloc[[0, 1, 2, 3, 6, 7]])
    hourly = lake_table(settings, "gold_sales_hourly")
    old_hour = pd.Timestamp(landed - timedelta(hours=5)).floor("h")
    in_old_hour = hourly[pd.to_datetime(hourly["hour"], utc=True) == old_hour]
    assert in_old_hour["orders"].sum() == 1
    assert round(in_old_hour["sales"].sum(), 2) == round(float(good_rows["sales"].iloc[3]), 2)


def test_stream_stock_and_reorder_alerts(spark: SparkSession, tmp_path: Path, good_rows: pd.DataFrame) -> None:
    landed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    counted_at = (landed - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    counts = pd.DataFrame([
        {"event_time": counted_at, "country": "USA", "product": "Paseo", "kind": "count", "quantity": "100",
         "reorder_point": "50"},
        {"event_time": counted_at, "country": "Canada", "product": "Paseo", "kind": "count", "quantity": "1000",
         "reorder_point": "50"},
    ])
    units = good_rows["units_sold"].astype(float).cumsum()
    sold = _at(good_rows[units.shift(fill_value=0) <= 60], landed - timedelta(minutes=5)).assign(
        country="USA", product="Paseo")
    inventory_file = tmp_path / "landing" / "inventory" / "counts.csv"
    _write(inventory_file, counts.to_csv(index=False), landed)
    _write(tmp_path / "landing" / "sales" / "sold.csv", _rows(sold), landed)
    # An hour between refreshes: the refresh beside the batches still runs once more when the run ends.
    settings = stream_settings(tmp_path, stock_refresh_seconds=3600)
    drain(spark, settings)

    stock = lake_table(settings, "gold_stock").set_index(["country", "product"])
    expected = stock_from_events(counts, sold)
    assert stock["stock_on_hand"].to_dict() == pytest.approx(expected)
    assert expected[("USA", "Paseo")] < 50 < expected[("Canada", "Paseo")]
    assert stock["below_reorder_point"].to_dict() == {("USA", "Paseo"): True, ("Canada", "Paseo"): False}
    alerts = lake_table(settings, "gold_reorder_alerts")
    assert alerts[["country", "product"]].values.tolist() == [["USA", "Paseo"]]
    assert alerts["stock_on_hand"].item() == pytest.approx(expected[("USA", "Paseo")])


@pytest.mark.parametrize("adaptive", [False, True])
def test_stream_session_sets_adaptive_execution_without_touching_the_callers_session(
        spark: SparkSession, tmp_path: Path, adaptive: bool) -> None:
    before = spark.conf.get("spark.sql.adaptive.enabled")
    session = build_stream_session(spark, stream_settings(tmp_path, adaptive_query_execution=adaptive))
    assert session.conf.get("spark.sql.adaptive.enabled") == str(adaptive).lower()
    assert session.sparkContext is spark.sparkContext  # the same Spark application, not a second one
    assert spark.conf.get("spark.sql.adaptive.enabled") == before
    assert session.conf.get("spark.sql.session.timeZone") == spark.conf.get("spark.sql.session.timeZone")


def test_plans_with_one_more_window_segment_compile_only_what_changed(spark: SparkSession, tmp_path: Path) -> None:
    """Each batch looks duplicates up in one more cached window segment, which shifts the numbers of the stages
    after it. Generated classes are cached by their source: with the stage number in the class name, every such
    stage compiled (and was JIT-compiled) again in every batch."""
    def compiles_per_added_segment(session: SparkSession, folder: Path) -> list[int]:
        compilations = session.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics \
            .METRIC_COMPILATION_TIME()
        keys = session.range(60).select(F.concat(F.lit("o"), F.col("id").cast("string")).alias("order_id"),
                                        (F.col("id") % 5).alias("country"))
        keys.write.parquet(str(folder / "good"))
        good = session.read.parquet(str(folder / "good"))
        segments, added = [], []
        for n in range(4):
            keys.where(F.col("order_id").endswith(str(n))).write.parquet(str(folder / f"segment{n}"))
            segments.append(session.read.parquet(str(folder / f"segment{n}")).select("order_id").cache())
            segments[-1].count()
            window = segments[0]
            for segment in segments[1:]:
                window = window.unionByName(segment)
            seen = window.join(F.broadcast(good.select("order_id")), "order_id", "left_semi")
            before = compilations.getCount()
            good.join(F.broadcast(seen), "order_id", "left_anti").groupBy("country").count().collect()
            added.append(compilations.getCount() - before)
        for segment in segments:
            segment.unpersist()
        return added[1:]  # the first lookup compiles everything

    assert spark.conf.get("spark.sql.codegen.useIdInClassName") == "false"
    numbered = spark.newSession()
    numbered.conf.set("spark.sql.codegen.useIdInClassName", "true")
    # Ours first: a second run of the same plans under the same class names would find them all compiled.
    ours = compiles_per_added_segment(spark, tmp_path / "ours")
    spark_default = compiles_per_added_segment(numbered, tmp_path / "numbered")
    assert all(a < b for a, b in zip(ours, spark_default, strict=True)), (ours, spark_default)


def test_stream_new_checkpoint_keeps_what_an_earlier_checkpoint_published(
        spark: SparkSession, tmp_path: Path, good_rows: pd.DataFrame) -> None:
    """Batch ids start at 0 again with a new checkpoint; its batches must not overwrite the directories of the
    first checkpoint's batches with the same ids."""
    landed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    sales = tmp_path / "landing" / "sales"
    first, second = _at(good_rows.iloc[0:5], landed), _at(good_rows.iloc[5:9], landed)
    _write(sales / "1.csv", _rows(first), landed)
    settings = stream_settings(tmp_path, processed_files="delete")
    drain(spark, settings)
    _write(sales / "2.csv", _rows(second), landed)
    drain(spark, settings.model_copy(update={"paths": settings.paths.model_copy(
        update={"checkpoints": str(tmp_path / "checkpoints-2")})}))

    silver = lake_table(settings, "silver_sales")
    assert sorted(silver["order_id"]) == sorted([*first["order_id"], *second["order_id"]])
    assert cents(silver["sales"]) == cents(pd.concat([first, second])["sales"])


def test_duplicate_window_holds_published_batches_and_other_writers_keys(spark: SparkSession, tmp_path: Path,
                                                                        good_rows: pd.DataFrame) -> None:
    from spark_jobs import io
    from spark_jobs.duplicates import MERGE_EVERY, DuplicateWindow

    lake = str(tmp_path / "lake")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ids = [f"order-{n}" for n in range(MERGE_EVERY + 6)]

    def silver_rows(order_ids: list[str], minutes_ago: int = 5) -> Any:
        rows = good_rows.iloc[:len(order_ids)].assign(order_id=order_ids)
        frame = spark.createDataFrame(rows[COLUMNS].astype(str)).selectExpr(
            "order_id", f"timestamp'{(now - timedelta(minutes=minutes_ago)):%Y-%m-%d %H:%M:%S}' AS event_time")
        return frame.withColumn("event_date", frame["event_time"].cast("date"))

    def publish(name: str, order_ids: list[str], minutes_ago: int = 5) -> tuple[str, str]:
        written = io.write_table_version(silver_rows(order_ids, minutes_ago), lake, "silver_sales", name)
        io.update_manifest(spark, lake, lambda m: io.set_dirs(m, "silver_sales", written, []), name)
        return written

    def unseen(window: DuplicateWindow, order_ids: list[str]) -> set[str]:
        batch = spark.createDataFrame([(i,) for i in order_ids], "order_id string")
        kept = window.new_rows(batch, io.read_manifest(spark, lake), now - timedelta(hours=6))
        return {row["order_id"] for row in kept.collect()}

    publish("version-history", ids[:2])
    publish("version-too-old", ids[2:3], minutes_ago=7 * 60)  # outside the window: not a duplicate
    window = DuplicateWindow(spark, lake, "sales")
    assert unseen(window, ids[:4]) == set(ids[2:4])
    # Batches published by the stream join the window, also once their segments are merged.
    for n, order_id in enumerate(ids[3:3 + MERGE_EVERY + 1]):
        window.add(publish(f"stream-sales-q-{n:010d}", [order_id]))
    assert unseen(window, ids) == {ids[2], *ids[4 + MERGE_EVERY:]}
    # Another writer's directory makes the window read silver again.
    publish("version-backfill", ids[-1:])
    assert unseen(window, ids) == {ids[2], *ids[4 + MERGE_EVERY:-1]}
    window.close()


def test_rows_are_numbered_per_file_in_the_read_only_with_one_file_per_partition(
        spark: SparkSession, tmp_path: Path, good_rows: pd.DataFrame) -> None:
    from salespulse.profiles import load_profile
    from spark_jobs import io
    from spark_jobs.session import build_source_session

    sizes = {"a.csv": 3, "b.csv": 7, "c.csv": 1}
    start = 0
    for name, size in sizes.items():
        (tmp_path / name).write_text(_rows(good_rows.iloc[start:start + size]))
        start += size
    profile, files = load_profile("canonical"), [str(tmp_path / name) for name in sizes]
    source = io.read_source(build_source_session(spark), files, profile)
    numbered = io.number_rows(source.frame, profile, source.bad_headers)
    got = {row["file"].rsplit("/", 1)[-1]: sorted(row["numbers"]) for row in numbered.groupBy(
        numbered["_source_file"].alias("file")).agg(F.collect_list("_row_number").alias("numbers")).collect()}
    assert got == {name: list(range(1, size + 1)) for name, size in sizes.items()}
    # Spark's default packs small files into one partition: the read (which lists the files to check their
    # headers) refuses rather than number across files.
    with pytest.raises(RuntimeError, match="build_source_session"):
        io.read_source(spark, files, profile)


def test_stream_moves_to_a_new_checkpoint_and_reads_nothing_twice(spark: SparkSession, tmp_path: Path,
                                                                  good_rows: pd.DataFrame) -> None:
    landed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    sales = tmp_path / "landing" / "sales"
    files = [_at(good_rows.iloc[3 * n:3 * n + 3], landed - timedelta(minutes=1)) for n in range(5)]
    files[3] = pd.concat([files[3], files[1].iloc[:1]])  # an order a batch of the first checkpoint stored
    files[4] = pd.concat([files[4], files[4].iloc[:1].assign(units_sold="-3")])  # one row to quarantine
    for n, frame in enumerate(files):
        _write(sales / f"{n}.csv", _rows(frame), landed + timedelta(seconds=n))
    settings = stream_settings(tmp_path, processed_files="archive", max_files_per_trigger=1,
                               checkpoint_rotate_batches=2)
    lines = drain(spark, settings)

    assert sum("continuing in" in line for line in lines if line.startswith("stream sales")) >= 2, lines
    state = stream_state(settings)
    assert state["rows_in"] == sum(len(frame) for frame in files)  # no file read twice
    assert (state["rows_silver"], state["rows_duplicate"], state["rows_quarantined"]) == (15, 1, 1)
    silver = lake_table(settings, "silver_sales")
    assert sorted(silver["order_id"]) == sorted(good_rows["order_id"].iloc[:15])
    assert len(lake_table(settings, "quarantine_sales")) == 1
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints" / "stream-v1").iterdir() if "sales" in p.name)
    assert len(checkpoints) == 1 and checkpoints[0] != "sales", checkpoints  # only the newest is kept
    assert not list(sales.glob("*.csv"))
    assert sorted(p.name for p in (tmp_path / "archive" / "sales").rglob("*.csv")) == [f"{n}.csv" for n in range(5)]
