from __future__ import annotations

import pytest

from salespulse.schema import (
    COUNTRIES,
    DISCOUNT_BANDS,
    INVENTORY_EVENT,
    PRODUCTS,
    SALES_EVENT,
    SEGMENT_PRICE_POINTS,
    SEGMENTS,
    UNIT_COST_BY_PRICE,
)


def test_schema_sales_event_columns_in_contract_order() -> None:
    assert SALES_EVENT.names == (
        "order_id", "event_time", "country", "segment", "product", "discount_band", "units_sold",
        "manufacturing_price", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit", "customer_id",
    )
    assert SALES_EVENT.column("event_time").dtype == "timestamp"
    assert SALES_EVENT.column("customer_id").required is False
    assert SALES_EVENT.column("units_sold").dtype == "double"
    money = ("manufacturing_price", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit")
    assert all(SALES_EVENT.column(n).dtype == "money" for n in money)


def test_schema_inventory_event_columns() -> None:
    assert INVENTORY_EVENT.names == ("event_time", "country", "product", "kind", "quantity", "reorder_point")


def test_schema_unknown_column_error_lists_columns() -> None:
    with pytest.raises(KeyError, match="sales event has no column 'revenue'; columns are order_id"):
        SALES_EVENT.column("revenue")


def test_schema_reference_data_matches_the_financial_sample() -> None:
    assert set(COUNTRIES) == {"USA", "Canada", "France", "Germany", "Mexico"}
    assert set(SEGMENTS) == {"Government", "Midmarket", "Channel Partners", "Enterprise", "Small Business"}
    assert set(PRODUCTS) == {"Carretera", "Montana", "Paseo", "Velo", "VTT", "Amarilla"}
    assert DISCOUNT_BANDS[0] == "None"
    assert SEGMENT_PRICE_POINTS["Government"] == (7.0, 20.0, 350.0)
    every_price = {p for prices in SEGMENT_PRICE_POINTS.values() for p in prices}
    assert every_price == set(UNIT_COST_BY_PRICE)
