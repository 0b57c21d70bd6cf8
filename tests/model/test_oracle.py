"""The oracle: the simulator's expected demand, from its parameters alone, scored as the noise floor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from salespulse.cli import main
from salespulse.schema import COUNTRIES, PRODUCTS
from salespulse.settings import SimulatorSettings, load_settings
from salespulse.simulator.model import DAY_MS, HOUR_MS, WEEK_MS, Business
from salespulse.simulator.oracle import expected_gold_hourly
from tests.model.conftest import write_gold_lake

SEED = 13


def _window_with_a_promotion(business: Business, hours: int) -> tuple[int, int, tuple[int, int]]:
    """A ``hours`` long window starting on the hour in which one series' promotion is running."""
    week = 2_900  # 2025-07
    starts = np.arange(week * WEEK_MS, (week + 1) * WEEK_MS, HOUR_MS)
    lift = business.promo_lift(starts + HOUR_MS // 2)
    first, country, product = np.argwhere(lift > 1.0)[0]
    start = int(starts[first])
    return start, start + hours * HOUR_MS, (int(country), int(product))


def test_oracle_is_the_mean_of_many_simulations_of_the_same_parameters() -> None:
    """Averaged over many independent draws of the demand (before stock limits), the realised sales and
    units per series converge to the oracle, which never sees a draw: it comes from the parameters."""
    business = Business(SEED, 5.0, 1000, SimulatorSettings().country_weights)
    start, end, promoted = _window_with_a_promotion(business, 12)
    starts, units, sales = business.expected_hourly(start, end)
    assert starts.tolist() == list(range(start, end, HOUR_MS))
    draws = 30
    realised_sales, realised_units = np.zeros_like(sales), np.zeros_like(units)
    for draw in range(draws):
        demand, _, _ = business.generate_sales(np.random.default_rng([99, draw]), start, end)
        hour = (demand.event_ms - start) // HOUR_MS
        np.add.at(realised_sales, (hour, demand.country, demand.product), demand.sales_cents / 100.0 / draws)
        np.add.at(realised_units, (hour, demand.country, demand.product), demand.units / draws)
    # Per series over the window: ~200k orders each, so the mean is within 1 % of the expectation.
    for realised, expected in ((realised_sales, sales), (realised_units, units)):
        ratio = realised.sum(axis=0) / expected.sum(axis=0)
        assert np.abs(ratio - 1).max() < 0.03, ratio
        assert np.abs(realised.sum(axis=(1, 2)) / expected.sum(axis=(1, 2)) - 1).max() < 0.03
    c, p = promoted
    lifted = business.promo_lift(starts + HOUR_MS // 2)[:, c, p] > 1.0
    # In the promotion's hours the oracle knows the lift and the deeper discounts.
    assert lifted.any()
    assert realised_sales[lifted, c, p].sum() / sales[lifted, c, p].sum() == pytest.approx(1.0, abs=0.05)


def test_oracle_follows_the_parameters_not_the_data() -> None:
    weights = SimulatorSettings().country_weights
    start = 2_900 * WEEK_MS
    base = Business(SEED, 2.0, 1000, weights).expected_hourly(start, start + DAY_MS)
    doubled = Business(SEED, 4.0, 1000, weights).expected_hourly(start, start + DAY_MS)
    np.testing.assert_allclose(doubled[2], 2 * base[2], rtol=1e-12)
    quarantined = Business(SEED, 2.0, 1000, weights).expected_hourly(start, start + DAY_MS, bad_rows_pct=10)
    np.testing.assert_allclose(quarantined[1], 0.9 * base[1], rtol=1e-12)
    other_seed = Business(SEED + 1, 2.0, 1000, weights).expected_hourly(start, start + DAY_MS)
    assert not np.allclose(other_seed[2], base[2])  # product mix and promotions belong to the seed
    # One cell by hand: orders = rate x seconds x country share x seasonality x product weight, times the
    # expected ticket outside promotions.
    business = Business(SEED, 2.0, 1000, weights)
    lift = business.promo_lift(np.array([start + HOUR_MS // 2]))[0]
    c, p = next((c, p) for c in range(len(COUNTRIES)) for p in range(len(PRODUCTS)) if lift[c, p] == 1.0)
    season = business.seasonality(np.array([start + HOUR_MS // 2]))[0, c]
    mean_units = 0.30 * 6 + 0.20 * 8 + 0.15 * 10 + 0.15 * 3 + 0.20 * 2 + 0.01
    ticket = (0.30 * 6.01 * (0.5 * 7 + 0.35 * 20 + 0.15 * 350) + 0.20 * 8.01 * 15 + 0.15 * 10.01 * 12
              + 0.15 * 3.01 * 125 + 0.20 * 2.01 * 300) * (1 - (0.25 * 0.02 + 0.20 * 0.07 + 0.10 * 0.12))
    orders = 2.0 * 3600 * business.country_share[c] * season * business.product_weights[c, p]
    assert base[1][0, c, p] == pytest.approx(orders * mean_units, rel=1e-9)
    assert base[2][0, c, p] == pytest.approx(orders * ticket, rel=1e-9)


def test_noise_free_history_scores_the_oracle_at_zero_through_train(tmp_path) -> None:
    """The simulator draws discrete orders, so it cannot write a noise-free history; the expectation itself
    is that history. Loaded as gold and trained on with --oracle-seed/--oracle-end, the oracle's test MAE is
    exactly 0 and the card shows the noise floor: the oracle lines up with the test hours and series."""
    config = tmp_path / "conf.yaml"
    config.write_text(f"simulator: {{seed: {SEED}, history_rate: 0.5}}\n"
                      "model: {validation_days: 2, test_days: 2, max_epochs: 2, mlp_hidden_units: [8], "
                      "conv_filters: [2], conv_hidden_units: 8, tree_leaf_nodes: [7], tree_max_iter: 10, "
                      "threads: 1}\n")
    end = "2026-05-20T14:13:20Z"
    end_ms = int(pd.Timestamp(end).value // 1_000_000)
    noise_free = expected_gold_hourly(load_settings(config).simulator, 0.5, end_ms - 21 * DAY_MS, end_ms)
    lake, registry = tmp_path / "lake", tmp_path / "models"
    write_gold_lake(lake, noise_free)
    result = CliRunner().invoke(main, ["--config", str(config), "train", "--lake", str(lake), "--registry",
                                       str(registry), "--quiet", "--oracle-seed", str(SEED), "--oracle-end", end])
    assert result.exit_code == 0, result.output
    version = next(p for p in registry.iterdir() if not p.name.startswith((".", "current")))
    metrics = json.loads((version / "metrics.json").read_text())
    for measure in ("sales", "units_sold"):
        assert metrics["overall"]["oracle"][measure]["mae"] == 0.0
    assert metrics["noise_floor"]["oracle_sales_mae"] == 0.0
    assert metrics["noise_floor"]["model_multiple_of_oracle"] is None
    assert "## Noise floor (simulated history)" in (version / "card.md").read_text()


def test_train_oracle_flags_go_together(tmp_path) -> None:
    result = CliRunner().invoke(main, ["train", "--lake", str(tmp_path), "--oracle-seed", "3"])
    assert result.exit_code == 2 and "--oracle-seed and --oracle-end go together" in result.output
