"""publish_targets: write the targets table as a new version and list it in the manifest, like every other table.

The table is small and replaced whole by each change, so a change reads the current targets (the caller),
merges, writes a new directory and swaps it in under the manifest lock. If another change published targets
between the read and the swap, the swap is refused rather than silently dropping that change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import DateType, DecimalType, StringType, StructField, StructType, TimestampType

from salespulse.schema import MONEY_PRECISION, MONEY_SCALE
from salespulse.targets import Target, TargetError
from spark_jobs import io

TABLE = "targets"
SCHEMA = StructType([
    StructField("month", DateType(), False), StructField("country", StringType(), False),
    StructField("segment", StringType(), True),
    StructField("sales_target", DecimalType(MONEY_PRECISION, MONEY_SCALE), False),
    StructField("profit_target", DecimalType(MONEY_PRECISION, MONEY_SCALE), False),
    StructField("source", StringType(), False), StructField("updated_at", TimestampType(), False),
])


def publish_targets(spark: SparkSession, lake: str, targets: Iterable[Target], read_from: list[str],
                    now: datetime) -> io.WrittenVersion:
    """Publish ``targets`` as the whole table, in place of the directories ``read_from`` (those the caller read
    the current targets from). Raises TargetError when the table changed meanwhile (nothing is published then)."""
    rows = [(t.month, t.country, t.segment, t.sales_target, t.profit_target, t.source, now) for t in targets]
    frame = spark.createDataFrame(rows, SCHEMA).coalesce(1)
    written = io.write_table_version(frame, lake, TABLE, f"targets-{now:%Y%m%dT%H%M%S%f}")

    def swap(manifest: dict[str, Any]) -> None:
        listed = manifest["tables"].get(TABLE, [])
        if listed != read_from:
            raise TargetError("the targets changed while this command ran (another `salespulse targets` "
                              "published); nothing was changed: run it again")
        io.set_dirs(manifest, TABLE, written, read_from)

    try:
        io.update_manifest(spark, lake, swap, written.directory.rsplit("=", 1)[-1])
    except TargetError:
        io.delete_path(spark, f"{lake.rstrip('/')}/{written.directory}")
        raise
    return written
