"""Every measure, input and KPI, defined once.

- A **measure** is an additive column of gold_sales_hourly: a sum that stays right when partial aggregates (per
  micro-batch, per hour, per day) are added together. Spark builds gold's sums from this list, DuckDB its SELECT
  lists (``salespulse.metrics.sql``), the dashboard its breakdowns and CSV columns.
- An **input** is a number a KPI needs that is not an additive sum of gold_sales_hourly: the hours of a period,
  distinct customers (gold_customers_daily), a stock position (gold_stock).
- A **KPI** is a formula (``salespulse.metrics.formula``) over measures and inputs, with a label and a display
  format. A KPI that is a bare name (``sales``) shows that measure or input as it is.

Each measure and input names its **source**: the table that holds it, the finest time grain it can be cut at and
the dimensions it can be grouped by; a KPI can be answered where all its inputs can (``answered_by``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from salespulse.kpis import as_decimal, round_half_up, round_money
from salespulse.metrics.formula import Formula

Format = Literal["currency", "percent", "count", "number", "days", "ratio"]
Unit = Literal["money", "count", "units"]
Grain = Literal["any", "hour", "day", "snapshot"]
_GRAIN_ORDER: tuple[Grain, ...] = ("any", "hour", "day", "snapshot")  # finest first
_UNIT_FORMAT: dict[Unit, Format] = {"money": "currency", "count": "count", "units": "number"}


@dataclass(frozen=True)
class Source:
    table: str | None  # None: worked out from the period and the data's coverage, not read from a table
    grain: Grain  # the finest time grain it can be cut at ("snapshot": now only)
    dimensions: tuple[str, ...]  # what it can be grouped and filtered by


SALES = Source("gold_sales_hourly", "hour", ("country", "segment", "product", "discount_band"))
CUSTOMERS = Source("gold_customers_daily", "day", ("country", "segment"))
STOCK = Source("gold_stock", "snapshot", ("country", "product"))
PERIOD = Source(None, "any", ("country", "segment", "product", "discount_band"))


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    unit: Unit
    source: str | None
    """The silver_sales column summed into gold; None: each sales event counts one."""
    description: str
    shown: bool = True
    """In the dashboard's breakdowns, trends and CSV export."""

    @property
    def money(self) -> bool:
        """Money: summed as exact decimals of one type (``MONEY_TOTAL_SQL``)."""
        return self.unit == "money"

    @property
    def fmt(self) -> Format:
        return _UNIT_FORMAT[self.unit]


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    fmt: Format
    source: Source
    description: str


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    fmt: Format
    formula: Formula
    description: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.formula.names

    @property
    def alias_of(self) -> str | None:
        """The measure or input this KPI shows as it is (``sales`` for total sales); None for a derived KPI."""
        return self.formula.alias_of

    @property
    def additive(self) -> bool:
        """Its values for parts add up to its value for the whole: it is a measure (ratios and distinct counts
        are not)."""
        return self.alias_of in MEASURE_BY_NAME

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        return self.formula.evaluate(values)


MEASURES: tuple[Measure, ...] = (  # gold_sales_hourly's column order
    Measure("orders", "Orders", "count", None, "count of orders"),
    Measure("units_sold", "Units sold", "units", "units_sold", "sum of units"),
    Measure("gross_sales", "Gross sales", "money", "gross_sales", "sum of units x sale price", shown=False),
    Measure("discounts", "Discounts", "money", "discounts", "sum of discounts", shown=False),
    Measure("sales", "Sales", "money", "sales", "sum of gross sales - discounts"),
    Measure("cogs", "COGS", "money", "cogs", "sum of cost of goods sold"),
    Measure("profit", "Profit", "money", "profit", "sum of sales - COGS"),
)
MEASURE_BY_NAME: dict[str, Measure] = {m.name: m for m in MEASURES}
SHOWN_MEASURES: tuple[str, ...] = tuple(m.name for m in MEASURES if m.shown)
MONEY_MEASURES: tuple[str, ...] = tuple(m.name for m in MEASURES if m.money)

INPUTS: tuple[Input, ...] = (
    Input("hours", "Hours", "number", PERIOD,
          "calendar hours of the period (a month: all its hours; a date range: its hours), from the data's first "
          "hour, and for the period still running when the lake was last published up to the end of the data's "
          "last hour (salespulse.kpis.period_hours)"),
    Input("active_customers", "Active customers", "count", CUSTOMERS,
          "count of distinct customer_id with an order in the period"),
    Input("new_customers", "New customers", "count", CUSTOMERS,
          "active customers whose first order in the viewer's countries falls in the period (first order ever "
          "for a viewer of every country)"),
    Input("repeat_customers", "Repeat customers", "count", CUSTOMERS,
          "active customers with 2+ orders in the period"),
    Input("customer_orders", "Customer orders", "count", CUSTOMERS,
          "orders of active customers in the period"),
    Input("stock_on_hand", "Stock on hand", "number", STOCK,
          "last count + restocks + adjustments - units sold since that count, per country x product"),
    Input("avg_daily_units_7d", "Average daily units", "number", STOCK,
          "average daily units sold over the 7 days before the stock snapshot"),
    Input("inventory_value", "Inventory value", "currency", STOCK,
          "stock on hand x manufacturing price (the one snapshot stands in for the period's average)"),
)
INPUT_BY_NAME: dict[str, Input] = {i.name: i for i in INPUTS}


def _kpi(key: str, label: str, fmt: Format, formula: str, description: str = "") -> Kpi:
    return Kpi(key, label, fmt, Formula(formula), description)


KPIS: tuple[Kpi, ...] = (
    _kpi("total_sales", "Total sales", "currency", "sales"),
    _kpi("profit", "Profit", "currency", "profit"),
    _kpi("gross_margin_pct", "Gross margin", "percent", "profit / sales"),
    _kpi("orders", "Orders", "count", "orders", "count of distinct order_id"),
    _kpi("avg_transaction_value", "Average transaction value", "currency", "sales / orders"),
    _kpi("items_per_hour", "Items sold per hour", "number", "units_sold / hours"),
    _kpi("discount_rate", "Discount rate", "percent", "discounts / gross_sales",
         "the share of gross sales given away as discounts"),
    _kpi("active_customers", "Active customers", "count", "active_customers"),
    _kpi("new_customers", "New customers", "count", "new_customers"),
    _kpi("returning_customers", "Returning customers", "count", "active_customers - new_customers"),
    _kpi("repeat_customer_rate", "Repeat-customer rate", "percent", "repeat_customers / active_customers"),
    _kpi("orders_per_customer", "Orders per customer", "number", "customer_orders / active_customers"),
    _kpi("stock_on_hand", "Stock on hand", "number", "stock_on_hand"),
    _kpi("days_of_cover", "Days of cover", "days", "stock_on_hand / avg_daily_units_7d"),
    _kpi("inventory_turnover", "Inventory turnover", "ratio", "cogs / inventory_value"),
)
KPI_BY_KEY: dict[str, Kpi] = {k.key: k for k in KPIS}

_unknown = {(k.key, name) for k in KPIS for name in k.inputs if name not in MEASURE_BY_NAME | INPUT_BY_NAME}
if _unknown:  # a typo in a formula fails on import, not as a missing column in some view
    raise ValueError(f"KPI formulas name unknown inputs: {sorted(_unknown)}")

# The KPIs computed from a window's additive totals and its hours alone: what an alert rule can watch.
WINDOW_KPIS: tuple[str, ...] = tuple(k.key for k in KPIS if set(k.inputs) <= {*MEASURE_BY_NAME, "hours"})


@dataclass(frozen=True)
class Answer:
    """Where a KPI can be answered: the tables it reads, the finest grain all of them share, and the dimensions
    all of them have."""

    tables: tuple[str, ...]
    grain: Grain
    dimensions: tuple[str, ...]


def source_of(name: str) -> Source:
    return SALES if name in MEASURE_BY_NAME else INPUT_BY_NAME[name].source


def answered_by(key: str) -> Answer:
    sources = [source_of(name) for name in KPI_BY_KEY[key].inputs]
    tables = tuple(dict.fromkeys(s.table for s in sources if s.table is not None))
    grain = max((s.grain for s in sources), key=_GRAIN_ORDER.index)
    dimensions = tuple(d for d in sources[0].dimensions if all(d in s.dimensions for s in sources))
    return Answer(tables, grain, dimensions)


def compute_kpis(values: Mapping[str, Any], keys: Iterable[str] | None = None, *,
                 derived_only: bool = False) -> dict[str, Any]:
    """Evaluate the KPIs whose inputs are all in ``values`` (a mapping of numbers, or a frame: per row).

    ``keys`` restricts the result; asking for a KPI whose inputs are missing raises a KeyError naming them.
    ``derived_only`` leaves out KPIs that only show a measure or input as it is (``values`` holds those).
    """
    wanted = tuple(keys) if keys is not None else tuple(k.key for k in KPIS)
    result: dict[str, Any] = {}
    for key in wanted:
        kpi = KPI_BY_KEY[key]
        if derived_only and kpi.alias_of is not None:
            continue
        try:
            result[key] = kpi.evaluate(values)
        except KeyError as missing:
            if keys is not None:
                raise KeyError(f"KPI {key!r} needs input {missing.args[0]!r} ({kpi.formula.text})") from None
    return result


def metric_format(name: str) -> Format:
    """The display format of a KPI, measure or input."""
    if name in KPI_BY_KEY:
        return KPI_BY_KEY[name].fmt
    if name in MEASURE_BY_NAME:
        return MEASURE_BY_NAME[name].fmt
    return INPUT_BY_NAME[name].fmt


def is_metric(name: str) -> bool:
    return name in KPI_BY_KEY or name in MEASURE_BY_NAME or name in INPUT_BY_NAME


def format_kpi(key: str, value: Any) -> str:
    """Human format of a KPI, measure or input for display, rounded by ``round_half_up``; numbers stay numeric
    everywhere else."""
    if value is None or value != value:  # None or NaN
        return "–"
    fmt = metric_format(key)
    if fmt == "currency":
        cents = round_money(value)
        return f"{'-' if cents < 0 else ''}${abs(cents):,f}"
    if fmt == "percent":
        return f"{round_half_up(as_decimal(value) * 100, 1):f}%"
    if fmt == "count":
        return f"{round_half_up(value, 0):,f}"
    if fmt == "days":
        return f"{round_half_up(value, 1):,f} days"
    if fmt == "ratio":
        return f"{round_half_up(value, 2):,f}×"
    return f"{round_half_up(value, 1):,f}"
