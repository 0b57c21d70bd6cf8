"""The served blend of network and trees: its weights favour the member that is better on the split it is
chosen on, its spreads calibrate the outer quantiles, and its quantiles never cross."""

from __future__ import annotations

import numpy as np
import pytest

from model.blend import Blend, combine, fit_blend

ROWS, HORIZONS = 400, 24
NORMAL_P90 = 1.2815515655446004  # the standard normal's 0.9 quantile


def _members(rng: np.random.Generator, truth: np.ndarray, noise: float, half_width: float) -> np.ndarray:
    """Scaled quantiles (rows, 2 measures, horizons, 3) around ``truth`` with a p50 error of sd ``noise``."""
    median = truth + rng.normal(0.0, noise, truth.shape)
    return np.stack([median - half_width, median, median + half_width], axis=-1)


def test_fit_blend_weights_the_member_better_on_the_split_it_is_given() -> None:
    rng = np.random.default_rng(3)
    scales = rng.uniform(5.0, 50.0, (ROWS, 2))
    truth = rng.uniform(0.5, 2.0, (ROWS, 2, HORIZONS))
    targets = truth * scales[:, :, None]
    sharp, blurred = _members(rng, truth, 0.02, 0.1), _members(rng, truth, 0.3, 0.1)
    # Network sharp on both measures; then the trees sharp on units only.
    assert min(fit_blend(sharp, blurred, targets, scales).network_weight[0]) >= 0.9
    mixed_network = np.concatenate([sharp[:, :1], blurred[:, 1:]], axis=1)
    mixed_trees = np.concatenate([blurred[:, :1], sharp[:, 1:]], axis=1)
    weights = fit_blend(mixed_network, mixed_trees, targets, scales).network_weight
    assert min(weights[0]) >= 0.9 and max(weights[1]) <= 0.1, weights
    # Two members as good as each other, with independent errors: the mean of both beats either.
    other = _members(rng, truth, 0.3, 0.1)
    assert all(0.3 <= w <= 0.7 for w in fit_blend(blurred, other, targets, scales).network_weight[0])


def test_fit_blend_weights_each_block_of_horizons_on_its_own() -> None:
    # The network sharp at the first 12 horizons and blurred after them, the trees the other way round: one
    # weight for all horizons would have to settle for a middle value and lose at every horizon.
    rng = np.random.default_rng(5)
    scales = rng.uniform(5.0, 50.0, (ROWS, 2))
    truth = rng.uniform(0.5, 2.0, (ROWS, 2, HORIZONS))
    sharp, blurred = _members(rng, truth, 0.02, 0.1), _members(rng, truth, 0.3, 0.1)
    early = np.arange(HORIZONS) < 12
    network = np.where(early[None, None, :, None], sharp, blurred)
    trees = np.where(early[None, None, :, None], blurred, sharp)
    blend = fit_blend(network, trees, truth * scales[:, :, None], scales)
    for weights in blend.network_weight:
        assert len(weights) == HORIZONS
        assert min(weights[:12]) >= 0.9 and max(weights[12:]) <= 0.1, weights
    # combine applies each horizon's own weight: the blend follows the sharp member everywhere (a blurred
    # member's p50 errs by 0.3 x 0.8 = 0.24 on average).
    assert np.abs(combine(network, trees, blend)[..., 1] - truth).mean() < 0.05


def test_fit_blend_spreads_calibrate_intervals_that_are_too_narrow() -> None:
    rng = np.random.default_rng(4)
    scales = np.ones((ROWS * 5, 2))
    # Actuals: a known median plus normal noise of sd 1; both members know the median, and put p10/p90 at
    # +-0.8 from it, where the right distance is NORMAL_P90: the spreads must come out near 1.6.
    median = np.full((ROWS * 5, 2, HORIZONS), 10.0)
    targets = median + rng.normal(0.0, 1.0, median.shape)
    member = np.stack([median - 0.8, median, median + 0.8], axis=-1)
    blend = fit_blend(member, member, targets, scales)
    for spread in (*blend.low_spread, *blend.high_spread):
        assert spread == pytest.approx(NORMAL_P90 / 0.8, abs=0.06)
    blended = combine(member, member, blend)
    inside = (targets >= blended[..., 0]) & (targets <= blended[..., 2])
    assert 0.77 <= inside.mean() <= 0.83


def test_combine_mixes_members_by_measure_and_keeps_quantiles_ordered() -> None:
    network = np.array([[[[1.0, 2.0, 4.0]], [[10.0, 20.0, 40.0]]]])  # 1 row, 2 measures, 1 horizon
    trees = np.array([[[[3.0, 4.0, 5.0]], [[30.0, 40.0, 50.0]]]])
    out = combine(network, trees, Blend((0.25, 1.0), (1.0, 2.0), (2.0, 0.5)))
    # sales: 0.25 x network + 0.75 x trees = (2.5, 3.5, 4.75), spreads 1 below and 2 above the median
    np.testing.assert_allclose(out[0, 0, 0], [2.5, 3.5, 3.5 + 2 * 1.25])
    # units: the network alone, p10 twice as far below, p90 half as far above
    np.testing.assert_allclose(out[0, 1, 0], [0.0, 20.0, 30.0])
    assert (np.diff(out, axis=-1) >= 0).all()


def test_blend_from_json_needs_one_value_per_measure() -> None:
    by_horizon = tuple(np.linspace(0.9, 0.5, HORIZONS).round(2))
    blend = Blend((by_horizon, 0.4), (1.1, 1.0), (0.9, 1.2))
    assert blend.network_weight[0] == by_horizon and blend.network_weight[1] == (0.4,) * HORIZONS
    assert Blend.from_json(blend.to_json()) == blend
    # A version saved before per-horizon weights holds one weight per measure: it stands for every horizon.
    old = Blend.from_json({"network_weight": [0.5, 0.4], "low_spread": [1.1, 1.0], "high_spread": [0.9, 1.2]})
    assert old == Blend((0.5, 0.4), (1.1, 1.0), (0.9, 1.2)) and old.network_weight[0] == (0.5,) * HORIZONS
    with pytest.raises(ValueError, match="one value per measure"):
        Blend.from_json({"network_weight": [0.5], "low_spread": [1.0, 1.0], "high_spread": [1.0, 1.0]})
    with pytest.raises(ValueError, match=f"{HORIZONS} per measure"):
        Blend.from_json({"network_weight": [[0.5] * 5, 0.4], "low_spread": [1.0, 1.0], "high_spread": [1.0, 1.0]})
