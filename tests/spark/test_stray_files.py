"""A stray file among the inputs of a backfill (notes, a file with another header, an empty or binary one) does not
stop the load: it becomes one ``bad_header`` quarantine entry, the report lists it, and the other files load as if
it were not there (checked against pandas reading the good files)."""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from salespulse.lake import duckdb_scan
from salespulse.profiles import load_profile
from salespulse.schema import SALES_EVENT
from salespulse.settings import Settings, load_settings
from spark_jobs.backfill import run_backfill
from tests.conftest import read_landing, run_simulator

pytestmark = pytest.mark.spark

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
NOTES = "Remember: the March files come next week.\nAsk Bob about Canada.\n"


def _backfill(spark: SparkSession, tmp_path: Path, inputs: Path, profile: str, now: datetime
              ) -> tuple[Settings, dict, list[str]]:
    settings = load_settings(overrides={"paths.lake": str(tmp_path / "lake")})
    lines: list[str] = []
    report = run_backfill(spark, settings, str(inputs), load_profile(profile), now, "stray", lines.append)
    return settings, report, lines


def _table(settings: Settings, name: str) -> pd.DataFrame:
    scan = duckdb_scan(settings.paths.lake, name)
    return duckdb.sql(f"SELECT * FROM {scan}").df() if scan else pd.DataFrame()


def _file(paths: pd.Series) -> pd.Series:
    return paths.str.rsplit("/", n=1).str[-1]


def _cents(values: pd.Series) -> int:
    return sum(int((Decimal(str(v)) * 100).quantize(Decimal(1))) for v in values)


def _assert_entries(settings: Settings, report: dict, lines: list[str], want: dict[str, list[str]]) -> None:
    """One bad_header entry per stray file (its header cells and the names it lacks in raw), listed by the report,
    counted once each, and said on one line each."""
    quarantine = _table(settings, "quarantine_sales")
    entries = quarantine[quarantine["reason"] == "bad_header"]
    assert sorted(_file(entries["source_file"])) == sorted(want)
    assert (entries["row_number"] == 0).all()
    for _, entry in entries.iterrows():
        raw = dict(entry["raw"])
        name = _file(pd.Series([entry["source_file"]])).item()
        assert raw["_missing"] == ", ".join(want[name]), name
        assert raw["_detail"].startswith(f"{unquote(urlparse(entry['source_file']).path)}: "), name
        # The rejected-rows views show reason_detail: it names what the file lacks.
        assert entry["reason_detail"].startswith(f"header: missing {', '.join(want[name]) or 'none'}"), name
    listed = {f["file"].rsplit("/", 1)[-1]: f for f in report["bad_header_files"]}
    assert {name: f["missing"] for name, f in listed.items()} == want
    assert report["quarantined_by_reason"]["bad_header"] == len(want)
    assert report["rows_in"] == report["rows_silver"] + report["rows_quarantined"] + report["rows_duplicate"]
    said = [line for line in lines if line.endswith("quarantined as one entry")]
    assert sorted(line.split(": ", 1)[1].split(":")[0].rsplit("/", 1)[-1] for line in said) == sorted(want)


def test_backfill_spark_engine_quarantines_each_stray_file_once(spark: SparkSession, tmp_path: Path) -> None:
    simulated = tmp_path / "simulated"
    run_simulator(simulated, history_days=0.3, history_rate=0.05, bad_rows_pct=0, duplicate_pct=0, late_pct=0)
    columns = [c.name for c in SALES_EVENT.columns]
    rows = read_landing(simulated / "history" / "sales")[columns].drop_duplicates("order_id").reset_index(drop=True)
    assert len(rows) >= 30
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    half = len(rows) // 3
    good = {"a-good.csv": rows.iloc[:half], "b-good.csv": rows.iloc[half:2 * half]}
    for name, frame in good.items():
        frame.to_csv(inputs / name, index=False, quoting=csv.QUOTE_MINIMAL)
    (inputs / "notes.txt").write_text(NOTES, encoding="utf-8")
    # Valid rows under a header with one column renamed: loading them by position would be a guess.
    renamed = rows.iloc[2 * half:].rename(columns={"sales": "revenue"})
    renamed.to_csv(inputs / "c-renamed.csv", index=False)

    settings, report, lines = _backfill(spark, tmp_path, inputs, "canonical", datetime.now(timezone.utc))

    loaded = pd.concat(good.values())
    silver = _table(settings, "silver_sales")
    assert sorted(silver["order_id"]) == sorted(loaded["order_id"])
    assert _cents(silver["sales"]) == _cents(loaded["sales"])
    assert report["rows_silver"] == len(loaded) and report["rows_in"] == len(loaded) + 2
    _assert_entries(settings, report, lines, {"notes.txt": columns, "c-renamed.csv": ["sales"]})
    listed = {f["file"].rsplit("/", 1)[-1]: f["headers"] for f in report["bad_header_files"]}
    assert listed == {"notes.txt": ["Remember: the March files come next week."],
                      "c-renamed.csv": [c if c != "sales" else "revenue" for c in columns]}


def test_backfill_driver_engine_quarantines_stray_and_unreadable_files_once(spark: SparkSession,
                                                                          tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    workbook = inputs / "financial_sample.xlsx"
    workbook.write_bytes((EXPORTS / "financial_sample.xlsx").read_bytes())
    (inputs / "notes.txt").write_text(NOTES, encoding="utf-8")
    (inputs / "near.csv").write_text("Monthly report\n\nCountry,Segment,Product,Units Sold,Date\n"
                                     "USA,Government,VTT,3,1/1/2014\n", encoding="utf-8")
    (inputs / "empty.csv").write_text("\n\n", encoding="utf-8")
    (inputs / "scan.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    (inputs / "old.xlsx").write_text("not a workbook\n", encoding="utf-8")

    settings, report, lines = _backfill(spark, tmp_path, inputs, "financial_sample",
                                        datetime(2026, 11, 23, tzinfo=timezone.utc))

    source = pd.read_excel(workbook, dtype=str, keep_default_na=False)
    silver = _table(settings, "silver_sales")
    assert len(silver) == report["rows_silver"] == len(source)
    assert _cents(silver["sales"]) == _cents(source["Sales"].str.strip().str.replace(r"[$,]", "", regex=True))
    columns = list(load_profile("financial_sample").source_columns)
    _assert_entries(settings, report, lines, {
        "notes.txt": columns, "empty.csv": columns, "scan.csv": columns, "old.xlsx": columns,
        "near.csv": [c for c in columns if c not in ("Country", "Segment", "Product", "Units Sold", "Date")]})
    problems = {f["file"].rsplit("/", 1)[-1]: f["problem"] for f in report["bad_header_files"]}
    assert problems["empty.csv"] == "empty, no header line"
    assert problems["scan.csv"] == "unreadable, not text in utf-8-sig (read.encoding)"
    assert problems["old.xlsx"] == "unreadable, not a workbook"
