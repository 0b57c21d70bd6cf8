"""KPI totals read from gold with DuckDB (no JVM): `salespulse kpis` and the dashboard's KPI cards, one query.

Reads only the table versions the lake manifest lists, from a local or remote lake (salespulse/storage.py).
Formulas come from salespulse.kpis. Money is summed exactly as DECIMAL and reaches Python as ``decimal.Decimal``
(through Arrow: a plain DuckDB-to-pandas fetch would turn it into binary floats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from salespulse.kpis import ADDITIVE_MEASURES, KPI_BY_KEY, compute_kpis, format_kpi, round_half_up
from salespulse.lake import duckdb_scan
from salespulse.schema import MONEY_COLUMNS, MONEY_TOTAL_SQL
from salespulse.storage import Storage, as_storage

GROUPINGS = {"country": "country", "segment": "segment", "product": "product",
             "month": "strftime(hour, '%Y-%m')"}
_MONEY = tuple(m for m in ADDITIVE_MEASURES if m in MONEY_COLUMNS)  # the money totals, exact Decimals
CUSTOMER_GROUPINGS = {"country": "country", "segment": "segment", "month": "strftime(event_date, '%Y-%m')"}


@dataclass(frozen=True)
class SalesFilter:
    """Which sales count: a UTC period [start, end) and category lists (empty = all). Shared by `salespulse
    kpis` and the dashboard, so both count exactly the same rows."""

    start: datetime | None = None
    end: datetime | None = None  # exclusive
    countries: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()

    @classmethod
    def for_dates(cls, first: date | None, last: date | None, **categories: tuple[str, ...]) -> SalesFilter:
        """Whole UTC days from ``first`` to ``last`` inclusive (the `--start/--end` flags, the dashboard URL)."""
        start = datetime.combine(first, time(), timezone.utc) if first else None
        end = datetime.combine(last + timedelta(days=1), time(), timezone.utc) if last else None
        return cls(start, end, **categories)

    def previous(self) -> SalesFilter:
        """The equal-length period just before this one (for "change vs previous period")."""
        if self.start is None or self.end is None:
            raise ValueError("only a bounded period has a previous period")
        return replace(self, start=self.start - (self.end - self.start), end=self.start)

    @property
    def per_customer(self) -> bool:
        """Customer KPIs exist only per country and segment (gold_customers_daily has no product or band)."""
        return not self.products and not self.bands

    def sales_where(self) -> tuple[str, list[Any]]:
        """SQL condition and parameters over gold_sales_hourly (column ``hour``)."""
        return self.condition("hour")

    def customers_where(self) -> tuple[str, list[Any]]:
        """Over gold_customers_daily: whole UTC days touching the period (customers are kept per day)."""
        return self.condition("event_date", daily=True, columns=("country", "segment"))

    def condition(self, time_column: str | None, *, daily: bool = False,
                  columns: tuple[str, ...] = ("country", "segment", "product", "discount_band"),
                  alias: str = "") -> tuple[str, list[Any]]:
        """SQL condition and parameters: the period on ``time_column`` (none if None; whole days if ``daily``)
        and the category lists of ``columns`` (tables without segments or bands name fewer)."""
        clauses, params = ["TRUE"], []
        if time_column and self.start is not None:
            clauses.append(f"{alias}{time_column} >= ?")
            params.append(self.start.date() if daily else self.start.replace(tzinfo=None))
        if time_column and self.end is not None:
            clauses.append(f"{alias}{time_column} {'<=' if daily else '<'} ?")
            params.append((self.end - timedelta(microseconds=1)).date() if daily else self.end.replace(tzinfo=None))
        chosen = {"country": self.countries, "segment": self.segments, "product": self.products,
                  "discount_band": self.bands}
        for column in columns:
            if chosen[column]:  # values are bound as parameters, never spliced into the SQL text (they come from URLs)
                clauses.append(f"list_contains(?, {alias}{column})")
                params.append(list(chosen[column]))
        return " AND ".join(clauses), params


def _scan(lake: Storage, table: str) -> str | None:
    try:
        return duckdb_scan(lake, table)
    except FileNotFoundError:
        raise FileNotFoundError(f"the lake at {lake.uri} has no published {table} yet (run `salespulse backfill` "
                                "or `salespulse stream`)") from None


def kpi_totals(lake: Storage | str | Path, by: str | None = None, where: SalesFilter = SalesFilter()) -> pd.DataFrame:
    """One row per group (or one row overall): additive totals, derived KPIs and customer KPIs. ``lake``: a local
    folder, or the Storage of any lake (``salespulse.storage.open_storage``)."""
    storage = as_storage(lake)
    sales = _scan(storage, "gold_sales_hourly")
    if sales is None:
        raise FileNotFoundError(f"the lake at {storage.uri} holds no sales yet")
    con = duckdb.connect()
    storage.attach(con)
    return kpi_totals_over(con, sales, _scan(storage, "gold_customers_daily"), by, where)


def kpi_totals_over(con: duckdb.DuckDBPyConnection, sales: str, customers: str | None, by: str | None,
                    where: SalesFilter, customer_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """kpi_totals over given relations (the dashboard passes its own scans, restricted to what a user may see,
    and may pass ``customer_rows``: customer_totals' rows for ``by`` and ``where``, computed its own faster way,
    instead of ``customers``)."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    group = GROUPINGS[by] if by else "'all'"
    condition, params = where.sales_where()
    # each value cast before summing: exact for DECIMAL gold, and a lake written before money was DECIMAL
    # (doubles) is read as the same type
    money = ", ".join(f"sum({m}::{MONEY_TOTAL_SQL}) AS {m}" for m in _MONEY)
    totals = con.sql(f"""
        SELECT {group} AS grp, sum(orders)::BIGINT AS orders, sum(units_sold) AS units_sold, {money},
               (epoch(max(hour)) - epoch(min(hour))) / 3600 + 1 AS hours
        FROM {sales} WHERE {condition} GROUP BY 1 ORDER BY 1""", params=params).to_arrow_table().to_pandas()
    per_customer = where.per_customer and (by is None or by in CUSTOMER_GROUPINGS)
    if customers is not None and customer_rows is None and per_customer:
        customer_rows = customer_totals(con, customers, by, where)
    if customer_rows is not None:
        totals = totals.merge(customer_rows, on="grp", how="left")
    derived = compute_kpis(totals, keys=("gross_margin_pct", "avg_transaction_value", "items_per_hour"))
    if "active_customers" in totals:
        derived |= compute_kpis(totals, keys=("returning_customers", "repeat_customer_rate"))
    for key, values in derived.items():
        totals[key] = values
    return totals.rename(columns={"grp": by or "scope"}).drop(columns=["hours"])


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):  # exact, as a JSON number: 25029830.1650 prints as 25029830.165
        return "null" if value.is_nan() else f"{value.normalize():f}"
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    return json.dumps(value.item() if hasattr(value, "item") else value)


def kpi_json(totals: pd.DataFrame) -> str:
    """The rows of ``kpi_totals`` as a JSON array of objects, money as exact decimal numbers (not floats)."""
    rows = ("{" + ", ".join(f"{json.dumps(str(k))}: {_json_value(v)}" for k, v in row.items()) + "}"
            for row in totals.to_dict("records"))
    return "[" + ", ".join(rows) + "]"


# per customer: the first order ever (what "new" is measured against) and the first day with a row
FIRSTS_SQL = """SELECT customer_id, min(first_order_date) AS first_ever, min(event_date) AS first_seen
                FROM {customers} GROUP BY 1"""


def customer_totals(con: duckdb.DuckDBPyConnection, customers: str, by: str | None,
                    where: SalesFilter, firsts: str | None = None) -> pd.DataFrame:
    """Active, new and repeat customers and their orders per group, exact from gold_customers_daily: partial
    rows are summed per customer, and "first order ever" is the customer's MIN(first_order_date) over all
    rows, whatever the filter. ``firsts`` may name a relation already holding that (``FIRSTS_SQL`` over the
    same rows; the dashboard keeps one per data version instead of re-reading every row per query)."""
    group = CUSTOMER_GROUPINGS[by] if by else "'all'"
    condition, params = where.customers_where()
    first_day = where.start.date() if where.start else None
    return con.execute(f"""
        WITH firsts AS ({f"SELECT * FROM {firsts}" if firsts else FIRSTS_SQL.format(customers=customers)}),
             active AS (SELECT {group} AS grp, customer_id, sum(orders) AS orders FROM {customers}
                        WHERE {condition} GROUP BY 1, 2)
        SELECT grp, count(*) AS active_customers,
               count(*) FILTER (WHERE ? IS NULL OR first_ever >= ?) AS new_customers,
               count(*) FILTER (WHERE orders >= 2) AS repeat_customers,
               sum(orders)::BIGINT AS customer_orders
        FROM active JOIN firsts USING (customer_id) GROUP BY 1""", [*params, first_day, first_day]).df()


def format_kpi_table(totals: pd.DataFrame) -> pd.DataFrame:
    """Text for people (currency, percentages, thousands separators); JSON output keeps the numbers."""
    shown = totals.copy()
    for column in shown.columns:
        if column in _MONEY:
            shown[column] = [format_kpi("total_sales", v) for v in shown[column]]
        elif column == "units_sold":
            shown[column] = [f"{round_half_up(v, 1):,f}" for v in shown[column]]
        elif column in ("repeat_customers", "customer_orders"):
            shown[column] = [format_kpi("orders", v) for v in shown[column]]
        elif column in KPI_BY_KEY:
            shown[column] = [format_kpi(column, v) for v in shown[column]]
    return shown
