"""Forecast accuracy measures, pooled over every (row, horizon) point: pure numpy."""

from __future__ import annotations

import numpy as np


def forecast_metrics(actual: np.ndarray, p50: np.ndarray, p10: np.ndarray | None = None,
                     p90: np.ndarray | None = None) -> dict[str, float | None]:
    """MAE, RMSE, MSE, R², sMAPE (percent; a point where actual and forecast are both 0 counts as 0) and the
    share of actuals inside [p10, p90] (None for point forecasts)."""
    actual, p50 = np.ravel(actual), np.ravel(p50)
    error = actual - p50
    mse = float(np.mean(error ** 2))
    spread = float(np.sum((actual - actual.mean()) ** 2))
    denominator = np.abs(actual) + np.abs(p50)
    smape = np.divide(2 * np.abs(error), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    coverage = None
    if p10 is not None and p90 is not None:
        coverage = float(np.mean((actual >= np.ravel(p10)) & (actual <= np.ravel(p90))))
    return {
        "mae": float(np.mean(np.abs(error))), "rmse": mse ** 0.5, "mse": mse,
        "r2": 1 - float(np.sum(error ** 2)) / spread if spread > 0 else None,
        "smape": 100 * float(np.mean(smape)), "coverage_p10_p90": coverage,
    }
