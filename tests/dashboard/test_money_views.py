"""Money is exact and every view shows the same cents: Microsoft's original Financial Sample workbook (half-cent
amounts) through the backfill, then `salespulse kpis --json`, `salespulse kpis`, `salespulse sql`, the notebook,
and the dashboard's cards and CSV export in real Chromium, each checked against an independent Decimal
computation from the workbook's cells."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner
from nbclient import NotebookClient
from selenium.webdriver.common.by import By

from salespulse.cli import main
from salespulse.profiles import load_profile
from salespulse.settings import Settings, load_settings
from spark_jobs.backfill import run_backfill
from tests.accounts import PASSWORD
from tests.dashboard.browser import log_in, serve_as_demo, wait_for
from tests.dashboard.test_browser import kpi
from tests.spark.test_backfill import WORKBOOK, original_workbook
from tests.spark.test_notebook import NOTEBOOK, ROOT, printed_text, row

pytestmark = [pytest.mark.spark, pytest.mark.slow]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def cents_text(value: Decimal) -> str:
    """The documented display rule, applied here independently: cents, halves up, $ and thousands separators."""
    cents = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{'-' if cents < 0 else ''}${abs(cents):,.2f}"


@pytest.fixture(scope="module")
def workbook() -> pd.DataFrame:
    return original_workbook()


@pytest.fixture(scope="module")
def financial_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(overrides={"paths.lake": str(tmp_path_factory.mktemp("financial") / "lake")})
    report = run_backfill(spark, settings, str(WORKBOOK), load_profile("financial_sample"), NOW, "original",
                          say=lambda _: None)
    assert report["rows_silver"] == 700 and report["rows_quarantined"] == 0
    return settings


def test_money_workbook_truth_has_half_cents(workbook: pd.DataFrame) -> None:
    """The independent computation agrees with the workbook's published totals (and has the half cent)."""
    assert len(workbook) == 700 and workbook["Units Sold"].sum() == 1_125_806
    assert sum(workbook["Sales"]).quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("118726350.26")
    assert sum(workbook["Profit"]).quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("16893702.26")
    assert sum(workbook.loc[workbook["Country"] == "USA", "Sales"]) == Decimal("25029830.165")


def test_money_cli_json_table_sql_and_notebook_show_the_same_cents(
        financial_lake: Settings, workbook: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = financial_lake.paths.lake
    by_country = workbook.groupby("Country")[["Sales", "Profit"]].sum()
    runner = CliRunner()

    # JSON: exact decimal numbers, equal to the workbook's sums (not 25029830.1700000018)
    as_json = runner.invoke(main, ["kpis", "--lake", lake, "--by", "country", "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = {r["country"]: r for r in json.loads(as_json.output, parse_float=Decimal)}
    for country, sums in by_country.iterrows():
        assert rows[country]["sales"] == sums["Sales"], country
        assert rows[country]["profit"] == sums["Profit"], country
    assert '"sales": 25029830.165,' in as_json.output

    # The table: the workbook's sums through the documented rule
    table = runner.invoke(main, ["kpis", "--lake", lake, "--by", "country"])
    assert table.exit_code == 0, table.output
    usa_line = next(line for line in table.output.splitlines() if line.strip().startswith("USA"))
    assert cents_text(by_country.loc["USA", "Sales"]) == "$25,029,830.17"
    assert cents_text(by_country.loc["USA", "Sales"]) in usa_line.split()
    assert cents_text(by_country.loc["USA", "Profit"]) in usa_line.split()
    overall = runner.invoke(main, ["kpis", "--lake", lake])
    assert cents_text(sum(workbook["Sales"])) in overall.output.split()  # $118,726,350.26

    # Spark SQL prints the decimal plainly (not 1.1872635026E8)
    sql = runner.invoke(main, ["sql", "SELECT sum(sales) AS s FROM silver_sales WHERE country = 'USA'", "--lake", lake])
    assert sql.exit_code == 0, sql.output
    assert re.search(r"^\s*25029830\.1650*\s*$", sql.output, re.MULTILINE), sql.output

    # The notebook's KPI tables
    monkeypatch.setenv("SALESPULSE_LAKE", lake)
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    text = printed_text(nb)
    assert row(text, "USA")[:2] == [cents_text(by_country.loc["USA", "Sales"]),
                                    cents_text(by_country.loc["USA", "Profit"])]
    assert row(text, "Total sales") == [cents_text(sum(workbook["Sales"]))]


@pytest.fixture
def served(financial_lake: Settings, tmp_path: Path) -> Iterator[str]:
    yield from serve_as_demo(financial_lake, tmp_path / "users.json")


def test_money_dashboard_cards_and_csv_export_in_chromium_show_the_same_cents(
        served: str, browser, workbook: pd.DataFrame, tmp_path: Path) -> None:
    usa = workbook[workbook["Country"] == "USA"]
    log_in(browser, served, "demo", PASSWORD)
    wait_for(lambda: kpi(browser, "orders"))
    browser.get(served + "?range=custom&start=2013-01-01&end=2014-12-31&country=USA&grain=month")
    assert wait_for(lambda: kpi(browser, "total_sales") == "$25,029,830.17")
    assert cents_text(sum(usa["Sales"])) == "$25,029,830.17"
    assert kpi(browser, "profit") == cents_text(sum(usa["Profit"]))

    # The export: one row per month and category, each sum in cents by the same rule
    browser.find_element(By.ID, "export-button").click()
    downloads = tmp_path / "downloads"
    csv = wait_for(lambda: list(downloads.glob("*.csv")) if downloads.exists() else [])[0]
    exported = pd.read_csv(csv, dtype=str, keep_default_na=False)
    months = pd.to_datetime(usa["Date"]).dt.strftime("%Y-%m-01T00:00:00Z")
    keys = ["month_start_utc", "segment", "product", "discount_band"]
    want = (usa.assign(month_start_utc=months, segment=usa["Segment"].str.strip(),
                       product=usa["Product"].str.strip(), discount_band=usa["Discount Band"].str.strip())
            .groupby(keys)["Sales"].sum())
    got = exported.set_index(keys)["sales"]
    assert len(got) == len(want)
    for key, value in want.items():
        assert got[key] == str(value.quantize(Decimal("0.01"), ROUND_HALF_UP)), key
