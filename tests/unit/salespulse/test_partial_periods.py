"""Which day, week or month of a chart shows only part of its period (pure, no lake)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from salespulse.kpi_report import SalesFilter, partial_periods
from salespulse.kpis import Coverage

# Data from 1 October 00:00 to the hour of 7 December 05:00 (a Monday), published at 06:00.
COVERAGE = Coverage(first_hour=datetime(2026, 10, 1), last_hour=datetime(2026, 12, 7, 5),
                    as_of=datetime(2026, 12, 7, 6))


def test_partial_periods_the_month_to_date_is_partial_whole_months_are_not() -> None:
    months = pd.Series(pd.to_datetime(["2026-10-01", "2026-11-01", "2026-12-01"]))
    assert partial_periods(months, "month", SalesFilter(), COVERAGE) == [False, False, True]


def test_partial_periods_a_month_the_filter_cuts_or_the_data_starts_inside_is_partial() -> None:
    months = pd.Series(pd.to_datetime(["2026-10-01", "2026-11-01"]))
    cut = SalesFilter(start=datetime(2026, 10, 1, tzinfo=timezone.utc), end=datetime(2026, 11, 15, tzinfo=timezone.utc))
    assert partial_periods(months, "month", cut, COVERAGE) == [False, True]
    later = Coverage(first_hour=datetime(2026, 10, 20), last_hour=COVERAGE.last_hour, as_of=COVERAGE.as_of)
    assert partial_periods(months, "month", SalesFilter(), later) == [True, False]


def test_partial_periods_weeks_and_days_and_finer_grains() -> None:
    weeks = pd.Series(pd.to_datetime(["2026-11-30", "2026-12-07"]))  # Mondays: a whole week, then its first hours
    assert partial_periods(weeks, "week", SalesFilter(), COVERAGE) == [False, True]
    days = pd.Series(pd.to_datetime(["2026-12-06", "2026-12-07"]))
    assert partial_periods(days, "day", SalesFilter(), COVERAGE) == [False, True]
    hours = pd.Series(pd.to_datetime(["2026-12-07 05:00"]))
    assert partial_periods(hours, "hour", SalesFilter(), COVERAGE) == [False]
