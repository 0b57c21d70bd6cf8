"""KPI totals read from gold with DuckDB (no JVM): `salespulse kpis`, and the numbers the dashboard must match.

Reads only the table versions the lake manifest lists. Formulas come from salespulse.kpis.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from salespulse.kpis import KPI_BY_KEY, compute_kpis, format_kpi
from salespulse.lake import duckdb_scan

GROUPINGS = {"country": "country", "segment": "segment", "product": "product",
             "month": "strftime(hour, '%Y-%m')"}
CUSTOMER_GROUPINGS = {"country": "country", "segment": "segment", "month": "strftime(event_date, '%Y-%m')"}


def _scan(lake: str | Path, table: str) -> str | None:
    try:
        return duckdb_scan(lake, table)
    except FileNotFoundError:
        raise FileNotFoundError(f"the lake at {lake} has no published {table} yet (run `salespulse backfill` "
                                "or `salespulse stream`)") from None


def kpi_totals(lake: str | Path, by: str | None = None) -> pd.DataFrame:
    """One row per group (or one row overall): additive totals, derived KPIs and active customers."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    group = GROUPINGS[by] if by else "'all'"
    con = duckdb.connect()
    sales = _scan(lake, "gold_sales_hourly")
    if sales is None:
        raise FileNotFoundError(f"the lake at {lake} holds no sales yet")
    totals = con.execute(f"""
        SELECT {group} AS grp, sum(orders)::BIGINT AS orders, sum(units_sold) AS units_sold,
               sum(gross_sales) AS gross_sales, sum(discounts) AS discounts, sum(sales) AS sales,
               sum(cogs) AS cogs, sum(profit) AS profit,
               (epoch(max(hour)) - epoch(min(hour))) / 3600 + 1 AS hours
        FROM {sales} GROUP BY 1 ORDER BY 1""").df()
    customers_scan = _scan(lake, "gold_customers_daily")
    if customers_scan is not None and (by is None or by in CUSTOMER_GROUPINGS):
        customer_group = CUSTOMER_GROUPINGS[by] if by else "'all'"
        customers = con.execute(f"""
            SELECT {customer_group} AS grp, count(DISTINCT customer_id) AS active_customers
            FROM {customers_scan} GROUP BY 1""").df()
        totals = totals.merge(customers, on="grp", how="left")
    derived = compute_kpis(totals, keys=("gross_margin_pct", "avg_transaction_value", "items_per_hour"))
    for key, values in derived.items():
        totals[key] = values
    for money in ("gross_sales", "discounts", "sales", "cogs", "profit"):
        totals[money] = totals[money].round(2)
    return totals.rename(columns={"grp": by or "scope"}).drop(columns=["hours"])



_MONEY = ("gross_sales", "discounts", "sales", "cogs", "profit")


def format_kpi_table(totals: pd.DataFrame) -> pd.DataFrame:
    """Text for people (currency, percentages, thousands separators); JSON output keeps the numbers."""
    shown = totals.copy()
    for column in shown.columns:
        if column in _MONEY:
            shown[column] = [format_kpi("total_sales", v) for v in shown[column]]
        elif column == "units_sold":
            shown[column] = [f"{v:,.1f}" for v in shown[column]]
        elif column in KPI_BY_KEY:
            shown[column] = [format_kpi(column, v) for v in shown[column]]
    return shown
