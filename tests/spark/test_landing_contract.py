"""Spark reads the simulator's files with the explicit schemas derived from the canonical ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, DoubleType, StringType, TimestampType

from salespulse.schema import INVENTORY_EVENT, SALES_EVENT
from spark_jobs.schemas import CORRUPT_RECORD, raw_csv_schema, typed_schema
from tests.conftest import read_landing, run_simulator

pytestmark = pytest.mark.spark


def test_schemas_follow_the_canonical_contract() -> None:
    raw = raw_csv_schema(SALES_EVENT.names)
    assert raw.fieldNames() == [*SALES_EVENT.names, CORRUPT_RECORD]
    assert all(f.dataType == StringType() for f in raw.fields)
    typed = typed_schema(SALES_EVENT)
    assert typed["event_time"].dataType == TimestampType()
    assert typed["sales"].dataType == DecimalType(18, 4)  # money is exact
    assert typed["units_sold"].dataType == DoubleType()
    assert typed["customer_id"].nullable and not typed["order_id"].nullable
    assert typed_schema(INVENTORY_EVENT).fieldNames() == list(INVENTORY_EVENT.names)


def test_spark_reads_simulator_files_by_header(spark: SparkSession, tmp_path: Path) -> None:
    run_simulator(tmp_path, history_days=2, history_rate=0.05, bad_rows_pct=2)
    folder = tmp_path / "history" / "sales"
    frame = (
        spark.read.schema(raw_csv_schema(SALES_EVENT.names))
        .option("header", True)
        .option("enforceSchema", False)  # match columns by header name, not position (Spark's default maps by position)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .csv(str(folder))
    )
    expected = read_landing(folder)
    assert frame.count() == len(expected)
    # Spark refuses queries touching only the corrupt-record column, so select a real column beside it.
    assert frame.where(F.col(CORRUPT_RECORD).isNotNull()).select("order_id", CORRUPT_RECORD).collect() == []
    # Independent check: pandas and Spark agree on every value of two columns, as text.
    # Spark reads an empty field as null; pandas (keep_default_na=False) as "".
    got = frame.select("order_id", "sales").toPandas().fillna("")
    want = expected[["order_id", "sales"]]
    pd.testing.assert_frame_equal(
        got.sort_values([*got], ignore_index=True), want.sort_values([*want], ignore_index=True)
    )
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
