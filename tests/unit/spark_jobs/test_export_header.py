"""A header that does not fit a profile: the file becomes one problem (quarantined as one entry by the jobs) whose
detail shows what the profile expects, the file's closest line and the names it lacks (read_local_export reads on
the driver, no JVM)."""

from __future__ import annotations

from pathlib import Path

from salespulse.profiles import load_profile
from spark_jobs.io import HeaderProblem, read_local_export

EXPECTED = ("Segment, Country, Product, Discount Band, Units Sold, Manufacturing Price, Sale Price, Gross Sales, "
            "Discounts, Sales, COGS, Profit, Date")


def test_header_mismatch_shows_expected_found_and_missing(tmp_path: Path) -> None:
    export = tmp_path / "near.csv"
    export.write_text("Monthly report\n\n Country ,Segment,product,Units Sold,Date\nUSA,Government,VTT,3,1/1/2014\n",
                      encoding="utf-8")
    problem = read_local_export(export, load_profile("financial_sample"))
    assert isinstance(problem, HeaderProblem)
    assert problem.detail.splitlines() == [
        f"{export}: no line holds all the columns profile 'financial_sample' expects (matched trimmed and "
        "case-insensitively)",
        f"  expected: {EXPECTED}",
        "  line 3: Country, Segment, product, Units Sold, Date",
        "  missing: Discount Band, Manufacturing Price, Sale Price, Gross Sales, Discounts, Sales, COGS, Profit",
    ]
    assert problem.file == export.resolve().as_uri()
    assert problem.headers == ["Country", "Segment", "product", "Units Sold", "Date"]
    assert problem.missing == ["Discount Band", "Manufacturing Price", "Sale Price", "Gross Sales", "Discounts",
                               "Sales", "COGS", "Profit"]
    assert problem.line() == (f"{export}: bad header, missing: Discount Band, Manufacturing Price, Sale Price, "
                              "Gross Sales, Discounts, Sales, COGS, Profit — quarantined as one entry")


def test_header_on_a_fixed_line_names_that_line(tmp_path: Path) -> None:
    export = tmp_path / "fixed.csv"
    export.write_text("Country,Segment\nUSA,Government\n", encoding="utf-8")
    sample = load_profile("financial_sample")
    profile = sample.model_copy(update={"read": sample.read.model_copy(update={"header": 1})})
    problem = read_local_export(export, profile)
    assert isinstance(problem, HeaderProblem)
    assert "the header on line 1 (read.header) lacks columns" in problem.detail
    assert "  line 1: Country, Segment" in problem.detail and "  missing: Segment" not in problem.detail


def test_empty_file_says_it_holds_no_record(tmp_path: Path) -> None:
    export = tmp_path / "empty.csv"
    export.write_text("\n\n", encoding="utf-8")
    problem = read_local_export(export, load_profile("financial_sample"))
    assert isinstance(problem, HeaderProblem) and "no header line: the file holds no record" in problem.detail
    assert problem.summary == "empty, no header line"


def test_unreadable_files_say_what_they_are_not(tmp_path: Path) -> None:
    profile = load_profile("financial_sample")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    problem = read_local_export(binary, profile)
    assert isinstance(problem, HeaderProblem) and problem.summary == "unreadable, not text in utf-8-sig (read.encoding)"
    assert problem.detail.startswith(f"{binary}: cannot be read as text in utf-8-sig (read.encoding): 'utf-8' codec")
    assert problem.headers == [] and problem.missing == list(profile.source_columns)
    workbook = tmp_path / "notes.xlsx"
    workbook.write_text("not a workbook\n", encoding="utf-8")
    problem = read_local_export(workbook, profile)
    assert isinstance(problem, HeaderProblem)
    assert problem.detail == f"{workbook}: cannot be read as a workbook: File is not a zip file"


def test_workbook_without_the_profiles_sheet_names_the_sheets_it_has(tmp_path: Path) -> None:
    sample = load_profile("financial_sample")
    profile = sample.model_copy(update={"read": sample.read.model_copy(update={"sheet": "Sales 2014"})})
    workbook = Path(__file__).resolve().parents[2] / "fixtures" / "exports" / "financial_sample.xlsx"
    problem = read_local_export(workbook, profile)
    assert isinstance(problem, HeaderProblem)
    assert problem.summary.startswith("unreadable, no sheet 'Sales 2014' (sheets: ")
