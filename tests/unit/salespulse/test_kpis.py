from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

import pandas as pd
import pytest

from salespulse.kpis import Coverage, period_hours
from salespulse.metrics import KPI_BY_KEY, KPIS, MEASURES, compute_kpis, format_kpi

# Two hand-checked orders: 10 units at $20 (no discount, COGS $10/unit) and 2 units at $300 with 2% off.
TOTALS = {
    "orders": 2, "units_sold": 12.0, "gross_sales": 800.0, "discounts": 12.0, "sales": 788.0,
    "cogs": 600.0, "profit": 188.0, "hours": 4.0,
}


def test_kpis_every_issue_kpi_is_defined_once() -> None:
    expected = {
        "total_sales", "profit", "gross_margin_pct", "orders", "avg_transaction_value", "items_per_hour",
        "active_customers", "new_customers", "returning_customers", "repeat_customer_rate", "stock_on_hand",
        "days_of_cover", "inventory_turnover", "orders_per_customer",
    }
    assert expected <= {k.key for k in KPIS}
    assert len(KPI_BY_KEY) == len(KPIS)  # no key defined twice
    assert all(k.formula and k.label for k in KPIS)


def test_kpis_from_totals_match_hand_computation() -> None:
    values = compute_kpis(TOTALS)
    assert values["total_sales"] == 788.0
    assert values["profit"] == 188.0
    assert values["gross_margin_pct"] == pytest.approx(188 / 788)
    assert values["avg_transaction_value"] == 394.0
    assert values["items_per_hour"] == 3.0
    assert "active_customers" not in values  # needs customer data


def test_kpis_customer_and_inventory_ratios() -> None:
    values = compute_kpis(
        {"active_customers": 40, "new_customers": 10, "repeat_customers": 8, "stock_on_hand": 90.0,
         "avg_daily_units_7d": 30.0, "cogs": 1200.0, "inventory_value": 400.0},
        keys=("returning_customers", "repeat_customer_rate", "days_of_cover", "inventory_turnover"),
    )
    assert values == {"returning_customers": 30, "repeat_customer_rate": 0.2, "days_of_cover": 3.0,
                      "inventory_turnover": 3.0}


def test_kpis_zero_denominator_is_missing_not_zero() -> None:
    values = compute_kpis({**TOTALS, "orders": 0, "sales": 0.0, "profit": 0.0})
    assert values["avg_transaction_value"] is None
    assert values["gross_margin_pct"] is None


def test_kpis_work_on_series_per_group() -> None:
    frame = pd.DataFrame({"sales": [100.0, 0.0], "profit": [25.0, 0.0], "orders": [4, 0]})
    margin = KPI_BY_KEY["gross_margin_pct"].evaluate(frame)
    atv = KPI_BY_KEY["avg_transaction_value"].evaluate(frame)
    assert margin.iloc[0] == 0.25 and math.isnan(margin.iloc[1])
    assert atv.iloc[0] == 25.0 and math.isnan(atv.iloc[1])


def test_kpis_asking_for_missing_input_names_it() -> None:
    with pytest.raises(KeyError, match=r"items_per_hour.*'hours'"):
        compute_kpis({"units_sold": 3.0}, keys=("items_per_hour",))
    with pytest.raises(KeyError, match=r"active_customers.*needs input 'active_customers'"):
        compute_kpis(TOTALS, keys=("active_customers",))


def test_kpis_additive_measures_are_sales_columns_or_counts() -> None:
    from salespulse.schema import SALES_EVENT

    assert {m.source for m in MEASURES} - {None} <= set(SALES_EVENT.names)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("total_sales", 1234567.891, "$1,234,567.89"),
        ("profit", -4533.75, "-$4,533.75"),
        ("gross_margin_pct", 0.23857, "23.9%"),
        ("orders", 12345, "12,345"),
        ("days_of_cover", 3.25, "3.3 days"),  # halves round up, whatever the binary neighbour of the float
        ("inventory_turnover", 4.5, "4.50×"),
        ("items_per_hour", 1500.25, "1,500.3"),
        ("total_sales", None, "–"),
        ("gross_margin_pct", float("nan"), "–"),
    ],
)
def test_kpis_format_for_display(key: str, value: float | None, text: str) -> None:
    assert format_kpi(key, value) == text


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        # the Financial Sample's USA sales: half a cent rounds up, from a Decimal and from a float alike
        ("total_sales", Decimal("25029830.1650"), "$25,029,830.17"),
        ("total_sales", 25029830.165, "$25,029,830.17"),
        ("total_sales", Decimal("0.005"), "$0.01"),
        ("profit", Decimal("-0.005"), "-$0.01"),  # away from zero
        ("profit", 2.675, "$2.68"),  # the float is 2.67499999…; its written digits say 2.675
        ("total_sales", Decimal("0.0049"), "$0.00"),
        ("gross_margin_pct", Decimal("0.12345"), "12.3%"),
        ("gross_margin_pct", Decimal("0.12350"), "12.4%"),
        ("orders", Decimal("2.5"), "3"),
    ],
)
def test_kpis_format_rounds_exact_values_half_up(key: str, value: object, text: str) -> None:
    assert format_kpi(key, value) == text


def test_kpis_ratios_of_decimal_totals_are_exact() -> None:
    totals = {"sales": Decimal("0.30"), "profit": Decimal("0.10"), "orders": 3, "units_sold": 6.0, "hours": 2}
    kpis = compute_kpis(totals)
    assert kpis["gross_margin_pct"] == Decimal(1) / Decimal(3)
    assert kpis["avg_transaction_value"] == Decimal("0.1")
    frame = pd.DataFrame({"sales": [Decimal("0.30"), Decimal(0)], "profit": [Decimal("0.10"), Decimal(0)],
                          "orders": [3, 0]})
    margins = compute_kpis(frame, keys=("gross_margin_pct", "avg_transaction_value"))
    assert list(margins["avg_transaction_value"]) == [Decimal("0.1"), None]
    assert margins["gross_margin_pct"][1] is None


def test_period_hours_are_calendar_hours_clipped_to_the_data() -> None:
    day = datetime(2026, 2, 1)
    live = Coverage(first_hour=datetime(2026, 1, 10, 6), last_hour=datetime(2026, 2, 3, 13),
                    as_of=datetime(2026, 2, 3, 13, 40))
    # January is over: every hour from the data's first one (Jan 10 06:00) to Feb 1 00:00
    assert period_hours(datetime(2026, 1, 1), day, live) == 21 * 24 + 18
    # February is running: up to the end of the data's last hour (Feb 3 14:00), not the month's end
    assert period_hours(day, datetime(2026, 3, 1), live) == 2 * 24 + 14
    assert period_hours(None, None, live) == 24 * 24 + 8  # Jan 10 06:00 to Feb 3 14:00
    # published long after the data: a month of one midnight row counts all of its hours
    old = Coverage(first_hour=day, last_hour=day, as_of=datetime(2026, 12, 1))
    assert period_hours(day, datetime(2026, 3, 1), old) == 28 * 24
    assert period_hours(datetime(2025, 1, 1), datetime(2025, 2, 1), old) == 0.0  # before any data
