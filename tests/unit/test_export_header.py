"""A header that does not fit a profile: the message shows what the profile expects, the file's closest line and
the names it lacks (read_local_export reads on the driver, no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from salespulse.profiles import load_profile
from spark_jobs.io import SourceError, read_local_export

EXPECTED = ("Segment, Country, Product, Discount Band, Units Sold, Manufacturing Price, Sale Price, Gross Sales, "
            "Discounts, Sales, COGS, Profit, Date")


def test_header_mismatch_shows_expected_found_and_missing(tmp_path: Path) -> None:
    export = tmp_path / "near.csv"
    export.write_text("Monthly report\n\n Country ,Segment,product,Units Sold,Date\nUSA,Government,VTT,3,1/1/2014\n",
                      encoding="utf-8")
    with pytest.raises(SourceError) as err:
        read_local_export(export, load_profile("financial_sample"))
    assert str(err.value).splitlines() == [
        f"{export}: no line holds all the columns profile 'financial_sample' expects (matched trimmed and "
        "case-insensitively)",
        f"  expected: {EXPECTED}",
        "  line 3: Country, Segment, product, Units Sold, Date",
        "  missing: Discount Band, Manufacturing Price, Sale Price, Gross Sales, Discounts, Sales, COGS, Profit",
    ]


def test_header_on_a_fixed_line_names_that_line(tmp_path: Path) -> None:
    export = tmp_path / "fixed.csv"
    export.write_text("Country,Segment\nUSA,Government\n", encoding="utf-8")
    sample = load_profile("financial_sample")
    profile = sample.model_copy(update={"read": sample.read.model_copy(update={"header": 1})})
    with pytest.raises(SourceError, match=r"the header on line 1 \(read.header\) lacks columns") as err:
        read_local_export(export, profile)
    assert "  line 1: Country, Segment" in str(err.value) and "  missing: Segment" not in str(err.value)


def test_empty_file_says_it_holds_no_record(tmp_path: Path) -> None:
    export = tmp_path / "empty.csv"
    export.write_text("\n\n", encoding="utf-8")
    with pytest.raises(SourceError, match="no header line: the file holds no record"):
        read_local_export(export, load_profile("financial_sample"))
