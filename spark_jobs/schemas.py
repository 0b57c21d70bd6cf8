"""Explicit Spark schemas derived from the canonical event schemas (never inferSchema: file streams cannot infer, and a
guess changes with the data)."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql.types import (
    DataType,
    DecimalType,
    DoubleType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from salespulse.schema import MONEY_PRECISION, MONEY_SCALE, MONEY_TOTAL_PRECISION, EventSchema, LogicalType

CORRUPT_RECORD = "_corrupt_record"
MONEY = DecimalType(MONEY_PRECISION, MONEY_SCALE)
MONEY_TOTAL = DecimalType(MONEY_TOTAL_PRECISION, MONEY_SCALE)

_SPARK_TYPES: dict[LogicalType, DataType] = {
    "string": StringType(),
    "timestamp": TimestampType(),
    "double": DoubleType(),
    "money": MONEY,
}


def raw_csv_schema(columns: Sequence[str]) -> StructType:
    """Every column as text plus ``_corrupt_record``: landing files are read raw and cleaned explicitly,
    so a malformed value becomes a quarantine entry instead of an ANSI cast error that would stop the job."""
    fields = [StructField(name, StringType(), nullable=True) for name in columns]
    return StructType([*fields, StructField(CORRUPT_RECORD, StringType(), nullable=True)])


def typed_schema(event: EventSchema) -> StructType:
    """The canonical event with its logical types, as silver tables hold it."""
    return StructType(
        [StructField(c.name, _SPARK_TYPES[c.dtype], nullable=not c.required) for c in event.columns]
    )
