"""Exact active / new / repeat customer counts for any period of whole UTC days and any country and segment
choice, in milliseconds: the same numbers as ``salespulse.kpi_report.customer_totals``, without a pass over
every customer-day row per query.

Per cell (UTC day x country-segment pair) the set of customers active in it is kept as a bitset (one bit per
customer), beside the set of customers with two or more orders in it and the cell's order count. A period's
active customers are the OR of its cells' sets (exact; per-day counts cannot be summed, a customer active on
two days would count twice); a repeat customer is one in two of the chosen cells or in one cell's two-order
set; a new customer is an active one whose first order in the viewer's countries falls on or after the period's
first day.
Memory: cells x customers / 8 bytes, twice (90 days x 25 pairs x 100,000 customers: 56 MB).

Pure numpy: ``dashboard/data.py`` reads the rows and builds one ``CustomerCells`` per data version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

COLUMNS = ["grp", "active_customers", "new_customers", "repeat_customers", "customer_orders"]


@dataclass(frozen=True)
class CustomerCells:
    first_day: int  # epoch day of the first row of the arrays below
    countries: np.ndarray  # per group column: its country
    segments: np.ndarray  # per group column: its segment
    active: np.ndarray  # uint8 (days, groups, bytes): bit c of a cell = customer c ordered in it
    repeat: np.ndarray  # uint8 (days, groups, bytes): customer c placed two or more orders in the cell
    orders: np.ndarray  # int64 (days, groups): orders in the cell
    first_ever: np.ndarray  # int32 (customers,): epoch day of each customer's first order in the viewer's countries


def build_customer_cells(first_day: int, days: int, chunks: Iterable[tuple[np.ndarray, ...]], first_ever: np.ndarray,
                         countries: np.ndarray, segments: np.ndarray, previous: CustomerCells | None = None,
                         kept_days: Iterable[int] = ()) -> CustomerCells:
    """Cells for epoch days ``first_day`` .. ``first_day + days - 1`` from ``chunks`` of rows, each a tuple of
    arrays (epoch ``day``, ``group`` index, dense ``customer`` index, ``orders``); every row of a day in one
    chunk (chunks bound the memory of a build), several rows of one customer in one cell allowed (they are
    summed: gold keeps partial rows per stream batch). ``first_ever`` per customer index; ``countries`` and
    ``segments`` per group index. The cells of epoch days ``kept_days`` are copied from ``previous`` (same groups,
    and its customers of those days numbered as here), and those days' rows are left out of ``chunks``."""
    customers, groups = len(first_ever), len(countries)
    width = (customers + 7) // 8
    active = np.zeros((days * groups * width), np.uint8)  # flat while filled: (day, group, byte)
    repeat = np.zeros_like(active)
    per_cell = np.zeros(days * groups, np.int64)
    for day, group, customer, orders in chunks:
        # Only the rows there are: a day has a few thousand customer rows, its cells room for 25 x every customer
        # (a dense grid per day cost ~9 ms a day on a 31-day, 85,000-customer lake; this ~1 ms).
        cell = (day.astype(np.int64) - first_day) * groups + group
        pairs, index = np.unique(cell * customers + customer, return_inverse=True)  # one per cell and customer
        per_pair = np.bincount(index, weights=orders)
        pair_cell, pair_customer = np.divmod(pairs, customers)
        per_cell += np.bincount(pair_cell, weights=per_pair, minlength=days * groups).astype(np.int64)
        byte = pair_cell * width + (pair_customer >> 3)
        bit = np.left_shift(1, pair_customer & 7).astype(np.uint8)
        _set_bits(active, byte, bit)
        _set_bits(repeat, byte[per_pair >= 2], bit[per_pair >= 2])
    shape = (days, groups, width)
    active, repeat, per_cell = active.reshape(shape), repeat.reshape(shape), per_cell.reshape(days, groups)
    if previous is not None:
        copied = min(width, previous.active.shape[2])  # the kept days' customers are numbered below both
        for day in kept_days:
            old, new = day - previous.first_day, day - first_day
            if 0 <= old < previous.active.shape[0] and 0 <= new < days:  # else: no row the viewer sees that day
                active[new, :, :copied] = previous.active[old, :, :copied]
                repeat[new, :, :copied] = previous.repeat[old, :, :copied]
                per_cell[new] = previous.orders[old]
    return CustomerCells(first_day, np.asarray(countries), np.asarray(segments), active, repeat, per_cell,
                         first_ever.astype(np.int32))


def _set_bits(bits: np.ndarray, byte: np.ndarray, bit: np.ndarray) -> None:
    """Sets ``bit`` of ``bits[byte]`` for each pair; ``byte`` ascending, each (byte, bit) once, so within a byte
    the sum of its distinct bits is their OR."""
    if not len(byte):
        return
    starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
    bits[byte[starts]] |= np.add.reduceat(bit, starts).astype(np.uint8)


def count_customers(cells: CustomerCells, first_day: int | None, last_day: int | None,
                    countries: tuple[str, ...], segments: tuple[str, ...], by: str | None) -> pd.DataFrame:
    """``customer_totals``' rows (``COLUMNS``) for epoch days ``first_day``..``last_day`` (None: open), the
    chosen countries and segments (empty: all), one row overall (``grp`` 'all') or per country or segment;
    groups without active customers have no row, as in SQL."""
    days = cells.active.shape[0]
    lo = 0 if first_day is None else min(max(first_day - cells.first_day, 0), days)
    hi = days if last_day is None else min(max(last_day - cells.first_day + 1, lo), days)
    chosen = np.ones(len(cells.countries), bool)
    if countries:
        chosen &= np.isin(cells.countries, countries)
    if segments:
        chosen &= np.isin(cells.segments, segments)
    if by is None:
        buckets = {"all": chosen}
    else:
        labels = cells.countries if by == "country" else cells.segments
        buckets = {value: chosen & (labels == value) for value in sorted(set(labels[chosen]))}
    newcomers = None
    if first_day is not None:  # customers whose first order ever is in the period
        newcomers = np.packbits(cells.first_ever >= first_day, bitorder="little")
    rows = []
    for value, groups in buckets.items():
        index = np.flatnonzero(groups)
        if len(index) == len(groups):  # every group: a view, no copy
            index = slice(None)
        width = cells.active.shape[2]
        once, twice = _union_and_repeat(cells.active[lo:hi, index].reshape(-1, width),
                                        cells.repeat[lo:hi, index].reshape(-1, width))
        active = _popcount(once)
        if not active:
            continue
        new = active if newcomers is None else _popcount(once & newcomers)
        rows.append((value, active, new, _popcount(twice), int(cells.orders[lo:hi, index].sum())))
    return pd.DataFrame(rows, columns=COLUMNS).astype({c: "int64" for c in COLUMNS[1:]})


def _union_and_repeat(active: np.ndarray, repeat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(customers in any row, customers in two rows or in one row's ``repeat``): a customer is in two rows when
    a row holds them and so did some row before it. In place, a row at a time: cheaper than any vectorised
    form tried (each allocates arrays of the whole selection)."""
    once = np.zeros(active.shape[1], np.uint8)
    twice = np.bitwise_or.reduce(repeat, axis=0) if len(repeat) else once.copy()
    both = np.empty_like(once)
    for row in active:
        np.bitwise_and(once, row, out=both)
        twice |= both
        once |= row
    return once, twice


_BITS_SET = np.array([bin(byte).count("1") for byte in range(256)], np.uint8)  # np.bitwise_count needs numpy 2


def _popcount(bits: np.ndarray) -> int:
    return int(_BITS_SET[bits].sum(dtype=np.int64))
