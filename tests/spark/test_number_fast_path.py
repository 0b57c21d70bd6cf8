"""Number parsing takes a cast-only fast path for plain numbers: it must read exactly what the full parser reads, and
the raw text of a row is kept for rejected rows only."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType

from spark_jobs.schemas import MONEY
from spark_jobs.transforms.clean import parse_formatted_number, parse_number
from tests.spark.test_clean import GOOD, PROFILE, clean

pytestmark = pytest.mark.spark

# What exports write (the Financial Sample's padded, $-signed, accounting-style money, '$-' for zero; plain
# simulator numbers), then numbers a cast reads in its own way (exponents, signs, bare points, padding).
READABLE = [
    " $32,370.00 ", " $-   ", "$-", "-", " $(4,533.75)", "$(4,533.755)", "(12)", "$1,000,000.1234", "1,513",
    "1513.5", "100", "2.1", "102.9", "0", "-5", "0.165", "1234.5649999999998", "0.00005", "-0.00005",
    "1e3", "1E-2", "-2.5e1", " 12 ", "+5", ".5", "12.", "-.5", "007", "\t7\n", "$ 1 2", "1,2,3", "()",
    "99999999999999.9999", "99999999999999.99995", "-0", "(0.00)",
]
# Not numbers.
GARBAGE = ["12x", "$abc", "1.2.3", "n/a", "--15", "(-5)", "-(5)", "((5))", "(-)", "", " ", "$", ",", "+", ".", "e3",
           "(1)(2)", "1_000", "7\u00a0", "1\u20282"]
# Texts Java's number parsing (behind the cast) reads its own way, or line breaks that regular expressions treat
# specially: whatever they give, both paths must give the same.
QUIRKS = ["1d", "2F", "NaN", "Infinity", "-inf", "0x10", "(12)\u2028", "-\u2028", "\u2028", "12\u2028", "($-)\u0085"]
JAVA_SPACE = "[$, \t\n\x0b\f\r]"  # the full parser's `[$,\s]`: Java's \s is ASCII whitespace only
DECIMAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def reference(text: str) -> Decimal | None:
    """The documented rules, written independently: drop $, commas and whitespace, (x) is -x, a lone - is 0."""
    bare = re.sub(JAVA_SPACE, "", text)
    inner = re.fullmatch(r"\((.*)\)", bare)
    bare = f"-{inner[1]}" if inner else bare
    if bare == "-":
        return Decimal(0)
    return Decimal(bare) if DECIMAL_TEXT.fullmatch(bare) else None


def as_money(value: Decimal | None) -> Decimal | None:
    """DECIMAL(18,4): halves rounded up, null beyond 14 integer digits."""
    if value is None:
        return None
    rounded = value.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return rounded if abs(rounded) < Decimal(10) ** 14 else None


def same(a: object, b: object) -> bool:
    return a == b or (a != a and b != b)  # NaN: a cast reads 'NaN' as a double, both ways


def test_number_fast_path_reads_what_the_full_parser_reads(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(t,) for t in READABLE + GARBAGE + QUIRKS], "t string")
    for to in (MONEY, DoubleType()):
        rows = frame.select("t", F.col("t").try_cast(to).alias("fast"), parse_formatted_number(F.col("t"), to).alias(
            "full"), parse_number(F.col("t"), to).alias("number")).collect()
        for row in rows:
            # Wherever the cast alone reads a text, the full parser reads the same value (never another, never
            # null), so skipping the full parser for those rows changes nothing.
            if row["fast"] is not None:
                assert same(row["full"], row["fast"]), (to, row["t"], row["fast"], row["full"])
            assert same(row["number"], row["fast"] if row["fast"] is not None else row["full"]), (to, row)


def test_number_parse_matches_the_documented_rules(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(t,) for t in READABLE + GARBAGE], "t string")
    got = frame.select("t", parse_number(F.col("t"), MONEY).alias("money"),
                       parse_number(F.col("t"), DoubleType()).alias("double")).collect()
    for row in got:
        want = reference(row["t"])
        assert row["money"] == as_money(want), (row["t"], row["money"], want)
        assert row["double"] == (float(want) if want is not None else None), (row["t"], row["double"], want)
    assert sum(reference(t) is not None for t in READABLE) == len(READABLE)


def test_number_raw_text_kept_for_rejected_rows_only(spark: SparkSession) -> None:
    bad = {**GOOD, "order_id": "o2", "units_sold": " 2x ", "sales": " $40 "}
    valid, rejected = clean(spark, [GOOD, bad])
    assert valid["reason"] is None and valid["raw"] is None
    assert rejected["reason"] == "malformed_number"
    assert rejected["raw"] == {**{PROFILE.columns[c]: v for c, v in bad.items()}, "_corrupt_record": None}
