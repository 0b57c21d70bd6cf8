"""The networks of the search as one weighted ensemble: weights chosen on validation, one Keras model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.features import FEATURE_COLUMNS, HORIZON_HOURS
from model.train import ENSEMBLE_STEPS, Candidate, Dataset, Trial, ensemble_weights, search_space
from salespulse.settings import ModelSettings

ROWS = 300


def _trial(name: str, scaled: np.ndarray) -> Trial:
    return Trial(Candidate("mlp", len(name)), 1, 0.0, 0.0, 0.0, None, scaled)


def _validation(rng: np.random.Generator) -> tuple[Dataset, np.ndarray]:
    truth = rng.uniform(0.5, 2.0, (ROWS, 2, HORIZON_HOURS))
    scales = rng.uniform(5.0, 50.0, (ROWS, 2))
    data = Dataset(pd.DataFrame(index=range(ROWS)), np.zeros((ROWS, 1), np.float32), truth * scales[:, :, None],
                   truth * scales[:, :, None], scales)
    return data, truth


def _member(rng: np.random.Generator, truth: np.ndarray, noise: float) -> np.ndarray:
    median = truth + rng.normal(0.0, noise, truth.shape)
    return np.stack([median - 0.1, median, median + 0.1], axis=-1)


def test_ensemble_weights_share_out_equal_members_and_drop_a_useless_one() -> None:
    rng = np.random.default_rng(7)
    validation, truth = _validation(rng)
    a, b = _member(rng, truth, 0.2), _member(rng, truth, 0.2)
    useless = _member(rng, truth, 3.0)
    weights = ensemble_weights([_trial("a", a), _trial("bb", b), _trial("ccc", useless)], validation)
    # Two members as good as each other with independent errors: their mean beats either, so both get about
    # half; a member far worse than both adds nothing.
    assert sum(weights) == pytest.approx(1.0) and weights[2] == 0.0, weights
    assert 0.3 <= weights[0] <= 0.7 and 0.3 <= weights[1] <= 0.7, weights
    # One member alone, or one much sharper than the other: all weight on it.
    assert ensemble_weights([_trial("a", a)], validation) == [1.0]
    sharp = _member(rng, truth, 0.01)
    assert ensemble_weights([_trial("a", a), _trial("bb", sharp)], validation)[1] >= 1 - 2 / ENSEMBLE_STEPS


def test_build_ensemble_is_the_weighted_sum_of_its_members_and_survives_saving(tmp_path) -> None:
    import keras

    from model.networks import build_conv, build_ensemble, build_mlp

    keras.utils.set_random_seed(1)
    mlp, conv = build_mlp(8, 0.0), build_conv(4, 8, 0.0)
    # The same architecture trained twice: two members that must not clash by name.
    settings = ModelSettings(mlp_hidden_units=[8], conv_filters=[4], conv_hidden_units=8, dropout=0.0)
    again = Candidate("mlp", 8, 1).build(settings)
    x = np.random.default_rng(2).normal(size=(50, len(FEATURE_COLUMNS))).astype(np.float32)
    expected = (0.25 * keras.ops.convert_to_numpy(mlp(x)) + 0.5 * keras.ops.convert_to_numpy(conv(x))
                + 0.25 * keras.ops.convert_to_numpy(again(x)))
    ensemble = build_ensemble([mlp, conv, again], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ensemble(x)), expected, rtol=1e-5, atol=1e-6)
    ensemble.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, rtol=1e-5, atol=1e-6)
    assert build_ensemble([mlp], [1.0]) is mlp


def test_search_space_trains_every_architecture_once_before_any_again() -> None:
    settings = ModelSettings(mlp_hidden_units=[256], conv_filters=[16, 32], trainings_per_candidate=2)
    assert [c.name for c in search_space(settings)] == ["mlp-256", "conv-16", "conv-32", "mlp-256#2", "conv-16#2",
                                                        "conv-32#2"]
