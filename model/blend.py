"""The served forecast as a blend of the Keras network and the gradient-boosted trees: per measure and horizon, a
weighted mean of the two members' scaled quantiles, then the p10-p50 and p50-p90 distances scaled so the outer quantiles
are calibrated. The weights and scales are chosen on the validation split (``fit_blend``) and stored in the
version's ``spec.json``; ``model.registry.Forecaster`` applies them (``combine``) wherever the model is scored.

Pure numpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from model.features import HORIZON_HOURS, MEASURES
from model.metrics import pinball

WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)  # the network's share, in steps of 0.05
# The network reads the last hours closely and leads at short horizons, the trees catch up further out; one
# weight per 6 hours follows that without fitting the noise of single hours.
WEIGHT_BLOCK_HOURS = 6
SPREAD_GRID = np.round(np.arange(0.5, 2.001, 0.02), 2)  # factors on the p10-p50 and p50-p90 distances


@dataclass(frozen=True)
class Blend:
    """Per measure (``MEASURES`` order): the network's weight at each horizon 1..24 (the trees get the rest; a
    single number stands for every horizon, as versions trained before per-horizon weights store it), and the
    factors on the blended p50-p10 (``low_spread``) and p90-p50 (``high_spread``) distances."""

    network_weight: tuple[tuple[float, ...], ...]
    low_spread: tuple[float, ...]
    high_spread: tuple[float, ...]

    def __post_init__(self) -> None:
        if any(len(values) != len(MEASURES) for values in (self.network_weight, self.low_spread,
                                                           self.high_spread)):
            raise ValueError(f"a blend needs one value per measure ({', '.join(MEASURES)})")
        weights = tuple(tuple(float(w) for w in np.broadcast_to(np.asarray(by_horizon, float), HORIZON_HOURS))
                        for by_horizon in self.network_weight)
        object.__setattr__(self, "network_weight", weights)

    def to_json(self) -> dict[str, list]:
        return {name: [list(v) if isinstance(v, tuple) else v for v in values]
                for name, values in asdict(self).items()}

    @classmethod
    def from_json(cls, payload: dict) -> Blend:
        try:
            return cls(tuple(payload["network_weight"]), *(tuple(float(v) for v in payload[name])
                                                           for name in ("low_spread", "high_spread")))
        except ValueError as error:  # one weight per horizon or one for all, nothing else
            raise ValueError(f"a blend needs one value per measure ({', '.join(MEASURES)}) and one network "
                             f"weight or {HORIZON_HOURS} per measure: {error}") from None


def combine(network: np.ndarray, trees: np.ndarray, blend: Blend) -> np.ndarray:
    """The members' scaled quantiles (rows, measures, horizons, 3) -> the blend's, p10 <= p50 <= p90 when
    each member's are (weights in [0, 1], spreads >= 0)."""
    shape = (1, len(MEASURES), 1)
    weight = np.reshape(blend.network_weight, (1, len(MEASURES), HORIZON_HOURS))
    mixed = weight[..., None] * network + (1.0 - weight[..., None]) * trees
    median = mixed[..., 1]
    low = median - np.reshape(blend.low_spread, shape) * (median - mixed[..., 0])
    high = median + np.reshape(blend.high_spread, shape) * (mixed[..., 2] - median)
    return np.stack([low, median, high], axis=-1)


def fit_blend(network: np.ndarray, trees: np.ndarray, targets: np.ndarray, scales: np.ndarray) -> Blend:
    """Choose the blend on one split (training passes the validation split): for each measure and block of
    ``WEIGHT_BLOCK_HOURS`` horizons, the network weight with the lowest MAE of the blended p50, then the spreads
    with the lowest pinball loss of p10 and of p90, all in currency and units. ``network``/``trees``: scaled
    quantiles (rows, measures, horizons, 3); ``targets``: raw values (rows, measures, horizons); ``scales``:
    (rows, measures)."""
    weights, lows, highs = [], [], []
    for m in range(len(MEASURES)):
        actual, scale = targets[:, m], scales[:, m, None, None]

        def mixed(weight: np.ndarray | float, m: int = m, scale: np.ndarray = scale) -> np.ndarray:
            weight = np.reshape(weight, (1, -1, 1))
            return (weight * network[:, m] + (1.0 - weight) * trees[:, m]) * scale

        def block_mae(weight: float, block: slice, actual: np.ndarray = actual) -> float:
            return float(np.mean(np.abs(actual[:, block] - np.maximum(mixed(weight)[:, block, 1], 0))))

        weight = np.concatenate([
            np.full(WEIGHT_BLOCK_HOURS, min(WEIGHT_GRID, key=lambda w, b=block: block_mae(w, b)))
            for block in (slice(h, h + WEIGHT_BLOCK_HOURS) for h in range(0, HORIZON_HOURS, WEIGHT_BLOCK_HOURS))])
        chosen = mixed(weight)
        median, below, above = chosen[..., 1], chosen[..., 1] - chosen[..., 0], chosen[..., 2] - chosen[..., 1]
        weights.append(tuple(float(w) for w in weight))
        lows.append(float(min(SPREAD_GRID, key=lambda s: pinball(actual, np.maximum(median - s * below, 0), 0.1))))
        highs.append(float(min(SPREAD_GRID, key=lambda s: pinball(actual, np.maximum(median + s * above, 0), 0.9))))
    return Blend(tuple(weights), tuple(lows), tuple(highs))
