"""Items sold per hour divides by the calendar hours of the period, the same in every view: on the Financial
Sample (one row per month, at midnight of its first day) a month sells its units / (days x 24) items per hour in
`salespulse kpis --by month`, in kpi_totals for any filter and on the dashboard's KPI cards. Expectations from
pandas over the same workbook; the lake is built by the project's own Spark backfill."""

from __future__ import annotations

import calendar
import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

from dashboard.data import LakeRepository
from salespulse.cli import main
from salespulse.kpi_report import SalesFilter, kpi_totals
from salespulse.lake import MANIFEST
from salespulse.profiles import load_profile
from salespulse.scope import Scope
from salespulse.settings import Settings, load_settings
from spark_jobs.backfill import run_backfill
from tests.lakes import BUILT_AT

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark

WORKBOOK = Path(__file__).resolve().parents[1] / "fixtures" / "exports" / "financial_sample.xlsx"


@pytest.fixture(scope="module")
def sample(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("financial")
    settings = load_settings(overrides={"paths.lake": str(root / "lake"), "paths.models": str(root / "models")})
    run_backfill(spark, settings, str(WORKBOOK), load_profile("financial_sample"), BUILT_AT, "xlsx",
                 say=lambda _: None)
    return settings


@pytest.fixture(scope="module")
def units_by_month() -> pd.Series:
    """Units sold per month ('YYYY-MM') of the workbook, read by pandas."""
    book = pd.read_excel(WORKBOOK)
    book.columns = [c.strip() for c in book.columns]
    return book.groupby(pd.to_datetime(book["Date"]).dt.strftime("%Y-%m"))["Units Sold"].sum()


def month_hours(month: str) -> int:
    year, number = map(int, month.split("-"))
    return calendar.monthrange(year, number)[1] * 24


def test_items_per_hour_by_month_is_units_over_the_months_calendar_hours(
        sample: Settings, units_by_month: pd.Series) -> None:
    assert len(units_by_month) == 16
    cli = CliRunner().invoke(main, ["kpis", "--lake", sample.paths.lake, "--by", "month", "--json"])
    assert cli.exit_code == 0, cli.output
    printed = {row["month"]: row for row in json.loads(cli.output)}
    assert set(printed) == set(units_by_month.index)
    for month, units in units_by_month.items():
        assert printed[month]["units_sold"] == pytest.approx(units, rel=1e-12)
        assert printed[month]["items_per_hour"] == pytest.approx(units / month_hours(month), rel=1e-12), month


def test_items_per_hour_of_a_date_range_is_the_same_in_every_view(sample: Settings, units_by_month: pd.Series) -> None:
    repo = LakeRepository(sample.paths.lake, sample.paths.models)
    for month in ("2013-09", "2014-02", "2014-12"):
        year, number = map(int, month.split("-"))
        where = SalesFilter.for_dates(date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1]))
        want = units_by_month[month] / month_hours(month)
        assert kpi_totals(sample.paths.lake, None, where).iloc[0]["items_per_hour"] == pytest.approx(want), month
        assert repo.kpis(ADMIN, where)["items_per_hour"] == pytest.approx(want), month
        # per country, the same hours: the countries' rates add up to the month's
        by_country = kpi_totals(sample.paths.lake, "country", where)
        assert by_country["items_per_hour"].sum() == pytest.approx(want), month
    # a quarter: its units over its 92 days of hours
    where = SalesFilter.for_dates(date(2014, 10, 1), date(2014, 12, 31))
    want = units_by_month[["2014-10", "2014-11", "2014-12"]].sum() / (92 * 24)
    assert repo.kpis(ADMIN, where)["items_per_hour"] == pytest.approx(want)
    # a range starting before the data counts from the data's first hour (2013-09-01 00:00)
    where = SalesFilter.for_dates(date(2013, 8, 1), date(2013, 9, 30))
    assert repo.kpis(ADMIN, where)["items_per_hour"] == pytest.approx(units_by_month["2013-09"] / (30 * 24))


def test_the_period_still_running_at_the_last_publish_ends_with_the_datas_last_hour(
        sample: Settings, units_by_month: pd.Series, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(sample.paths.lake, lake)
    manifest = json.loads((lake / MANIFEST).read_text())
    manifest["published_at"] = "2014-12-01T00:30:00+00:00"  # as if published half an hour into December 2014
    (lake / MANIFEST).write_text(json.dumps(manifest))
    by_month = kpi_totals(lake, "month").set_index("month")
    # December so far: its one hour with data (00:00-01:00); November is over, all its hours count
    assert by_month.loc["2014-12", "items_per_hour"] == pytest.approx(units_by_month["2014-12"] / 1)
    assert by_month.loc["2014-11", "items_per_hour"] == pytest.approx(units_by_month["2014-11"] / (30 * 24))
    where = SalesFilter.for_dates(date(2014, 11, 1), date(2014, 12, 31))
    repo = LakeRepository(lake, tmp_path / "models")
    want = units_by_month[["2014-11", "2014-12"]].sum() / (30 * 24 + 1)
    assert repo.kpis(ADMIN, where)["items_per_hour"] == pytest.approx(want)
