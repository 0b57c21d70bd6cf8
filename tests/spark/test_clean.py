"""Each cleaning rule on small hand-made frames, through the shared transforms the stream will use too."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DoubleType

from salespulse.profiles import SourceProfile
from salespulse.settings import IngestSettings
from spark_jobs.schemas import MONEY
from spark_jobs.transforms.clean import CleaningRules, clean_events, parse_number, parse_time
from spark_jobs.transforms.parse import map_to_canonical

pytestmark = pytest.mark.spark
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


NUMBERS = [
    (" $32,370.00 ", 32370.0), ("$-", 0.0), ("-", 0.0), (" $(4,533.75)", -4533.75), ("(12)", -12.0),
    ("1513.5", 1513.5), ("1,513", 1513.0), ("-5", -5.0), ("12x", None), ("$abc", None), ("1.2.3", None),
    ("n/a", None), ("--15", None),
]
TIMES = [
    ("1/1/2014", datetime(2014, 1, 1)), ("12/01/2014", datetime(2014, 12, 1)), ("01-06-14", datetime(2014, 1, 6)),
    ("2014-09-01", datetime(2014, 9, 1)), ("31/31/2014", None), ("Sept 2014", None),
]


@pytest.mark.parametrize("to", [DoubleType(), MONEY], ids=["double", "money"])
def test_clean_parse_number(spark: SparkSession, to: DataType) -> None:
    frame = spark.createDataFrame([(t,) for t, _ in NUMBERS], "t string")
    got = {r["t"]: r["n"] for r in frame.select("t", parse_number(F.col("t"), to).alias("n")).collect()}
    assert got == dict(NUMBERS)


# text -> exact decimal, 4 places, halves rounded up (the workbook's float noise "…4999999999" included)
MONEY_TEXT = [
    ("0.165", Decimal("0.1650")), (" $(4,533.755)", Decimal("-4533.7550")),
    ("1234.5649999999998", Decimal("1234.5650")),
    ("0.00005", Decimal("0.0001")), ("-0.00005", Decimal("-0.0001")), ("$1,000,000.1234", Decimal("1000000.1234")),
]


def test_clean_money_is_an_exact_decimal(spark: SparkSession) -> None:
    rows = [{**GOOD, "order_id": f"o{i}", "sales": text, "gross_sales": text, "discounts": "0", "profit": text,
             "cogs": "0"} for i, (text, _) in enumerate(MONEY_TEXT)]
    got = {r["order_id"]: r for r in clean(spark, rows, amount_tolerance=1e9)}
    for i, (text, want) in enumerate(MONEY_TEXT):
        row = got[f"o{i}"]
        assert row["reason"] is None, (text, row["reason"])
        assert isinstance(row["sales"], Decimal) and row["sales"] == want, (text, row["sales"])
    # Ten rows of 0.165 sum to exactly 1.65 (as doubles: 1.6500000000000001)
    frame = spark.createDataFrame([(t,) for t in ["0.165"] * 10], "t string")
    assert frame.select(F.sum(parse_number(F.col("t"), MONEY))).first()[0] == Decimal("1.65")


def test_clean_parse_time_tries_formats_in_order(spark: SparkSession) -> None:
    formats = ["M/d/yyyy", "MM-dd-yy", "yyyy-MM-dd"]
    frame = spark.createDataFrame([(t,) for t, _ in TIMES], "t string")
    got = {r["t"]: r["ts"] for r in frame.select("t", parse_time(F.col("t"), formats).alias("ts")).collect()}
    assert got == dict(TIMES)


PROFILE = SourceProfile(
    name="t", event="sales",
    columns={c: c for c in ("order_id", "event_time", "country", "segment", "product", "discount_band",
                            "units_sold", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit")},
    order_id="order_id", date_formats=["yyyy-MM-dd"],
)
GOOD = {"order_id": "o1", "event_time": "2026-01-01", "country": "USA", "segment": "Government", "product": "Paseo",
        "discount_band": "None", "units_sold": "2", "sale_price": "20", "gross_sales": "40", "discounts": "",
        "sales": "40", "cogs": "20", "profit": "20"}


def clean(spark: SparkSession, rows: list[dict[str, object]], rules: CleaningRules | None = None,
          **ingest: object) -> list[dict[str, object]]:
    lineage = {"_source_file": "f.csv", "_corrupt_record": None, "_landed_time": NOW, "_bad_header": None}
    frame = spark.createDataFrame(
        [{**lineage, "_row_number": i + 1, **r} for i, r in enumerate(rows)],
        schema=", ".join([f"`{c}` string" for c in PROFILE.source_columns]
                         + ["_source_file string", "_row_number long", "_corrupt_record string",
                            "_landed_time timestamp", "_bad_header map<string, string>"]))
    rules = rules or CleaningRules.build(PROFILE, IngestSettings(**ingest), NOW)
    return [r.asDict() for r in clean_events(map_to_canonical(frame, PROFILE), rules).orderBy("row_number").collect()]


def test_clean_valid_row_typed_and_normalised(spark: SparkSession) -> None:
    row = clean(spark, [{**GOOD, "country": " united states of america ", "segment": "government ",
                         "discount_band": " None "}])[0]
    assert row["reason"] is None and row["flags"] is None
    assert (row["country"], row["segment"], row["discount_band"]) == ("USA", "Government", "None")
    assert row["discounts"] == 0.0  # blank discounts are zero
    assert row["event_time"] == datetime(2026, 1, 1)


REASON_CASES = [
    ({"country": ""}, "missing_field"), ({"sales": " "}, "missing_field"), ({"order_id": ""}, "missing_field"),
    ({"units_sold": "2x"}, "malformed_number"), ({"event_time": "01/01/2026"}, "malformed_date"),
    ({"product": "Unicycle"}, "unknown_category"),
    ({"units_sold": "-2", "gross_sales": "-40", "sales": "-40", "cogs": "-20", "profit": "-20"}, "negative_units"),
    ({"sales": "50"}, "amount_mismatch"), ({"event_time": "2026-11-25"}, "future_event_time"),
    ({"country": "", "units_sold": "x"}, "missing_field"),  # the first failing rule in the documented order
    ({"_bad_header": {"_detail": "x"}}, "bad_header"),
    ({"_bad_header": {"_detail": "x"}, "_corrupt_record": "x"}, "bad_header"),
    ({"_corrupt_record": "a,b"}, "malformed_row"),
]


def test_clean_reason_codes(spark: SparkSession) -> None:
    rows = clean(spark, [{**GOOD, **change} for change, _ in REASON_CASES])
    assert [r["reason"] for r in rows] == [reason for _, reason in REASON_CASES]


def test_clean_amount_tolerance_and_flag_policy(spark: SparkSession) -> None:
    off_by_a_cent = {**GOOD, "gross_sales": "40.01", "sales": "40.01", "profit": "20.01"}
    assert clean(spark, [off_by_a_cent])[0]["reason"] is None
    flagged = clean(spark, [{**GOOD, "product": "Unicycle"}], category_policy="flag")[0]
    assert flagged["reason"] is None and flagged["flags"] == "unknown_category" and flagged["product"] == "Unicycle"


def test_clean_stream_rules_judge_each_row_by_its_files_landing_time(spark: SparkSession) -> None:
    """The stream passes no fixed ingest time: future and late are measured from when the row's file landed."""
    from datetime import timedelta

    landed = datetime(2026, 1, 1, 12, 0)
    cases = [("2026-01-01 05:59:59", "late_event"), ("2026-01-01 06:00:00", None),
             ("2026-01-01 13:00:00", None), ("2026-01-01 13:00:01", "future_event_time")]
    rows = [{**GOOD, "event_time": t, "_landed_time": landed} for t, _ in cases]
    profile = PROFILE.model_copy(update={"date_formats": ["yyyy-MM-dd HH:mm:ss"]})
    got = clean(spark, rows, rules=CleaningRules.build(profile, IngestSettings(future_tolerance_hours=1), None,
                                                        timedelta(hours=6)))
    assert [r["reason"] for r in got] == [reason for _, reason in cases]
    assert {r["landed_time"] for r in got} == {landed}
