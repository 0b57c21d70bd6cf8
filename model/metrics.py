"""Forecast accuracy measures, pooled over every (row, horizon) point, and their scale-free forms: pure numpy.

Scale-free measures divide a series' errors by that series' own in-sample seasonal-naive MAE (the mean
absolute change from the same hour one week before, over the training split), so a big and a small series
weigh the same when series are averaged (the M5 way): MASE for the point forecast, scaled pinball loss for
each quantile.
"""

from __future__ import annotations

import numpy as np

QUANTILE_NAMES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
BASELINES = ("seasonal_naive", "linear_regression", "gradient_boosting")  # all of them are the bar for promotion


def best_baseline(block: dict, among: tuple[str, ...] = BASELINES) -> str:
    """The baseline (of ``among``) with the lowest sales MAE in a metrics block (method -> measure -> measures)."""
    return min(among, key=lambda b: block[b]["sales"]["mae"])


def pinball(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    """Mean quantile (pinball) loss: under-forecasts cost ``quantile`` per unit, over-forecasts ``1 - quantile``."""
    error = np.ravel(actual) - np.ravel(forecast)
    return float(np.mean(np.maximum(quantile * error, (quantile - 1.0) * error)))


def forecast_metrics(actual: np.ndarray, p50: np.ndarray, p10: np.ndarray | None = None,
                     p90: np.ndarray | None = None) -> dict[str, float | None]:
    """MAE, RMSE, MSE, R², sMAPE (percent; a point where actual and forecast are both 0 counts as 0), the
    share of actuals inside [p10, p90] and the pinball loss of each quantile (None for the outer quantiles
    of a point forecast)."""
    actual, p50 = np.ravel(actual), np.ravel(p50)
    error = actual - p50
    mse = float(np.mean(error ** 2))
    spread = float(np.sum((actual - actual.mean()) ** 2))
    denominator = np.abs(actual) + np.abs(p50)
    smape = np.divide(2 * np.abs(error), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    coverage = None
    if p10 is not None and p90 is not None:
        coverage = float(np.mean((actual >= np.ravel(p10)) & (actual <= np.ravel(p90))))
    quantiles = {"p10": p10, "p50": p50, "p90": p90}
    return {
        "mae": float(np.mean(np.abs(error))), "rmse": mse ** 0.5, "mse": mse,
        "r2": 1 - float(np.sum(error ** 2)) / spread if spread > 0 else None,
        "smape": 100 * float(np.mean(smape)), "coverage_p10_p90": coverage,
        **{f"pinball_{name}": None if quantiles[name] is None else pinball(actual, quantiles[name], q)
           for name, q in QUANTILE_NAMES.items()},
    }


def scaled_metrics(series_metrics: list[dict[str, float | None]], scales: list[float]) -> dict[str, float | None]:
    """Series' ``forecast_metrics`` and their in-sample seasonal-naive MAEs -> the mean over series of MASE
    (MAE / scale) and of each quantile's pinball loss / scale. Series with a zero scale (never changed in
    training) have no scale-free error and are left out; None when no series is left."""
    usable = [(m, s) for m, s in zip(series_metrics, scales, strict=True) if s > 0]

    def mean_of(key: str) -> float | None:
        values = [m[key] / s for m, s in usable if m[key] is not None]
        return float(np.mean(values)) if values else None

    return {"mase": mean_of("mae"),
            **{f"scaled_pinball_{name}": mean_of(f"pinball_{name}") for name in QUANTILE_NAMES}}
