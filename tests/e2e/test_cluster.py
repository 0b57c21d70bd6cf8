"""SalesPulse on a real Spark standalone cluster: a Master and a Worker as separate JVM processes on this
machine, the jobs submitted with plain `spark-submit --master spark://...`, and the lake they build compared
with the one the plain CLI builds from the same landed files on local[2]."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyspark
import pytest
import yaml

from salespulse.lake import MANIFEST, duckdb_scan
from tests.conftest import END_MS, read_landing, run_simulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent  # the pip wheel ships bin/spark-class and bin/spark-submit
PYTHON = sys.executable
APP_NAME = "salespulse-cluster-test"
COUNTERS = ("rows_in", "rows_silver", "rows_quarantined", "rows_duplicate", "files")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """This process's environment without settings or a PySpark gateway of its own, plus what every Spark
    process here needs: the wheel as SPARK_HOME, the venv's Python on driver and executors, loopback only,
    and JVM flags for speed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SALESPULSE_", "PYSPARK_GATEWAY_", "SPARK_", "JAVA_TOOL_OPTIONS"))}
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1", SPARK_DAEMON_MEMORY="512m",
               PYSPARK_PYTHON=PYTHON, PYSPARK_DRIVER_PYTHON=PYTHON,
               # Short-lived JVMs on 2 cores: the C1 compiler alone halves the run time (C2 never pays off).
               JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    return env


def spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A process in its own process group (so teardown also reaches the JVMs it starts), output to ``log``."""
    with log.open("wb") as handle:
        return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group, SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):  # members that outlived the leader (executors)
        os.killpg(proc.pid, signal.SIGKILL)


def tail(path: Path, chars: int = 6000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@dataclass
class Cluster:
    url: str
    webui: int
    work_dir: Path
    logs: tuple[Path, Path]

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui}/json/", timeout=5) as response:
            return json.loads(response.read())

    def describe(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{tail(log)}" for log in self.logs)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    port, webui, worker_webui = free_port(), free_port(), free_port()
    logs = (tmp_path / "master.log", tmp_path / "worker.log")
    work_dir = tmp_path / "worker-work"
    work_dir.mkdir()
    env = base_env()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    url = f"spark://127.0.0.1:{port}"
    procs = [spawn([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(port), "--webui-port", str(webui)], logs[0], env)]
    found = Cluster(url, webui, work_dir, logs)
    try:
        procs.append(spawn([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                            "--cores", "2", "--memory", "1g", "--webui-port", str(worker_webui),
                            "--work-dir", str(work_dir)], logs[1], env))
        deadline = time.monotonic() + 90
        while True:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                pytest.fail(f"a cluster process exited with code {dead[0].returncode}\n{found.describe()}")
            with contextlib.suppress(OSError, ValueError):
                state = found.state()
                if state.get("aliveworkers", len(state.get("workers", []))) >= 1:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"no worker registered with the master at {url} within 90 s\n{found.describe()}")
            time.sleep(0.5)
        yield found
    finally:
        for proc in reversed(procs):  # worker (and its executors) first, then the master
            stop_group(proc)


@dataclass
class Job:
    """A command running in its own process group, its output in files (pipes could fill up and block it)."""

    cmd: list[str]
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    began: float

    @classmethod
    def start(cls, cmd: list[str], env: dict[str, str], logs: Path, name: str) -> Job:
        logs.mkdir(exist_ok=True)
        out, err = logs / f"{name}.out", logs / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=ROOT, start_new_session=True)
        return cls(cmd, proc, out, err, time.monotonic())

    def finish(self, timeout: float = 300) -> str:
        """Wait for the command; fail with its output unless it exits 0. Returns stdout."""
        try:
            self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.began)))
        except subprocess.TimeoutExpired:
            stop_group(self.proc)
            pytest.fail(f"timed out after {timeout} s: {self.describe()}")
        with contextlib.suppress(ProcessLookupError):  # anything the command left behind in its group
            os.killpg(self.proc.pid, signal.SIGKILL)
        print(f"{time.monotonic() - self.began:6.1f} s  {self.out.stem}")  # shown on failure, or with -s
        assert self.proc.returncode == 0, f"exit code {self.proc.returncode}: {self.describe()}"
        return self.out.read_text()

    def describe(self) -> str:
        return f"{' '.join(self.cmd)}\nstdout:\n{tail(self.out, 4000)}\nstderr:\n{tail(self.err, 8000)}"


def run_steps(steps: list[tuple[str, list[str]]], env: dict[str, str], logs: Path) -> list[str]:
    """Commands one after the other; their stdouts."""
    return [Job.start(cmd, env, logs, name).finish() for name, cmd in steps]


def write_settings(tmp_path: Path, master: str) -> Path:
    settings = {
        "paths": {"landing": str(tmp_path / "landing"), "lake": str(tmp_path / "lake-cluster"),
                  "checkpoints": str(tmp_path / "checkpoints-cluster"), "archive": str(tmp_path / "archive"),
                  "models": str(tmp_path / "models")},
        "spark": {"master": master, "app_name": APP_NAME, "shuffle_partitions": 2, "driver_memory": "1g",
                  "log_level": "ERROR"},
        # Stock refreshed without waiting: the refresh at the end of the run sees all data, so gold_stock does
        # not depend on which of the two queries ran first.
        "stream": {"processed_files": "keep", "stock_refresh_seconds": 0, "compact_every_batches": 0},
    }
    path = tmp_path / "salespulse.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def land_inputs(landing: Path) -> None:
    """One day of history (for the backfill) and three seconds of live files (for the stream), pinned in
    time. Live events carry simulated times at END_MS, so each live file gets a landing time (mtime) just
    after its window, in name order: the stream judges lateness against it, identically in both runs
    (stream.allowed_lateness_hours is capped at 720 h, too little to accept events dated END_MS today)."""
    run_simulator(landing, history_days=1, seconds=3, end_ms=END_MS, history_rate=0.1, rate=200,
                  bad_rows_pct=3, duplicate_pct=3, late_pct=3)
    for kind in ("sales", "inventory"):
        for i, path in enumerate(sorted((landing / kind).glob("*.csv"))):
            landed = END_MS / 1000 + 60 + i
            os.utime(path, (landed, landed))


def duck(lake: Path, table: str, select: str) -> list[tuple[Any, ...]]:
    """``select`` over the committed directories of one table (the manifest's, not a folder listing)."""
    source = duckdb_scan(lake, table)
    assert source is not None, f"{table} is empty in {lake}"
    return duckdb.sql(select.replace("{t}", source)).fetchall()


def lake_figures(lake: Path) -> dict[str, Any]:
    return {
        "silver_sales": duck(lake, "silver_sales", "SELECT count(*), count(DISTINCT order_id), round(sum(sales), 2), "
                                                    "round(sum(profit), 2), round(sum(units_sold), 2) FROM {t}"),
        "quarantine_sales": duck(lake, "quarantine_sales",
                                 "SELECT reason, count(*) FROM {t} GROUP BY 1 ORDER BY 1"),
        "silver_inventory": duck(lake, "silver_inventory",
                                 "SELECT kind, count(*), round(sum(quantity), 2) FROM {t} GROUP BY 1 ORDER BY 1"),
        "gold_stock": duck(lake, "gold_stock", "SELECT country, product, round(stock_on_hand, 4), as_of "
                                               "FROM {t} ORDER BY 1, 2"),
    }


def stream_state(lake: Path) -> dict[str, Any]:
    return json.loads((lake / MANIFEST).read_text())["streams"]


def kpis(lake: Path, env: dict[str, str], logs: Path) -> list[dict[str, Any]]:
    job = Job.start([PYTHON, "-m", "salespulse", "kpis", "--lake", str(lake), "--json", "--by", "country"], env,
                    logs, f"kpis-{lake.name}")
    return json.loads(job.finish(timeout=120))


def same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative (Spark may add the same doubles in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-9)
    return bool(a == b)


def test_cluster_runs_match_local(cluster: Cluster, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land_inputs(landing)
    history = landing / "history" / "sales"
    config = write_settings(tmp_path, cluster.url)
    lake_a, lake_b = tmp_path / "lake-cluster", tmp_path / "lake-local"
    logs = tmp_path / "logs"

    # A: plain spark-submit against the standalone master; settings only through SALESPULSE_CONFIG.
    # B: the plain CLI on local[2], same settings file, master, lake and checkpoints from the environment.
    env_a = base_env() | {"SALESPULSE_CONFIG": str(config)}
    env_b = env_a | {"SALESPULSE_SPARK__MASTER": "local[2]", "SALESPULSE_PATHS__LAKE": str(lake_b),
                     "SALESPULSE_PATHS__CHECKPOINTS": str(tmp_path / "checkpoints-local")}
    submit = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.url, "--driver-memory", "1g"]
    cli = [PYTHON, "-m", "salespulse"]
    backfill_args = ["--input", str(history), "--profile", "canonical"]
    # Side by side: most of a small Spark job is latency, not CPU.
    with ThreadPoolExecutor(max_workers=2) as pool:
        on_cluster = pool.submit(run_steps, [
            ("backfill-cluster", [*submit, str(ROOT / "spark_jobs" / "backfill.py"), *backfill_args]),
            ("stream-cluster", [*submit, str(ROOT / "spark_jobs" / "stream.py"), "--available-now"]),
        ], env_a, logs)
        on_local = pool.submit(run_steps, [
            ("backfill-local", [*cli, "backfill", *backfill_args]),
            ("stream-local", [*cli, "stream", "--available-now"]),
        ], env_b, logs)
        backfill_a, stream_a = on_cluster.result()
        backfill_b, stream_b = on_local.result()

    # The cluster really ran both jobs: two finished applications of ours, with executors on our worker.
    deadline = time.monotonic() + 30
    while True:
        state = cluster.state()
        ours = [app for app in state.get("completedapps", []) if app.get("name") == APP_NAME]
        if len(ours) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(ours) == 2, f"completed applications: {state.get('completedapps')}\n{cluster.describe()}"
    assert not [app for app in state.get("activeapps", []) if app.get("name") == APP_NAME]
    app_dirs = sorted(d.name for d in cluster.work_dir.iterdir() if d.name.startswith("app-"))
    assert sorted(app["id"] for app in ours) == app_dirs, (app_dirs, ours)

    # Both runs read every landed row, and the cluster's lake equals the local one.
    report_a, report_b = (json.loads(out.strip().splitlines()[-1]) for out in (backfill_a, backfill_b))
    assert report_a["rows_in"] == len(read_landing(history)) > 5_000
    for report in (report_a, report_b):
        del report["run_id"], report["report_path"]
    assert same(report_a, report_b), (report_a, report_b)

    for out in (stream_a, stream_b):
        batches = [line for line in out.splitlines() if line.startswith("stream sales batch")]
        assert len(batches) == 1, out
        assert "already published" not in out
    state_a, state_b = stream_state(lake_a), stream_state(lake_b)
    for event in ("sales", "inventory"):
        assert state_a[event]["rows_in"] == len(read_landing(landing / event)) > 0
        figures_a = {k: state_a[event][k] for k in (*COUNTERS, "batch_id", "quarantined_by_reason")}
        figures_b = {k: state_b[event][k] for k in (*COUNTERS, "batch_id", "quarantined_by_reason")}
        assert figures_a == figures_b, (event, figures_a, figures_b)
    assert state_a["sales"]["rows_duplicate"] > 0 and state_a["sales"]["rows_quarantined"] > 0
    assert same(state_a["sales"]["silver_totals"], state_b["sales"]["silver_totals"])

    figures_a, figures_b = lake_figures(lake_a), lake_figures(lake_b)
    assert same(figures_a, figures_b), (figures_a, figures_b)
    count, distinct = figures_a["silver_sales"][0][:2]
    assert count == distinct == report_a["rows_silver"] + state_a["sales"]["rows_silver"]

    kpis_a, kpis_b = kpis(lake_a, env_a, logs), kpis(lake_b, env_b, logs)
    assert len(kpis_a) == 5 and sum(row["orders"] for row in kpis_a) == count
    assert same(kpis_a, kpis_b), (kpis_a, kpis_b)
