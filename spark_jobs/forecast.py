"""Forecast runs: score the registry's current model on the lake's gold hourly and write gold_forecasts,
gold_forecast_anomalies and gold_stockout (unpublished; the caller publishes them with its manifest swap).

Used by the stream (one origin each time an hour completes or a new model is promoted) and by
``salespulse forecast`` (many origins over history, for back-testing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from model.features import HISTORY_HOURS
from model.registry import MODEL_FILE, SPEC_FILE, ModelError, current_version
from salespulse.settings import Settings
from spark_jobs import io
from spark_jobs.transforms.forecast import (
    forecast_anomalies,
    predict_stockout,
    score,
    series_features,
    series_hourly,
)

HORIZON_HOURS = 24


def last_complete_hour(now: datetime) -> datetime:
    """The start of the last hour that has fully passed (UTC-aware): a forecast's origin."""
    return now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@dataclass
class ForecastOutput:
    version: str
    origins: list[datetime]
    supersedes: str  # directory-name prefix of earlier gold_forecasts runs for the same origins
    written: dict[str, io.WrittenVersion] = field(default_factory=dict)
    forecasts: int = 0
    anomalies: int = 0


def model_version(settings: Settings) -> str | None:
    """The promoted version, or None when nothing was promoted yet. Raises ModelError when the registry
    points at a version it cannot use."""
    registry = Path(settings.paths.models)
    version = current_version(registry)
    # A cheap check before any Spark job; the workers' load reports a damaged file in full.
    for name in (MODEL_FILE, SPEC_FILE) if version is not None else ():
        if not (registry / version / name).is_file():
            raise ModelError(f"model {version} named by {registry / 'current'} has no {name}")
    return version


def run_forecasts(spark: SparkSession, settings: Settings, manifest: dict[str, Any], version: str,
                  origins: Sequence[datetime], judge: tuple[datetime, datetime] | None, run: str,
                  now: datetime) -> ForecastOutput:
    """Forecast the 24 hours after each origin (UTC-aware hour starts) with model ``version``; judge the
    completed hours of ``judge`` (first, last hour start) against the latest forecast made for each; refresh
    predicted stock-outs from the last origin. Writes unpublished table versions named
    ``<run>-<version>``; a later run of the same ``run`` (e.g. a newly promoted model for the same origin)
    supersedes it."""
    lake, registry = settings.paths.lake.rstrip("/"), settings.paths.models
    name = f"{run}-{version}"
    out = ForecastOutput(version, sorted(origins), supersedes=f"{io.DIR_PREFIX}{run}-")
    hourly = io.read_table(spark, lake, "gold_sales_hourly", manifest)
    if hourly is None or not origins:
        return out
    first = min(origins) - timedelta(hours=HISTORY_HOURS - 1)
    if judge is not None:
        first = min(first, judge[0])
    series = series_hourly(hourly, first, max(max(origins), judge[1] if judge else first)).persist()
    fresh = None
    try:
        features = series_features(series.where(F.col("hour") <= F.lit(max(origins))), origins)
        tf_threads = int(spark.conf.get("spark.task.cpus", "1"))
        forecasts = score(features, registry, version, tf_threads).withColumn(
            "model_version", F.lit(version)).withColumn("generated_at", F.lit(now))
        out.written["gold_forecasts"] = io.write_table_version(forecasts, lake, "gold_forecasts", name, replace=True,
                                                               files_per_partition=1)
        fresh = io.read_version(spark, lake, "gold_forecasts", [out.written["gold_forecasts"][0]],
                                out.written["gold_forecasts"][1]).persist()
        out.forecasts = fresh.count()
        if judge is not None:
            earlier = io.read_table(spark, lake, "gold_forecasts", manifest)
            candidates = fresh if earlier is None else earlier.unionByName(fresh)
            window = (F.col("hour") >= F.lit(judge[0])) & (F.col("hour") <= F.lit(judge[1]))
            anomalies = forecast_anomalies(series.where(window), candidates.where(window), now)
            out.written["gold_forecast_anomalies"] = io.write_table_version(
                anomalies, lake, "gold_forecast_anomalies", name, replace=True, files_per_partition=1)
            out.anomalies = io.read_version(spark, lake, "gold_forecast_anomalies",
                                            [out.written["gold_forecast_anomalies"][0]],
                                            out.written["gold_forecast_anomalies"][1]).count()
        stock = io.read_table(spark, lake, "gold_stock", manifest)
        if stock is not None:
            latest = fresh.where(F.col("origin") == F.lit(max(origins)))
            out.written["gold_stockout"] = io.write_table_version(
                predict_stockout(stock, latest, now), lake, "gold_stockout", name, replace=True,
                files_per_partition=1)
        return out
    finally:
        if fresh is not None:
            fresh.unpersist()
        series.unpersist()


def publish_forecasts(manifest: dict[str, Any], output: ForecastOutput) -> None:
    """Edit a manifest in place (inside the caller's update): add the forecasts and anomalies, replace the
    stock-out snapshot, record what was forecast."""
    for table, written in output.written.items():
        listed = manifest["tables"].get(table, [])
        replaces = listed if table == "gold_stockout" else [
            d for d in listed if d.rsplit("/", 1)[-1].startswith(output.supersedes)]
        io.set_dirs(manifest, table, written, replaces)
    state = manifest.setdefault("forecasts", {})
    latest = max(output.origins).isoformat()
    # A back-test of older origins must not move the stream's marks back (anomalies would be judged twice).
    state.update(model_version=output.version, origin=max(state.get("origin", latest), latest),
                 judged_through=max(state.get("judged_through", latest), latest),
                 generated_at=datetime.now(timezone.utc).isoformat())


def run_backtest(spark: SparkSession, settings: Settings, every_hours: int, start: datetime | None,
                 end: datetime | None, now: datetime) -> ForecastOutput:
    """Historical forecasts for back-testing: origins every ``every_hours`` hours between ``start`` and ``end``
    (default: from the first hour with a full history to the last hour in gold), every hour they cover judged
    for anomalies, all published at once. Raises ModelError without a usable model, ValueError when gold has
    no hour to forecast from."""
    lake = settings.paths.lake.rstrip("/")
    version = model_version(settings)
    if version is None:
        raise ModelError(f"no model promoted in {settings.paths.models}: run `salespulse train` first")
    manifest = io.read_manifest(spark, lake)
    hourly = io.read_table(spark, lake, "gold_sales_hourly", manifest)
    if hourly is None:
        raise ValueError(f"the lake at {lake} has no gold_sales_hourly yet: load data first")
    bounds = hourly.agg(F.min("hour").alias("first"), F.max("hour").alias("last")).first()
    if bounds["first"] is None:
        raise ValueError(f"gold_sales_hourly of {lake} is empty")
    # Spark hands timestamps back as naive local times.
    first = bounds["first"].astimezone(timezone.utc) + timedelta(hours=HISTORY_HOURS - 1)
    # The hour in progress is not complete: it is never an origin.
    last = min(bounds["last"].astimezone(timezone.utc), last_complete_hour(now))
    first, last = max(first, start or first), min(last, end or last)
    if first > last:
        raise ValueError(f"no origin between {first:%Y-%m-%d %H}:00 and {last:%Y-%m-%d %H}:00 UTC has "
                         f"{HISTORY_HOURS} hours of history before it")
    origins = []
    while first <= last:
        origins.append(first)
        first += timedelta(hours=every_hours)
    judge = (origins[0] + timedelta(hours=1), min(last, origins[-1] + timedelta(hours=HORIZON_HOURS)))
    run = f"backtest-{origins[0]:%Y%m%dT%H}-{origins[-1]:%Y%m%dT%H}-{every_hours}h"
    output = run_forecasts(spark, settings, manifest, version, origins, judge, run, now)
    io.update_manifest(spark, lake, lambda current: publish_forecasts(current, output), f"{run}-{version}")
    return output

