"""Synthetic gold hourly sales with a planted pattern, and small, fast training settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salespulse.settings import ModelSettings

START = pd.Timestamp("2026-03-02")  # a Monday
LOCAL_OFFSET = {"USA": -5, "France": 1}
PRODUCT_SIZE = {"Velo": 400.0, "VTT": 150.0, "Paseo": 60.0}


def planted_hourly(days: int = 42, seed: int = 0) -> pd.DataFrame:
    """Gold-like rows: demand = size x hour-of-day profile (local time) x weekday profile, Poisson orders
    times a noisy ticket. Each hour arrives as two partial rows (as the stream writes them) to be summed."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(START, periods=24 * days, freq="h")
    frames = []
    for country, offset in LOCAL_OFFSET.items():
        local = hours + pd.Timedelta(hours=offset)
        daily = 0.15 + np.exp(-0.5 * ((local.hour.to_numpy() - 14) / 3.5) ** 2)
        weekly = np.where(local.dayofweek.to_numpy() >= 5, 0.4, 1.0)
        for product, size in PRODUCT_SIZE.items():
            orders = rng.poisson(size / 10 * daily * weekly)
            units = orders * 4.0
            sales = units * 10.0 * rng.normal(1.0, 0.05, len(hours)).clip(0.5)
            half = rng.uniform(0.2, 0.8, len(hours))
            for share in (half, 1 - half):
                frames.append(pd.DataFrame({"hour": hours, "country": country, "product": product,
                                            "sales": sales * share, "units_sold": units * share}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def small_settings() -> ModelSettings:
    return ModelSettings(validation_days=5, test_days=5, max_epochs=15, patience=3, batch_size=256,
                         mlp_hidden_units=[32], conv_filters=[8], conv_hidden_units=32,
                         trainings_per_candidate=1, max_minutes=2, threads=1,
                         tree_leaf_nodes=[15, 31], tree_max_iter=40, tree_max_rows=20_000)


def write_gold_lake(lake, hourly: pd.DataFrame) -> None:
    """A minimal published lake holding only gold_sales_hourly, laid out as the Spark jobs lay it out."""
    import json

    folder = lake / "gold" / "sales_hourly" / "dir=version-test"
    for date, rows in hourly.assign(event_date=hourly["hour"].dt.date.astype(str)).groupby("event_date"):
        part = folder / f"event_date={date}"
        part.mkdir(parents=True)
        rows.drop(columns="event_date").to_parquet(part / "part-0.parquet", index=False)
    (lake / "_manifest.json").write_text(json.dumps(
        {"version": 1, "tables": {"gold_sales_hourly": ["gold/sales_hourly/dir=version-test"]}}))


@pytest.fixture(scope="session")
def planted() -> pd.DataFrame:
    return planted_hourly()


@pytest.fixture(scope="session")
def trained(planted: pd.DataFrame, small_settings: ModelSettings):
    """One training on the planted history: (network, spec, metrics)."""
    from model.features import series_history
    from model.train import train_and_evaluate

    return train_and_evaluate(series_history(planted), small_settings, say=lambda _: None)
