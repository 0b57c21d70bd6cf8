"""The stream as a real process, killed with SIGKILL several times while files keep landing, then restarted
from its checkpoint: silver, gold and quarantine hold every landed row exactly once (checked with pandas and
DuckDB on the landed files). Also: SIGTERM finishes the running batch and exits 0."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from salespulse.lake import MANIFEST, STATUS, duckdb_scan
from salespulse.settings import SimulatorSettings
from salespulse.simulator.run import simulate
from tests.conftest import read_landing
from tests.unit.salespulse.test_simulator import valid_mask

pytestmark = pytest.mark.slow


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update({
        "SALESPULSE_PATHS__LANDING": str(tmp_path / "landing"), "SALESPULSE_PATHS__LAKE": str(tmp_path / "lake"),
        "SALESPULSE_PATHS__CHECKPOINTS": str(tmp_path / "checkpoints"),
        "SALESPULSE_PATHS__ARCHIVE": str(tmp_path / "archive"),
        "SALESPULSE_STREAM__PROCESSED_FILES": "archive", "SALESPULSE_STREAM__COMPACT_EVERY_BATCHES": "3",
        "SALESPULSE_SPARK__MASTER": "local[2]", "SALESPULSE_SPARK__SHUFFLE_PARTITIONS": "2",
        "SALESPULSE_SPARK__DRIVER_MEMORY": "1g", "PYSPARK_PYTHON": sys.executable,
    })
    return env


def start_stream(tmp_path: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "salespulse", "stream", *args], env=environment(tmp_path),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def published_batch(lake: Path) -> int:
    try:
        return json.loads((lake / MANIFEST).read_text())["streams"]["sales"]["batch_id"]
    except (FileNotFoundError, KeyError):
        return -1


def wait_for_batch_after(lake: Path, batch: int, proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        if (current := published_batch(lake)) > batch:
            return current
        time.sleep(0.2)
    raise AssertionError(f"no batch published after {batch} within 180 s:\n{log.read_text()[-3000:]}")


def parquet(lake: Path, table: str) -> str:
    scan = duckdb_scan(lake, table)
    assert scan is not None, f"{table} is empty in {lake}"
    return scan


def test_stream_survives_repeated_kill_9_exactly_once(tmp_path: Path) -> None:
    landing, lake, log = tmp_path / "landing", tmp_path / "lake", tmp_path / "stream.log"
    landing.mkdir()
    stop_simulator = threading.Event()
    simulator = threading.Thread(target=simulate, kwargs=dict(
        settings=SimulatorSettings(rate=100, bad_rows_pct=2, duplicate_pct=3, late_pct=3),
        out=landing, history_days=0, seconds=0, stop=stop_simulator, say=lambda _: None, progress=False))
    simulator.start()
    rng = random.Random(7)
    batch = -1
    try:
        for _ in range(3):
            proc = start_stream(tmp_path, log, "--trigger-seconds", "0.5")
            batch = wait_for_batch_after(lake, batch, proc, log)
            time.sleep(rng.uniform(0.0, 2.5))  # somewhere inside the next batch, or between two
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        stop_simulator.set()
        simulator.join(timeout=60)
    drain = start_stream(tmp_path, log, "--available-now")
    assert drain.wait(timeout=600) == 0, log.read_text()[-3000:]

    # Every landed file: those the stream archived and the last batch's files still in landing.
    raw = read_landing_all(tmp_path)
    valid = raw[valid_mask(raw)]
    unique = valid.drop_duplicates("order_id")
    con = duckdb.connect()
    silver = con.execute(f"SELECT count(*), count(DISTINCT order_id), round(sum(sales), 2) "
                         f"FROM {parquet(lake, 'silver_sales')}").fetchone()
    assert silver[0] == silver[1] == len(unique)
    assert round(silver[2] * 100) == round(unique["sales"].astype(float).sum() * 100)
    gold = con.execute(f"SELECT sum(orders), round(sum(sales), 2) FROM {parquet(lake, 'gold_sales_hourly')}").fetchone()
    assert gold[0] == len(unique) and round(gold[1] * 100) == round(silver[2] * 100)
    quarantine = con.execute(f"SELECT count(*), count(DISTINCT (source_file, row_number)) "
                             f"FROM {parquet(lake, 'quarantine_sales')}").fetchone()
    assert quarantine[0] == quarantine[1] == len(raw) - len(valid)
    state = json.loads((lake / MANIFEST).read_text())["streams"]["sales"]
    assert (state["rows_in"], state["rows_silver"], state["rows_quarantined"], state["rows_duplicate"]) == (
        len(raw), len(unique), len(raw) - len(valid), len(valid) - len(unique))
    assert "already published before a restart" in log.read_text() or state["batch_id"] >= batch


def read_landing_all(tmp_path: Path):  # returns a pandas DataFrame
    import pandas as pd

    folders = [tmp_path / "landing" / "sales", *sorted((tmp_path / "archive").rglob("sales"))]
    frames = [read_landing(f) for f in folders if f.is_dir() and any(f.glob("*.csv"))]
    return pd.concat(frames, ignore_index=True)


def test_stream_sigterm_finishes_the_running_batch(tmp_path: Path) -> None:
    landing, lake, log = tmp_path / "landing", tmp_path / "lake", tmp_path / "stream.log"
    simulate(SimulatorSettings(rate=1000, bad_rows_pct=0, duplicate_pct=0), landing, history_days=0, seconds=3,
             stop=threading.Event(), say=lambda _: None, progress=False)
    proc = start_stream(tmp_path, log)
    wait_for_batch_after(lake, -1, proc, log)
    # To the driver process only, as `kill PID`, `docker stop` or systemd's KillMode=mixed do: a SIGTERM to the
    # whole group would kill Spark's JVM under the running batch.
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "SIGTERM received, finishing the running batch" in text and "failed" not in text
    last_line = [line for line in text.splitlines() if line.startswith("stream sales batch")][-1]
    assert last_line.startswith(f"stream sales batch {published_batch(lake)}:")
    status = json.loads((lake / STATUS).read_text())
    assert status["events"]["sales"]["batch_id"] == published_batch(lake)
