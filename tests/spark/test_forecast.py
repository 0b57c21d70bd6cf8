"""Forecast scoring in Spark (pandas UDFs) on a real lake: UDF output equals the model called directly on
the same rows, anomalies and stock-outs equal a pandas computation, and the stream serves KPIs with a
missing or corrupt model and forecasts with a good one."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

from model.features import FEATURE_COLUMNS, HISTORY_HOURS, feature_rows, series_history
from model.registry import load_forecaster, promote, write_version
from salespulse.cli import main
from salespulse.lake import duckdb_scan
from salespulse.profiles import load_profile
from salespulse.settings import Settings, load_settings
from spark_jobs import io
from spark_jobs.backfill import run_backfill
from spark_jobs.stream import ForecastRefresher, run_stream
from spark_jobs.transforms.forecast import score, series_features, series_hourly
from tests.conftest import run_simulator

pytestmark = [pytest.mark.spark, pytest.mark.slow]
VERSION = "20260101T000000Z"
KEYS = ["level", "country", "product", "origin", "hour"]


def tiny_network():
    """A small untrained network with the real input and output shapes: the scoring path, not its skill,
    is under test here."""
    import keras

    keras.utils.set_random_seed(7)
    return keras.Sequential([
        keras.Input((len(FEATURE_COLUMNS),)),
        keras.layers.Dense(2 * 24 * 3, activation="softplus"),
        keras.layers.Reshape((2, 24, 3)),
    ])


TINY_SPEC = {"feature_columns": list(FEATURE_COLUMNS),
             "scaling": {"mean": [0.0] * len(FEATURE_COLUMNS), "std": [1.0] * len(FEATURE_COLUMNS)}}


def tiny_model(registry: Path, version: str = VERSION) -> None:
    write_version(registry, version, tiny_network(), TINY_SPEC, {"version": version}, "test model\n")
    promote(registry, version)


def tiny_trees():
    """Gradient-boosted trees of the real feature layout fitted to random targets: six small regressors."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from model.features import TREE_FEATURE_COLUMNS
    from model.trees import QUANTILES, GradientBoostingBaseline

    rng = np.random.default_rng(11)
    x = rng.uniform(0, 3, (2000, len(TREE_FEATURE_COLUMNS)))
    regressions = {(m, q): HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=5).fit(
        x, x[:, 6 + m] * (0.5 + q) + rng.normal(0, 0.1, len(x))) for m in range(2) for q in QUANTILES}
    return GradientBoostingBaseline(7, regressions, 1)


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """16 days of simulator history up to now, loaded by the backfill, and a promoted model."""
    root = tmp_path_factory.mktemp("forecast")
    run_simulator(root / "landing", history_days=16, end_ms=None, history_rate=0.03, bad_rows_pct=0,
                  duplicate_pct=0, late_pct=0)
    settings = load_settings(overrides={
        "paths.landing": str(root / "landing"), "paths.lake": str(root / "lake"),
        "paths.checkpoints": str(root / "checkpoints"), "paths.models": str(root / "models"),
        "stream.processed_files": "keep"})
    now = datetime.now(timezone.utc)
    for event, profile in (("sales", "canonical"), ("inventory", "canonical_inventory")):
        run_backfill(spark, settings, str(root / "landing" / "history" / event), load_profile(profile), now,
                     f"test-{event}", lambda _: None)
    tiny_model(root / "models")
    return settings


def table(settings: Settings, name: str) -> pd.DataFrame:
    scan = duckdb_scan(settings.paths.lake, name)
    return duckdb.sql(f"SELECT * FROM {scan}").df() if scan else pd.DataFrame()


def gold_history(settings: Settings) -> pd.DataFrame:
    return series_history(table(settings, "gold_sales_hourly"))


def last_hour(settings: Settings) -> datetime:
    return gold_history(settings)["hour"].max().to_pydatetime().replace(tzinfo=timezone.utc)


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(product=frame["product"].fillna("*"))
    return frame.sort_values(KEYS, ignore_index=True)


def test_udf_forecasts_equal_the_model_called_directly(spark: SparkSession, lake: Settings) -> None:
    last = last_hour(lake)
    origins = [last - timedelta(hours=h) for h in (0, 13, 30)]
    hourly = io.read_table(spark, lake.paths.lake, "gold_sales_hourly")
    first = min(origins) - timedelta(hours=HISTORY_HOURS - 1)
    features = series_features(series_hourly(hourly, first, max(origins)), origins)
    in_spark = ordered(score(features, lake.paths.models, VERSION, 1).toPandas())

    # Directly: the whole history in pandas (more hours than the UDF sees), the model called in-process.
    history = gold_history(lake)
    naive = [o.replace(tzinfo=None) for o in origins]
    direct = ordered(load_forecaster(lake.paths.models, VERSION).predict(feature_rows(history, naive)))

    assert len(direct) == history.groupby(["level", "country", "product"], dropna=False).ngroups * 3 * 24
    assert len(in_spark) == len(direct)
    pd.testing.assert_frame_equal(in_spark[KEYS].astype(str), direct[KEYS].astype(str))
    for column in ("sales_p10", "sales_p50", "sales_p90", "units_p10", "units_p50", "units_p90"):
        np.testing.assert_allclose(in_spark[column], direct[column], rtol=1e-5, atol=1e-6)


def test_udf_scores_a_blend_of_network_and_trees_as_its_spec_says(spark: SparkSession, lake: Settings,
                                                                  tmp_path: Path) -> None:
    import keras

    registry, version = tmp_path / "blend", "20260105T000000Z"
    network, trees = tiny_network(), tiny_trees()
    blend = {"network_weight": [0.3, 0.8], "low_spread": [1.5, 1.0], "high_spread": [0.5, 1.2]}
    write_version(registry, version, network, {**TINY_SPEC, "blend": blend}, {"version": version}, "blend\n", trees)
    origins = [last_hour(lake) - timedelta(hours=h) for h in (0, 7)]
    hourly = io.read_table(spark, lake.paths.lake, "gold_sales_hourly")
    features = series_features(series_hourly(hourly, min(origins) - timedelta(hours=HISTORY_HOURS - 1),
                                             max(origins)), origins)
    in_spark = ordered(score(features, str(registry), version, 1).toPandas())

    # By hand: both members on the same rows built in pandas, mixed and spread as the spec says.
    rows = feature_rows(gold_history(lake), [o.replace(tzinfo=None) for o in origins])
    matrix = rows[FEATURE_COLUMNS].to_numpy(np.float32)
    members = (keras.ops.convert_to_numpy(network(matrix, training=False)).astype(np.float64),
               trees.predict_scaled(matrix))
    expected = rows[["level", "country", "product", "origin"]].loc[np.repeat(rows.index, 24)].reset_index(drop=True)
    expected["hour"] = expected["origin"] + pd.to_timedelta(np.tile(np.arange(1, 25), len(rows)), unit="h")
    for m, short in enumerate(("sales", "units")):
        w = blend["network_weight"][m]
        mixed = w * members[0][:, m] + (1 - w) * members[1][:, m]
        median = mixed[..., 1]
        quantiles = {"p10": median - blend["low_spread"][m] * (median - mixed[..., 0]), "p50": median,
                     "p90": median + blend["high_spread"][m] * (mixed[..., 2] - median)}
        scale = rows[f"scale_{short}"].to_numpy()[:, None]
        for name, values in quantiles.items():
            expected[f"{short}_{name}"] = np.maximum(values * scale, 0).reshape(-1)
    expected = ordered(expected)
    assert len(in_spark) == len(expected) == len(rows) * 24
    pd.testing.assert_frame_equal(in_spark[KEYS].astype(str), expected[KEYS].astype(str))
    for column in ("sales_p10", "sales_p50", "sales_p90", "units_p10", "units_p50", "units_p90"):
        np.testing.assert_allclose(in_spark[column], expected[column], rtol=1e-5, atol=1e-6)
    # The blend moved the forecast away from the network alone.
    alone = ordered(load_forecaster(lake.paths.models, VERSION).predict(rows))
    assert not np.allclose(in_spark["sales_p50"], alone["sales_p50"], rtol=1e-3)


def test_backtest_anomalies_and_stockout_match_pandas(lake: Settings) -> None:
    result = CliRunner().invoke(main, ["forecast", "--lake", lake.paths.lake, "--registry", lake.paths.models,
                                       "--every-hours", "12"])
    assert result.exit_code == 0, result.output
    forecasts = table(lake, "gold_forecasts")
    history = gold_history(lake)
    series = history.groupby(["level", "country", "product"], dropna=False).ngroups
    origins = sorted(forecasts["origin"].unique())
    assert len(origins) >= 2 and np.diff(origins).astype("timedelta64[h]").astype(int).tolist() == [12] * (
        len(origins) - 1)
    assert len(forecasts) == len(origins) * series * 24
    assert set(forecasts["model_version"]) == {VERSION}

    # Anomalies, independently: for each hour, the forecast of the latest origin; actuals outside p10-p90.
    latest = forecasts.sort_values("origin").drop_duplicates(["level", "country", "product", "hour"], keep="last")
    joined = latest.assign(product=latest["product"].fillna("*")).merge(
        history.assign(product=history["product"].fillna("*")), on=["level", "country", "product", "hour"])
    # Judged: the hours after the first origin, up to the last complete one (the hour in progress is not).
    complete = pd.Timestamp.now(tz="UTC").floor("h").tz_localize(None) - pd.Timedelta(hours=1)
    joined = joined[(joined["hour"] > min(origins)) & (joined["hour"] <= complete)]
    expected = set()
    for measure, prefix in (("sales", "sales"), ("units_sold", "units")):
        above = joined[measure] > joined[f"{prefix}_p90"]
        # The untrained model may put p10 above p90: above the band is checked first.
        below = (joined[measure] < joined[f"{prefix}_p10"]) & ~above
        for direction, mask in (("above", above), ("below", below)):
            expected |= {(r.level, r.country, r.product, r.hour, measure, direction)
                         for r in joined[mask].itertuples()}
    anomalies = table(lake, "gold_forecast_anomalies")
    found = {(r.level, r.country, r.product if r.product is not None else "*", r.hour, r.measure, r.direction)
             for r in anomalies.itertuples()}
    assert expected, "an untrained model should miss some hours"
    assert found == expected

    # Stock-out: walk the last origin's cumulative units p50 down from the stock on hand.
    stock = table(lake, "gold_stock")
    last = forecasts[(forecasts["origin"] == origins[-1]) & (forecasts["level"] == "product")]
    stockout = table(lake, "gold_stockout").set_index(["country", "product"])
    assert len(stockout) == len(stock)
    for row in stock.itertuples():
        units = last[(last["country"] == row.country) & (last["product"] == row.product)].sort_values("hour")
        cumulative = units["units_p50"].cumsum().to_numpy()
        got = stockout.loc[(row.country, row.product), "predicted_stockout_time"]
        assert stockout.loc[(row.country, row.product), "units_p50_24h"] == pytest.approx(cumulative[-1])
        if row.stock_on_hand <= 0:
            assert got == row.as_of
        elif cumulative[-1] < row.stock_on_hand:
            assert pd.isna(got)
        else:
            i = int(np.argmax(cumulative >= row.stock_on_hand))
            before = cumulative[i - 1] if i else 0.0
            hours = (row.stock_on_hand - before) / units["units_p50"].iloc[i]
            want = units["hour"].iloc[i] + pd.Timedelta(hours=hours)
            assert abs((got - want).total_seconds()) < 1


def stream_once(spark: SparkSession, settings: Settings) -> list[str]:
    run_simulator(Path(settings.paths.landing), seconds=2, end_ms=None, rate=5, file_interval_seconds=1)
    lines: list[str] = []
    assert run_stream(spark, settings, lines.append, threading.Event(), available_now=True) == 0, "\n".join(lines)
    return lines


def test_stream_keeps_kpis_without_a_usable_model_and_forecasts_with_one(spark: SparkSession, lake: Settings,
                                                                        tmp_path: Path) -> None:
    def silver_rows() -> int:
        return len(table(lake, "silver_sales"))

    def with_models(folder: Path) -> Settings:
        return lake.model_copy(update={"paths": lake.paths.model_copy(update={"models": str(folder)})})

    before = silver_rows()
    lines = stream_once(spark, with_models(tmp_path / "empty"))
    assert silver_rows() > before
    assert any("no model in" in line and "KPIs only" in line for line in lines), "\n".join(lines)

    corrupt = tmp_path / "corrupt"
    tiny_model(corrupt, "20260202T000000Z")
    (corrupt / "20260202T000000Z" / "model.keras").write_bytes(b"not a keras archive")
    before = silver_rows()
    published = {d for d in io.read_manifest(spark, lake.paths.lake)["tables"].get("gold_forecasts", [])}
    lines = stream_once(spark, with_models(corrupt))
    assert silver_rows() > before
    assert any("forecasting with model 20260202T000000Z failed" in line and "is corrupt" in line
               for line in lines), "\n".join(lines)
    assert set(io.read_manifest(spark, lake.paths.lake)["tables"].get("gold_forecasts", [])) == published

    # A newly promoted model is used from the next sales batch, for the last complete hour.
    promoted = tmp_path / "promoted"
    tiny_model(promoted, "20260303T000000Z")
    earliest = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    lines = stream_once(spark, with_models(promoted))
    latest = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    assert any("forecast from model 20260303T000000Z" in line for line in lines), "\n".join(lines)
    forecasts = table(lake, "gold_forecasts")
    fresh = forecasts[forecasts["model_version"] == "20260303T000000Z"]
    assert set(fresh["origin"]) <= {earliest - timedelta(hours=1), latest - timedelta(hours=1)}
    assert len(fresh) == gold_history(lake).groupby(["level", "country", "product"], dropna=False).ngroups * 24


def test_sales_batches_are_published_while_a_forecast_runs(spark: SparkSession, lake: Settings, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The forecast refresh runs beside the micro-batches: with the refresh held at its start, the stream still
    publishes sales batches; released, the forecast is published and the stop is clean."""
    from spark_jobs import stream as stream_module

    models = tmp_path / "models"
    tiny_model(models, "20260404T000000Z")
    settings = lake.model_copy(update={
        "paths": lake.paths.model_copy(update={"models": str(models)}),
        "stream": lake.stream.model_copy(update={"trigger_seconds": 0.5})})
    started, release = threading.Event(), threading.Event()
    real_run_forecasts = stream_module.run_forecasts

    def held(*args: object, **kwargs: object) -> object:
        started.set()
        release.wait(180)
        return real_run_forecasts(*args, **kwargs)

    monkeypatch.setattr(stream_module, "run_forecasts", held)
    lines: list[str] = []
    stop = threading.Event()
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(run_stream(spark, settings, lines.append, stop)),
                              daemon=True)

    def sales_batch() -> int:
        return io.read_manifest(spark, lake.paths.lake).get("streams", {}).get("sales", {}).get("batch_id", -1)

    def wait_for(condition, what: str, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"no {what} after {seconds:g} s:\n" + "\n".join(lines)
            time.sleep(0.2)

    try:
        run_simulator(Path(settings.paths.landing), seconds=1, end_ms=None, rate=5, file_interval_seconds=1)
        runner.start()
        assert started.wait(180), "\n".join(lines)
        during = sales_batch()
        run_simulator(Path(settings.paths.landing), seconds=2, end_ms=None, rate=5, file_interval_seconds=1)
        wait_for(lambda: sales_batch() > during, "sales batch published during the forecast")
        assert not any("forecast from model 20260404T000000Z" in line for line in lines)
        release.set()
        wait_for(lambda: any("forecast from model 20260404T000000Z" in line for line in lines), "forecast")
    finally:
        release.set()
        stop.set()
        runner.join(120)
    assert codes == [0], "\n".join(lines)
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(ForecastRefresher.job_group)
    forecasts = table(lake, "gold_forecasts")
    series = gold_history(lake).groupby(["level", "country", "product"], dropna=False).ngroups
    # each refresh publishes every series x 24 hours; a slow machine may fit a second refresh in before the stop
    runs = forecasts[forecasts["model_version"] == "20260404T000000Z"].groupby("generated_at").size()
    assert len(runs) >= 1 and (runs == series * 24).all(), runs
