"""Quarantined rows name their culprit, and a sales backfill accounts for its money: one hand-made export with a
row per reason and culprit, whose outcome each row's fixture line states, checked in the quarantine table, the
report, the dashboard's rejected-rows table and the CLI's money table."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pyspark.sql import SparkSession

from dashboard import callbacks
from dashboard.data import LakeRepository
from salespulse.cli import main
from salespulse.lake import duckdb_scan
from salespulse.profiles import PROFILES_DIR, load_profile
from salespulse.scope import Scope
from salespulse.settings import DashboardSettings, load_settings
from spark_jobs.backfill import run_backfill
from tests.spark.test_backfill import NOW

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark

COLUMNS = ("order_id", "event_time", "country", "segment", "product", "discount_band", "units_sold",
           "manufacturing_price", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit", "customer_id")


def sale(order: str, units: int, price: str, discount: str, unit_cost: str, **changes: str) -> dict[str, str]:
    """A row whose amounts agree (gross = units x price, sales = gross - discounts, profit = sales - cogs), then
    ``changes`` applied as text."""
    gross = units * Decimal(price)
    sales = gross - Decimal(discount)
    cogs = units * Decimal(unit_cost)
    row = {"order_id": order, "event_time": "1/15/2026", "country": "USA", "segment": "Government",
           "product": "Paseo", "discount_band": "Low", "units_sold": str(units), "manufacturing_price": "10",
           "sale_price": price, "gross_sales": str(gross), "discounts": discount, "sales": str(sales),
           "cogs": str(cogs), "profit": str(sales - cogs), "customer_id": f"c-{order}"}
    return {**row, **changes}


def shifted(row: dict[str, str], **by: str) -> dict[str, str]:
    return {**row, **{column: str(Decimal(row[column]) + Decimal(amount)) for column, amount in by.items()}}


# (row, outcome, reason, culprit, words the detail holds): what each line of the export is, known by construction.
CASES: list[tuple[dict[str, str], str, str | None, str | None, str | None]] = [
    (sale("o1", 3, "20.50", "1.23", "7.25"), "silver", None, None, None),
    (sale("o2", 5, "12.00", "0", "3.00"), "silver", None, None, None),
    (sale("o3", 2, "125.00", "2.50", "120.00"), "silver", None, None, None),
    (sale("o1", 4, "20.50", "0", "7.25"), "duplicate", None, None, None),  # o1 again, later in the file
    (sale("q1", 1, "7.00", "0", "5.00", country="Brasil"), "quarantine", "unknown_category", "country",
     "country: 'Brasil' is not one of USA, Canada"),
    (sale("q2", 2, "7.00", "0", "5.00", country="Brazil"), "quarantine", "unknown_category", "country",
     "country: 'Brazil' is not one of USA"),
    (sale("q3", 1, "15.00", "0", "10.00", product="Bike"), "quarantine", "unknown_category", "product",
     "product: 'Bike' is not one of Carretera"),
    (shifted(sale("q4", 3, "20.50", "0", "10.00"), gross_sales="10", sales="10", profit="10"), "quarantine",
     "amount_mismatch", "gross_sales vs units_sold x sale_price",
     "gross_sales 71.50 != units_sold 3.0 x sale_price 20.50 = 61.50 (off by 10.00, tolerance 0.01)"),
    (shifted(sale("q5", 2, "300.00", "36.00", "250.00"), sales="5", profit="5"), "quarantine", "amount_mismatch",
     "sales vs gross_sales - discounts",
     "sales 569.00 != gross_sales 600.00 - discounts 36.00 = 564.00 (off by 5.00, tolerance 0.01)"),
    (shifted(sale("q6", 1, "350.00", "0", "260.00"), profit="0.02"), "quarantine", "amount_mismatch",
     "profit vs sales - cogs", "profit 90.02 != sales 350.00 - cogs 260.00 = 90.00 (off by 0.02, tolerance 0.01)"),
    (sale("q7", 2, "12.00", "0", "3.00", units_sold="abc"), "quarantine", "malformed_number", "units_sold",
     "units_sold: 'abc' is not a number"),
    (sale("q8", 1, "12.00", "0", "3.00", event_time="31/31/2024"), "quarantine", "malformed_date", "event_time",
     "event_time: '31/31/2024' fits none of [ISO 8601, M/d/yyyy]"),
    (sale("q9", 1, "12.00", "0", "3.00", order_id=""), "quarantine", "missing_field", "order_id",
     "order_id: required, but blank"),
    (sale("q10", -3, "20.00", "0", "10.00"), "quarantine", "negative_units", "units_sold",
     "units_sold: -3.0 is below zero"),
    (sale("q11", 2, "12.00", "0", "3.00", sales="n/a"), "quarantine", "malformed_number", "sales",
     "sales: 'n/a' is not a number"),
    (sale("q12", 1, "125.00", "0", "120.00", event_time="1/1/2099"), "quarantine", "future_event_time", "event_time",
     "event_time: 2099-01-01 00:00:00 UTC is more than"),
]
# A second export: o2 is in the lake already (the lake's copy stays), o4 is new.
SECOND = [(sale("o2", 9, "12.00", "0", "3.00"), "duplicate"), (sale("o4", 1, "20.00", "0", "10.00"), "silver")]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(path, index=False)
    return path


def write_profile(tmp_path: Path) -> Path:
    """The canonical profile, reading dates as M/d/yyyy like a US export."""
    data = yaml.safe_load((PROFILES_DIR / "canonical.yaml").read_text())
    path = tmp_path / "us_dates.yaml"
    path.write_text(yaml.safe_dump({**data, "date_formats": ["M/d/yyyy"]}, sort_keys=False))
    return path


def amount(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1)))


def expected_money(rows: list[dict[str, str]], outcomes: list[str], reasons: list[str | None],
                   measure: str) -> dict[str, Any]:
    frame = pd.DataFrame({"value": [amount(r[measure]) for r in rows], "outcome": outcomes, "reason": reasons})
    readable = frame[frame["value"].notna()]

    def total(part: pd.DataFrame) -> Decimal:
        return sum(part["value"], Decimal(0))

    return {"in": total(readable), "silver": total(readable[readable["outcome"] == "silver"]),
            "duplicates": total(readable[readable["outcome"] == "duplicate"]),
            "quarantined": {reason: total(part) for reason, part in readable.groupby("reason")},
            "unreadable": int(frame["value"].isna().sum())}


def assert_money(report: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {line: cents(report[line]) for line in ("in", "silver", "duplicates")} == {
        line: cents(expected[line]) for line in ("in", "silver", "duplicates")}
    assert {r: cents(v) for r, v in report["quarantined"].items()} == {
        r: cents(v) for r, v in expected["quarantined"].items()}
    assert report["unreadable"] == expected["unreadable"]


def test_quarantine_detail_names_the_culprit_in_lake_report_and_dashboard(spark: SparkSession,
                                                                          tmp_path: Path) -> None:
    settings = load_settings(overrides={"paths.lake": str(tmp_path / "lake")})
    source = write_csv(tmp_path / "export.csv", [row for row, *_ in CASES])
    report = run_backfill(spark, settings, str(source), load_profile(str(write_profile(tmp_path))), NOW, "r1",
                          say=lambda _: None)

    quarantine = duckdb.sql(f"SELECT * FROM {duckdb_scan(settings.paths.lake, 'quarantine_sales')}").df()
    got = {number: (reason, detail) for number, reason, detail in zip(
        quarantine["row_number"], quarantine["reason"], quarantine["reason_detail"], strict=True)}
    wanted = {i + 1: case for i, case in enumerate(CASES) if case[1] == "quarantine"}
    assert sorted(got) == sorted(wanted)
    for number, (_, _, reason, culprit, words) in wanted.items():
        assert got[number][0] == reason, number
        assert got[number][1].startswith(f"{culprit}: "), (number, got[number][1])
        assert words in got[number][1], (number, got[number][1])

    by_detail: dict[str, dict[str, int]] = {}
    for _, outcome, reason, culprit, _ in CASES:
        if outcome == "quarantine":
            by_detail.setdefault(reason, {}).setdefault(culprit, 0)
            by_detail[reason][culprit] += 1
    assert report["quarantined_by_detail"] == by_detail
    assert report["quarantined_by_reason"] == {reason: sum(c.values()) for reason, c in by_detail.items()}

    repo = LakeRepository(settings.paths.lake, tmp_path / "models")
    outputs = callbacks.quality_outputs(repo, ADMIN, None, DashboardSettings())
    records, columns = next((o, outputs[i + 1]) for i, o in enumerate(outputs)
                            if isinstance(o, list) and o and "row_number" in o[0])
    assert {"name": "Detail", "id": "reason_detail"} in columns
    shown = {r["row_number"]: r["reason_detail"] for r in records}
    assert shown == {number: detail for number, (_, detail) in got.items()}


def test_backfill_report_reconciles_sales_and_profit_per_reason(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    first = write_csv(tmp_path / "export.csv", [row for row, *_ in CASES])
    second = write_csv(tmp_path / "export2.csv", [row for row, _ in SECOND])
    profile = write_profile(tmp_path)
    outcomes = [outcome for _, outcome, *_ in CASES]
    reasons = [reason for _, _, reason, *_ in CASES]

    result = CliRunner().invoke(main, ["backfill", "--input", str(first), "--profile", str(profile),
                                       "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for measure in ("sales", "profit"):
        assert_money(report["money"][measure], expected_money([r for r, *_ in CASES], outcomes, reasons, measure))
    table = {line.split()[0] if not line.startswith("quarantined:") else line.split()[1]: line.split()[-2:]
             for line in result.stderr.splitlines() if line.split() and line.split()[0] in (
                 "money", "in", "silver", "duplicates", "quarantined:")}
    sales, profit = expected_money([r for r, *_ in CASES], outcomes, reasons, "sales"), expected_money(
        [r for r, *_ in CASES], outcomes, reasons, "profit")
    assert table["money"] == ["sales", "profit"]
    assert table["in"] == [f"{sales['in']:,.2f}", f"{profit['in']:,.2f}"]
    assert table["amount_mismatch"] == [f"{sales['quarantined']['amount_mismatch']:,.2f}",
                                        f"{profit['quarantined']['amount_mismatch']:,.2f}"]
    assert "rows without a readable amount" in result.stderr

    settings = load_settings(overrides={"paths.lake": str(lake)})
    again = run_backfill(spark, settings, str(second), load_profile(str(profile)), NOW, "r2", say=lambda _: None)
    assert again["rows_already_in_lake"] == 1
    rows = [row for row, _ in SECOND]
    for measure in ("sales", "profit"):
        assert_money(again["money"][measure],
                     expected_money(rows, [outcome for _, outcome in SECOND], [None] * len(rows), measure))


def test_quarantine_written_before_the_detail_column_stays_readable(spark: SparkSession, tmp_path: Path) -> None:
    """A lake whose quarantine predates reason_detail: the dashboard lists its rows (no detail), and the next
    backfill merges them with its own detailed rows."""
    import pyarrow.parquet as pq

    lake = tmp_path / "lake"
    settings = load_settings(overrides={"paths.lake": str(lake)})
    profile = load_profile(str(write_profile(tmp_path)))
    old_rows = [row for row, outcome, *_ in CASES[:7]]
    run_backfill(spark, settings, str(write_csv(tmp_path / "old.csv", old_rows)), profile, NOW, "old",
                 say=lambda _: None)
    # Make it an older lake: the quarantine files and the schema the manifest keeps lose the column.
    manifest_path = lake / "_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for directory in manifest["tables"]["quarantine_sales"]:
        for file in (lake / directory).glob("*.parquet"):
            pq.write_table(pq.read_table(file).drop_columns(["reason_detail"]), file,
                           use_deprecated_int96_timestamps=True)  # as Spark writes timestamps
            (file.parent / f".{file.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old bytes
    schema = json.loads(manifest["schemas"]["quarantine_sales"])
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "reason_detail"]
    manifest["schemas"]["quarantine_sales"] = json.dumps(schema)
    manifest_path.write_text(json.dumps(manifest))
    old_bad = {i + 1 for i, (_, outcome, *_) in enumerate(CASES[:7]) if outcome == "quarantine"}

    sample = LakeRepository(lake, tmp_path / "models").quarantine_sample(ADMIN)
    assert set(sample["row_number"]) == old_bad and sample["reason_detail"].isna().all()

    new_rows = [sale("q13", 1, "7.00", "0", "5.00", product="Bike")]
    report = run_backfill(spark, settings, str(write_csv(tmp_path / "new.csv", new_rows)), profile, NOW, "new",
                          say=lambda _: None)
    assert report["quarantined_by_detail"] == {"unknown_category": {"product": 1}}
    quarantine = duckdb.sql(f"SELECT * FROM {duckdb_scan(lake, 'quarantine_sales')}").df()
    details = {(file.rsplit("/", 1)[-1], number): detail for file, number, detail in zip(
        quarantine["source_file"], quarantine["row_number"], quarantine["reason_detail"], strict=True)}
    assert {key for key, detail in details.items() if detail is None} == {("old.csv", n) for n in old_bad}
    assert details[("new.csv", 1)].startswith("product: 'Bike' is not one of")
