"""The batch backfill on real exports and simulator history, checked against independent truths: hand-made
expectations, the source's own totals, and pandas/DuckDB computations on the same files."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from pyspark.sql import SparkSession

from salespulse.kpi_report import kpi_totals
from salespulse.lake import duckdb_scan, table_dirs
from salespulse.profiles import SourceProfile, load_profile
from salespulse.settings import Settings, load_settings
from spark_jobs.backfill import run_backfill
from tests.conftest import read_landing, run_simulator, stock_from_events
from tests.unit.salespulse.test_simulator import valid_mask

pytestmark = pytest.mark.spark

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
DOCS = Path(__file__).resolve().parents[2] / "docs"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def lake_settings(tmp_path: Path) -> Settings:
    return load_settings(overrides={"paths.lake": str(tmp_path / "lake")})


def backfill(spark: SparkSession, settings: Settings, inputs: Path | str, profile: str | SourceProfile,
             run_id: str) -> dict[str, Any]:
    chosen = load_profile(profile) if isinstance(profile, str) else profile
    return run_backfill(spark, settings, str(inputs), chosen, NOW, run_id, say=lambda _: None)


def file_name(frame: pd.DataFrame) -> pd.Series:
    return frame["source_file"].str.rsplit("/", n=1).str[-1]


def table(settings: Settings, name: str) -> pd.DataFrame:
    scan = duckdb_scan(settings.paths.lake, name)
    return duckdb.sql(f"SELECT * FROM {scan}").df() if scan else pd.DataFrame()


def cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1)))


def test_backfill_messy_exports_row_by_row(spark: SparkSession, tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    first = backfill(spark, settings, EXPORTS / "messy_sales.csv", "financial_sample", "r1")
    second = backfill(spark, settings, EXPORTS / "messy_sales.tsv", "financial_sample", "r2")
    expected = pd.read_csv(EXPORTS / "messy_expected.csv", dtype=str, keep_default_na=False)

    for report, name in ((first, "messy_sales.csv"), (second, "messy_sales.tsv")):
        rows = expected[expected["file"] == name]
        assert report["rows_in"] == len(rows)
        assert report["rows_silver"] == (rows["outcome"] == "silver").sum()
        assert report["rows_duplicate"] == (rows["outcome"] == "duplicate").sum()
        reasons = rows.loc[rows["outcome"] == "quarantine", "reason"].value_counts().to_dict()
        assert report["quarantined_by_reason"] == reasons

    silver = table(settings, "silver_sales").assign(file=file_name)
    want = expected[expected["outcome"] == "silver"]
    assert sorted(zip(silver["file"], silver["row_number"], strict=True)) == sorted(
        zip(want["file"], want["row"].astype(int), strict=True))
    merged = want.assign(row=want["row"].astype(int)).merge(
        silver, left_on=["file", "row"], right_on=["file", "row_number"], suffixes=("_want", ""))
    for column in ("country", "segment", "product", "discount_band"):
        assert (merged[f"{column}_want"] == merged[column]).all(), column
    for column in ("units_sold", "gross_sales", "discounts", "sales", "cogs", "profit"):
        assert (merged[f"{column}_want"].map(cents) == merged[column].map(cents)).all(), column
    assert (merged["event_date_want"] == merged["event_time"].dt.strftime("%Y-%m-%d")).all()

    quarantine = table(settings, "quarantine_sales").assign(file=file_name)
    want_bad = expected[expected["outcome"] == "quarantine"]
    assert sorted(zip(quarantine["file"], quarantine["row_number"], quarantine["reason"], strict=True)) == sorted(
        zip(want_bad["file"], want_bad["row"].astype(int), want_bad["reason"], strict=True))
    raw_country = quarantine.loc[quarantine["reason"] == "unknown_category", "raw"].map(dict)
    assert any(r.get("Country", "").strip() == "Atlantis" for r in raw_country)  # raw values are kept


def test_backfill_financial_sample_matches_source_totals_csv_and_excel(spark: SparkSession, tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    truth = json.loads((EXPORTS / "financial_sample_totals.json").read_text())
    report = backfill(spark, settings, EXPORTS / "financial_sample.csv", "financial_sample", "csv")
    assert report["rows_in"] == truth["rows"] == report["rows_silver"]
    assert report["rows_quarantined"] == report["rows_duplicate"] == 0
    for key in ("sales", "profit", "units_sold"):
        assert cents(report["silver_totals"][key]) == cents(truth[key]), key

    by_country = kpi_totals(settings.paths.lake, "country").set_index("country")
    aliases = {"United States of America": "USA"}
    for country, sales in truth["sales_by_country"].items():
        assert cents(by_country.loc[aliases.get(country, country), "sales"]) == cents(sales)
    overall = kpi_totals(settings.paths.lake).iloc[0]
    assert overall["orders"] == truth["rows"]
    assert cents(overall["gross_sales"]) == cents(truth["gross_sales"])
    assert cents(overall["discounts"]) == cents(truth["discounts"])
    assert cents(overall["cogs"]) == cents(truth["cogs"])

    # the same rounded values as an Excel file (the rebuilt workbook): the same orders, whatever the file format
    excel = backfill(spark, settings, EXPORTS / "financial_sample.xlsx", "financial_sample", "xlsx")
    assert excel["rows_in"] == truth["rows"]
    assert excel["rows_already_in_lake"] == truth["rows"]
    assert excel["rows_silver"] == 0


WORKBOOK = EXPORTS / "financial_sample_original.xlsx"
WORKBOOK_MONEY = {"Gross Sales": "gross_sales", "Discounts": "discounts", "Sales": "sales", "COGS": "cogs",
                  "Profit": "profit"}


def exact_amount(cell: object) -> Decimal:
    """A workbook amount as the exact value it stands for: amounts are units (1 decimal) times prices and
    discount rates (2 decimals), so 3 decimals hold them; the cell holds the nearest binary float of Excel's
    arithmetic (e.g. 1234.5649999999998), which rounding to 3 places undoes."""
    return Decimal(repr(float(cell))).quantize(Decimal("0.001"))


def original_workbook() -> pd.DataFrame:
    """The original Financial Sample read with pandas, money as exact Decimals, countries as the lake names them."""
    frame = pd.read_excel(WORKBOOK, keep_default_na=False)
    frame.columns = frame.columns.str.strip()
    for column in WORKBOOK_MONEY:
        frame[column] = frame[column].map(exact_amount)
    frame["Country"] = frame["Country"].str.strip().replace({"United States of America": "USA"})
    return frame


def test_backfill_original_financial_workbook_sums_money_exactly(spark: SparkSession, tmp_path: Path) -> None:
    """Microsoft's original workbook has half cents (USA sales 25,029,830.165): the lake sums them exactly."""
    settings = lake_settings(tmp_path)
    workbook = original_workbook()
    report = backfill(spark, settings, WORKBOOK, "financial_sample", "original")
    assert report["rows_in"] == report["rows_silver"] == len(workbook) == 700
    assert report["rows_quarantined"] == report["rows_duplicate"] == 0
    assert Decimal(str(report["silver_totals"]["sales"])) == Decimal("118726350.26")

    by_country = kpi_totals(settings.paths.lake, "country").set_index("country")
    want = workbook.groupby("Country")[list(WORKBOOK_MONEY)].sum()
    assert want.loc["USA", "Sales"] == Decimal("25029830.165")
    for country, sums in want.iterrows():
        for column, measure in WORKBOOK_MONEY.items():
            assert by_country.loc[country, measure] == sums[column], (country, measure)
    overall = kpi_totals(settings.paths.lake).iloc[0]
    for column, measure in WORKBOOK_MONEY.items():
        assert overall[measure] == sum(workbook[column]), measure
    assert overall["units_sold"] == workbook["Units Sold"].sum() == 1_125_806


def test_backfill_rerun_is_idempotent(spark: SparkSession, tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    backfill(spark, settings, EXPORTS / "messy_sales.csv", "financial_sample", "a")
    before = {t: table(settings, t) for t in ("silver_sales", "gold_sales_hourly", "quarantine_sales")}
    again = backfill(spark, settings, EXPORTS / "messy_sales.csv", "financial_sample", "b")
    assert again["rows_silver"] == 0 and again["rows_already_in_lake"] == 15
    for name, old in before.items():
        new = table(settings, name)
        columns = [c for c in old.columns if c not in ("raw",)]
        pd.testing.assert_frame_equal(
            old[columns].sort_values(columns[:3]).reset_index(drop=True),
            new[columns].sort_values(columns[:3]).reset_index(drop=True), check_like=True)
    manifest = json.loads((Path(settings.paths.lake) / "_manifest.json").read_text())
    assert manifest["version"] == "b"


def test_backfill_simulator_history_matches_independent_computation(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    run_simulator(landing, history_days=3, history_rate=0.2, bad_rows_pct=3, duplicate_pct=2, late_pct=2)
    settings = lake_settings(tmp_path)
    sales_report = backfill(spark, settings, landing / "history" / "sales", "canonical", "sales")
    inventory_report = backfill(spark, settings, landing / "history" / "inventory", "canonical_inventory", "inv")

    raw = read_landing(landing / "history" / "sales")
    valid = raw[valid_mask(raw)]
    unique = valid.drop_duplicates("order_id")
    assert sales_report["rows_in"] == len(raw)
    assert sales_report["rows_quarantined"] == len(raw) - len(valid)
    assert sales_report["rows_duplicate"] == len(valid) - len(unique)
    assert sales_report["rows_silver"] == len(unique)
    assert inventory_report["rows_quarantined"] == 0

    numbers = unique.assign(**{c: unique[c].astype(float) for c in ("sales", "profit", "units_sold")})
    expected = numbers.groupby("country")[["sales", "profit", "units_sold"]].sum()
    got = kpi_totals(settings.paths.lake, "country").set_index("country")
    for country in expected.index:
        for column in ("sales", "profit"):
            assert cents(got.loc[country, column]) == cents(round(expected.loc[country, column], 2))
        assert got.loc[country, "orders"] == (numbers["country"] == country).sum()
        customers = numbers.loc[numbers["country"] == country, "customer_id"].nunique()
        assert got.loc[country, "active_customers"] == customers

    stock = table(settings, "gold_stock").set_index(["country", "product"])["stock_on_hand"]
    expected_stock = stock_from_events(read_landing(landing / "history" / "inventory"), unique)
    assert stock.to_dict() == pytest.approx(expected_stock)


def test_backfill_supermarket_profile_from_the_docs(spark: SparkSession, tmp_path: Path) -> None:
    """The worked example of docs/profiles.md, taken verbatim from the page, ingests a POS export."""
    page = (DOCS / "profiles.md").read_text()
    block = re.search(r"```yaml\n(event: sales\ndescription: Supermarket.*?)```", page, re.S)
    assert block, "the worked example profile is missing from docs/profiles.md"
    profile = SourceProfile.model_validate({"name": "supermarket", **yaml.safe_load(block.group(1))})
    settings = lake_settings(tmp_path)
    truth = json.loads((EXPORTS / "supermarket_totals.json").read_text())
    report = backfill(spark, settings, EXPORTS / "supermarket_sales.csv", profile, "pos")
    assert report["rows_in"] == report["rows_silver"] == truth["rows"]
    assert cents(report["silver_totals"]["sales"]) == cents(truth["cogs"])
    assert cents(report["silver_totals"]["profit"]) == cents(truth["gross_income"])
    assert report["silver_totals"]["units_sold"] == float(truth["quantity"])
    silver = table(settings, "silver_sales")
    cities = {"Yangon": "Canada", "Mandalay": "USA", "Naypyitaw": "Mexico"}
    assert silver["country"].value_counts().to_dict() == {cities[c]: n for c, n in truth["rows_by_city"].items()}
    assert (silver["flags"] == "unknown_category").all()  # product lines are kept, flagged
    assert silver["event_time"].dt.minute.nunique() > 1  # time of day came from the Time column


def test_cli_kpis_and_sql_read_the_published_lake(spark: SparkSession, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from salespulse.cli import main

    settings = lake_settings(tmp_path)
    backfill(spark, settings, EXPORTS / "messy_sales.csv", "financial_sample", "cli")
    expected = pd.read_csv(EXPORTS / "messy_expected.csv", dtype=str, keep_default_na=False)
    want = expected[(expected["file"] == "messy_sales.csv") & (expected["outcome"] == "silver")]
    runner = CliRunner()
    kpis = runner.invoke(main, ["kpis", "--lake", settings.paths.lake, "--by", "segment", "--json"])
    assert kpis.exit_code == 0, kpis.output
    by_segment = {r["segment"]: r for r in json.loads(kpis.output)}
    for segment, rows in want.groupby("segment"):
        assert cents(by_segment[segment]["sales"]) == sum(rows["sales"].map(cents))
        assert by_segment[segment]["orders"] == len(rows)
    query = "SELECT reason, count(*) AS n FROM quarantine_sales GROUP BY reason ORDER BY reason"
    sql = runner.invoke(main, ["sql", query, "--lake", settings.paths.lake, "--json"])
    assert sql.exit_code == 0, sql.output
    bad = expected[(expected["file"] == "messy_sales.csv") & (expected["outcome"] == "quarantine")]
    assert {r["reason"]: r["n"] for r in json.loads(sql.output)} == bad["reason"].value_counts().to_dict()
    broken = runner.invoke(main, ["sql", "SELECT nope FROM silver_sales", "--lake", settings.paths.lake])
    assert broken.exit_code == 1 and "SQL error" in broken.output


def test_backfill_stock_snapshot_replaces_one_a_stream_published_meanwhile(
        spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo loads the inventory history beside the running stream, whose stock refresh may publish a
    gold_stock snapshot while the backfill runs: afterwards exactly one snapshot is listed, not both."""
    import spark_jobs.backfill as backfill_module
    from spark_jobs import io

    landing = tmp_path / "landing"
    run_simulator(landing, history_days=2, history_rate=0.2, bad_rows_pct=0, duplicate_pct=0, late_pct=0)
    settings = lake_settings(tmp_path)
    lake = settings.paths.lake
    backfill(spark, settings, landing / "history" / "sales", "canonical", "sales")
    real_write_gold = backfill_module._write_gold

    def with_a_stream_refresh_meanwhile(*args: Any, **kwargs: Any) -> dict[str, tuple[str, str]]:
        written = real_write_gold(*args, **kwargs)
        snapshot = io.read_version(spark, lake, "gold_stock", [written["gold_stock"][0]], written["gold_stock"][1])
        stream = io.write_table_version(snapshot, lake, "gold_stock", "stream-sales-0000000001")
        io.update_manifest(spark, lake, lambda m: io.set_dirs(m, "gold_stock", stream,
                                                              m["tables"].get("gold_stock", [])), "stream")
        return written

    monkeypatch.setattr(backfill_module, "_write_gold", with_a_stream_refresh_meanwhile)
    backfill(spark, settings, landing / "history" / "inventory", "canonical_inventory", "inv")

    listed = io.read_manifest(spark, lake)["tables"]["gold_stock"]
    assert len(listed) == 1 and "stream-sales" not in listed[0]
    stock = table(settings, "gold_stock")
    assert not stock.duplicated(["country", "product"]).any()
    sales = read_landing(landing / "history" / "sales")
    expected = stock_from_events(read_landing(landing / "history" / "inventory"), sales)
    assert stock.set_index(["country", "product"])["stock_on_hand"].to_dict() == pytest.approx(expected)


def test_backfill_writes_gold_as_one_file_per_day(spark: SparkSession, tmp_path: Path) -> None:
    """Gold, which the dashboard reads on every filter change, comes as one file per day partition, also when
    the aggregates are spread over several tasks (adaptive execution off: it would merge this small input into
    one task and hide the layout)."""
    landing = tmp_path / "landing"
    run_simulator(landing, history_days=3, history_rate=0.05)
    settings = lake_settings(tmp_path)
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        backfill(spark, settings, landing / "history" / "sales", "canonical", "sales")
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    for name in ("gold_sales_hourly", "gold_customers_daily"):
        (written,) = table_dirs(settings.paths.lake, name)
        days = {d.name: len(list(d.glob("*.parquet"))) for d in Path(written).glob("event_date=*")}
        assert len(days) >= 3 and set(days.values()) == {1}, (name, days)

