"""KPI totals read from gold with DuckDB (no JVM): `salespulse kpis` and the dashboard's KPI cards, one query.

Reads only the table versions the lake manifest lists, from a local or remote lake (salespulse/storage.py).
Sums and formulas come from the metrics layer (salespulse.metrics). Money is summed exactly as DECIMAL and reaches
Python as ``decimal.Decimal`` (``exact_frame``: a plain DuckDB-to-pandas fetch would turn it into binary floats).
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

from salespulse.kpis import Coverage, period_hours
from salespulse.lake import duckdb_scan, read_manifest
from salespulse.metrics import answered_by, compute_kpis, format_kpi, is_metric, measure_sums
from salespulse.schema import CATEGORY_VALUES
from salespulse.storage import Storage, as_storage

GROUPINGS = {"country": "country", "segment": "segment", "product": "product",
             "month": "strftime(hour, '%Y-%m')"}
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
        """Customer KPIs can answer this filter: it filters only on dimensions gold_customers_daily has (country
        and segment, not product or band)."""
        chosen = {"country": self.countries, "segment": self.segments, "product": self.products,
                  "discount_band": self.bands}
        dimensions = answered_by("active_customers").dimensions
        return not any(values for column, values in chosen.items() if column not in dimensions)

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


class UnknownFilterValue(ValueError):
    """A filter value that names no country, segment, product or band: it would match nothing."""


def canonical_filter_values(column: str, values: tuple[str, ...],
                            country_aliases: dict[str, str]) -> tuple[str, ...]:
    """``values`` as the lake spells them: matched case-insensitively after trimming, countries also through the
    ingest aliases (so `--country "United States of America"` counts what was loaded as USA). A value that names
    nothing raises UnknownFilterValue listing the known ones, rather than printing an empty table."""
    known = {value.lower(): value for value in CATEGORY_VALUES[column]}
    if column == "country":
        known |= {alias.strip().lower(): country for alias, country in country_aliases.items()}
    unknown = [value for value in values if value.strip().lower() not in known]
    if unknown:
        raise UnknownFilterValue(f"unknown {column} {', '.join(repr(v) for v in unknown)}; known: "
                                 f"{', '.join(CATEGORY_VALUES[column])}"
                                 + (" (or an alias in ingest.country_aliases)" if column == "country" else ""))
    return tuple(dict.fromkeys(known[value.strip().lower()] for value in values))


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
    first_hour, last_hour = con.execute(f"SELECT min(hour), max(hour) FROM {sales}").fetchone()
    coverage = data_coverage(first_hour, last_hour, read_manifest(storage).get("published_at"))
    return kpi_totals_over(con, sales, _scan(storage, "gold_customers_daily"), by, where, coverage=coverage)


def data_coverage(first_hour: datetime | None, last_hour: datetime | None,
                  published_at: str | None) -> Coverage | None:
    """The Coverage of sales whose first and last hours (naive UTC) are given, in a lake last published at
    ``published_at`` (the manifest's ISO time; without one, the data's "now" is the end of its last hour).
    None without sales."""
    if first_hour is None or last_hour is None or pd.isna(first_hour) or pd.isna(last_hour):
        return None
    first, last = pd.Timestamp(first_hour).to_pydatetime(), pd.Timestamp(last_hour).to_pydatetime()
    as_of = _naive_utc(datetime.fromisoformat(published_at)) if published_at else last + timedelta(hours=1)
    return Coverage(first, last, as_of)


def exact_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    """``sql``'s rows with DECIMAL columns as ``decimal.Decimal`` (DuckDB's own Python values; its pandas
    conversion would turn them into binary floats)."""
    rows = con.execute(sql, params).fetchall()
    return pd.DataFrame(rows, columns=[column[0] for column in con.description])


def kpi_totals_over(con: duckdb.DuckDBPyConnection, sales: str, customers: str | None, by: str | None,
                    where: SalesFilter, customer_rows: pd.DataFrame | None = None, *,
                    coverage: Coverage | None) -> pd.DataFrame:
    """kpi_totals over given relations (the dashboard passes its own scans, restricted to what a user may see,
    and may pass ``customer_rows``: customer_totals' rows for ``by`` and ``where``, computed its own faster way,
    instead of ``customers``). ``coverage``: of every sales row the caller may see, whatever ``where`` (the
    hours of items per hour, ``period_hours``; None without sales)."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    group = GROUPINGS[by] if by else "'all'"
    condition, params = where.sales_where()
    totals = exact_frame(con, f"""
        SELECT {group} AS grp, {measure_sums()}
        FROM {sales} WHERE {condition} GROUP BY 1 ORDER BY 1""", params)
    totals["hours"] = group_hours(totals["grp"], by, where, coverage)
    per_customer = where.per_customer and (by is None or by in CUSTOMER_GROUPINGS)
    if customers is not None and customer_rows is None and per_customer:
        customer_rows = customer_totals(con, customers, by, where)
    if customer_rows is not None:
        totals = totals.merge(customer_rows, on="grp", how="left")
    # every derived KPI whose inputs these totals hold (those that only name a measure or input are columns already)
    for key, values in compute_kpis(totals, derived_only=True).items():
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


def group_hours(groups: pd.Series, by: str | None, where: SalesFilter, coverage: Coverage | None) -> list[float]:
    """Per group, the hours of its period (``period_hours``): the filter's period, or for months the part of each
    month inside it. Every other grouping (country, product, ...) divides the same period by the same hours."""
    if coverage is None:
        return [float("nan")] * len(groups)
    start, end = _naive_utc(where.start), _naive_utc(where.end)
    if by != "month":
        return [period_hours(start, end, coverage)] * len(groups)
    hours = []
    for month in groups:
        first = datetime.strptime(month, "%Y-%m")
        after = (first + timedelta(days=32)).replace(day=1)
        hours.append(period_hours(max(first, start) if start else first, min(after, end) if end else after,
                                  coverage))
    return hours


def partial_periods(starts: pd.Series, grain: str, where: SalesFilter, coverage: Coverage | None) -> list[bool]:
    """Per period start (naive UTC) at ``grain`` (day, week or month), whether the view shows less than the whole
    period: the data or the filter starts or ends inside it (the month or week to date). A chart draws such a
    period as partial, so its smaller total does not read as a fall. Finer grains are never partial."""
    step = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1)}.get(grain)
    if step is None or coverage is None:
        return [False] * len(starts)
    start, end = _naive_utc(where.start), _naive_utc(where.end)
    partial = []
    for first in pd.to_datetime(starts):
        first = first.tz_convert("UTC").tz_localize(None) if first.tzinfo else first
        after = first + step
        shown = period_hours(max(first, start) if start else first, min(after, end) if end else after, coverage)
        partial.append(shown < (after - first).total_seconds() / 3600)
    return partial


def _naive_utc(moment: datetime | None) -> datetime | None:
    """As gold stores hours: UTC without a time zone (a naive ``moment`` is UTC already)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


# per customer: the first order in the countries of {customers}'s rows (what "new" is measured against; gold keeps
# it per country, so a viewer of some countries learns nothing of orders elsewhere) and the first day with a row
FIRSTS_SQL = """SELECT customer_id, min(first_order_date) AS first_ever, min(event_date) AS first_seen
                FROM {customers} GROUP BY 1"""


def customer_totals(con: duckdb.DuckDBPyConnection, customers: str, by: str | None,
                    where: SalesFilter, firsts: str | None = None) -> pd.DataFrame:
    """Active, new and repeat customers and their orders per group, exact from gold_customers_daily: partial
    rows are summed per customer, and a customer's first order is her MIN(first_order_date) over all rows of
    ``customers`` (every country, or the viewer's countries when it holds only theirs), whatever the filter.
    ``firsts`` may name a relation already holding that (``FIRSTS_SQL`` over the same rows; the dashboard keeps
    one per data version instead of re-reading every row per query)."""
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
        if is_metric(column):
            shown[column] = [format_kpi(column, v) for v in shown[column]]
    return shown
