"""Figure builders as plain functions (no lake, no browser)."""

from __future__ import annotations

import pandas as pd

from dashboard import figures


def test_trend_by_figure_shows_utc_periods_as_local_wall_clock_text() -> None:
    frame = pd.DataFrame({"period": pd.to_datetime(["2026-07-01 00:00", "2026-07-01 01:00", "2026-07-01 00:00"]),
                          "country": ["USA", "USA", "France"], "sales": [10.0, 20.0, 5.5]})
    figure = figures.trend_by_figure(frame, "country", "trend", "rev", "America/New_York")
    lines = {trace["customdata"][0]: trace for trace in figure["data"]}
    # New York is UTC-4 in July; the text is what Plotly's encoder writes for a naive Timestamp
    assert lines["USA"]["x"] == ["2026-06-30T20:00:00", "2026-06-30T21:00:00"]
    assert lines["USA"]["y"] == [10.0, 20.0]
    assert lines["France"]["x"] == ["2026-06-30T20:00:00"] and lines["France"]["y"] == [5.5]


def test_trend_by_figure_draws_partial_periods_with_open_markers() -> None:
    frame = pd.DataFrame({"period": pd.to_datetime(["2026-11-01", "2026-12-01"]), "country": ["USA", "USA"],
                          "sales": [900.0, 200.0], "partial": [False, True]})
    figure = figures.trend_by_figure(frame, "country", "trend", "rev", "UTC")
    (line,) = figure["data"]
    assert line["marker"]["symbol"] == ["circle", "circle-open"]
    assert line["text"] == ["", " (partial period)"]
    assert "partial periods" in figure["layout"]["title"]["text"]


def test_iso_text_equals_isoformat_of_each_timestamp() -> None:
    times = pd.Series(pd.to_datetime(["2026-01-31 23:59:00", "2026-02-01 00:00:00"]), index=[7, 3])
    text = figures.iso_text(times)
    assert text.to_dict() == {7: "2026-01-31T23:59:00", 3: "2026-02-01T00:00:00"}
