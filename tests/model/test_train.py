"""Training on a planted pattern: held-out accuracy against seasonal-naive, the split, the registry, promotion
and the `salespulse train` command."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from model.blend import Blend, fit_blend
from model.features import FEATURE_COLUMNS, HORIZON_HOURS, feature_rows, series_history, values_at
from model.metrics import forecast_metrics
from model.registry import Forecaster, ModelError, current_version, load_current, load_forecaster
from model.scoring import cached_forecaster
from model.train import Split, promotion_decision, publish_version, split_by_origin
from salespulse.cli import main
from tests.model.conftest import write_gold_lake

NOW = datetime(2026, 11, 23, 22, 15, tzinfo=timezone.utc)


def _forecaster(trained) -> Forecaster:
    return trained[0]


def _test_origins(metrics: dict, history: pd.DataFrame) -> pd.DatetimeIndex:
    validation_end = pd.Timestamp(metrics["split"]["validation_end"])
    test_end = pd.Timestamp(metrics["split"]["test_end"])
    return pd.date_range(validation_end + pd.Timedelta(hours=HORIZON_HOURS + 1), test_end, freq="h")


def test_trained_model_beats_seasonal_naive_on_held_out_hours(planted, trained) -> None:
    _, _, metrics = trained
    history = series_history(planted)
    origins = _test_origins(metrics, history)
    assert origins.min() > pd.Timestamp(metrics["split"]["train_end"]) + pd.Timedelta(days=4)
    forecasts = _forecaster(trained).predict(feature_rows(history, origins))
    forecasts = forecasts[forecasts["level"] == "product"]
    # Actuals and the same hour one week earlier, straight from the raw partial rows.
    raw = planted.groupby(["country", "product", "hour"])["sales"].sum()
    actual = raw.reindex(list(zip(forecasts["country"], forecasts["product"], forecasts["hour"], strict=True)))
    week_before = raw.reindex(list(zip(forecasts["country"], forecasts["product"],
                                       forecasts["hour"] - pd.Timedelta(days=7), strict=True)))
    model_mae = np.mean(np.abs(actual.to_numpy() - forecasts["sales_p50"].to_numpy()))
    naive_mae = np.mean(np.abs(actual.to_numpy() - week_before.to_numpy()))
    assert len(forecasts) == 6 * len(origins) * HORIZON_HOURS
    assert model_mae < 0.9 * naive_mae, (model_mae, naive_mae)
    inside = (actual.to_numpy() >= forecasts["sales_p10"]) & (actual.to_numpy() <= forecasts["sales_p90"])
    assert 0.5 < inside.mean() < 0.97


def test_metrics_hold_every_method_measure_and_series(trained) -> None:
    _, _, metrics = trained
    assert set(metrics["overall"]) == {"model", "seasonal_naive", "linear_regression", "gradient_boosting"}
    assert set(metrics["by_country"]) == {"USA", "France"}
    assert "USA|*" in metrics["by_series"] and "France|Velo" in metrics["by_series"]
    for block in (metrics["overall"], metrics["by_country"]["USA"], metrics["by_series"]["USA|VTT"]):
        for method, by_measure in block.items():
            assert set(by_measure) == {"sales", "units_sold"}
            assert set(by_measure["sales"]) == {
                "mae", "rmse", "mse", "r2", "smape", "coverage_p10_p90", "pinball_p10", "pinball_p50", "pinball_p90",
                "mase", "scaled_pinball_p10", "scaled_pinball_p50", "scaled_pinball_p90"}
            has_quantiles = method in ("model", "gradient_boosting")
            for key in ("coverage_p10_p90", "pinball_p10", "pinball_p90", "scaled_pinball_p90"):
                assert (by_measure["sales"][key] is None) == (not has_quantiles), (method, key)
    assert set(metrics["fit_seconds"]) == {"model", "linear_regression", "gradient_boosting"}
    assert metrics["gradient_boosting_max_leaf_nodes"] in (15, 31)
    assert {t["candidate"] for t in metrics["search"]} == {"mlp-32", "conv-8"}


def test_predict_returns_the_contract_rows(planted, trained) -> None:
    history = series_history(planted)
    rows = feature_rows(history)
    out = _forecaster(trained).predict(rows)
    assert list(out.columns) == ["level", "country", "product", "origin", "hour", "horizon", "sales_p10",
                                 "sales_p50", "sales_p90", "units_p10", "units_p50", "units_p90"]
    assert len(out) == len(rows) * HORIZON_HOURS and out["horizon"].between(1, 24).all()
    assert (out["hour"] == out["origin"] + pd.to_timedelta(out["horizon"], unit="h")).all()
    for short in ("sales", "units"):
        assert (out[f"{short}_p10"] >= 0).all()
        assert (out[f"{short}_p10"] <= out[f"{short}_p50"]).all() and (out[f"{short}_p50"] <= out[f"{short}_p90"]).all()


def test_saved_model_loads_with_identical_predictions(planted, trained, tmp_path) -> None:
    forecaster, spec, metrics = trained
    result = publish_version(tmp_path, forecaster, spec, metrics, NOW)
    assert {p.name for p in result.folder.iterdir()} == {"model.keras", "trees.joblib", "spec.json", "metrics.json",
                                                        "card.md"}
    rows = feature_rows(series_history(planted), "all").tail(300)
    loaded = load_forecaster(tmp_path, result.version)
    assert loaded.version == "20261123T221500Z" and loaded.feature_columns == FEATURE_COLUMNS
    pd.testing.assert_frame_equal(loaded.predict(rows), _forecaster(trained).predict(rows), check_exact=True)
    assert cached_forecaster(tmp_path, result.version) is cached_forecaster(tmp_path, result.version)


def test_served_forecast_is_the_validation_chosen_blend_of_network_and_trees(planted, trained, tmp_path) -> None:
    forecaster, spec, metrics = trained
    folder = publish_version(tmp_path, forecaster, spec, metrics, NOW).folder
    saved = json.loads((folder / "spec.json").read_text())["blend"]
    assert saved == {k: metrics["blend"][k] for k in saved}
    assert all(len(by_horizon) == HORIZON_HOURS and all(0.0 <= w <= 1.0 for w in by_horizon)
               for by_horizon in saved["network_weight"])
    import joblib
    import keras

    # The members, loaded by hand from the version folder: the network (on standardized input) and the trees.
    network = keras.saving.load_model(folder / "model.keras", compile=False)
    mean, std = (np.asarray(spec["scaling"][k], np.float32) for k in ("mean", "std"))
    trees = joblib.load(folder / "trees.joblib")

    def members(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        matrix = rows[FEATURE_COLUMNS].to_numpy(np.float32)
        net = keras.ops.convert_to_numpy(network((matrix - mean) / std, training=False)).astype(np.float64)
        return net, trees.predict_scaled(matrix)

    # Chosen on the validation split: its origins are after the train split's targets, up to validation_end.
    history = series_history(planted)
    split = {k: pd.Timestamp(v) for k, v in metrics["split"].items()}
    validation = feature_rows(history, pd.date_range(split["train_end"] + pd.Timedelta(hours=HORIZON_HOURS + 1),
                                                     split["validation_end"], freq="h"))
    targets = values_at(history, validation, range(1, HORIZON_HOURS + 1))
    assert Blend(*(tuple(saved[k]) for k in ("network_weight", "low_spread", "high_spread"))) == fit_blend(
        *members(validation), targets, validation[["scale_sales", "scale_units"]].to_numpy(np.float64))

    # Served: the blend of the members' scaled quantiles, scaled back.
    rows = feature_rows(history, "all").tail(200)
    net, tree = members(rows)
    got = load_forecaster(tmp_path, folder.name).predict_horizons(rows)
    for m, short in enumerate(("sales", "units")):
        w, scale = np.asarray(saved["network_weight"][m])[None, :], rows[f"scale_{short}"].to_numpy()[:, None]
        median = (w * net[:, m, :, 1] + (1 - w) * tree[:, m, :, 1])
        np.testing.assert_allclose(got[f"{short}_p50"], np.maximum(median * scale, 0), rtol=1e-5, atol=1e-6)
        below = median - (w * net[:, m, :, 0] + (1 - w) * tree[:, m, :, 0])
        p10 = np.maximum((median - saved["low_spread"][m] * below) * scale, 0)
        np.testing.assert_allclose(got[f"{short}_p10"], p10, rtol=1e-5, atol=1e-6)


def _with_baseline_maes(metrics: dict, naive: float, linear: float, trees: float | None = None) -> dict:
    changed = json.loads(json.dumps(metrics))
    changed["overall"]["seasonal_naive"]["sales"]["mae"] = naive
    changed["overall"]["linear_regression"]["sales"]["mae"] = linear
    changed["overall"]["gradient_boosting"]["sales"]["mae"] = 3 * naive if trees is None else trees
    return changed


def test_promotion_needs_a_model_better_than_the_best_baseline(trained, tmp_path) -> None:
    forecaster, spec, metrics = trained
    model_mae = metrics["overall"]["model"]["sales"]["mae"]
    better = publish_version(tmp_path, forecaster, spec,
                             _with_baseline_maes(metrics, 2 * model_mae, 1.01 * model_mae), NOW)
    assert better.promoted and current_version(tmp_path) == better.version == "20261123T221500Z"
    # The model beats seasonal-naive but not linear regression: the best baseline decides.
    worse = publish_version(tmp_path, forecaster, spec,
                            _with_baseline_maes(metrics, 2 * model_mae, 0.99 * model_mae), NOW)
    assert not worse.promoted and "NOT promoted" in worse.message and "current stays 20261123T221500Z" in worse.message
    assert worse.version == "20261123T221501Z"  # same second: the next one, never an overwrite
    assert json.loads((worse.folder / "metrics.json").read_text())["promoted"] is False
    assert current_version(tmp_path) == better.version
    assert promotion_decision(_with_baseline_maes(metrics, model_mae, 2 * model_mae))[:2] == (False, "seasonal_naive")
    # Gradient-boosted trees are a bar too: a model that beats ridge and seasonal naive but not them stays out.
    assert promotion_decision(_with_baseline_maes(metrics, 2 * model_mae, 1.5 * model_mae, 0.99 * model_mae))[:2] == (
        False, "gradient_boosting")
    assert promotion_decision(_with_baseline_maes(metrics, 2 * model_mae, 1.5 * model_mae, 1.01 * model_mae))[:2] == (
        True, "gradient_boosting")


def test_missing_or_corrupt_models_raise_clear_errors(trained, tmp_path) -> None:
    with pytest.raises(ModelError, match=r"^no model in .*nowhere: run `salespulse train`$"):
        load_current(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="no model in"):
        load_current(tmp_path)
    forecaster, spec, metrics = trained
    version = publish_version(tmp_path, forecaster, spec, metrics, NOW).version
    with pytest.raises(ModelError, match="model 20990101T000000Z is not in"):
        load_forecaster(tmp_path, "20990101T000000Z")
    (tmp_path / version / "model.keras").write_bytes(b"not a zip archive")
    with pytest.raises(ModelError, match=rf"^model {version} is corrupt: model.keras does not load"):
        load_forecaster(tmp_path, version)
    (tmp_path / version / "spec.json").write_text("{")
    with pytest.raises(ModelError, match=rf"^model {version} is corrupt: spec.json is unreadable"):
        load_forecaster(tmp_path, version)
    (tmp_path / version / "model.keras").unlink()
    (tmp_path / version / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(ModelError, match=rf"^model {version} is corrupt: model.keras is missing"):
        load_forecaster(tmp_path, version)


def test_split_keeps_a_horizon_gap_between_train_validation_and_test() -> None:
    origins = pd.Series(pd.date_range("2026-01-15", "2026-03-01", freq="h"))
    split = split_by_origin(origins, validation_days=7, test_days=7)
    train, validation, test = Split.masks(split, origins)
    assert train.any() and validation.any() and test.any() and not (train & validation).any()
    last_train_target = origins[train].max() + pd.Timedelta(hours=HORIZON_HOURS)
    last_validation_target = origins[validation].max() + pd.Timedelta(hours=HORIZON_HOURS)
    assert last_train_target < origins[validation].min() + pd.Timedelta(hours=1)
    assert last_validation_target < origins[test].min() + pd.Timedelta(hours=1)
    assert origins[test].max() == origins.max() and test.sum() == 7 * 24


def test_split_refuses_too_little_history() -> None:
    origins = pd.Series(pd.date_range("2026-01-15", periods=24 * 10, freq="h"))
    with pytest.raises(ValueError, match="not enough history"):
        split_by_origin(origins, validation_days=7, test_days=7)


def test_forecast_metrics_on_known_values() -> None:
    got = forecast_metrics(np.array([0.0, 2.0, 4.0]), np.array([0.0, 3.0, 2.0]),
                           np.array([0.0, 1.0, 3.0]), np.array([1.0, 4.0, 5.0]))
    assert got["mae"] == pytest.approx(1.0) and got["mse"] == pytest.approx(5 / 3)
    assert got["rmse"] == pytest.approx((5 / 3) ** 0.5) and got["r2"] == pytest.approx(1 - 5 / 8)
    assert got["smape"] == pytest.approx(100 * (0 + 2 / 5 + 4 / 6) / 3)
    assert got["coverage_p10_p90"] == pytest.approx(1.0)


def test_cli_train_writes_a_version_and_explains_failures(planted, tmp_path) -> None:
    lake, registry = tmp_path / "lake", tmp_path / "models"
    config = tmp_path / "conf.yaml"
    config.write_text("model: {validation_days: 5, test_days: 5, max_epochs: 2, mlp_hidden_units: [16], "
                      "conv_filters: [4], conv_hidden_units: 16, threads: 1, tree_leaf_nodes: [7], "
                      "tree_max_iter: 10}\n")
    runner = CliRunner()
    missing = runner.invoke(main, ["--config", str(config), "train", "--lake", str(lake), "--registry", str(registry)])
    assert missing.exit_code == 1 and "has no published gold_sales_hourly yet" in missing.output
    write_gold_lake(lake, planted)
    result = runner.invoke(main, ["--config", str(config), "train", "--lake", str(lake), "--registry",
                                  str(registry), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "test sales seasonal_naive: MAE" in result.output and "promoted" in result.output
    version = next(p.name for p in registry.iterdir() if not p.name.startswith((".", "current")))
    card = (registry / version / "card.md").read_text()
    assert "| model (p50) | sales |" in card and "Known limits" in card
    assert (current_version(registry) == version) == ("train: promoted" in result.output)


def test_model_settings_reject_bad_values_by_name(monkeypatch) -> None:
    from salespulse.settings import SettingsError, load_settings

    monkeypatch.setenv("SALESPULSE_MODEL__TEST_DAYS", "0")
    with pytest.raises(SettingsError, match=r"invalid setting model\.test_days"):
        load_settings()
    monkeypatch.delenv("SALESPULSE_MODEL__TEST_DAYS")
    monkeypatch.setenv("SALESPULSE_MODEL__MLP_HIDDEN_UNITS", "[64, 0]")
    with pytest.raises(SettingsError, match=r"invalid setting model\.mlp_hidden_units: sizes must be 1 or more"):
        load_settings()
