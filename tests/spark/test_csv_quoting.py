"""CSV quoting: every reader of landed files (Spark's batch and stream reads, the driver-side reader of the
local engine, the ingest API) reads what Python's ``csv`` module writes — RFC 4180, quotes doubled — value for
value, checked against Python's ``csv`` reading the same bytes."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from salespulse.ingest import parse_csv_records
from salespulse.profiles import SourceProfile, load_profile
from salespulse.schema import SALES_EVENT
from spark_jobs.backfill import run_backfill
from spark_jobs.schemas import CORRUPT_RECORD
from tests.spark.test_backfill import lake_settings, table
from tests.spark.test_stream import drain, lake_table, stream_settings

pytestmark = pytest.mark.spark
COLUMNS = [c.name for c in SALES_EVENT.columns]
TRICKY = [
    'a "quoted" word',
    "Smith, John",
    '=HYPERLINK("x","y")',
    '=HYPERLINK("https://example.com/a,b","say ""hi""")',
    "first line\nsecond line",
    'say "hi",\nthen C:\\x\\"y"',
    "C:\\path\\to\\file",
    'C:\\"quoted"\\',
    "ends in a backslash\\",
    '"',
    '""',
    "café ☕",
]
EXTRA_FIELD = 'one "field" too many, C:\\'  # a record the header does not fit: kept whole in quarantine
# Python's csv writes CR LF after each record by default; exports written on Unix end records in LF. Spark reads
# a CR LF inside a quoted field as written only where it is not the file's own line ending (docs/data-model.md),
# so only the LF file holds one.
FILES = {"python-default.csv": ("\r\n", TRICKY), "python-lf.csv": ("\n", [*TRICKY, "two\r\nlines"])}


def _sale(order_id: str, when: str, product: str, customer_id: str) -> dict[str, str]:
    # 2 units at 15: gross 30, band None so no discount, sales 30, cogs 10, profit 20 (all amounts reconcile).
    return {"order_id": order_id, "event_time": when, "country": "USA", "segment": "Government",
            "product": product, "discount_band": "None", "units_sold": "2", "manufacturing_price": "3",
            "sale_price": "15", "gross_sales": "30", "discounts": "0", "sales": "30", "cogs": "10",
            "profit": "20", "customer_id": customer_id}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sales files written by Python's csv module: per tricky value a valid sale whose order and customer id
    hold it, and a sale with it as product (an unknown category, so quarantined with its raw values)."""
    folder = tmp_path_factory.mktemp("quoting") / "sales"
    folder.mkdir()
    when = (datetime.now(timezone.utc) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for name, (line_ending, values) in FILES.items():
        tag = name.split(".")[0]
        rows = [_sale(f"{tag} {i}: {value}", when, "Paseo", value) for i, value in enumerate(values)]
        rows += [_sale(f"{tag} q{i}", when, value, "C1") for i, value in enumerate(values)]
        with open(folder / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator=line_ending)
            writer.writerow(COLUMNS)
            writer.writerows([list(row.values()) for row in rows])
            writer.writerow([*_sale(f"{tag} extra", when, "Paseo", "C2").values(), EXTRA_FIELD])
    return folder


def python_records(folder: Path) -> pd.DataFrame:
    """Every data record of the folder's files as Python's csv module reads them, with file, record number and,
    for a record with more fields than the header, the record as Python's csv writes it."""
    frames = []
    for path in sorted(folder.glob("*.csv")):
        with open(path, encoding="utf-8", newline="") as handle:
            header, *records = list(csv.reader(handle))
        frame = pd.DataFrame([dict(zip(header, record, strict=False)) for record in records])
        written = [_written(record) if len(record) != len(header) else None for record in records]
        frames.append(frame.assign(file=path.name, row_number=range(1, len(records) + 1), corrupt=written))
    return pd.concat(frames, ignore_index=True)


def _written(record: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(record)
    return out.getvalue()


def assert_read_as_python_does(silver: pd.DataFrame, quarantine: pd.DataFrame, folder: Path) -> None:
    expected = python_records(folder)
    valid = expected[(expected["product"] == "Paseo") & expected["corrupt"].isna()]
    assert len(valid) == 2 * len(TRICKY) + 1
    assert dict(zip(silver["order_id"], silver["customer_id"], strict=True)) == dict(
        zip(valid["order_id"], valid["customer_id"], strict=True))

    rejected = expected[(expected["product"] != "Paseo") | expected["corrupt"].notna()]
    got = {(path.rsplit("/", 1)[-1], number): (reason, dict(raw))
           for path, number, reason, raw in zip(quarantine["source_file"], quarantine["row_number"],
                                                quarantine["reason"], quarantine["raw"], strict=True)}
    want = {(row["file"], row["row_number"]): (
        "unknown_category" if pd.isna(row["corrupt"]) else "malformed_row",
        {**{c: row[c] for c in COLUMNS}, CORRUPT_RECORD: row["corrupt"]}) for _, row in rejected.iterrows()}
    assert got == want


def test_backfill_spark_reads_python_csv_quoting(spark: SparkSession, tmp_path: Path, exports: Path) -> None:
    settings = lake_settings(tmp_path)
    run_backfill(spark, settings, str(exports), load_profile("canonical"), datetime.now(timezone.utc), "quoting",
                 say=lambda _: None)
    assert_read_as_python_does(table(settings, "silver_sales"), table(settings, "quarantine_sales"), exports)


def test_backfill_local_engine_reads_python_csv_quoting(spark: SparkSession, tmp_path: Path, exports: Path) -> None:
    canonical = load_profile("canonical")
    local = SourceProfile.model_validate(
        {**canonical.model_dump(), "read": {"engine": "local", "delimiter": ",", "header": "auto"}})
    settings = lake_settings(tmp_path)
    run_backfill(spark, settings, str(exports), local, datetime.now(timezone.utc), "quoting", say=lambda _: None)
    assert_read_as_python_does(table(settings, "silver_sales"), table(settings, "quarantine_sales"), exports)


def test_stream_reads_python_csv_quoting(spark: SparkSession, tmp_path: Path, exports: Path) -> None:
    settings = stream_settings(tmp_path)
    landing = Path(settings.paths.landing) / "sales"
    landing.mkdir(parents=True)
    for path in exports.glob("*.csv"):
        (landing / path.name).write_bytes(path.read_bytes())
    drain(spark, settings)
    assert_read_as_python_does(lake_table(settings, "silver_sales"), lake_table(settings, "quarantine_sales"),
                               landing)


def test_ingest_csv_body_reads_python_csv_quoting(exports: Path) -> None:
    for path in exports.glob("*.csv"):
        body = path.read_bytes()
        header, rows = parse_csv_records(body)
        expected = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        assert [header, *rows] == expected
