"""Keep one row per event key; which one is deterministic (earliest source file and row), so re-runs agree."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

INVENTORY_KEY = ("event_time", "country", "product", "kind", "quantity")


def dedupe_events(events: DataFrame, key: tuple[str, ...], priority: str | None = None) -> DataFrame:
    """One row per ``key``: the lowest ``priority`` (e.g. rows already in the lake first), then the earliest
    ``source_file`` and ``row_number``."""
    order = [F.col(priority).asc()] if priority else []
    window = Window.partitionBy(*key).orderBy(*order, F.col("source_file").asc(), F.col("row_number").asc())
    return events.withColumn("_rank", F.row_number().over(window)).where(F.col("_rank") == 1).drop("_rank")


def event_key(event: str) -> tuple[str, ...]:
    return ("order_id",) if event == "sales" else INVENTORY_KEY
