"""`salespulse train`: gold hourly sales -> features -> time split -> a small search over two Keras
architectures and gradient-boosted trees -> their blend, chosen on validation -> baselines on the same test rows
-> metrics, model card, registry (promoted only if better).

``run_training`` is the entry point; everything it calls but ``read_gold_hourly`` and the registry writes is a
pure function of its inputs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from model.blend import WEIGHT_BLOCK_HOURS, fit_blend
from model.card import render_card
from model.features import (
    FEATURE_COLUMNS,
    HISTORY_HOURS,
    HORIZON_HOURS,
    MEASURES,
    WEEK_HOURS,
    feature_rows,
    series_history,
    series_key,
    values_at,
)
from model.metrics import best_baseline, forecast_metrics, scaled_metrics
from model.registry import Forecaster, current_version, promote, version_name, write_version
from model.trees import GradientBoostingBaseline
from salespulse.lake import duckdb_scan
from salespulse.settings import ModelSettings
from salespulse.simulator.oracle import SimulatedRun
from salespulse.storage import Storage, as_storage

HOUR = pd.Timedelta(hours=1)


class TrainingError(ValueError):
    """Training cannot start (no or too little data), with a one-line message."""


def read_gold_hourly(lake: Storage | str | Path) -> pd.DataFrame:
    """hour, country, product, sales, units_sold per hour and series from the lake's committed gold table
    (partial rows summed by key); a local folder or any Storage (e.g. HDFS through WebHDFS)."""
    storage = as_storage(lake)
    try:
        scan = duckdb_scan(storage, "gold_sales_hourly")
    except FileNotFoundError:
        raise TrainingError(f"the lake at {storage.uri} has no published gold_sales_hourly yet "
                            "(run `salespulse backfill` or `salespulse stream`)") from None
    if scan is None:
        raise TrainingError(f"the lake at {storage.uri} holds no sales yet")
    con = duckdb.connect()
    storage.attach(con)
    return con.execute(f"""
        SELECT hour, country, product, sum(sales)::DOUBLE AS sales, sum(units_sold) AS units_sold
        FROM {scan} GROUP BY ALL ORDER BY ALL""").df()


@dataclass(frozen=True)
class Dataset:
    """Every (series, origin) with complete targets: ids, raw features, raw targets and the seasonal-naive
    forecast of the same hours, all aligned by row."""

    rows: pd.DataFrame  # level, country, product, origin
    features: np.ndarray  # (rows, features), float32
    targets: np.ndarray  # (rows, measures, horizons)
    seasonal_naive: np.ndarray  # (rows, measures, horizons): the same hours one week earlier
    scales: np.ndarray  # (rows, measures)

    def take(self, mask: np.ndarray) -> Dataset:
        return Dataset(self.rows[mask].reset_index(drop=True), self.features[mask], self.targets[mask],
                       self.seasonal_naive[mask], self.scales[mask])

    @property
    def scaled_targets(self) -> np.ndarray:
        return self.targets / self.scales[:, :, None]

    @property
    def weights(self) -> np.ndarray:
        """Rows weigh by their series' sales scale, so the loss on scaled values ranks errors as the
        currency MAE that decides promotion does."""
        return self.scales[:, 0] / self.scales[:, 0].mean()


def build_dataset(history: pd.DataFrame) -> Dataset:
    rows = feature_rows(history, "all")
    horizons = range(1, HORIZON_HOURS + 1)
    targets = values_at(history, rows, horizons)
    complete = ~np.isnan(targets).any(axis=(1, 2))
    rows, targets = rows[complete].reset_index(drop=True), targets[complete]
    naive = values_at(history, rows, [h - WEEK_HOURS for h in horizons])
    scales = rows[["scale_sales", "scale_units"]].to_numpy(np.float64)
    return Dataset(rows[["level", "country", "product", "origin"]], rows[FEATURE_COLUMNS].to_numpy(np.float32),
                   targets, naive, scales)


@dataclass(frozen=True)
class Split:
    """Last origin of each split. A gap of one horizon after train and after validation keeps every target
    hour of a split before the first target hour of the next: no target is seen twice."""

    train_end: pd.Timestamp
    validation_end: pd.Timestamp
    test_end: pd.Timestamp

    def masks(self, origins: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gap = HORIZON_HOURS * HOUR
        train = (origins <= self.train_end).to_numpy()
        validation = ((origins > self.train_end + gap) & (origins <= self.validation_end)).to_numpy()
        test = ((origins > self.validation_end + gap) & (origins <= self.test_end)).to_numpy()
        return train, validation, test


def split_by_origin(origins: pd.Series, validation_days: float, test_days: float) -> Split:
    """Test: the last ``test_days`` of origins; validation: the ``validation_days`` before it; train: the
    rest, each separated by a one-horizon gap."""
    if origins.empty:
        raise TrainingError(f"not enough history: a forecast needs {HISTORY_HOURS} hours plus "
                            f"{HORIZON_HOURS} hours of targets per origin")
    gap = HORIZON_HOURS * HOUR
    test_end = origins.max()
    validation_end = test_end - pd.Timedelta(days=test_days) - gap
    train_end = validation_end - pd.Timedelta(days=validation_days) - gap
    if train_end < origins.min():
        days = (origins.max() - origins.min()) / pd.Timedelta(days=1)
        raise TrainingError(
            f"not enough history: {days:.1f} days of origins, but validation ({validation_days:g} d) and test "
            f"({test_days:g} d) splits plus two {HORIZON_HOURS} h gaps need more (each origin also needs "
            f"{HISTORY_HOURS // 24} days of history); load more history or shorten model.validation_days / "
            "model.test_days")
    return Split(train_end, validation_end, test_end)


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and standard deviation of the training rows (constant columns keep std 1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Standardizer:
        std = features.std(axis=0)
        return cls(features.mean(axis=0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def apply(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32)


@dataclass(frozen=True)
class Candidate:
    architecture: str  # "mlp" or "conv"
    size: int  # hidden units (mlp) or filters (conv)
    repeat: int = 0  # the n-th training of this architecture, from its own random seed

    @property
    def name(self) -> str:
        return f"{self.architecture}-{self.size}" + (f"#{self.repeat + 1}" if self.repeat else "")

    def build(self, settings: ModelSettings) -> Any:
        from model.networks import build_conv, build_mlp

        # Unique Keras names: the trials become submodels of one ensemble model.
        name = f"{self.architecture}_{self.size}_{self.repeat + 1}"
        if self.architecture == "mlp":
            return build_mlp(self.size, settings.dropout, name)
        return build_conv(self.size, settings.conv_hidden_units, settings.dropout, name)


def search_space(settings: ModelSettings) -> list[Candidate]:
    """Every architecture once, then again from another seed, ``model.trainings_per_candidate`` times in all:
    the ensemble gains most from the first different architectures, so a tight budget cuts the repeats."""
    return [candidate for repeat in range(settings.trainings_per_candidate) for candidate in (
        *(Candidate("mlp", n, repeat) for n in settings.mlp_hidden_units),
        *(Candidate("conv", n, repeat) for n in settings.conv_filters))]


def sales_mae(actual: np.ndarray, median: np.ndarray) -> float:
    """Currency MAE of hourly sales (measure 0) over all rows and horizons: the selection and promotion
    criterion."""
    return float(np.mean(np.abs(actual[:, 0] - median[:, 0])))


@dataclass
class Trial:
    candidate: Candidate
    epochs: int
    validation_loss: float
    validation_sales_mae: float
    seconds: float
    network: Any = field(repr=False)
    validation_scaled: np.ndarray = field(repr=False)  # the network's scaled quantiles on the validation split


def _scaled_back(scaled: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(rows, measures, horizons[, quantiles]) scaled values -> currency and units, never negative."""
    shape = scales.shape + (1,) * (scaled.ndim - 2)
    return np.maximum(scaled * scales.reshape(shape), 0.0)


def fit_candidate(candidate: Candidate, settings: ModelSettings, train: Dataset, validation: Dataset,
                  standardizer: Standardizer, deadline: float) -> Trial:
    """Train one network with early stopping on the validation pinball loss (best weights restored)."""
    import keras

    from model.networks import pinball_loss

    class _Deadline(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if time.monotonic() > deadline:
                self.model.stop_training = True

    began = time.monotonic()
    keras.utils.set_random_seed(settings.seed + candidate.repeat)
    network = candidate.build(settings)
    network.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=pinball_loss)
    x_val = standardizer.apply(validation.features)
    history = network.fit(
        standardizer.apply(train.features), train.scaled_targets.astype(np.float32),
        sample_weight=train.weights.astype(np.float32),
        validation_data=(x_val, validation.scaled_targets.astype(np.float32), validation.weights.astype(np.float32)),
        epochs=settings.max_epochs, batch_size=settings.batch_size, verbose=0, shuffle=True,
        callbacks=[keras.callbacks.EarlyStopping(patience=settings.patience, restore_best_weights=True),
                   _Deadline()])
    scaled = keras.ops.convert_to_numpy(network(x_val, training=False)).astype(np.float64)
    return Trial(candidate, len(history.history["loss"]), float(min(history.history["val_loss"])),
                 sales_mae(validation.targets, _scaled_back(scaled[..., 1], validation.scales)),
                 time.monotonic() - began, network, scaled)


def search(settings: ModelSettings, train: Dataset, validation: Dataset, standardizer: Standardizer,
           progress: bool) -> list[Trial]:
    """Every candidate of the search space (until ``max_minutes`` runs out; the first always runs), best
    validation sales MAE first."""
    from tqdm import tqdm

    began = time.monotonic()
    deadline = began + 60 * settings.max_minutes
    trials: list[Trial] = []
    bar = tqdm(search_space(settings), desc="train: search", unit="trial", disable=not progress)
    for candidate in bar:
        if trials and time.monotonic() > deadline:
            bar.write(f"train: search budget of {settings.max_minutes:g} min used up, skipping {candidate.name}")
            continue
        bar.set_postfix_str(candidate.name)
        trials.append(fit_candidate(candidate, settings, train, validation, standardizer, deadline))
        best = min(trials, key=lambda t: t.validation_sales_mae)
        bar.set_postfix_str(f"best {best.candidate.name} val sales MAE {best.validation_sales_mae:,.1f}")
    return sorted(trials, key=lambda t: t.validation_sales_mae)


ENSEMBLE_STEPS = 20  # ensemble weights in steps of 0.05


def ensemble_weights(trials: list[Trial], validation: Dataset) -> list[float]:
    """Greedy ensemble selection (Caruana et al., 2004) on the validation split: ``ENSEMBLE_STEPS`` times, add
    (again, possibly) the trial whose network most lowers the sales MAE of the members' mean p50 so far; a
    trial's weight is its share of the steps. The networks of the search err differently (an MLP over all
    features, a convolution over the last week), so their mean beats the best of them."""
    counts = np.zeros(len(trials))
    total = np.zeros_like(trials[0].validation_scaled)
    for step in range(1, ENSEMBLE_STEPS + 1):
        pick = min(range(len(trials)), key=lambda i: sales_mae(
            validation.targets, _scaled_back((total + trials[i].validation_scaled)[..., 1] / step, validation.scales)))
        counts[pick] += 1
        total += trials[pick].validation_scaled
    return [float(c) for c in counts / ENSEMBLE_STEPS]


@dataclass(frozen=True)
class RidgeBaseline:
    """scikit-learn linear regression (ridge, alpha chosen on validation) on exactly the model's standardized
    features, one output per measure x horizon, fitted to the same scaled targets with the same weights."""

    alpha: float
    regression: Any

    @classmethod
    def fit(cls, settings: ModelSettings, train: Dataset, validation: Dataset,
            standardizer: Standardizer) -> RidgeBaseline:
        from scipy.linalg import LinAlgWarning
        from sklearn.linear_model import Ridge

        # The features are collinear by construction (each one-hot group sums to 1, the 7-day same-hour means
        # are sums of lags); the ridge penalty is what makes the solve well-posed, so scipy's warning is noise.
        x_train, x_val = standardizer.apply(train.features), standardizer.apply(validation.features)
        y_train = train.scaled_targets.reshape(len(train.targets), -1)
        fitted = []
        for alpha in settings.ridge_alphas:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LinAlgWarning)
                regression = Ridge(alpha=alpha).fit(x_train, y_train, sample_weight=train.weights)
            candidate = cls(alpha, regression)
            fitted.append((sales_mae(validation.targets, candidate.predict(x_val, validation.scales)), candidate))
        return min(fitted, key=lambda pair: pair[0])[1]

    def predict(self, standardized: np.ndarray, scales: np.ndarray) -> np.ndarray:
        scaled = self.regression.predict(standardized).reshape(len(standardized), len(MEASURES), HORIZON_HOURS)
        return _scaled_back(scaled, scales)


Forecasts = dict[str, tuple[np.ndarray | None, np.ndarray, np.ndarray | None]]  # method -> (p10, p50, p90)


def evaluate(rows: pd.DataFrame, targets: np.ndarray, forecasts: Forecasts,
             naive_scales: dict[str, np.ndarray]) -> dict[str, Any]:
    """metrics.json's ``overall``, ``by_country`` and ``by_series``: method -> measure -> measures. Pooled
    measures come from every point of the block; scale-free ones (MASE, scaled pinball) are means over the
    block's series, each series' errors divided by ``naive_scales[series key][measure]``."""
    keys = np.array([series_key(c, p) for c, p in zip(rows["country"], rows["product"], strict=True)])
    countries = rows["country"].to_numpy()

    def pooled(mask: np.ndarray) -> dict[str, Any]:
        return {method: {measure: forecast_metrics(
                    targets[mask, m], p50[mask, m],
                    None if p10 is None else p10[mask, m], None if p90 is None else p90[mask, m])
                    for m, measure in enumerate(MEASURES)}
                for method, (p10, p50, p90) in forecasts.items()}

    by_series = {k: pooled(keys == k) for k in sorted(set(keys))}
    unscaled = np.zeros(len(MEASURES))  # a series without training rows has no scale: left out

    def block(mask: np.ndarray) -> dict[str, Any]:
        out = pooled(mask)
        series = sorted(set(keys[mask]))
        for method, by_measure in out.items():
            for m, measure in enumerate(MEASURES):
                by_measure[measure].update(scaled_metrics([by_series[k][method][measure] for k in series],
                                                          [float(naive_scales.get(k, unscaled)[m]) for k in series]))
        return out

    return {
        "overall": block(np.ones(len(rows), bool)),
        "by_country": {c: block(countries == c) for c in sorted(set(countries))},
        "by_series": {k: block(keys == k) for k in by_series},
    }


def seasonal_naive_scales(data: Dataset) -> dict[str, np.ndarray]:
    """Each series' in-sample seasonal-naive MAE per measure (the training split's targets against the same
    hours one week earlier): the divisor of its scale-free errors."""
    keys = np.array([series_key(c, p) for c, p in zip(data.rows["country"], data.rows["product"], strict=True)])
    error = np.abs(data.targets - data.seasonal_naive).mean(axis=2)  # (rows, measures)
    return {k: error[keys == k].mean(axis=0) for k in sorted(set(keys))}


def promotion_decision(metrics: dict[str, Any]) -> tuple[bool, str, float]:
    """Promote only when the model's overall test sales MAE is below the best baseline's (trees included)."""
    overall = metrics["overall"]
    best = best_baseline(overall)
    return overall["model"]["sales"]["mae"] < overall[best]["sales"]["mae"], best, overall[best]["sales"]["mae"]


@dataclass(frozen=True)
class TrainingResult:
    version: str
    promoted: bool
    folder: Path
    metrics: dict[str, Any]
    message: str


def oracle_forecast(oracle: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """The oracle's values (gold-like hourly rows of expected sales and units) at the target hours of
    ``rows``: (rows, measures, horizons), country totals summed from its products like the actuals."""
    expected = values_at(series_history(oracle), rows, range(1, HORIZON_HOURS + 1))
    if np.isnan(expected).any():
        raise TrainingError("the oracle (simulator's expected demand) does not cover every test hour and "
                            "series; is it the simulation this lake was built from?")
    return expected


def noise_floor(overall: dict[str, Any]) -> dict[str, Any]:
    """The model against the oracle's test sales MAE (the floor no forecaster beats on average): its
    multiple of it and the share of the best baseline's distance to the floor that the model closes."""
    best = best_baseline(overall)
    model, baseline, oracle = (overall[m]["sales"]["mae"] for m in ("model", best, "oracle"))
    return {"oracle_sales_mae": oracle, "model_sales_mae": model,
            "model_multiple_of_oracle": model / oracle if oracle > 0 else None,
            "best_baseline": best, "best_baseline_sales_mae": baseline,
            "gap_closed": (baseline - model) / (baseline - oracle) if baseline != oracle else None}


def train_and_evaluate(history: pd.DataFrame, settings: ModelSettings, progress: bool = False,
                       say: Callable[[str], None] = print,
                       oracle: pd.DataFrame | None = None) -> tuple[Forecaster, dict[str, Any], dict[str, Any]]:
    """Series history -> (the served blend of the chosen network and the trees, spec, metrics without version
    fields). No storage access.
    ``oracle``: for a simulated history, the simulator's expected gold hourly rows
    (``salespulse.simulator.oracle``), scored as one more method (``oracle``) with its noise-floor summary."""
    from model.scoring import limit_tf_threads

    limit_tf_threads(settings.threads)
    data = build_dataset(history)
    split = split_by_origin(data.rows["origin"], settings.validation_days, settings.test_days)
    train_mask, validation_mask, test_mask = split.masks(data.rows["origin"])
    train, validation, test = data.take(train_mask), data.take(validation_mask), data.take(test_mask)
    say(f"train: {len(train.targets):,} train, {len(validation.targets):,} validation, {len(test.targets):,} test "
        f"rows ({data.rows[['country', 'product']].drop_duplicates().shape[0]} series x origins)")
    standardizer = Standardizer.fit(train.features)
    began = time.monotonic()
    from model.networks import build_ensemble

    trials = search(settings, train, validation, standardizer, progress)
    members = [(trial, weight) for trial, weight in zip(trials, ensemble_weights(trials, validation), strict=True)
               if weight > 0]
    network = build_ensemble([t.network for t, _ in members], [w for _, w in members])
    ensemble = " + ".join(f"{w:.2f} {t.candidate.name}" for t, w in members)
    fit_seconds = {"model": time.monotonic() - began}
    began = time.monotonic()
    ridge = RidgeBaseline.fit(settings, train, validation, standardizer)
    fit_seconds["linear_regression"] = time.monotonic() - began
    began = time.monotonic()
    trees = GradientBoostingBaseline.fit(settings, train, validation)
    fit_seconds["gradient_boosting"] = time.monotonic() - began
    say("train: fit seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in fit_seconds.items()))
    network_only = Forecaster("candidate", list(FEATURE_COLUMNS), standardizer.mean, standardizer.std, network)
    # The blend is chosen on the validation split; the test split only scores it.
    blend = fit_blend(network_only.predict_scaled(validation.features), trees.predict_scaled(validation.features),
                      validation.targets, validation.scales)
    served = Forecaster("candidate", list(FEATURE_COLUMNS), standardizer.mean, standardizer.std, network,
                        trees, blend)
    say(f"train: network {ensemble}; blend network weight by 6 h of horizon, sales "
        f"{'/'.join(f'{w:.2f}' for w in blend.network_weight[0][::WEIGHT_BLOCK_HOURS])}")
    tree_quantiles = _scaled_back(trees.predict_scaled(test.features), test.scales)
    quantiles = _scaled_back(served.predict_scaled(test.features), test.scales)
    forecasts: Forecasts = {
        "model": (quantiles[..., 0], quantiles[..., 1], quantiles[..., 2]),
        "seasonal_naive": (None, test.seasonal_naive, None),
        "linear_regression": (None, ridge.predict(standardizer.apply(test.features), test.scales), None),
        "gradient_boosting": (tree_quantiles[..., 0], tree_quantiles[..., 1], tree_quantiles[..., 2]),
    }
    if oracle is not None:
        forecasts["oracle"] = (None, oracle_forecast(oracle, test.rows), None)
    hours = history["hour"]
    window = {"start": str(hours.min()), "end": str(hours.max())}
    metrics = {
        "data_window": window,
        "split": {"train_end": str(split.train_end), "validation_end": str(split.validation_end),
                  "test_end": str(split.test_end)},
        "rows": {"train": len(train.targets), "validation": len(validation.targets), "test": len(test.targets)},
        "search": [{"candidate": t.candidate.name, "epochs": t.epochs, "validation_loss": t.validation_loss,
                    "validation_sales_mae": t.validation_sales_mae, "seconds": round(t.seconds, 1)}
                   for t in trials],
        "chosen": ensemble,
        "linear_regression_alpha": ridge.alpha,
        "gradient_boosting_max_leaf_nodes": trees.max_leaf_nodes,
        "gradient_boosting_rounds": trees.rounds,
        "blend": {**blend.to_json(), "network_alone_test_sales_mae": sales_mae(
            test.targets, _scaled_back(network_only.predict_scaled(test.features)[..., 1], test.scales))},
        "fit_seconds": {method: round(seconds, 1) for method, seconds in fit_seconds.items()},
        **evaluate(test.rows, test.targets, forecasts, seasonal_naive_scales(train)),
    }
    if oracle is not None:
        metrics["noise_floor"] = noise_floor(metrics["overall"])
    spec = {
        "feature_columns": list(FEATURE_COLUMNS),
        "scaling": {"mean": standardizer.mean.tolist(), "std": standardizer.std.tolist()},
        "target_scaling": "each series' values divided by its mean over the 168 h ending at the origin "
                          "(at least 1); features scale_sales / scale_units hold the divisors",
        "quantiles": [0.1, 0.5, 0.9],
        "horizon_hours": HORIZON_HOURS,
        "history_hours": HISTORY_HOURS,
        "measures": list(MEASURES),
        "training_window": {"start": window["start"], "end": str(split.train_end + HORIZON_HOURS * HOUR)},
        "architecture": ensemble,
        "blend": blend.to_json(),
    }
    return served, spec, metrics


def publish_version(registry: str | Path, forecaster: Forecaster, spec: dict[str, Any], metrics: dict[str, Any],
                    now: datetime) -> TrainingResult:
    """Write the version folder (always) and point ``current`` at it only if the model beats the best
    baseline's test sales MAE."""
    registry = Path(registry)
    version = version_name(now)
    while (registry / version).exists():  # two runs in one second: the later one gets the next second
        now += timedelta(seconds=1)
        version = version_name(now)
    promoted, best_baseline, baseline_mae = promotion_decision(metrics)
    model_mae = metrics["overall"]["model"]["sales"]["mae"]
    metrics = {"version": version, "trained_at": now.isoformat(), "promoted": promoted, **metrics}
    spec = {"version": version, **spec}
    folder = write_version(registry, version, forecaster.keras_model, spec, metrics, render_card(metrics, spec),
                           forecaster.trees)
    if promoted:
        promote(registry, version)
        message = (f"train: promoted {version}: test sales MAE {model_mae:,.2f} < best baseline "
                   f"{best_baseline} {baseline_mae:,.2f} ({model_mae / baseline_mae:.2f}x)")
    else:
        message = (f"train: NOT promoted {version}: test sales MAE {model_mae:,.2f} >= best baseline "
                   f"{best_baseline} {baseline_mae:,.2f}; current stays {current_version(registry) or 'none'}")
    return TrainingResult(version, promoted, folder, metrics, message)


def run_training(lake: Storage | str | Path, registry: str | Path, settings: ModelSettings, now: datetime,
                 progress: bool = False, say: Callable[[str], None] = print,
                 simulated: SimulatedRun | None = None) -> TrainingResult:
    """Read gold, train and evaluate, publish the version (promoted only if better than the baselines).
    ``simulated``: the simulator run the lake was built from, to score its oracle beside the model."""
    gold = read_gold_hourly(lake)
    history = series_history(gold)
    oracle = None
    if simulated is not None and not history.empty:
        oracle = simulated.expected_gold(int(history["hour"].min().value // 1_000_000))
    forecaster, spec, metrics = train_and_evaluate(history, settings, progress, say, oracle)
    return publish_version(registry, forecaster, spec, metrics, now)
