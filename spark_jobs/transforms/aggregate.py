"""Gold aggregates from silver: additive sales per hour, customers per day, stock positions."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from salespulse.schema import MANUFACTURING_PRICE

MEASURES = ("units_sold", "gross_sales", "discounts", "sales", "cogs", "profit")


def aggregate_sales_hourly(silver_sales: DataFrame) -> DataFrame:
    hour = F.date_trunc("hour", F.col("event_time")).alias("hour")
    return (
        silver_sales.groupBy(hour, "country", "segment", "product", "discount_band")
        .agg(F.count(F.lit(1)).alias("orders"), *[F.sum(m).alias(m) for m in MEASURES])
        .withColumn("event_date", F.to_date("hour"))
    )


def aggregate_customers_daily(silver_sales: DataFrame) -> DataFrame:
    """Per customer and day, with the customer's first order date: distinct, new and repeat customers stay
    exact for any date range, country and segment."""
    known = silver_sales.where(F.col("customer_id").isNotNull())
    first = Window.partitionBy("customer_id")
    return (
        known.groupBy("event_date", "country", "segment", "customer_id")
        .agg(F.count(F.lit(1)).alias("orders"), F.sum("sales").alias("sales"))
        .withColumn("first_order_date", F.min("event_date").over(first))
    )


def compute_stock(silver_inventory: DataFrame, silver_sales: DataFrame) -> DataFrame:
    """Stock per country x product: the last count plus later restocks and adjustments, minus units sold
    after that count. Series without a count yet are left out (their stock is unknown)."""
    counts = (
        silver_inventory.where(F.col("kind") == "count")
        .groupBy("country", "product")
        .agg(F.max_by("quantity", "event_time").alias("counted"), F.max("event_time").alias("last_count_time"))
    )
    points = silver_inventory.groupBy("country", "product").agg(
        F.max_by("reorder_point", "event_time").alias("reorder_point"),
        F.max("event_time").alias("last_inventory_time"),
    )
    moves = (
        silver_inventory.where(F.col("kind") != "count").join(counts, ["country", "product"])
        .where(F.col("event_time") >= F.col("last_count_time"))
        .groupBy("country", "product").agg(F.sum("quantity").alias("moved"))
    )
    sold_after = (
        silver_sales.select("country", "product", "event_time", "units_sold").join(counts, ["country", "product"])
        .where(F.col("event_time") >= F.col("last_count_time"))
        .groupBy("country", "product")
        .agg(F.sum("units_sold").alias("sold"), F.max("event_time").alias("last_sale_time"))
    )
    price = F.create_map(*[F.lit(x) for pair in MANUFACTURING_PRICE.items() for x in pair])
    stock = (
        counts.join(points, ["country", "product"]).join(moves, ["country", "product"], "left")
        .join(sold_after, ["country", "product"], "left")
        .withColumn("as_of", F.greatest("last_inventory_time", F.coalesce("last_sale_time", "last_inventory_time")))
        .withColumn("stock_on_hand",
                    F.col("counted") + F.coalesce("moved", F.lit(0.0)) - F.coalesce("sold", F.lit(0.0)))
    )
    recent = silver_sales.select("country", "product", "event_time", "units_sold").join(
        stock.select("country", "product", "as_of"), ["country", "product"]
    ).where(F.col("event_time") > F.col("as_of") - F.expr("INTERVAL 7 DAYS"))
    last_week = recent.groupBy("country", "product").agg(F.sum("units_sold").alias("units_sold_7d"))
    return (
        stock.join(last_week, ["country", "product"], "left")
        .withColumn("units_sold_7d", F.coalesce("units_sold_7d", F.lit(0.0)))
        .withColumn("avg_daily_units_7d", F.col("units_sold_7d") / 7)
        .withColumn("days_of_cover", F.when(F.col("avg_daily_units_7d") > 0,
                                            F.col("stock_on_hand") / F.col("avg_daily_units_7d")))
        .withColumn("inventory_value", F.col("stock_on_hand") * price[F.col("product")])
        .withColumn("below_reorder_point", F.col("stock_on_hand") < F.col("reorder_point"))
        .select("country", "product", "as_of", "stock_on_hand", "reorder_point", "last_count_time", "units_sold_7d",
                "avg_daily_units_7d", "days_of_cover", "inventory_value", "below_reorder_point")
    )
