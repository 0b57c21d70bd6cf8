"""Gold aggregates from silver: additive sales per hour, customers per day, stock positions."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from salespulse.metrics import KPI_BY_KEY, MEASURE_BY_NAME, MEASURES
from salespulse.schema import MANUFACTURING_PRICE
from spark_jobs.schemas import MONEY_TOTAL


def total(measure: str, column: str | None = None) -> Column:
    """SUM of a measure (of ``column``, default the measure's own column); money sums are exact decimals of one
    type (``MONEY_TOTAL``) whether they add up events or partial sums, so stream partials, compacted rows and
    backfilled rows share a schema."""
    summed = F.sum(column or measure)
    return (summed.cast(MONEY_TOTAL) if MEASURE_BY_NAME[measure].money else summed).alias(measure)


def _event_totals() -> list[Column]:
    """Every measure summed over silver sales events (a measure without a source column counts the events)."""
    return [F.count(F.lit(1)).alias(m.name) if m.source is None else total(m.name, m.source) for m in MEASURES]


def aggregate_sales_hourly(silver_sales: DataFrame) -> DataFrame:
    hour = F.date_trunc("hour", F.col("event_time")).alias("hour")
    return (
        silver_sales.groupBy(hour, "country", "segment", "product", "discount_band")
        .agg(*_event_totals())
        .withColumn("event_date", F.to_date("hour"))
    )


# A customer's first order is kept per country: a viewer who may see some countries only must count as new a
# customer whose first order in those countries is recent, without learning of her orders elsewhere. Readers
# take the MIN over the countries they may see (all of them: the first order ever).
FIRST_ORDER_PER = ("customer_id", "country")


def aggregate_customers_daily(silver_sales: DataFrame) -> DataFrame:
    """Per customer and day, with the customer's first order date in that country: distinct, new and repeat
    customers stay exact for any date range, country and segment, and for any set of countries a viewer sees."""
    known = silver_sales.where(F.col("customer_id").isNotNull())
    first = Window.partitionBy(*FIRST_ORDER_PER)
    return (
        known.groupBy("event_date", "country", "segment", "customer_id")
        .agg(F.count(F.lit(1)).alias("orders"), total("sales"))
        .withColumn("first_order_date", F.min("event_date").over(first))
    )


def combine_sales_hourly(partials: DataFrame) -> DataFrame:
    """One row per gold key from partial aggregates (the stream writes one set per micro-batch)."""
    return (
        partials.groupBy("hour", "country", "segment", "product", "discount_band", "event_date")
        .agg(*[total(m.name) for m in MEASURES])
    )


def combine_customers_daily(partials: DataFrame) -> DataFrame:
    first = Window.partitionBy(*FIRST_ORDER_PER)
    return (
        partials.groupBy("event_date", "country", "segment", "customer_id")
        .agg(F.sum("orders").alias("orders"), total("sales"),
             F.min("first_order_date").alias("first_order_date"))
        .withColumn("first_order_date", F.min("first_order_date").over(first))
    )


def compute_stock(silver_inventory: DataFrame, sales_hourly: DataFrame, sales_events: DataFrame) -> DataFrame:
    """Stock per country x product: the last count plus later restocks and adjustments, minus units sold
    after that count. Sales come from the hourly gold (whole hours after the count's hour) and from events
    (the rest of the count's own hour), so the result is exact without scanning every event; callers may
    pass only the events of the days holding the last counts. Series without a count yet are left out
    (their stock is unknown)."""
    series = ["country", "product"]
    counts = (
        silver_inventory.where(F.col("kind") == "count")
        .groupBy(*series)
        .agg(F.max_by("quantity", "event_time").alias("counted"), F.max("event_time").alias("last_count_time"))
        .withColumn("count_hour", F.date_trunc("hour", "last_count_time"))
    )
    points = silver_inventory.groupBy(*series).agg(
        F.max_by("reorder_point", "event_time").alias("reorder_point"),
        F.max("event_time").alias("last_inventory_time"),
    )
    moves = (
        silver_inventory.where(F.col("kind") != "count").join(counts, series)
        .where(F.col("event_time") >= F.col("last_count_time"))
        .groupBy(*series).agg(F.sum("quantity").alias("moved"))
    )
    later_hours = (
        sales_hourly.select(*series, "hour", "units_sold").join(counts, series)
        .where(F.col("hour") > F.col("count_hour"))
        .groupBy(*series).agg(F.sum("units_sold").alias("sold_later_hours"))
    )
    count_hour = (
        sales_events.select(*series, "event_time", "units_sold").join(counts, series)
        .where((F.col("event_time") >= F.col("last_count_time"))
               & (F.date_trunc("hour", "event_time") == F.col("count_hour")))
        .groupBy(*series).agg(F.sum("units_sold").alias("sold_count_hour"))
    )
    latest_hour = sales_hourly.groupBy(*series).agg(F.max("hour").alias("last_sale_hour"))
    price = F.create_map(*[F.lit(x) for pair in MANUFACTURING_PRICE.items() for x in pair])
    stock = (
        counts.join(points, series).join(moves, series, "left").join(later_hours, series, "left")
        .join(count_hour, series, "left").join(latest_hour, series, "left")
        .withColumn("as_of", F.greatest("last_inventory_time", F.coalesce("last_sale_hour", "last_inventory_time")))
        .withColumn("stock_on_hand",
                    F.col("counted") + F.coalesce("moved", F.lit(0.0))
                    - F.coalesce("sold_later_hours", F.lit(0.0)) - F.coalesce("sold_count_hour", F.lit(0.0)))
    )
    last_week = (
        sales_hourly.select(*series, "hour", "units_sold").join(stock.select(*series, "as_of"), series)
        .where(F.col("hour") > F.col("as_of") - F.expr("INTERVAL 7 DAYS"))
        .groupBy(*series).agg(F.sum("units_sold").alias("units_sold_7d"))
    )
    return (
        stock.join(last_week, series, "left")
        .withColumn("units_sold_7d", F.coalesce("units_sold_7d", F.lit(0.0)))
        .withColumn("avg_daily_units_7d", F.col("units_sold_7d") / 7)
        .withColumn("days_of_cover", F.expr(KPI_BY_KEY["days_of_cover"].formula.render(sql=True)))
        .withColumn("inventory_value", F.col("stock_on_hand") * price[F.col("product")])
        .withColumn("below_reorder_point", F.col("stock_on_hand") < F.col("reorder_point"))
        .select(*series, "as_of", "stock_on_hand", "reorder_point", "last_count_time", "units_sold_7d",
                "avg_daily_units_7d", "days_of_cover", "inventory_value", "below_reorder_point")
    )


def reorder_alerts(previous_stock: DataFrame | None, stock: DataFrame, detected_at: datetime) -> DataFrame:
    """Series that have just fallen below their reorder point (they were not below in ``previous_stock``)."""
    below = stock.where(F.col("below_reorder_point"))
    if previous_stock is not None:
        already = previous_stock.where(F.col("below_reorder_point")).select("country", "product")
        below = below.join(already, ["country", "product"], "left_anti")
    return below.select(
        F.lit(detected_at).alias("detected_at"), "country", "product", "stock_on_hand", "reorder_point",
        "days_of_cover", "as_of",
    )
