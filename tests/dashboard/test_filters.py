"""The global filters: URL round trips, presets anchored on the newest data, cross-filter clicks."""

from __future__ import annotations

from datetime import date, datetime, timezone

from dashboard.filters import ViewFilters, effective_grain, parse_query, period, to_query, with_clicked

NEWEST = datetime(2026, 9, 21, 14, 0)


def test_filters_url_round_trip_keeps_every_choice() -> None:
    view = ViewFilters("custom", date(2026, 9, 1), date(2026, 9, 7), ("USA", "France"), ("Government",),
                       ("Velo",), ("Low", "None"), "week")
    query = to_query(view, NEWEST)
    assert "start=2026-09-01" in query and "end=2026-09-07" in query and "country=USA,France" in query
    back = parse_query(query)
    assert back.countries == ("USA", "France") and back.products == ("Velo",) and back.grain == "week"
    assert set(back.bands) == {"Low", "None"}  # "None" is a band, not a missing value
    assert (back.preset, back.start, back.end) == ("custom", date(2026, 9, 1), date(2026, 9, 7))


def test_filters_url_drops_unknown_and_malformed_values() -> None:
    view = parse_query("?country=USA,Atlantis,'%3B DROP&grain=fortnight&start=yesterday&range=1y")
    assert view.countries == ("USA",)
    assert view.grain == "day" and view.preset == "30d" and view.start is None


def test_filters_default_period_is_30_days_up_to_the_newest_data() -> None:
    where = period(parse_query(""), NEWEST)
    assert where.start == datetime(2026, 8, 23, tzinfo=timezone.utc)
    assert where.end == datetime(2026, 9, 22, tzinfo=timezone.utc)
    last_hour = period(ViewFilters("last-hour"), NEWEST)
    assert (last_hour.start.hour, last_hour.end.hour) == (14, 15)
    assert where.previous().end == where.start


def test_filters_minute_grain_only_for_short_periods() -> None:
    assert effective_grain(period(ViewFilters("today"), NEWEST), "minute") == ("minute", None)
    grain, note = effective_grain(period(ViewFilters("30d"), NEWEST), "minute")
    assert grain == "hour" and "2 days" in note


def test_filters_click_narrows_then_clears() -> None:
    clicked = with_clicked(ViewFilters(countries=("USA", "France")), "country", "Mexico")
    assert clicked.countries == ("Mexico",)
    assert with_clicked(clicked, "country", "Mexico").countries == ()
    assert with_clicked(clicked, "segment", "Nowhere") == clicked
