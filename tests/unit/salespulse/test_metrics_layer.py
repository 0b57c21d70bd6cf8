"""The metrics layer (salespulse/metrics): every KPI formula against an independent pandas computation on a small
frame, the SQL and Spark text built from the definitions, and where each KPI can be answered. No JVM."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from salespulse.kpi_report import SalesFilter, format_kpi_table, kpi_totals_over
from salespulse.lake import TABLES
from salespulse.metrics import (
    INPUT_BY_NAME,
    KPI_BY_KEY,
    KPIS,
    MEASURE_BY_NAME,
    MEASURES,
    WINDOW_KPIS,
    Formula,
    FormulaError,
    answered_by,
    compute_kpis,
    event_measures,
    measure_sums,
)

ROOT = Path(__file__).resolve().parents[3]
EXPORTS = ROOT / "tests" / "fixtures" / "exports"

# Per group: gold_sales_hourly-like rows with the customer and stock inputs beside them; group "z" has zero
# denominators everywhere.
ROWS = pd.DataFrame({
    "grp": ["a", "a", "a", "b", "b", "z"],
    "orders": [3, 1, 2, 5, 0, 0],
    "units_sold": [12.0, 2.5, 4.0, 30.0, 0.0, 0.0],
    "gross_sales": [800.0, 50.0, 120.0, 3000.0, 0.0, 0.0],
    "discounts": [12.0, 0.0, 8.4, 210.0, 0.0, 0.0],
    "sales": [788.0, 50.0, 111.6, 2790.0, 0.0, 0.0],
    "cogs": [600.0, 25.0, 40.0, 2500.0, 0.0, 0.0],
    "profit": [188.0, 25.0, 71.6, 290.0, 0.0, 0.0],
    "hours": [1.0, 1.0, 1.0, 2.0, 2.0, 0.0],
    "active_customers": [4, 1, 2, 6, 0, 0],
    "new_customers": [1, 0, 2, 3, 0, 0],
    "repeat_customers": [2, 0, 1, 1, 0, 0],
    "customer_orders": [6, 1, 3, 7, 0, 0],
    "stock_on_hand": [90.0, 10.0, 0.0, 400.0, 20.0, 5.0],
    "avg_daily_units_7d": [30.0, 2.0, 0.0, 16.0, 4.0, 0.0],
    "inventory_value": [270.0, 50.0, 0.0, 4000.0, 100.0, 0.0],
})


def ratio(numerator: pd.Series, denominator: pd.Series) -> float:
    return numerator.sum() / denominator.sum() if denominator.sum() else np.nan


# Each KPI computed per group straight from its documented meaning, independently of the layer's formulas.
EXPECTED: dict[str, Callable[[pd.DataFrame], float]] = {
    "total_sales": lambda g: g["sales"].sum(),
    "profit": lambda g: g["profit"].sum(),
    "gross_margin_pct": lambda g: ratio(g["profit"], g["sales"]),
    "orders": lambda g: g["orders"].sum(),
    "avg_transaction_value": lambda g: ratio(g["sales"], g["orders"]),
    "items_per_hour": lambda g: ratio(g["units_sold"], g["hours"]),
    "discount_rate": lambda g: ratio(g["discounts"], g["gross_sales"]),
    "active_customers": lambda g: g["active_customers"].sum(),
    "new_customers": lambda g: g["new_customers"].sum(),
    "returning_customers": lambda g: g["active_customers"].sum() - g["new_customers"].sum(),
    "repeat_customer_rate": lambda g: ratio(g["repeat_customers"], g["active_customers"]),
    "orders_per_customer": lambda g: ratio(g["customer_orders"], g["active_customers"]),
    "stock_on_hand": lambda g: g["stock_on_hand"].sum(),
    "days_of_cover": lambda g: ratio(g["stock_on_hand"], g["avg_daily_units_7d"]),
    "inventory_turnover": lambda g: ratio(g["cogs"], g["inventory_value"]),
}


def test_metrics_every_kpi_has_an_independent_check() -> None:
    """A KPI added to the layer needs its own line in EXPECTED: one definition plus its test."""
    assert set(EXPECTED) == set(KPI_BY_KEY)


@pytest.mark.parametrize("key", [k.key for k in KPIS])
def test_metrics_kpi_formula_on_summed_groups_equals_pandas(key: str) -> None:
    totals = ROWS.groupby("grp").sum()
    got = KPI_BY_KEY[key].evaluate(totals).astype(float)
    want = ROWS.groupby("grp").apply(EXPECTED[key], include_groups=False).astype(float)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, equal_nan=True)
    assert np.isnan(want["z"]) == (KPI_BY_KEY[key].alias_of is None and "/" in KPI_BY_KEY[key].formula.text)


@pytest.mark.parametrize("key", [k.key for k in KPIS])
def test_metrics_kpi_formula_on_scalars_equals_pandas(key: str) -> None:
    group = ROWS[ROWS["grp"] == "a"]
    got = compute_kpis(group.drop(columns="grp").sum().to_dict(), (key,))[key]
    assert float(got) == pytest.approx(EXPECTED[key](group), rel=1e-12)


def test_metrics_additivity_is_that_of_a_sum() -> None:
    """An additive KPI's value for the whole is the sum of its values for the parts; a ratio's is not."""
    totals = ROWS.groupby("grp").sum()
    whole = ROWS.drop(columns="grp").sum()
    for kpi in KPIS:
        if kpi.additive:
            assert kpi.evaluate(totals).sum() == pytest.approx(kpi.evaluate(whole))
    assert {k.key for k in KPIS if k.additive} == {"total_sales", "profit", "orders"}
    assert KPI_BY_KEY["gross_margin_pct"].evaluate(totals).sum() != pytest.approx(
        KPI_BY_KEY["gross_margin_pct"].evaluate(whole))


@pytest.mark.parametrize("text", ["__import__('os')", "sales ** 2", "sales.real", "f(sales)", "'a' + sales",
                                  "sales // orders", "sales if orders else profit", "sales /"])
def test_metrics_formula_allows_arithmetic_only(text: str) -> None:
    with pytest.raises(FormulaError, match=re.escape(repr(text))):
        Formula(text)


def test_metrics_formula_renders_text_and_guarded_sql() -> None:
    formula = Formula("(profit - cogs) / (sales + 1) * 100")
    assert formula.names == ("profit", "cogs", "sales")
    assert formula.render(lambda n: f"sum({n})") == "((sum(profit) - sum(cogs)) / (sum(sales) + 1)) * 100"
    assert formula.render(sql=True) == "((profit - cogs) / NULLIF(sales + 1, 0)) * 100"
    assert formula.evaluate({"profit": 30, "cogs": 10, "sales": 3}) == 500
    assert formula.evaluate({"profit": 30, "cogs": 10, "sales": -1}) is None  # a zero denominator stays missing


def test_metrics_kpi_inputs_are_measures_or_inputs() -> None:
    for kpi in KPIS:
        assert kpi.label and kpi.inputs
        assert set(kpi.inputs) <= set(MEASURE_BY_NAME) | set(INPUT_BY_NAME), kpi.key
    assert set(WINDOW_KPIS) == {k.key for k in KPIS if set(k.inputs) <= {*MEASURE_BY_NAME, "hours"}}
    assert "active_customers" not in WINDOW_KPIS and "items_per_hour" in WINDOW_KPIS


def test_metrics_gold_columns_and_sql_come_from_the_measures() -> None:
    names = [m.name for m in MEASURES]
    gold = TABLES["gold_sales_hourly"].column_names
    assert list(gold[gold.index("orders"):gold.index("orders") + len(names)]) == names
    assert measure_sums(("orders", "units_sold", "sales")) == (
        "sum(orders)::BIGINT AS orders, sum(units_sold) AS units_sold, sum(sales::DECIMAL(38,4)) AS sales")
    assert event_measures().startswith("1 AS orders, units_sold, gross_sales, ")


def test_metrics_answered_by_the_tables_holding_every_input() -> None:
    sales = answered_by("gross_margin_pct")
    assert (sales.tables, sales.grain) == (("gold_sales_hourly",), "hour")
    assert set(sales.dimensions) == {"country", "segment", "product", "discount_band"}
    customers = answered_by("repeat_customer_rate")
    assert (customers.tables, customers.grain, customers.dimensions) == (
        ("gold_customers_daily",), "day", ("country", "segment"))
    turnover = answered_by("inventory_turnover")
    assert (turnover.tables, turnover.grain, turnover.dimensions) == (
        ("gold_sales_hourly", "gold_stock"), "snapshot", ("country", "product"))
    # the filters customer KPIs can answer are those on their dimensions
    assert SalesFilter(countries=("France",), segments=("Enterprise",)).per_customer
    assert not SalesFilter(products=("VTT",)).per_customer
    assert not SalesFilter(bands=("Low",)).per_customer


def test_metrics_docs_list_every_kpi_with_its_formula() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for kpi in KPIS:
        shown = kpi.formula.render(lambda n: f"sum({n})" if n in MEASURE_BY_NAME else n)
        assert f"| `{kpi.key}` | {kpi.label} | `{shown}` |" in doc, kpi.key


def export_amount(text: str) -> Decimal:
    """A money cell of the Financial Sample CSV as Excel wrote it: " $32,370.00 ", " $-   " (zero), " $(4,533.75)"."""
    text = text.strip().replace("$", "").replace(",", "").strip()
    if text == "-":
        return Decimal(0)
    return -Decimal(text[1:-1]) if text.startswith("(") else Decimal(text)


def financial_sample() -> pd.DataFrame:
    """The Financial Sample CSV read with pandas alone: trimmed names and text, money as exact Decimals."""
    frame = pd.read_csv(EXPORTS / "financial_sample.csv", dtype=str, keep_default_na=False)
    frame.columns = frame.columns.str.strip()
    frame = frame.apply(lambda column: column.str.strip())
    for column in ("Gross Sales", "Discounts", "Sales", "COGS", "Profit"):
        frame[column] = frame[column].map(export_amount)
    return frame


def test_metrics_discount_rate_over_the_financial_sample_equals_pandas() -> None:
    """Discount rate per segment and overall, through the query `salespulse kpis` runs (kpi_totals_over over
    gold-shaped rows: one order per row of the export), against pandas' sums of the same cells."""
    sample = financial_sample()
    truth = json.loads((EXPORTS / "financial_sample_totals.json").read_text())
    assert sum(sample["Discounts"]) == Decimal(truth["discounts"])  # the parser agrees with the reference totals
    assert sum(sample["Gross Sales"]) == Decimal(truth["gross_sales"])

    con = duckdb.connect()
    rows = pd.DataFrame({
        "hour": [datetime.strptime(d, "%m/%d/%Y") for d in sample["Date"]], "country": sample["Country"],
        "segment": sample["Segment"], "product": sample["Product"], "discount_band": sample["Discount Band"],
        "orders": 1, "units_sold": sample["Units Sold"].astype(float),
        **{measure: sample[column].map(str) for column, measure in (
            ("Gross Sales", "gross_sales"), ("Discounts", "discounts"), ("Sales", "sales"), ("COGS", "cogs"),
            ("Profit", "profit"))}})
    con.register("export_rows", rows)
    gold = """(SELECT hour, country, segment, product, discount_band, orders, units_sold,
                      gross_sales::DECIMAL(38,4) AS gross_sales, discounts::DECIMAL(38,4) AS discounts,
                      sales::DECIMAL(38,4) AS sales, cogs::DECIMAL(38,4) AS cogs, profit::DECIMAL(38,4) AS profit
               FROM export_rows)"""

    by_segment = kpi_totals_over(con, gold, None, "segment", SalesFilter(), coverage=None).set_index("segment")
    want = sample.groupby("Segment")[["Discounts", "Gross Sales"]].sum()
    assert sorted(by_segment.index) == sorted(want.index)
    for segment, sums in want.iterrows():
        assert by_segment.loc[segment, "discount_rate"] == sums["Discounts"] / sums["Gross Sales"], segment
    overall = kpi_totals_over(con, gold, None, None, SalesFilter(), coverage=None)
    rate = Decimal(truth["discounts"]) / Decimal(truth["gross_sales"])
    assert overall["discount_rate"].iloc[0] == rate
    # the CLI's table: a percentage to one place, halves up (9,205,248.27 / 127,931,598.50 = 7.195...%)
    percent = (rate * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert format_kpi_table(overall)["discount_rate"].iloc[0] == f"{percent}%" == "7.2%"
