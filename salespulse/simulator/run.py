"""Run the simulator: history in daily files, then (optionally) live files every interval.

Landing layout under ``out``: ``sales/`` and ``inventory/`` receive live files (the stream watches them);
``history/sales/`` and ``history/inventory/`` receive history (loaded by the batch backfill, because a file
stream silently skips files older than ``maxFileAge``). Every file is published by an atomic rename.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from salespulse.settings import SimulatorSettings
from salespulse.simulator.model import DAY_MS, Business
from salespulse.simulator.output import (
    customer_directory,
    inject_faults,
    inventory_table,
    order_ids,
    sales_table,
    write_csv_atomic,
)
from salespulse.storage import Storage, as_storage

LATE_SHIFT_MS = (2 * 60_000, 3 * 3_600_000)  # late events happened 2 min to 3 h before they land


@dataclass
class RunTotals:
    sales_rows: int = 0  # rows written, faults and duplicates included
    inventory_rows: int = 0
    sales_files: int = 0
    inventory_files: int = 0
    duplicates: int = 0
    late: int = 0
    faults: Counter = field(default_factory=Counter)

    def line(self, seconds: float) -> str:
        rate = self.sales_rows / seconds if seconds > 0 else 0.0
        bad = sum(self.faults.values())
        return (
            f"{self.sales_rows:,} sales rows ({rate:,.0f} rows/s), {self.inventory_rows:,} inventory rows, "
            f"{self.sales_files + self.inventory_files:,} files; injected {bad:,} bad, "
            f"{self.duplicates:,} duplicate, {self.late:,} late"
        )


class Simulation:
    """Carries the business state (stock, order sequence, held-back duplicates) from window to window."""

    def __init__(self, settings: SimulatorSettings, rate: float, run_tag: str):
        self.settings = settings
        self.business = Business(settings.seed, rate, settings.customers_per_country, settings.country_weights)
        self.rng = np.random.default_rng(settings.seed)
        self.stock = self.business.new_stock()
        self.run_tag = run_tag
        self.next_seq = 0
        self.held_duplicates: pa.Table | None = None
        self.totals = RunTotals()
        self.customers = customer_directory(self.business.population)

    def window(self, start_ms: int, end_ms: int, *, final: bool = False) -> tuple[list[pa.Table], pa.Table]:
        """Sales (as parts written one after the other into one file) and inventory events of
        ``[start_ms, end_ms)``."""
        demand, bounds, slice_of_row = self.business.generate_sales(self.rng, start_ms, end_ms)
        keep, inventory = self.business.apply_stock(self.rng, self.stock, demand, bounds, slice_of_row)
        sales = demand.take(np.nonzero(keep)[0])

        late = self.rng.random(len(sales)) < self.settings.late_pct / 100.0
        sales.event_ms[late] -= self.rng.integers(*LATE_SHIFT_MS, size=int(late.sum()))
        ids = order_ids(self.run_tag, self.next_seq, len(sales))
        self.next_seq += len(sales)
        table = sales_table(sales, ids, self.customers)
        faults = inject_faults(table, self.rng, self.settings.bad_rows_pct)

        # Duplicates re-send clean rows: half in the same file, half in the next one (across batches).
        clean = np.ones(table.num_rows, dtype=bool)
        clean[faults.rows] = False
        chosen = clean & (self.rng.random(table.num_rows) < self.settings.duplicate_pct / 100.0)
        duplicated = np.nonzero(chosen)[0]
        now_or_later = self.rng.random(len(duplicated)) < 0.5
        parts = [t for t in (self.held_duplicates, table.filter(clean), table.take(duplicated[now_or_later]))
                 if t is not None]
        self.held_duplicates = table.take(duplicated[~now_or_later])
        if final:
            parts.append(self.held_duplicates)
            self.held_duplicates = None
        # Corrupted rows are text, so they go last in the file, after the clean rows.
        parts.append(faults.table)

        self.totals.duplicates += len(duplicated)
        self.totals.late += int(late.sum())
        self.totals.faults.update(faults.by_kind)
        return parts, inventory_table(inventory)


def _stamp(ms: int) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms / 1000)) + f"{ms % 1000:03d}"


class Lander:
    """Publishes files on a writer thread, so the next window is generated while this one is written
    (Arrow's CSV writer releases the GIL). At most one write is in flight; :meth:`close` waits for it."""

    def __init__(self, out: Storage, totals: RunTotals, run_tag: str,
                 send: Callable[[str, list[pa.Table]], None] | None = None):
        self.out, self.totals, self.run_tag = out, totals, run_tag
        self.send = send  # e.g. an ApiPusher: batches go to it instead of into landing files
        self._file_seq = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lander")
        self._pending: Future | None = None

    def land(self, subdir: str, sales: list[pa.Table], inventory: pa.Table, end_ms: int) -> None:
        self._file_seq += 1
        suffix = f"{_stamp(end_ms)}-{self.run_tag}-{self._file_seq:06d}.csv"
        self.flush()
        self._pending = self._writer.submit(self._write, subdir, sales, inventory, suffix)

    def _write(self, subdir: str, sales: list[pa.Table], inventory: pa.Table, suffix: str) -> None:
        sales_rows = sum(t.num_rows for t in sales)
        if sales_rows:
            self._publish(subdir, "sales", sales, suffix)
            self.totals.sales_rows += sales_rows
            self.totals.sales_files += 1
        if inventory.num_rows:
            self._publish(subdir, "inventory", [inventory], suffix)
            self.totals.inventory_rows += inventory.num_rows
            self.totals.inventory_files += 1

    def _publish(self, subdir: str, event: str, tables: list[pa.Table], suffix: str) -> None:
        if self.send is not None:
            self.send(event, tables)
        else:
            write_csv_atomic(tables, self.out, f"{subdir}/{event}" if subdir else event, f"{event}-{suffix}")

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.result()  # re-raises a failed write here, in the main thread
            self._pending = None

    def close(self) -> None:
        self.flush()
        self._writer.shutdown()


def run_tag_for(seed: int, start_ms: int) -> str:
    """Run identifier in order ids and file names: unique per seed and start, stable for both."""
    return f"s{seed}-{start_ms // 1000:x}"


def write_history(
    sim: Simulation, lander: Lander, start_ms: int, end_ms: int, stop: threading.Event,
    say: Callable[[str], None], status_every_s: float, progress: bool = True,
) -> bool:
    """One sales and one inventory file per UTC day into ``history/``, with a progress bar on a terminal
    and a status line every ``status_every_s`` otherwise. Returns False if stopped early."""
    edges = [*range(start_ms, end_ms, DAY_MS), end_ms]
    began = time.perf_counter()
    next_status = began + status_every_s
    with tqdm(total=len(edges) - 1, unit="day", desc="history", disable=not progress, leave=False) as bar:
        for done, (lo, hi) in enumerate(itertools.pairwise(edges), start=1):
            if stop.is_set():
                return False
            sales, inventory = sim.window(lo, hi, final=hi == end_ms)
            lander.land("history", sales, inventory, hi)
            bar.update(1)
            if not progress and time.perf_counter() >= next_status:
                took = time.perf_counter() - began
                say(f"simulate: history {done}/{len(edges) - 1} days in {took:,.0f} s: {sim.totals.line(took)}")
                next_status += status_every_s
    lander.flush()
    return True


def run_live(
    sim: Simulation,
    lander: Lander,
    start_ms: int,
    seconds: float,
    interval_s: float,
    stop: threading.Event,
    status_every_s: float,
    say: Callable[[str], None],
    clock: Callable[[], float] = time.time,
) -> None:
    """Land one sales file (and an inventory file when stock moved) per interval, until ``seconds``
    have passed (0 = until stopped). A stop request finishes the file being written, never a half one."""
    interval_ms = round(interval_s * 1000)
    deadline = start_ms + round(seconds * 1000) if seconds > 0 else None
    window_start, next_status = start_ms, clock() + status_every_s
    while not stop.is_set() and (deadline is None or window_start < deadline):
        window_end = window_start + interval_ms if deadline is None else min(window_start + interval_ms, deadline)
        wait = window_end / 1000 - clock()
        if wait > 0 and stop.wait(wait):
            break
        sales, inventory = sim.window(window_start, window_end)
        lander.land("", sales, inventory, window_end)
        window_start = window_end
        if clock() >= next_status:
            elapsed = (window_end - start_ms) / 1000
            say(f"simulate: live {elapsed:,.0f} s: {sim.totals.line(elapsed)}")
            next_status += status_every_s


def simulate(
    settings: SimulatorSettings,
    out: Storage | Path,
    *,
    history_days: float,
    seconds: float | None,
    stop: threading.Event,
    say: Callable[[str], None],
    end_ms: int | None = None,
    progress: bool = True,
    send: Callable[[str, list[pa.Table]], None] | None = None,
) -> RunTotals:
    """History of ``history_days`` ending at ``end_ms`` (default: now), then live files for ``seconds``
    (``None``: until stopped, or no live run when history was asked for; 0: until stopped). With
    ``end_ms`` the live clock starts there too, so a pinned run is reproducible. With ``send`` every batch
    goes to it (e.g. the ingest API) instead of into files under ``out`` (a local folder or any Storage)."""
    out = as_storage(out)
    now_ms = end_ms if end_ms is not None else int(time.time() * 1000)
    tag = run_tag_for(settings.seed, now_ms)
    sim = Simulation(settings, settings.history_rate, tag)
    lander = Lander(out, sim.totals, tag, send)
    try:
        if history_days > 0:
            say(f"simulate: writing {history_days:g} days of history ({settings.history_rate:g} sales/s "
                f"weekly mean) to {out.url('history')}")
            began = time.perf_counter()
            finished = write_history(sim, lander, now_ms - round(history_days * DAY_MS), now_ms, stop, say,
                                     settings.status_every_seconds, progress)
            took = time.perf_counter() - began
            say(f"simulate: history {'done' if finished else 'stopped'} in {took:,.1f} s: {sim.totals.line(took)}")
            if not finished or seconds is None:
                return sim.totals
        history_sim, sim = sim, Simulation(settings, settings.rate, tag)
        # Live continues the history's customers and order sequence; its stock is sized for the live rate
        # and announced by a count at the live start, so stock on hand stays derivable from the events.
        sim.next_seq, sim.rng = history_sim.next_seq, history_sim.rng
        lander.totals = sim.totals
        run_for = seconds or 0
        live_start = now_ms if end_ms is not None else int(time.time() * 1000)
        factor = sim.business.demand_factor(live_start)
        where = "pushing live batches to the ingest API" if send else \
            f"landing live files in {out.url('sales')} and {out.url('inventory')}"
        say(f"simulate: {where} every "
            f"{settings.file_interval_seconds:g} s at {settings.rate:g} sales/s weekly mean (x{factor:.2f} now "
            "for hour of day, weekday and trend)" + (f" for {run_for:g} s" if run_for else " until Ctrl-C"))
        began = time.perf_counter()
        run_live(sim, lander, live_start, run_for, settings.file_interval_seconds, stop,
                 settings.status_every_seconds, say)
        lander.flush()
        took = time.perf_counter() - began
        say(f"simulate: live stopped after {took:,.1f} s: {sim.totals.line(took)}")
        return sim.totals
    finally:
        lander.close()
