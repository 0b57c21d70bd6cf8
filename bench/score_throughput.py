"""Forecast scoring in Spark vs the same model called in-process, on the same feature rows (target >= 0.5x),
by Arrow batch size; and the stream's forecast refresh time for one origin.

Usage: python bench/score_throughput.py [--workdir DIR]. DIR holds a history lake and a registry from
`bench/train_model.py --workdir DIR` (built and trained here when missing). Writes the 'score' section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, publish
from train_model import build_lake, run

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH_SIZES = (1_000, 5_000, 20_000)


def best_of(times: int, action) -> float:
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - began)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, help="a train_model.py work folder (lake + models-*)")
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--rate", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="salespulse-score-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        build_lake(work, args.days, args.rate)
        registries = sorted(p for p in work.glob("models-*") if (p / "current").exists())
        if not registries:
            registry = work / "models-score"
            run("train", "--lake", str(work / "lake"), "--registry", str(registry), "--quiet")
            registries = [registry]
        publish("score", measure(work / "lake", registries[-1]))


def measure(lake: Path, registry: Path) -> str:
    import duckdb

    from model.features import FEATURE_COLUMNS, feature_rows, series_history
    from model.registry import current_version, load_forecaster
    from salespulse.lake import duckdb_scan
    from salespulse.settings import SparkSettings, load_settings
    from spark_jobs import io
    from spark_jobs.forecast import run_forecasts
    from spark_jobs.session import build_session
    from spark_jobs.transforms.forecast import FEATURE_SCHEMA, FEATURE_VECTOR, score

    version = current_version(registry)
    history = series_history(duckdb.sql(f"SELECT * FROM {duckdb_scan(lake, 'gold_sales_hourly')}").df())
    last = history["hour"].max()
    origins = list(pd_range(last - timedelta(days=30), last))
    features = feature_rows(history, origins)
    rows = len(features)

    forecaster = load_forecaster(registry, version)
    forecaster.predict(features.head(100))  # warm-up: TF graph tracing
    direct_s = best_of(2, lambda: forecaster.predict(features))

    spark = build_session(SparkSettings(master="local[2]", app_name="bench-score", shuffle_partitions=4,
                                        driver_memory="4g"))
    vectors = features[["level", "country", "product", "origin"]].assign(
        **{FEATURE_VECTOR: list(features[FEATURE_COLUMNS].to_numpy("float32"))})
    frame = spark.createDataFrame(vectors, FEATURE_SCHEMA)  # the shape series_features gives the scorer
    frame = frame.repartition(spark.sparkContext.defaultParallelism).persist()
    frame.count()
    results = []
    with LoadWatch() as load:
        for batch in BATCH_SIZES:
            spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
            scored = score(frame, str(registry), version, 1)
            scored.write.format("noop").mode("overwrite").save()  # warm-up: workers load the model once
            seconds = best_of(2, lambda s=scored: s.write.format("noop").mode("overwrite").save())
            results.append((batch, seconds))

        settings = load_settings(overrides={"paths.lake": str(lake), "paths.models": str(registry)})
        manifest = io.read_manifest(spark, str(lake))
        origin = last.to_pydatetime().replace(tzinfo=timezone.utc)
        now = datetime.now(timezone.utc)
        began = time.perf_counter()
        output = run_forecasts(spark, settings, manifest, version, [origin], (origin - timedelta(hours=23), origin),
                               "bench-refresh", now)
        refresh_s = time.perf_counter() - began
        for relative, _ in output.written.values():  # never published: remove
            io.delete_path(spark, f"{lake}/{relative}")
    spark.stop()

    direct_rate = rows / direct_s
    table = "\n".join(
        f"| `mapInArrow`, Arrow batch {batch:,} rows | {seconds:.1f} s | {rows / seconds:,.0f} | "
        f"**{(rows / seconds) / direct_rate:.2f}x** |" for batch, seconds in results)
    best_batch, best_s = min(results, key=lambda r: r[1])
    return f"""
## Forecast scoring in Spark vs in-process (`bench/score_throughput.py`)

{rows:,} feature rows ({len(origins)} hourly origins x {rows // len(origins)} series, {len(FEATURE_COLUMNS)}
features each) from the 90-day benchmark lake, model `{version}`. In-process: `Forecaster.predict` on one
pandas frame (TensorFlow's default threads on both cores). Spark: `local[2]`, the same rows cached as a
DataFrame in 2 partitions (ids + one feature-vector column, as `series_features` hands them over),
`spark_jobs.transforms.forecast.score` (`mapInArrow`, model cached per Python
worker, 1 TF thread per task), output to the `noop` sink; best of two runs after a warm-up each.
Load average during the Spark runs: {load.summary()}.

| scoring | seconds | rows/s | vs in-process |
| --- | --- | --- | --- |
| in-process `Forecaster.predict` | {direct_s:.1f} s | {direct_rate:,.0f} | 1.00x |
{table}

- Best Spark setting: Arrow batches of {best_batch:,} rows, **{(rows / best_s) / direct_rate:.2f}x** the in-process
  rate (target >= 0.5x: {"met" if (rows / best_s) / direct_rate >= 0.5 else "NOT met"}).
- The stream's forecast refresh for one origin ({output.forecasts:,} forecast rows, {output.anomalies:,}
  anomalies judged over 24 h, stock-out): **{refresh_s:.1f} s** (features per series with `applyInPandas`,
  scoring, three table writes; run once an hour or when a new model is promoted).
"""


def pd_range(first, last):
    import pandas as pd

    return pd.date_range(first.floor("h"), last, freq="h")


if __name__ == "__main__":
    main()
