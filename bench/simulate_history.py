"""Simulator history throughput (target >= 500k rows/s), beside pandas' DataFrame.to_csv as the peer writer.

Usage: python bench/simulate_history.py [--days 90]. Writes the 'simulator' section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mib, publish

from salespulse.settings import load_settings
from salespulse.simulator.model import DAY_MS
from salespulse.simulator.output import write_csv_atomic
from salespulse.simulator.run import Simulation, simulate
from salespulse.storage import as_storage

END_MS = 1_790_000_000_000


def writer_comparison(days: int, out: Path) -> tuple[int, float, float]:
    """The same generated tables written by our Arrow writer and by pandas.to_csv."""
    settings = load_settings().simulator
    sim = Simulation(settings, settings.history_rate, "bench")
    tables = []
    for day in range(days):
        parts, _ = sim.window(END_MS + day * DAY_MS, END_MS + (day + 1) * DAY_MS)
        tables.append(parts)
    rows = sum(t.num_rows for parts in tables for t in parts)
    landing = as_storage(out)
    began = time.perf_counter()
    for i, parts in enumerate(tables):
        write_csv_atomic(parts, landing, "arrow", f"day-{i}.csv")
    arrow_s = time.perf_counter() - began
    frames = [pd.concat([p.to_pandas() for p in parts], ignore_index=True) for parts in tables]
    (out / "pandas").mkdir()
    began = time.perf_counter()
    for i, frame in enumerate(frames):
        frame.to_csv(out / "pandas" / f"day-{i}.csv", index=False)
    pandas_s = time.perf_counter() - began
    return rows, rows / arrow_s, rows / pandas_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--writer-days", type=int, default=7)
    args = parser.parse_args()
    settings = load_settings().simulator
    with tempfile.TemporaryDirectory(prefix="salespulse-bench-") as tmp:
        began = time.perf_counter()
        totals = simulate(settings, Path(tmp) / "landing", history_days=args.days, seconds=None,
                          stop=threading.Event(), say=lambda _: None, end_ms=END_MS, progress=False)
        took = time.perf_counter() - began
        rss = peak_rss_mib()
        size_mib = sum(p.stat().st_size for p in (Path(tmp) / "landing").rglob("*.csv")) / 2**20
        rows, arrow_rps, pandas_rps = writer_comparison(args.writer_days, Path(tmp))
    rate = totals.sales_rows / took
    publish("simulator", f"""
## Simulator history (`salespulse simulate --history-days {args.days:g}`)

| measure | value |
| --- | --- |
| sales rows written | {totals.sales_rows:,} (+ {totals.inventory_rows:,} inventory rows) |
| CSV written | {size_mib:,.0f} MiB in {totals.sales_files + totals.inventory_files} files |
| wall time | {took:,.1f} s |
| **throughput** | **{rate:,.0f} rows/s** (target >= 500,000: {"met" if rate >= 500_000 else "NOT met"}) |
| peak RSS | {rss:,.0f} MiB |

Writer alone, same {args.writer_days} generated days ({rows:,} rows) in the same run: Arrow CSV writer
{arrow_rps:,.0f} rows/s vs pandas `DataFrame.to_csv` {pandas_rps:,.0f} rows/s, ratio
**{arrow_rps / pandas_rps:.1f}x**.
""")


if __name__ == "__main__":
    main()
