"""Forecasts in Spark: gold hourly -> series -> feature rows (``applyInPandas``, one group per series) ->
quantiles (``mapInArrow`` with the model cached per Python worker), then anomalies and stock-out times.

Pure DataFrame functions shared by the stream's refresh and ``salespulse forecast`` (back-testing); the model
code itself (features, network, scaling) lives in ``model/`` and runs unchanged inside the UDFs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from model.features import FEATURE_COLUMNS, HISTORY_HOURS, HORIZON_HOURS, SHORT, feature_rows
from model.features import MEASURES as MODEL_MEASURES  # MEASURES here maps gold measures to prefixes

SERIES_KEY = ("level", "country", "product")
_IDS = [StructField("level", StringType()), StructField("country", StringType()),
        StructField("product", StringType())]
QUANTILE_COLUMNS = ("sales_p10", "sales_p50", "sales_p90", "units_p10", "units_p50", "units_p90")
FORECAST_SCHEMA = StructType([*_IDS, StructField("origin", TimestampType()), StructField("hour", TimestampType()),
                              StructField("horizon", IntegerType()),
                              *[StructField(c, DoubleType()) for c in QUANTILE_COLUMNS]])
MEASURES = {"sales": "sales", "units_sold": "units"}  # measure -> prefix of its quantile columns


def series_hourly(hourly: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """gold_sales_hourly rows (partial rows allowed) between ``start`` and ``end`` (hour starts, inclusive) ->
    level, country, product, hour, sales, units_sold: one row per country x product and per country total."""
    window = hourly.where((F.col("hour") >= F.lit(start)) & (F.col("hour") <= F.lit(end)))
    # the model works in floats: exact decimal sales become a double here, once
    by_product = window.groupBy("country", "product", "hour").agg(
        F.sum("sales").cast("double").alias("sales"), F.sum("units_sold").alias("units_sold"))
    products = by_product.select(F.lit("product").alias("level"), "country", "product", "hour", "sales", "units_sold")
    countries = by_product.groupBy("country", "hour").agg(
        F.sum("sales").alias("sales"), F.sum("units_sold").alias("units_sold")).select(
        F.lit("country").alias("level"), "country", F.lit(None).cast("string").alias("product"), "hour", "sales",
        "units_sold")
    return products.unionByName(countries)


FEATURE_VECTOR = "features"  # one array column: Arrow moves it far faster than ~500 float columns
FEATURE_SCHEMA = StructType([*_IDS, StructField("origin", TimestampType()),
                             StructField(FEATURE_VECTOR, ArrayType(FloatType(), containsNull=False))])


def series_features(series: DataFrame, origins: Sequence[datetime]) -> DataFrame:
    """One feature row per series and origin (``origins``: UTC-aware hour starts of the last complete hour),
    built by the model's own ``feature_rows`` on each series' complete hourly grid (hours without sales are
    zero); the features travel as one vector in ``FEATURE_COLUMNS`` order."""
    # Inside the UDF timestamps are naive values of the session time zone, UTC.
    wanted = [pd.Timestamp(o).tz_convert("UTC").tz_localize(None) for o in origins]
    grid = pd.date_range(min(wanted) - pd.Timedelta(hours=HISTORY_HOURS - 1), max(wanted), freq="h")

    def build(rows: pd.DataFrame) -> pd.DataFrame:
        ids = rows.iloc[0]
        values = (rows.assign(hour=pd.to_datetime(rows["hour"])).groupby("hour")[["sales", "units_sold"]].sum()
                  .reindex(grid, fill_value=0.0).rename_axis("hour").reset_index())
        history = values.assign(level=ids["level"], country=ids["country"], product=ids["product"])
        features = feature_rows(history, wanted)
        out = features[["level", "country", "product", "origin"]].copy()
        out[FEATURE_VECTOR] = list(features[FEATURE_COLUMNS].to_numpy(np.float32))
        return out

    return series.groupBy(*SERIES_KEY).applyInPandas(build, FEATURE_SCHEMA)


def score(features: DataFrame, registry: str, version: str, tf_threads: int) -> DataFrame:
    """Quantile forecasts for ``series_features`` rows, one row per series, origin and horizon. The model is
    loaded once per Python worker and kept there by version (a model in a closure would not pickle, or reload each
    batch); TF's thread pools are sized to the task's cores (not every core, which several workers would oversubscribe);
    the network is called directly, not through ``predict`` (whose fixed cost per call dominates small batches).
    ``mapInArrow``, not ``mapInPandas``: the feature vectors arrive as one flat Arrow buffer read as a (rows x features)
    matrix without a Python object per row, and the 24 horizons leave as plain columns built from numpy arrays (per-row
    arrays through pandas, then an explode in the JVM, cost more: BENCHMARKS.md)."""
    n_features = len(FEATURE_COLUMNS)

    def predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from model.scoring import cached_forecaster, limit_tf_threads

        limit_tf_threads(tf_threads)
        forecaster = cached_forecaster(registry, version)
        # The vector holds FEATURE_COLUMNS; the model may use them in another order or a subset.
        position = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
        wanted = [position[name] for name in forecaster.feature_columns]
        in_order = wanted == list(range(n_features))
        scale_columns = [position[f"scale_{SHORT[m]}"] for m in MODEL_MEASURES]
        for batch in batches:
            rows = batch.num_rows
            vectors = batch.column(FEATURE_VECTOR).flatten().to_numpy(zero_copy_only=False).reshape(rows, n_features)
            horizons = forecaster.predict_horizon_matrix(vectors if in_order else vectors[:, wanted],
                                                         vectors[:, scale_columns].astype(np.float64))
            repeat = pa.array(np.repeat(np.arange(rows), HORIZON_HOURS))
            ids = [batch.column(name).take(repeat) for name in (*SERIES_KEY, "origin")]
            horizon = np.tile(np.arange(1, HORIZON_HOURS + 1, dtype=np.int32), rows)
            origin_us = ids[-1].cast(pa.int64()).to_numpy(zero_copy_only=False)  # Spark hands timestamps in µs
            hour = pa.array(origin_us + horizon.astype(np.int64) * 3_600_000_000).cast(ids[-1].type)
            yield pa.RecordBatch.from_arrays(
                [*ids, hour, pa.array(horizon), *[pa.array(horizons[c].reshape(-1)) for c in QUANTILE_COLUMNS]],
                names=FORECAST_SCHEMA.fieldNames())

    return features.mapInArrow(predict, FORECAST_SCHEMA)


def latest_forecast_per_hour(forecasts: DataFrame) -> DataFrame:
    """For each series and target hour, the forecast with the latest origin (origins are always before their
    target hours), the latest generated on a tie (a model promoted after that origin's first forecast)."""
    newest = Window.partitionBy(*SERIES_KEY, "hour").orderBy(F.col("origin").desc(), F.col("generated_at").desc())
    return forecasts.withColumn("_rank", F.row_number().over(newest)).where(F.col("_rank") == 1).drop("_rank")


def forecast_anomalies(actuals: DataFrame, forecasts: DataFrame, detected_at: datetime) -> DataFrame:
    """Completed hours whose actual (``series_hourly`` rows; an hour without a row sold nothing) fell outside
    the p10-p90 band of the latest forecast made for them: one row per series, hour and measure. The caller
    limits ``forecasts`` to completed hours."""
    latest = latest_forecast_per_hour(forecasts).alias("f")
    # product is null on country totals: compare it null-safely.
    same = ((F.col("a.level") == F.col("f.level")) & (F.col("a.country") == F.col("f.country"))
            & F.col("a.product").eqNullSafe(F.col("f.product")) & (F.col("a.hour") == F.col("f.hour")))
    joined = latest.join(actuals.alias("a"), same, "left")
    per_measure = [
        joined.select(
            F.col("f.hour").alias("hour"), F.col("f.level").alias("level"), F.col("f.country").alias("country"),
            F.col("f.product").alias("product"), F.lit(measure).alias("measure"),
            F.coalesce(F.col(f"a.{measure}").cast("double"), F.lit(0.0)).alias("actual"),
            F.col(f"f.{prefix}_p10").alias("p10"), F.col(f"f.{prefix}_p50").alias("p50"),
            F.col(f"f.{prefix}_p90").alias("p90"), F.col("f.model_version").alias("model_version"),
            F.col("f.origin").alias("origin"))
        for measure, prefix in MEASURES.items()
    ]
    stacked = per_measure[0].unionByName(per_measure[1])
    direction = (F.when(F.col("actual") > F.col("p90"), "above").when(F.col("actual") < F.col("p10"), "below"))
    return (stacked.withColumn("direction", direction).where(F.col("direction").isNotNull())
            .withColumn("detected_at", F.lit(detected_at)))


def predict_stockout(stock: DataFrame, forecasts: DataFrame, generated_at: datetime) -> DataFrame:
    """Per country x product: when the cumulative units p50 of the forecast (one origin, product level)
    reaches the stock on hand, interpolated within the hour; null when the stock outlasts the horizon."""
    units = forecasts.where(F.col("level") == "product").select("country", "product", "hour", "units_p50",
                                                               "model_version")
    running = Window.partitionBy("country", "product").orderBy("hour").rowsBetween(Window.unboundedPreceding, 0)
    cumulative = units.withColumn("_cum", F.sum("units_p50").over(running))
    joined = stock.select("country", "product", "stock_on_hand", "as_of").join(cumulative, ["country", "product"])
    # Inside the hour where the running sum crosses the stock, assume sales are spread evenly.
    before = F.col("_cum") - F.col("units_p50")
    fraction = F.when(F.col("units_p50") > 0, (F.col("stock_on_hand") - before) / F.col("units_p50")).otherwise(0.0)
    crossing = F.when(F.col("stock_on_hand") <= 0, F.col("as_of")).when(
        F.col("_cum") >= F.col("stock_on_hand"),
        F.timestamp_seconds(F.unix_timestamp("hour") + F.greatest(F.lit(0.0), fraction) * 3600))
    return joined.groupBy("country", "product").agg(
        F.first("stock_on_hand").alias("stock_on_hand"), F.first("as_of").alias("as_of"),
        F.sum("units_p50").alias("units_p50_24h"), F.min(crossing).alias("predicted_stockout_time"),
        F.first("model_version").alias("model_version"),
    ).withColumn("generated_at", F.lit(generated_at))
