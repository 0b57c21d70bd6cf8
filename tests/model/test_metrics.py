"""Forecast measures on hand-computed values: pinball loss, MASE and scaled pinball over series."""

from __future__ import annotations

import numpy as np
import pytest

from model.metrics import best_baseline, forecast_metrics, pinball, scaled_metrics


def test_pinball_charges_under_and_over_forecasts_by_the_quantile() -> None:
    actual = np.array([10.0, 10.0])
    # p90 below the actual by 4 costs 0.9 * 4; above it by 2 costs 0.1 * 2.
    assert pinball(actual, np.array([6.0, 12.0]), 0.9) == pytest.approx((3.6 + 0.2) / 2)
    assert pinball(actual, np.array([6.0, 12.0]), 0.1) == pytest.approx((0.4 + 1.8) / 2)
    got = forecast_metrics(actual, np.array([9.0, 13.0]), np.array([6.0, 8.0]), np.array([12.0, 12.0]))
    assert got["pinball_p50"] == pytest.approx(0.5 * (1 + 3) / 2)
    assert got["pinball_p10"] == pytest.approx((0.1 * 4 + 0.1 * 2) / 2)
    assert got["pinball_p90"] == pytest.approx((0.1 * 2 + 0.1 * 2) / 2)
    point = forecast_metrics(actual, np.array([9.0, 13.0]))
    assert point["pinball_p10"] is None and point["pinball_p90"] is None and point["pinball_p50"] == pytest.approx(1.0)


def test_scaled_metrics_weigh_every_series_the_same() -> None:
    big = {"mae": 100.0, "pinball_p10": 40.0, "pinball_p50": 50.0, "pinball_p90": 30.0}
    small = {"mae": 2.0, "pinball_p10": 0.5, "pinball_p50": 1.0, "pinball_p90": None}
    never_moved = {"mae": 3.0, "pinball_p10": 1.0, "pinball_p50": 1.5, "pinball_p90": 1.0}
    got = scaled_metrics([big, small, never_moved], [200.0, 1.0, 0.0])
    assert got["mase"] == pytest.approx((100 / 200 + 2 / 1) / 2)  # the zero-scale series is left out
    assert got["scaled_pinball_p10"] == pytest.approx((40 / 200 + 0.5 / 1) / 2)
    assert got["scaled_pinball_p90"] == pytest.approx(30 / 200)  # only series with a p90
    assert scaled_metrics([never_moved], [0.0]) == {"mase": None, "scaled_pinball_p10": None,
                                                     "scaled_pinball_p50": None, "scaled_pinball_p90": None}


def test_best_baseline_includes_gradient_boosting() -> None:
    block = {m: {"sales": {"mae": mae}} for m, mae in
             (("seasonal_naive", 10.0), ("linear_regression", 8.0), ("gradient_boosting", 7.5), ("oracle", 1.0))}
    assert best_baseline(block) == "gradient_boosting"  # never the oracle
