"""The served forecast as a blend of the Keras network and the gradient-boosted trees: per measure, a weighted
mean of the two members' scaled quantiles, then the p10-p50 and p50-p90 distances scaled so the outer quantiles
are calibrated. The weights and scales are chosen on the validation split (``fit_blend``) and stored in the
version's ``spec.json``; ``model.registry.Forecaster`` applies them (``combine``) wherever the model is scored.

Pure numpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from model.features import MEASURES
from model.metrics import pinball

WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)  # the network's share, in steps of 0.05
SPREAD_GRID = np.round(np.arange(0.5, 2.001, 0.02), 2)  # factors on the p10-p50 and p50-p90 distances


@dataclass(frozen=True)
class Blend:
    """Per measure (``MEASURES`` order): the network's weight (the trees get the rest), and the factors on the
    blended p50-p10 (``low_spread``) and p90-p50 (``high_spread``) distances."""

    network_weight: tuple[float, ...]
    low_spread: tuple[float, ...]
    high_spread: tuple[float, ...]

    def to_json(self) -> dict[str, list[float]]:
        return {name: list(values) for name, values in asdict(self).items()}

    @classmethod
    def from_json(cls, payload: dict) -> Blend:
        blend = cls(*(tuple(float(v) for v in payload[name]) for name in
                      ("network_weight", "low_spread", "high_spread")))
        if any(len(values) != len(MEASURES) for values in (blend.network_weight, blend.low_spread,
                                                          blend.high_spread)):
            raise ValueError(f"a blend needs one value per measure ({', '.join(MEASURES)})")
        return blend


def combine(network: np.ndarray, trees: np.ndarray, blend: Blend) -> np.ndarray:
    """The members' scaled quantiles (rows, measures, horizons, 3) -> the blend's, p10 <= p50 <= p90 when
    each member's are (weights in [0, 1], spreads >= 0)."""
    shape = (1, len(MEASURES), 1)
    weight = np.reshape(blend.network_weight, shape)
    mixed = weight[..., None] * network + (1.0 - weight[..., None]) * trees
    median = mixed[..., 1]
    low = median - np.reshape(blend.low_spread, shape) * (median - mixed[..., 0])
    high = median + np.reshape(blend.high_spread, shape) * (mixed[..., 2] - median)
    return np.stack([low, median, high], axis=-1)


def fit_blend(network: np.ndarray, trees: np.ndarray, targets: np.ndarray, scales: np.ndarray) -> Blend:
    """Choose the blend on one split (training passes the validation split): for each measure, the network
    weight with the lowest MAE of the blended p50, then the spreads with the lowest pinball loss of p10 and of
    p90, all in currency and units. ``network``/``trees``: scaled quantiles (rows, measures, horizons, 3);
    ``targets``: raw values (rows, measures, horizons); ``scales``: (rows, measures)."""
    weights, lows, highs = [], [], []
    for m in range(len(MEASURES)):
        actual, scale = targets[:, m], scales[:, m, None, None]

        def mixed(weight: float, m: int = m, scale: np.ndarray = scale) -> np.ndarray:
            return (weight * network[:, m] + (1.0 - weight) * trees[:, m]) * scale

        weight = min(WEIGHT_GRID, key=lambda w: float(np.mean(np.abs(actual - np.maximum(mixed(w)[..., 1], 0)))))
        chosen = mixed(weight)
        median, below, above = chosen[..., 1], chosen[..., 1] - chosen[..., 0], chosen[..., 2] - chosen[..., 1]
        weights.append(float(weight))
        lows.append(float(min(SPREAD_GRID, key=lambda s: pinball(actual, np.maximum(median - s * below, 0), 0.1))))
        highs.append(float(min(SPREAD_GRID, key=lambda s: pinball(actual, np.maximum(median + s * above, 0), 0.9))))
    return Blend(tuple(weights), tuple(lows), tuple(highs))
