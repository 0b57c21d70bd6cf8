"""The backfill warns when an export's dates do not say which field is the month: every date fits both M/d and
d/M, or one file is read partly by a format and partly by its day/month swap. Expectations are written by hand
from the dates in each file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from salespulse.profiles import load_profile
from spark_jobs.transforms.clean import day_month_swapped
from tests.spark.test_backfill import backfill, lake_settings

pytestmark = pytest.mark.spark

HEADER = ("Segment,Country,Product,Discount Band,Units Sold,Manufacturing Price,Sale Price,Gross Sales,Discounts,"
          "Sales,COGS,Profit,Date")


def write_export(folder: Path, name: str, dates: list[str]) -> None:
    lines = [HEADER]
    for units, day in enumerate(dates, start=1):  # units differ, so no two rows are the same order
        gross = units * 20
        lines.append(f"Government,Canada,Carretera,None,{units},3,20,{gross},0,{gross},{units * 10},{units * 10},{day}")
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_day_month_swapped_patterns() -> None:
    assert day_month_swapped("M/d/yyyy") == "d/M/yyyy"
    assert day_month_swapped("dd.MM.yyyy HH:mm") == "MM.dd.yyyy HH:mm"
    assert day_month_swapped("yyyy-MM-dd") is None  # year first: ISO order, never day first
    assert day_month_swapped("d MMM yyyy") is None  # a month name is not a number


def test_backfill_warns_on_dates_that_fit_both_orders_or_mix_them(spark: SparkSession, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    write_export(exports, "ambiguous.csv", ["03/04/2014", "05/06/2014", "07/07/2014"])
    write_export(exports, "mixed.csv", ["03/04/2014", "12/25/2014", "25/12/2014"])
    write_export(exports, "clear.csv", ["12/25/2014", "03/04/2014"])
    write_export(exports, "monthly.csv", ["1/1/2014", "6/1/2014", "11/1/2014"])
    base = load_profile("financial_sample")
    profile = base.model_copy(update={"date_formats": ["M/d/yyyy", "d/M/yyyy"]})
    report = backfill(spark, lake_settings(tmp_path), exports / "*.csv", profile, "dates")

    found = {(w["file"], w["kind"]): w for w in report["date_warnings"]}
    assert set(found) == {("ambiguous.csv", "ambiguous_day_month"), ("mixed.csv", "mixed_day_month"),
                          ("monthly.csv", "ambiguous_day_month")}
    ambiguous = found["ambiguous.csv", "ambiguous_day_month"]
    assert ambiguous["rows"] == [3, 2]  # 07/07 is the same date either way
    assert ambiguous["examples"] == ["03/04/2014"] and ambiguous["formats"] == ["M/d/yyyy", "d/M/yyyy"]
    assert "1st of a month" not in ambiguous["message"]
    mixed = found["mixed.csv", "mixed_day_month"]
    assert mixed["rows"] == [2, 1] and mixed["examples"] == ["03/04/2014", "25/12/2014"]
    monthly = found["monthly.csv", "ambiguous_day_month"]
    assert monthly["rows"] == [3, 2] and "every date falls on the 1st of a month" in monthly["message"]
    assert report["rows_in"] == 11 and report["rows_quarantined"] == 0  # a warning, never a rejected row
