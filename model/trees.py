"""Gradient-boosted quantile trees on the forecast features: a baseline of their own and a member of the served
blend (``model.blend``), so training fits them and the registry loads them beside the network.

Pure computation apart from scikit-learn's thread pool: no storage access.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.features import HORIZON_HOURS, MEASURES, TREE_CATEGORICAL, TREE_FEATURE_COLUMNS, tree_features
from salespulse.settings import ModelSettings

QUANTILES = (0.1, 0.5, 0.9)


def _weighted_subset(rng: np.random.Generator, row_weights: np.ndarray, size: int) -> np.ndarray:
    """Sorted positions of ``size`` (origin, horizon) rows drawn without replacement with probability
    proportional to their row's weight."""
    weights = np.repeat(row_weights, HORIZON_HOURS)
    return np.sort(rng.choice(len(weights), min(len(weights), size), replace=False, p=weights / weights.sum()))


@dataclass(frozen=True)
class GradientBoostingBaseline:
    """scikit-learn ``HistGradientBoostingRegressor(loss="quantile")`` at p10/p50/p90 per measure, on the
    model's features reshaped to one row per (series, origin, horizon) (``tree_features``), fitted to the same
    scaled targets: gradient-boosted trees on lag features, the method that won both tracks of the M5 retail
    competition. The tree size is chosen on validation sales MAE (p50); every fit stops boosting once its
    quantile loss on (a sample of) the validation split stops improving."""

    max_leaf_nodes: int
    regressions: dict[tuple[int, float], Any]  # (measure index, quantile) -> fitted regressor
    threads: int

    @staticmethod
    def _regressor(settings: ModelSettings, quantile: float, max_leaf_nodes: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor

        categorical = [c in TREE_CATEGORICAL for c in TREE_FEATURE_COLUMNS]
        return HistGradientBoostingRegressor(
            loss="quantile", quantile=quantile, learning_rate=settings.tree_learning_rate,
            max_iter=settings.tree_max_iter, max_leaf_nodes=max_leaf_nodes, min_samples_leaf=50,
            categorical_features=categorical, early_stopping=True, n_iter_no_change=10, scoring="loss",
            random_state=settings.seed)

    @classmethod
    def fit(cls, settings: ModelSettings, train: Any, validation: Any) -> GradientBoostingBaseline:
        """``train`` and ``validation``: ``model.train.Dataset`` splits."""
        import sklearn.ensemble  # noqa: F401  (loads sklearn's OpenMP runtime, so the thread limit below reaches it)
        from threadpoolctl import threadpool_limits

        # Every (origin, horizon) of the training split is ~1M rows. A subset drawn with probability
        # proportional to the row weights weighs the loss as the weights do (errors count in currency), and
        # keeps the fit short: sklearn's binning with sample_weight is ~15x slower than without. The
        # validation split is sampled the same way for early stopping.
        rng = np.random.default_rng(settings.seed)
        keep = _weighted_subset(rng, train.weights, settings.tree_max_rows)
        stop_on = _weighted_subset(rng, validation.weights, settings.tree_max_rows // 4)
        x_train, x_stop = tree_features(train.features)[keep], tree_features(validation.features)[stop_on]
        x_val = tree_features(validation.features)
        y_train, y_stop = train.scaled_targets, validation.scaled_targets

        def fit_one(measure: int, quantile: float, leaves: int) -> Any:
            return cls._regressor(settings, quantile, leaves).fit(
                x_train, y_train[:, measure].reshape(-1)[keep],
                X_val=x_stop, y_val=y_stop[:, measure].reshape(-1)[stop_on])

        def validation_sales_mae(median: Any) -> float:
            scaled = median.predict(x_val).reshape(len(validation.targets), HORIZON_HOURS)
            return float(np.mean(np.abs(validation.targets[:, 0] - np.maximum(scaled * validation.scales[:, :1], 0))))

        # OpenMP threads spin while they wait for each other: on a busy machine more threads than the
        # configured count make the fit many times slower.
        with threadpool_limits(settings.threads):
            medians = {leaves: fit_one(0, 0.5, leaves) for leaves in settings.tree_leaf_nodes}
            leaves = min(medians, key=lambda n: validation_sales_mae(medians[n]))
            median = medians[leaves]
            regressions = {(m, q): median if (m, q) == (0, 0.5) else fit_one(m, q, leaves)
                           for m in range(len(MEASURES)) for q in QUANTILES}
        return cls(leaves, regressions, settings.threads)

    @property
    def rounds(self) -> dict[str, int]:
        """Boosting rounds each fit kept (early stopping), by ``"<measure>_p<quantile>"``."""
        return {f"{MEASURES[m]}_p{round(100 * q)}": int(r.n_iter_) for (m, q), r in self.regressions.items()}

    def predict_scaled(self, features: np.ndarray) -> np.ndarray:
        """Raw feature rows (``FEATURE_COLUMNS`` order) -> scaled quantiles (rows, measures, horizons, 3),
        the three separately fitted quantiles sorted per point so they never cross."""
        from threadpoolctl import threadpool_limits

        x = tree_features(features)
        with threadpool_limits(self.threads):
            scaled = np.stack([np.stack([self.regressions[(m, q)].predict(x).reshape(len(features), HORIZON_HOURS)
                                         for m in range(len(MEASURES))], axis=1) for q in QUANTILES], axis=-1)
        return np.sort(scaled, axis=-1)
