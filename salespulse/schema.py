"""Canonical event schemas and business reference data, shared by the simulator, Spark, model and dashboard.

Column types here are logical (``string``, ``timestamp``, ``double``, ``money``); ``spark_jobs/schemas.py`` and
the simulator's Arrow writer derive their physical schemas from these tuples, so a column is declared once.

Money is a decimal everywhere (never a binary float, which cannot hold 0.165 and turns sums of half-cents into
the wrong cent): stored as ``MONEY_SQL``, summed as ``MONEY_TOTAL_SQL``, and turned into cents for people by
the one rounding rule in ``salespulse/kpis.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LogicalType = Literal["string", "timestamp", "double", "money"]

# Stored money: 4 decimal places hold every source value exactly (the Financial Sample's half-cent discounts,
# 4-decimal tax amounts of other exports); a value with more places is rounded half-up at ingest.
MONEY_PRECISION, MONEY_SCALE = 18, 4
MONEY_SQL = f"DECIMAL({MONEY_PRECISION},{MONEY_SCALE})"
# Sums of money (gold tables, KPI totals): the widest decimal Spark and DuckDB share, same scale, so a sum of
# sums (stream partials, compaction, a period's total) keeps one type and never overflows in practice.
MONEY_TOTAL_PRECISION = 38
MONEY_TOTAL_SQL = f"DECIMAL({MONEY_TOTAL_PRECISION},{MONEY_SCALE})"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: LogicalType
    description: str
    required: bool = True


@dataclass(frozen=True)
class EventSchema:
    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} event has no column {name!r}; columns are {', '.join(self.names)}")


# Canonical country names; other spellings are mapped onto these by the ingest alias map.
COUNTRIES: tuple[str, ...] = ("USA", "Canada", "France", "Germany", "Mexico")
COUNTRY_CODES: dict[str, str] = {"USA": "US", "Canada": "CA", "France": "FR", "Germany": "DE", "Mexico": "MX"}

SEGMENTS: tuple[str, ...] = ("Government", "Midmarket", "Channel Partners", "Enterprise", "Small Business")
PRODUCTS: tuple[str, ...] = ("Carretera", "Montana", "Paseo", "Velo", "VTT", "Amarilla")
# "None" is a real band (no discount), never a missing value (pandas would read the text 'None' as missing by default).
DISCOUNT_BANDS: tuple[str, ...] = ("None", "Low", "Medium", "High")
INVENTORY_KINDS: tuple[str, ...] = ("restock", "adjustment", "count")

# Price points per segment, as in the public Financial Sample export (Government sells at three).
SEGMENT_PRICE_POINTS: dict[str, tuple[float, ...]] = {
    "Government": (7.0, 20.0, 350.0),
    "Midmarket": (15.0,),
    "Channel Partners": (12.0,),
    "Enterprise": (125.0,),
    "Small Business": (300.0,),
}
# Unit cost of goods sold per sale price point, as in the Financial Sample (COGS follows the price point,
# not the product's manufacturing price).
UNIT_COST_BY_PRICE: dict[float, float] = {
    7.0: 5.0, 12.0: 3.0, 15.0: 10.0, 20.0: 10.0, 125.0: 120.0, 300.0: 250.0, 350.0: 260.0,
}
MANUFACTURING_PRICE: dict[str, float] = {
    "Carretera": 3.0,
    "Montana": 5.0,
    "Paseo": 10.0,
    "Velo": 120.0,
    "VTT": 250.0,
    "Amarilla": 260.0,
}
DISCOUNT_RATES: dict[str, float] = {"None": 0.0, "Low": 0.02, "Medium": 0.07, "High": 0.12}

SALES_EVENT = EventSchema(
    name="sales",
    columns=(
        Column("order_id", "string", "Unique order identifier; the deduplication key."),
        Column("event_time", "timestamp", "When the sale happened, UTC, ISO 8601 with a Z suffix."),
        Column("country", "string", f"One of {', '.join(COUNTRIES)} (aliases are mapped at ingest)."),
        Column("segment", "string", f"One of {', '.join(SEGMENTS)}."),
        Column("product", "string", f"One of {', '.join(PRODUCTS)}."),
        Column("discount_band", "string", "None, Low, Medium or High; 'None' is a value, not missing."),
        Column("units_sold", "double", "Units in the order; may be fractional, never negative."),
        Column("manufacturing_price", "money", "Manufacturing price of one unit of the product."),
        Column("sale_price", "money", "Price of one unit for the segment."),
        Column("gross_sales", "money", "units_sold x sale_price."),
        Column("discounts", "money", "gross_sales x the band's discount rate."),
        Column("sales", "money", "gross_sales - discounts."),
        Column("cogs", "money", "Cost of goods sold: units_sold x unit cost of the price point."),
        Column("profit", "money", "sales - cogs."),
        Column("customer_id", "string", "Pseudonymous customer identifier.", required=False),
    ),
)

INVENTORY_EVENT = EventSchema(
    name="inventory",
    columns=(
        Column("event_time", "timestamp", "When the stock movement or count happened, UTC."),
        Column("country", "string", f"One of {', '.join(COUNTRIES)}."),
        Column("product", "string", f"One of {', '.join(PRODUCTS)}."),
        Column("kind", "string", "restock (+quantity arrives), adjustment (+/- correction), count (absolute)."),
        Column("quantity", "double", "Units moved (restock, adjustment) or counted on hand (count)."),
        Column("reorder_point", "double", "Stock level at which a restock is ordered."),
    ),
)

MONEY_COLUMNS: tuple[str, ...] = tuple(c.name for c in SALES_EVENT.columns if c.dtype == "money")

EVENT_SCHEMAS: dict[str, EventSchema] = {s.name: s for s in (SALES_EVENT, INVENTORY_EVENT)}

# The allowed values of every categorical column (matched case-insensitively; countries also by alias).
CATEGORY_VALUES: dict[str, tuple[str, ...]] = {
    "country": COUNTRIES, "segment": SEGMENTS, "product": PRODUCTS, "discount_band": DISCOUNT_BANDS,
    "kind": INVENTORY_KINDS,
}
