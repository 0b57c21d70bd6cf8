"""evaluate_alerts_job: read the small gold tables the rules need, evaluate them (salespulse/alerts.py), append
the changes to gold_alert_events with one manifest swap, then queue them for the webhooks.

Called by the stream (beside the batches, after each publish and every ``alerts.evaluate_every_seconds``) and
after a backfill. The events are published before they are sent, and only when no other evaluation published
events meanwhile (that one's view wins; this one's changes are found again at the next evaluation), so an alert
is stored and sent once even with a backfill beside the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import WindowSpec

from salespulse.alerts import (
    EVENT_COLUMNS,
    AlertInputs,
    alert_transitions,
    evaluate_alerts,
    webhook_body,
    window_start,
)
from salespulse.metrics import MEASURES
from salespulse.notify import WebhookNotifier
from salespulse.settings import ForecastBandRule, KpiThresholdRule, Settings, StockoutRule
from spark_jobs import io

TABLE = "gold_alert_events"
_TYPES = {"event_time": T.TimestampType(), "value": T.DoubleType(), "threshold": T.DoubleType(),
          "notified": T.BooleanType()}  # the others are strings
EVENT_SCHEMA = T.StructType([T.StructField(name, _TYPES.get(name, T.StringType())) for name in EVENT_COLUMNS])


class _Superseded(Exception):
    """Another evaluation published alert events after this one read them."""


def evaluate_alerts_job(spark: SparkSession, settings: Settings, now: datetime, notifier: WebhookNotifier | None,
                        say: Callable[[str], None]) -> pd.DataFrame:
    """Evaluate the rules on the published lake at ``now`` (UTC-aware); publish and queue what changed. Returns
    the events appended (none without rules, or when another evaluation published meanwhile)."""
    rules = settings.alerts.rules
    if not rules:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    lake = settings.paths.lake.rstrip("/")
    at = now.astimezone(timezone.utc).replace(tzinfo=None)
    manifest = io.read_manifest(spark, lake)
    read_dirs = manifest.get("tables", {}).get(TABLE, [])
    inputs = read_alert_inputs(spark, lake, manifest, rules, at)
    events = alert_transitions(_pandas(io.read_table(spark, lake, TABLE, manifest)),
                               evaluate_alerts(inputs, rules, at), at,
                               timedelta(minutes=settings.alerts.cooldown_minutes))
    if not len(events):
        return events
    run_id = f"stream-alerts-{at:%Y%m%dT%H%M%S%f}"
    written = io.write_table_version(spark.createDataFrame(events.astype(object).where(events.notna(), None),
                                                           EVENT_SCHEMA),
                                     lake, TABLE, run_id, replace=True, files_per_partition=1)

    def publish(current: dict[str, Any]) -> None:
        if current.get("tables", {}).get(TABLE, []) != read_dirs:
            raise _Superseded
        io.set_dirs(current, TABLE, written, [])

    try:
        io.update_manifest(spark, lake, publish, run_id)
    except _Superseded:
        say("alerts: another evaluation published alert events meanwhile; evaluated again next time")
        return events.iloc[0:0]
    changes = ", ".join(f"{e.status} {e.alert_id}" for e in events.itertuples())
    say(f"alerts: {len(events)} change(s): {changes}")
    if notifier is not None:
        notifier.send([webhook_body(event) for event in events.to_dict("records") if event["notified"]])
    return events


def read_alert_inputs(spark: SparkSession, lake: str, manifest: dict[str, Any], rules: list[Any],
                      now: datetime) -> AlertInputs:
    """The small frames the rules need (only those of the kinds configured), times as naive UTC."""
    kinds = {type(rule) for rule in rules}
    first = window_start(rules, now)

    def read(table: str, kind: type) -> DataFrame | None:
        return io.read_table(spark, lake, table, manifest) if kind in kinds else None

    hourly = anomalies = stockout = stock = None
    if (table := read("gold_sales_hourly", KpiThresholdRule)) is not None:
        hourly = (table.where(F.col("event_date") >= F.lit(first.date())).where(F.col("hour") >= F.lit(first))
                  .groupBy("hour", "country").agg(*[F.sum(m.name).cast("double").alias(m.name) for m in MEASURES]))
    if (table := read("gold_forecast_anomalies", ForecastBandRule)) is not None:
        # a back-test and the stream may both have judged an hour: the latest forecast's verdict counts
        latest = F.row_number().over(_by("country", "hour", order=("origin", "detected_at")))
        anomalies = (table.where((F.col("level") == "country") & (F.col("measure") == "sales")
                                 & (F.col("hour") >= F.lit(first)))
                     .withColumn("_n", latest).where("_n = 1").select("hour", "country", "direction"))
    if (table := read("gold_stockout", StockoutRule)) is not None:
        latest = F.row_number().over(_by("country", "product", order=("generated_at",)))
        stockout = (table.withColumn("_n", latest).where("_n = 1")
                    .select("country", "product", "predicted_stockout_time"))
    if (table := read("gold_stock", StockoutRule)) is not None:
        stock = table.select("country", "product", "days_of_cover")
    batches = [state["batch_time"] for state in manifest.get("streams", {}).values() if "batch_time" in state]
    last_batch = max((datetime.fromisoformat(t).astimezone(timezone.utc).replace(tzinfo=None) for t in batches),
                     default=None)
    return AlertInputs(_pandas(hourly), _pandas(anomalies), _pandas(stockout), _pandas(stock), last_batch)


def _by(*keys: str, order: tuple[str, ...]) -> WindowSpec:
    return Window.partitionBy(*keys).orderBy(*[F.col(c).desc() for c in order])


def _pandas(frame: DataFrame | None) -> pd.DataFrame:
    """A small Spark frame on the driver (an empty frame for a table never published); Spark's session time
    zone is UTC, so its timestamps arrive as naive UTC."""
    return pd.DataFrame() if frame is None else frame.toPandas()
