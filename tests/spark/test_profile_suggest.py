"""`salespulse profile suggest` on real exports: the profile it writes, with only the category value maps filled
in, loads every row and the source's own totals (pandas over the same file)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pyspark.sql import SparkSession

from salespulse.cli import main
from salespulse.profiles import SourceProfile
from tests.spark.test_backfill import EXPORTS, backfill, cents, lake_settings, table

pytestmark = pytest.mark.spark

WORKBOOK = EXPORTS / "financial_sample_original.xlsx"  # the original Microsoft workbook, unmodified


def suggested(tmp_path: Path, export: Path) -> tuple[str, dict]:
    out = tmp_path / "suggested.yaml"
    result = CliRunner().invoke(main, ["profile", "suggest", str(export), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    return text, yaml.safe_load(text)


def test_profile_suggest_supermarket_export_loads_with_value_maps_only(spark: SparkSession, tmp_path: Path) -> None:
    text, profile = suggested(tmp_path, EXPORTS / "supermarket_sales.csv")
    assert profile["columns"]["order_id"] == "Invoice ID" and profile["event_time_parts"] == ["Date", "Time"]
    assert profile["date_formats"] == ["M/d/yyyy H:mm"] and profile["constants"] == {"discount_band": "None"}
    assert "unknown to SalesPulse: Mandalay, Naypyitaw, Yangon" in text
    # the one edit a person makes: map the branch cities, customer types and product lines onto known values
    profile["value_maps"] = {
        "country": {"Yangon": "Canada", "Mandalay": "USA", "Naypyitaw": "Mexico"},
        "segment": {"Member": "Channel Partners", "Normal": "Small Business"},
        "product": {line: "Paseo" for line in ("Health and beauty", "Electronic accessories", "Home and lifestyle",
                                                "Sports and travel", "Food and beverages", "Fashion accessories")},
    }
    source = pd.read_csv(EXPORTS / "supermarket_sales.csv", dtype=str)
    settings = lake_settings(tmp_path)
    report = backfill(spark, settings, EXPORTS / "supermarket_sales.csv",
                      SourceProfile.model_validate({"name": "suggested", **profile}), "suggested")
    assert report["rows_in"] == report["rows_silver"] == len(source)
    assert cents(report["silver_totals"]["sales"]) == cents(sum(Decimal(v) for v in source["Total"]))
    assert cents(report["silver_totals"]["profit"]) == cents(sum(Decimal(v) for v in source["gross income"]))
    silver = table(settings, "silver_sales")
    assert silver["country"].value_counts().to_dict() == (
        source["City"].map({"Yangon": "Canada", "Mandalay": "USA", "Naypyitaw": "Mexico"}).value_counts().to_dict())


def test_profile_suggest_financial_sample_workbook_loads_unedited(spark: SparkSession, tmp_path: Path) -> None:
    text, profile = suggested(tmp_path, WORKBOOK)
    assert "unknown to SalesPulse" not in text  # "United States of America" is a country alias
    source = pd.read_excel(WORKBOOK, keep_default_na=False).rename(columns=str.strip)
    settings = lake_settings(tmp_path)
    report = backfill(spark, settings, WORKBOOK, SourceProfile.model_validate({"name": "suggested", **profile}), "fs")
    assert report["rows_in"] == len(source) == 700
    assert report["rows_in"] == report["rows_silver"] + report["rows_quarantined"] + report["rows_duplicate"]
    assert report["rows_quarantined"] == 0
    kept = source.drop_duplicates(subset=[c for c in source.columns if c not in ("Month Number", "Month Name", "Year")])
    assert report["rows_silver"] == len(kept)
    for column, measure in (("Sales", "sales"), ("Profit", "profit")):
        assert cents(report["silver_totals"][measure]) == cents(sum(Decimal(repr(v)) for v in kept[column]))
