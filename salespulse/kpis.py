"""The numbers behind KPIs: the one rounding rule for people, exact ratios, and the periods KPIs cover.

KPI definitions (names, formulas, formats) live in ``salespulse.metrics``. Money totals are exact
``decimal.Decimal`` values (the lake stores money as DECIMAL). Text for people uses one rounding rule,
:func:`round_half_up`: the exact value rounded to the shown places, halves away from zero (25,029,830.165 ->
$25,029,830.17). The CLI table, the dashboard's cards, the CSV export (:func:`round_money`) and the notebook all
use it, so they show the same cents. A zero denominator gives ``None`` (scalars and Decimal Series) or NaN (float
Series) rather than an error or a misleading zero (:func:`safe_ratio`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def as_decimal(value: Any) -> Decimal:
    """The exact decimal of a number: a Decimal as it is, an integer exactly, a float by its shortest text (the
    digits it was written with, so 0.165 stays 0.165 instead of its binary neighbour 0.16499999...)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(float(value)))  # float(): numpy floats print as np.float64(...)
    return Decimal(int(value))


def round_half_up(value: Any, places: int) -> Decimal:
    """The one rounding rule for numbers shown to people: the exact value to ``places`` decimals, halves away
    from zero."""
    return as_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def round_money(value: Any) -> Decimal:
    """Money to cents by the rounding rule (what every view shows; the CSV export writes it as a number)."""
    return round_half_up(value, 2)


def safe_ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, or missing where the denominator is zero. Exact when either is a Decimal."""
    if hasattr(denominator, "where"):
        if "O" in (denominator.dtype.kind, getattr(getattr(numerator, "dtype", None), "kind", "")):
            return numerator.combine(denominator, safe_ratio)  # Decimals: element by element, exact
        return numerator / denominator.where(denominator != 0)  # floats: mask zeros to NaN
    if denominator is None or numerator is None or denominator == 0:
        return None
    if isinstance(numerator, Decimal) or isinstance(denominator, Decimal):
        return as_decimal(numerator) / as_decimal(denominator)
    return numerator / denominator


@dataclass(frozen=True)
class Coverage:
    """What the data covers, for items sold per hour: the first and last hour with sales (of the rows the viewer
    may see, whatever the filter) and the data's "now", when the lake was last published. Naive UTC."""

    first_hour: datetime
    last_hour: datetime
    as_of: datetime


def period_hours(start: datetime | None, end: datetime | None, coverage: Coverage) -> float:
    """The hours items sold per hour divides by, for the period [``start``, ``end``) (None: open; naive UTC): its
    calendar hours, so a month of a monthly export (one row per month) counts all of its hours, and every view
    (cards, `salespulse kpis --by month`, any grouping) divides the same period by the same hours. Clipped to the
    data: no hour before its first hour counts, and a period not over at ``coverage.as_of`` (the current, partial
    one, or an open end) ends with the data's last hour, not in hours still to come."""
    begin = coverage.first_hour if start is None else max(start, coverage.first_hour)
    data_end = coverage.last_hour + timedelta(hours=1)
    stop = data_end if end is None or end > coverage.as_of else end
    if end is not None:
        stop = min(stop, end)
    return max((stop - begin).total_seconds() / 3600, 0.0)


@dataclass(frozen=True)
class Comparison:
    """What a period's KPIs are compared with: the part [``start``, ``end``) of the previous period of equal length
    that lines up with the hours the current period holds data for (``label`` names it), or, when the previous
    period holds data for fewer of those hours, no number (``start`` None) and ``label`` says why."""

    start: datetime | None
    end: datetime | None
    label: str


def previous_comparison(start: datetime, end: datetime, coverage: Coverage | None) -> Comparison:
    """The like-for-like comparison of the period [``start``, ``end``) (naive UTC) with the one before it. Each
    period's covered hours are ``period_hours``' (from the data's first hour; a period still running ends with the
    data's last hour). The previous period is cut to the current one's covered hours, at the same offsets, so a
    week to date is compared with the same days of the week before; a previous period whose data starts later
    than the current one's (a lake younger than both periods) gives no number: "+399 %" against 5 days of data
    would mislead."""
    length = end - start
    before = start - length
    if coverage is None:
        return Comparison(None, None, "no previous period data")

    def covered(begin: datetime) -> tuple[timedelta, timedelta]:  # offsets from ``begin`` of the covered hours
        lead = min(max(coverage.first_hour - begin, timedelta(0)), length)
        return lead, lead + timedelta(hours=period_hours(begin, begin + length, coverage))

    (now_from, now_to), (then_from, then_to) = covered(start), covered(before)
    if now_to <= now_from:
        return Comparison(None, None, "no data in this period")
    if then_to <= then_from:
        return Comparison(None, None, "no previous period data")
    if then_from > now_from:
        return Comparison(None, None, f"previous period partly covered ({_span(then_to - then_from, length)})")
    if (now_from, now_to) == (timedelta(0), length):
        return Comparison(before, start, "vs previous period")
    return Comparison(before + now_from, before + now_to,
                      f"vs the same {_span(now_to - now_from, None)} of the previous period")


def _span(part: timedelta, whole: timedelta | None) -> str:
    """``part`` (of ``whole``) in days, or in hours for spans under two days: "5 of 30 days", "6.5 days"."""
    days = (whole or part) >= timedelta(days=2)
    unit, size = ("days", 86_400) if days else ("hours", 3_600)

    def amount(span: timedelta) -> str:
        return f"{round_half_up(span.total_seconds() / size, 1).normalize():f}"
    return f"{amount(part)} of {amount(whole)} {unit}" if whole is not None else f"{amount(part)} {unit}"
