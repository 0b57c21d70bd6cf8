"""Shared test helpers: the one SparkSession, simulator runs pinned in time, and an independent reader of landing
files."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from salespulse.settings import SimulatorSettings
from salespulse.simulator.run import RunTotals, simulate

# A fixed end time keeps every simulator run in the tests reproducible.
END_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z, a Monday


@pytest.fixture(autouse=True)
def _no_salespulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; a developer's SALESPULSE_* variables must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("SALESPULSE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One SparkSession for the whole test session (tests/spark and tests/dashboard): local[2], UI off,
    2 shuffle partitions, UTC. Imported lazily so tests that never ask for it start no JVM."""
    from salespulse.settings import SparkSettings
    from spark_jobs.session import build_session

    session = build_session(
        SparkSettings(master="local[2]", app_name="salespulse-tests", shuffle_partitions=2, driver_memory="1g")
    )
    yield session
    session.stop()


def run_simulator(out: Path, *, history_days: float = 0, seconds: float | None = None,
                  end_ms: int | None = END_MS, **settings: object) -> RunTotals:
    return simulate(SimulatorSettings(**settings), out, history_days=history_days, seconds=seconds,
                    stop=threading.Event(), say=lambda _: None, end_ms=end_ms, progress=False)


def read_landing(folder: Path) -> pd.DataFrame:
    """All CSV files of a folder as text, the way a careful analyst would read them: no type guessing, and
    'None' stays the discount band it is (pandas reads it as missing by default)."""
    files = sorted(folder.glob("*.csv"))
    assert files, f"no CSV files in {folder}"
    frames = [
        pd.read_csv(f, dtype=str, keep_default_na=False).assign(file=f.name, row=lambda d: d.index + 2)
        for f in files
    ]
    return pd.concat(frames, ignore_index=True)


def stock_from_events(inventory: pd.DataFrame, sales: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Stock on hand per (country, product), straight from the definition: the last count, plus restocks and
    adjustments at or after it, minus units sold at or after it. Series without a count are left out."""
    inventory = inventory.astype({"quantity": float}).assign(event_time=lambda d: pd.to_datetime(d["event_time"]))
    sales = sales.astype({"units_sold": float}).assign(event_time=lambda d: pd.to_datetime(d["event_time"]))
    stock = {}
    for (country, product), series in inventory.groupby(["country", "product"]):
        counts = series[series["kind"] == "count"].sort_values("event_time")
        if counts.empty:
            continue
        counted = counts.iloc[-1]
        after = series["event_time"] >= counted["event_time"]
        moves = series[(series["kind"] != "count") & after]["quantity"].sum()
        sold = sales[(sales["country"] == country) & (sales["product"] == product)
                     & (sales["event_time"] >= counted["event_time"])]["units_sold"].sum()
        stock[(country, product)] = counted["quantity"] + moves - sold
    return stock
