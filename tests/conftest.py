"""Shared test helpers: simulator runs pinned in time, and an independent reader of landing files."""

from __future__ import annotations

import threading
from pathlib import Path

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


def run_simulator(out: Path, *, history_days: float = 0, seconds: float | None = None,
                  end_ms: int | None = END_MS, **settings: object) -> RunTotals:
    return simulate(SimulatorSettings(**settings), out, history_days=history_days, seconds=seconds,
                    stop=threading.Event(), say=lambda _: None, end_ms=end_ms, progress=False)


def read_landing(folder: Path) -> pd.DataFrame:
    """All CSV files of a folder as text, the way a careful analyst would read them: no type guessing, and
    'None' stays the discount band it is (PITFALLS 2)."""
    files = sorted(folder.glob("*.csv"))
    assert files, f"no CSV files in {folder}"
    frames = [
        pd.read_csv(f, dtype=str, keep_default_na=False).assign(file=f.name, row=lambda d: d.index + 2)
        for f in files
    ]
    return pd.concat(frames, ignore_index=True)
