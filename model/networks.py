"""The Keras architectures, their custom layers and the pinball loss.

Every network maps the standardized feature vector to (2 measures, 24 horizons, 3 quantiles) of scaled
values. The custom layers are registered so that ``keras.saving.load_model`` rebuilds them once this module
is imported (no Lambda layers, which Keras 3 refuses to load in safe mode).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from model.features import FEATURE_COLUMNS, HORIZON_HOURS, MEASURES, SEQUENCE_COLUMNS, WEEK_HOURS

QUANTILES = (0.1, 0.5, 0.9)
OUTPUT_SHAPE = (len(MEASURES), HORIZON_HOURS, len(QUANTILES))


@keras.saving.register_keras_serializable(package="salespulse")
class ColumnSlice(layers.Layer):
    """Columns ``start:stop`` of a 2-D input (the lag block that the convolution reads)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, inputs):
        return inputs[:, self.start:self.stop]

    def get_config(self) -> dict:
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="salespulse")
class MonotoneQuantiles(layers.Layer):
    """Raw outputs (..., 3) -> p10 <= p50 <= p90: the middle output is p50, the outer two become non-negative
    offsets below and above it, so quantiles never cross."""

    def call(self, inputs):
        median = inputs[..., 1]
        low = median - ops.softplus(inputs[..., 0])
        high = median + ops.softplus(inputs[..., 2])
        return ops.stack([low, median, high], axis=-1)


@keras.saving.register_keras_serializable(package="salespulse")
def pinball_loss(y_true, y_pred):
    """Mean quantile (pinball) loss over measures, horizons and the three quantiles, per sample."""
    quantiles = ops.convert_to_tensor(QUANTILES, dtype=y_pred.dtype)
    error = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred
    return ops.mean(ops.maximum(quantiles * error, (quantiles - 1.0) * error), axis=(-3, -2, -1))


def _head(hidden) -> keras.KerasTensor:
    flat = layers.Dense(OUTPUT_SHAPE[0] * OUTPUT_SHAPE[1] * OUTPUT_SHAPE[2], name="quantile_outputs")(hidden)
    return MonotoneQuantiles(name="quantiles")(layers.Reshape(OUTPUT_SHAPE)(flat))


def build_mlp(hidden_units: int, dropout: float, name: str | None = None) -> keras.Model:
    """Two dense layers over the whole feature vector."""
    inputs = keras.Input((len(FEATURE_COLUMNS),), name="features")
    hidden = layers.Dense(hidden_units, activation="relu")(inputs)
    hidden = layers.Dropout(dropout)(hidden)
    hidden = layers.Dense(hidden_units, activation="relu")(hidden)
    return keras.Model(inputs, _head(hidden), name=name or f"mlp_{hidden_units}")


def build_conv(filters: int, hidden_units: int, dropout: float, name: str | None = None) -> keras.Model:
    """A small 1-D convolution over the last week (both measures as channels, hour by hour), joined with
    the whole feature vector before a dense layer: the convolution sees local shapes (ramps, promotion
    starts, stock-outs), the dense layer calendar and identity."""
    inputs = keras.Input((len(FEATURE_COLUMNS),), name="features")
    week = ColumnSlice(0, len(SEQUENCE_COLUMNS), name="last_week")(inputs)
    # (2 * WEEK) -> (2, WEEK) -> (WEEK, 2): time steps with one channel per measure.
    sequence = layers.Permute((2, 1))(layers.Reshape((len(MEASURES), WEEK_HOURS))(week))
    conv = layers.Conv1D(filters, 5, padding="same", activation="relu")(sequence)
    conv = layers.AveragePooling1D(4)(conv)
    conv = layers.Conv1D(filters, 5, padding="same", activation="relu")(conv)
    conv = layers.AveragePooling1D(2)(conv)
    joined = layers.Concatenate()([layers.Flatten()(conv), inputs])
    hidden = layers.Dense(hidden_units, activation="relu")(joined)
    hidden = layers.Dropout(dropout)(hidden)
    return keras.Model(inputs, _head(hidden), name=name or f"conv_{filters}")


def build_ensemble(members: list[keras.Model], weights: list[float]) -> keras.Model:
    """The weighted sum of the members' outputs as one model, saved, loaded and scored like a single network.
    Weights that sum to 1 keep the quantiles ordered (a weighted mean of ordered triples is ordered)."""
    if len(members) == 1:
        return members[0]
    inputs = keras.Input((len(FEATURE_COLUMNS),), name="features")
    parts = [layers.Rescaling(weight, name=f"weight_{member.name}")(member(inputs))
             for member, weight in zip(members, weights, strict=True)]
    return keras.Model(inputs, layers.Add(name="ensemble_sum")(parts), name="ensemble")
