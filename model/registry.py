"""The model registry: ``<registry>/<version>/`` holds ``model.keras``, ``spec.json`` (feature columns,
scaling, quantiles, horizon, history hours, training window, the blend), ``metrics.json``, ``card.md`` and, for
a blended model, ``trees.joblib`` (the gradient-boosted trees); ``<registry>/current`` names the promoted
version. This module and ``model.scoring`` are the only model code
that touches storage. A version folder appears whole (written aside, then renamed) and ``current`` is
replaced atomically, so a scorer never reads a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.blend import Blend, combine
from model.features import FEATURE_COLUMNS, HORIZON_HOURS, ID_COLUMNS, MEASURES, SHORT

CURRENT = "current"
MODEL_FILE, SPEC_FILE, METRICS_FILE, CARD_FILE = "model.keras", "spec.json", "metrics.json", "card.md"
TREES_FILE = "trees.joblib"
# Rows per model call: bounded memory, and few calls, since each call has a fixed cost that small calls would repeat.
PREDICT_CHUNK_ROWS = 4096


class ModelError(Exception):
    """A missing or unusable model, with a one-line message saying what to do."""


def version_name(moment: datetime) -> str:
    """Version names sort by training time: ``20261123T221500Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def current_version(registry: str | Path) -> str | None:
    """The promoted version, or None when nothing was promoted yet."""
    try:
        name = (Path(registry) / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


@dataclass(frozen=True)
class Forecaster:
    """A loaded model with its feature spec: feature rows in, quantile forecasts out. With ``trees`` and
    ``blend`` (``model.trees``, ``model.blend``) the forecast is the blend of the network and the trees."""

    version: str
    feature_columns: list[str]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    keras_model: Any
    trees: Any = None
    blend: Blend | None = None

    def __post_init__(self) -> None:
        if (self.trees is None) != (self.blend is None):
            raise ValueError("a blended forecaster needs both its trees and its blend")
        if self.trees is not None and list(self.feature_columns) != FEATURE_COLUMNS:
            raise ValueError("the trees read features in FEATURE_COLUMNS order")

    def predict_scaled(self, matrix: np.ndarray) -> np.ndarray:
        """Raw feature matrix -> scaled quantiles, shape (rows, measures, horizons, quantiles)."""
        from keras import ops

        standardized = ((matrix - self.feature_mean) / self.feature_std).astype(np.float32)
        chunks = [ops.convert_to_numpy(self.keras_model(standardized[i:i + PREDICT_CHUNK_ROWS], training=False))
                  for i in range(0, len(standardized), PREDICT_CHUNK_ROWS)]
        network = np.concatenate(chunks) if chunks else np.zeros((0, len(MEASURES), HORIZON_HOURS, 3), np.float32)
        if self.trees is None or not len(matrix):
            return network
        return combine(network.astype(np.float64), self.trees.predict_scaled(matrix), self.blend)

    def predict_horizons(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Rows of ``model.features.feature_rows`` -> ``{"sales_p10": array (rows, 24), ...}`` for the six
        quantile columns, horizons 1..24 along the second axis (scaled back to currency and units, never
        negative, p10 <= p50 <= p90)."""
        missing = [c for c in (*ID_COLUMNS, *self.feature_columns) if c not in features.columns]
        if missing:
            raise ModelError(f"model {self.version} needs feature column(s) {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}; build rows with model.features.feature_rows")
        scales = features[[f"scale_{SHORT[m]}" for m in MEASURES]].to_numpy(np.float64)
        return self.predict_horizon_matrix(features[self.feature_columns].to_numpy(np.float32), scales)

    def predict_horizon_matrix(self, matrix: np.ndarray, scales: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`predict_horizons` on a bare feature matrix (columns in ``feature_columns`` order) and the
        rows' ``scale_sales``, ``scale_units`` (shape rows x 2): what the Spark scorer has, without building a
        ~500-column frame per batch."""
        quantiles = self.predict_scaled(matrix)
        out = {}
        for m, measure in enumerate(MEASURES):
            values = np.maximum(quantiles[:, m].astype(np.float64) * scales[:, m, None, None], 0.0)
            for q, name in enumerate(("p10", "p50", "p90")):
                out[f"{SHORT[measure]}_{name}"] = values[:, :, q]
        return out

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``model.features.feature_rows`` -> one row per (series, origin, horizon): level, country,
        product, origin, hour, horizon and the six quantile columns of :meth:`predict_horizons`."""
        horizons = self.predict_horizons(features)
        rows = len(features)
        out = pd.DataFrame({c: np.repeat(features[c].to_numpy(), HORIZON_HOURS) for c in ID_COLUMNS})
        out["origin"] = pd.to_datetime(out["origin"])
        horizon = np.tile(np.arange(1, HORIZON_HOURS + 1), rows)
        out["hour"] = out["origin"] + pd.to_timedelta(horizon, unit="h")
        out["horizon"] = horizon
        for name, values in horizons.items():
            out[name] = values.reshape(-1)
        return out


def _corrupt(version: str, why: str) -> ModelError:
    return ModelError(f"model {version} is corrupt: {why}")


def _load_trees(folder: Path, version: str, threads: int | None) -> Any:
    """The version's gradient-boosted trees. joblib files are pickles, which run code when loaded: they are
    read only from the operator's own registry folder, which only `salespulse train` writes."""
    import joblib

    from model.trees import GradientBoostingBaseline

    if not (folder / TREES_FILE).is_file():
        raise _corrupt(version, f"its spec names a blend but {TREES_FILE} is missing")
    try:
        trees = joblib.load(folder / TREES_FILE)
    except Exception as err:  # unpickling a damaged file raises many types; all mean the same here
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise _corrupt(version, f"{TREES_FILE} does not load ({first_line})") from None
    if not isinstance(trees, GradientBoostingBaseline):
        raise _corrupt(version, f"{TREES_FILE} holds a {type(trees).__name__}, not gradient-boosted trees")
    return trees if threads is None else replace(trees, threads=threads)


def load_forecaster(registry: str | Path, version: str, threads: int | None = None) -> Forecaster:
    """Load one version; ModelError (one line) when the registry, the version or a file is missing or bad.
    ``threads``: scikit-learn threads of a blend's trees (default: as in training)."""
    import keras

    import model.networks  # noqa: F401  (registers the custom layers for loading)

    registry = Path(registry)
    folder = registry / version
    if not registry.is_dir():
        raise ModelError(f"no model in {registry}: run `salespulse train`")
    if not folder.is_dir():
        raise ModelError(f"model {version} is not in {registry} (versions: "
                         f"{', '.join(sorted(p.name for p in registry.iterdir() if p.is_dir())) or 'none'})")
    try:
        spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        columns = list(spec["feature_columns"])
        mean = np.asarray(spec["scaling"]["mean"], np.float32)
        std = np.asarray(spec["scaling"]["std"], np.float32)
        blend = Blend.from_json(spec["blend"]) if "blend" in spec else None
    except FileNotFoundError:
        raise _corrupt(version, f"{SPEC_FILE} is missing") from None
    except (ValueError, KeyError, TypeError) as err:
        raise _corrupt(version, f"{SPEC_FILE} is unreadable ({type(err).__name__}: {err})") from None
    if not (len(columns) == len(mean) == len(std)):
        raise _corrupt(version, f"{SPEC_FILE} has {len(columns)} feature columns but scaling for {len(mean)}")
    if not (folder / MODEL_FILE).is_file():
        raise _corrupt(version, f"{MODEL_FILE} is missing")
    try:
        network = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    except Exception as err:  # Keras raises many types for a damaged archive; all mean the same here
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise _corrupt(version, f"{MODEL_FILE} does not load ({first_line})") from None
    if network.input_shape[-1] != len(columns):
        raise _corrupt(version, f"{MODEL_FILE} takes {network.input_shape[-1]} features, spec lists {len(columns)}")
    if blend is not None and columns != FEATURE_COLUMNS:
        raise _corrupt(version, f"{SPEC_FILE} names a blend, whose trees need the feature columns in code order")
    trees = None if blend is None else _load_trees(folder, version, threads)
    return Forecaster(version, columns, mean, std, network, trees, blend)


def load_current(registry: str | Path) -> Forecaster:
    """The promoted model; ModelError when there is none."""
    version = current_version(registry)
    if version is None:
        raise ModelError(f"no model in {registry}: run `salespulse train`")
    return load_forecaster(registry, version)


def write_version(registry: str | Path, version: str, keras_model: Any, spec: dict, metrics: dict,
                  card: str, trees: Any = None) -> Path:
    """Write a version folder aside, then rename it into place (a reader sees all of it or nothing). ``trees``:
    a blend's gradient-boosted trees (``spec["blend"]`` says how they are blended)."""
    registry = Path(registry)
    folder, staging = registry / version, registry / f".staging-{version}"
    if folder.exists():
        raise ModelError(f"model {version} already exists in {registry}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    keras_model.save(staging / MODEL_FILE)
    if trees is not None:
        import joblib

        joblib.dump(trees, staging / TREES_FILE)
    for name, payload in ((SPEC_FILE, spec), (METRICS_FILE, metrics)):
        (staging / name).write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    (staging / CARD_FILE).write_text(card, encoding="utf-8")
    staging.rename(folder)
    return folder


def promote(registry: str | Path, version: str) -> None:
    """Point ``current`` at a version: temp file + rename, so scorers read the old or the new name."""
    registry = Path(registry)
    if not (registry / version).is_dir():
        raise ModelError(f"model {version} is not in {registry}")
    temp = registry / f".{CURRENT}.tmp"
    temp.write_text(version + "\n", encoding="utf-8")
    os.replace(temp, registry / CURRENT)
