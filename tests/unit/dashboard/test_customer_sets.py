"""The customer bitsets on a hand-made table: distinct customers over several days and cells, repeat customers
from two cells or from two orders in one cell, new customers, filters and breakdowns."""

from __future__ import annotations

import numpy as np

from dashboard.customer_sets import build_customer_cells, count_customers

COUNTRIES = np.array(["France", "France", "USA"])  # group index -> country
SEGMENTS = np.array(["Government", "Midmarket", "Government"])
# (day, group, customer, orders): customer 0 on days 10 and 11 (France/Government), customer 1 twice on day 11 in
# one cell, customer 2 on day 11 in two cells of two countries, customer 9 (the highest index: the last byte's
# top bit) on day 12 in the USA
ROWS = [(10, 0, 0, 1), (11, 0, 0, 1), (11, 1, 1, 2), (11, 0, 2, 1), (11, 2, 2, 1), (12, 2, 9, 1)]
FIRST_EVER = np.array([10, 11, 5, 0, 0, 0, 0, 0, 0, 12], np.int32)  # customer 2 ordered long before


def cells():
    day, group, customer, orders = (np.array(c) for c in zip(*ROWS, strict=True))
    # two chunks of whole days, as data.py reads them
    chunks = [tuple(a[days] for a in (day, group, customer, orders)) for days in (day <= 11, day > 11)]
    return build_customer_cells(10, 3, chunks, FIRST_EVER, COUNTRIES, SEGMENTS)


def rows(*args) -> list[tuple]:
    return [tuple(r) for r in count_customers(cells(), *args).itertuples(index=False)]


def test_customers_are_counted_once_over_a_period_and_repeat_across_days_or_within_one() -> None:
    # active 0, 1, 2, 9; repeat: 0 (two days), 1 (two orders in one cell), 2 (two cells); new: 0, 1, 9 (>= day 10)
    assert rows(10, 12, (), (), None) == [("all", 4, 3, 3, 7)]
    assert rows(None, None, (), (), None) == [("all", 4, 4, 3, 7)]  # no start: every active customer is new


def test_a_period_of_one_day_and_the_filters() -> None:
    assert rows(11, 11, (), (), None) == [("all", 3, 1, 2, 5)]  # 0 once: not a repeat on day 11 alone
    assert rows(11, 11, ("France",), (), None) == [("all", 3, 1, 1, 4)]  # 2 in France once only
    assert rows(10, 12, (), ("Government",), None) == [("all", 3, 2, 2, 5)]
    assert rows(13, 20, (), (), None) == []  # no active customer: no row, as in SQL
    assert rows(0, 9, (), (), None) == []


def test_breakdowns_count_a_customer_in_each_group_they_were_active_in() -> None:
    assert rows(10, 12, (), (), "country") == [("France", 3, 2, 2, 5), ("USA", 2, 1, 0, 2)]
    assert rows(10, 12, ("USA",), (), "segment") == [("Government", 2, 1, 0, 2)]


def test_partial_rows_of_one_cell_are_summed() -> None:
    """gold keeps partial rows per stream batch: two rows of one order each are a repeat customer."""
    rows = tuple(np.array(c) for c in ([10, 10], [0, 0], [3, 3], [1, 1]))
    partial = build_customer_cells(10, 1, [rows], FIRST_EVER, COUNTRIES, SEGMENTS)
    assert [tuple(r) for r in count_customers(partial, 10, 10, (), (), None).itertuples(index=False)] == [
        ("all", 1, 0, 1, 2)]
