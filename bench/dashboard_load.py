"""Load on the production server: SESSIONS concurrent logged-in sessions polling the dashboard every INTERVAL s for
MINUTES against gunicorn on loopback while the stream writes (issue 7, item 10; targets: p95 callback latency
<= 300 ms, 0 errors, memory stable).

Usage: python bench/dashboard_load.py [--sessions 50] [--minutes 5] [--interval 2] [--workers W] [--threads T]
[--history-days 3] [--rate 5] [--workdir data/bench/load] [--section load]. As `make demo` does, in WORKDIR (reset
each run): the simulator writes HISTORY_DAYS of history, `salespulse backfill` loads it, then the simulator lands live
files at RATE sales events/s and `salespulse stream` loads them while the dashboard runs under gunicorn
(`conf/gunicorn.conf.py`, WORKERS x THREADS). Users are added with `salespulse users add ... --password-stdin` in
the run's own users file; each session logs in with its own cookie jar (POST /login). A server without /login
(before login existed) is polled without logging in, and the report says so.

Each poll replays what an open page sends, with the request bodies the renderer builds from the app's
/_dash-dependencies (bench/dashboard_latency.py's `renderer_body`; one Chromium load first checks that the page
draws): the interval's data-version check and header refresh, and, when the
version changed, the filter sync and the Overview tab's update callback. Writes the 'load' section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dashboard_latency
from _report import LoadWatch, publish
from dashboard_latency import OVERVIEW_OUTPUT, SYNC_OUTPUT, browser_load, check_overview, renderer_body, stats_ms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dashboard import ids  # noqa: E402
from salespulse.cli import main as salespulse_cli  # noqa: E402
from salespulse.lake import MANIFEST, STATUS  # noqa: E402
from salespulse.settings import DashboardSettings  # noqa: E402

TARGET_P95_MS = 300
VERSION_OUTPUT = "data-version.data"
PAGE_QUERY = "range=30d&grain=day"  # the page every session has open
HEADER_OUTPUT = "header-freshness.children"
# Who logs in: half the sessions as an admin (every country), half as a France-only user (row-level security on
# every query). Once the login exists, dashboard_latency.browser_load signs Chromium in as its BENCH_USER admin.
ADMIN = getattr(dashboard_latency, "BENCH_USER", "bench"), getattr(dashboard_latency, "BENCH_PASSWORD", "")
USERS = ((ADMIN[0], ["--admin"]), ("bench-france", ["--countries", "France"]))


# -- processes -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_env(work: Path) -> dict[str, str]:
    """Every command of the run works inside WORKDIR, as `make demo` does inside data/demo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update(PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SALESPULSE_PATHS__LANDING=str(work / "landing"), SALESPULSE_PATHS__LAKE=str(work / "lake"),
               SALESPULSE_PATHS__CHECKPOINTS=str(work / "checkpoints"), SALESPULSE_PATHS__ARCHIVE=str(work / "archive"),
               SALESPULSE_PATHS__MODELS=str(work / "models"), SALESPULSE_AUTH__USERS_FILE=str(work / "users.json"),
               SALESPULSE_AUTH__SECRET_KEY=secrets.token_urlsafe(32))
    return env


def salespulse(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "salespulse", *args], check=True, cwd=ROOT, env=env,
                   input=stdin.encode() if stdin is not None else None)


def spawn(env: dict[str, str], log: Path, *cmd: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    """SIGTERM to the process (the stream and gunicorn finish what they are doing), SIGKILL to its group after."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def stream_batches(lake: Path) -> int:
    """Sales batches the stream has published into this lake (its batch id + 1), 0 before the first."""
    try:
        status = json.loads((lake / STATUS).read_text())
    except FileNotFoundError:
        return 0
    return int(status["events"].get("sales", {}).get("batch_id", -1)) + 1


def wait_for(check: Callable[[], bool], seconds: float, what: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a process exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {seconds:.0f} s")
        time.sleep(0.5)


def worker_rss_mb(master: subprocess.Popen[bytes]) -> list[float]:
    return sorted(child.memory_info().rss / 1e6 for child in psutil.Process(master.pid).children())


def duckdb_mb(url: str) -> float | None:
    """DuckDB's memory in the worker answering /metrics (loopback needs no token), MB; None if unreadable."""
    try:
        with urllib.request.urlopen(url + "metrics", timeout=30) as response:
            text = response.read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("salespulse_dashboard_duckdb_memory_bytes{")) / 1e6


def trend_mb_per_hour(samples: list[float]) -> tuple[float, float]:
    """Least-squares slope of one-minute samples over the second half of the run, MB per hour, and the half-width
    of its 95 % interval: an upward slope whose interval excludes 0 is growth, not noise."""
    half = np.asarray(samples[len(samples) // 2:], dtype=float)
    if len(half) < 3:
        return float("nan"), float("nan")
    minutes = np.arange(len(half), dtype=float)
    slope, intercept = np.polyfit(minutes, half, 1)
    residual = half - (slope * minutes + intercept)
    stderr = float(np.sqrt(residual @ residual / (len(half) - 2) / ((minutes - minutes.mean()) ** 2).sum()))
    return float(slope * 60), float(1.96 * stderr * 60)


# -- HTTP ----------------------------------------------------------------------------------------------------
def has_login(url: str) -> bool:
    """True when the server has a login page (a form with a password field), not only the Dash page."""
    try:
        with urllib.request.urlopen(url + "login", timeout=10) as response:
            return 'name="password"' in response.read().decode(errors="replace")
    except urllib.error.HTTPError:
        return False


def with_values(template: dict[str, Any], values: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    """The browser's request body with other values for some component ids (inputs and state) and the props
    that changed."""
    body = json.loads(json.dumps(template))
    for item in [*body.get("inputs", []), *body.get("state", [])]:
        if isinstance(item, dict) and item.get("id") in values:
            item["value"] = values[item["id"]]
    body["changedPropIds"] = changed
    return body


def published_at(version: str) -> float | None:
    """When a local lake's manifest of ``version`` was written (its version is "inode-size-mtime_ns"), epoch s."""
    try:
        return int(version.rsplit("-", 1)[1]) / 1e9
    except (IndexError, ValueError):
        return None


def page_bodies(dependencies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The requests an open page of PAGE_QUERY sends, as the renderer builds them; each poll fills in its values."""
    controls = {ids.URL: "?" + PAGE_QUERY, ids.PRESET: "30d", ids.GRAIN: "day", ids.COUNTRY: [], ids.SEGMENT: [],
                ids.PRODUCT: [], ids.BAND: []}
    return {"poll": renderer_body(dependencies, VERSION_OUTPUT, {}, []),
            "header": renderer_body(dependencies, HEADER_OUTPUT, {}, []),
            "sync": renderer_body(dependencies, SYNC_OUTPUT, controls, []),
            "overview": renderer_body(dependencies, OVERVIEW_OUTPUT, {}, [])}


@dataclass
class Results:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"version check": [], "header": [],
                                                                      "filter sync": [], "Overview update": []})
    errors: list[str] = field(default_factory=list)
    versions_seen: int = 0
    publish_to_page: list[float] = field(default_factory=list)  # s from a publish to a page being told of it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.seconds[kind].append(seconds)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


class Session:
    """One open page: its own cookie jar, logged in once, then the page's polls."""

    def __init__(self, url: str, results: Results):
        self.url, self.results = url, results
        self.bodies: dict[str, dict[str, Any]] = {}  # set by open_page once the app's callbacks are known
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.version: str | None = None  # a page just opened: its first poll loads the Overview
        self.query = "?" + PAGE_QUERY
        self.ticks = 0

    def dependencies(self) -> list[dict[str, Any]]:
        with self.opener.open(self.url + "_dash-dependencies", timeout=30) as response:
            return json.loads(response.read())

    def open_page(self, bodies: dict[str, dict[str, Any]]) -> None:
        self.bodies = bodies

    def login(self, user: str, password: str) -> None:
        form = urllib.parse.urlencode({"username": user, "password": password}).encode()
        with self.opener.open(self.url + "login", data=form, timeout=30) as response:  # follows the redirect
            if 'name="password"' in response.read().decode(errors="replace"):
                raise RuntimeError(f"login as {user} failed")

    def post(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
        request = urllib.request.Request(self.url + "_dash-update-component", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        began = time.perf_counter()
        with self.opener.open(request, timeout=60) as response:
            payload = response.read()
            status = response.status
        self.results.add(kind, time.perf_counter() - began)
        if status == 204:  # every output no_update
            return None
        return json.loads(payload)

    def poll(self) -> None:
        self.ticks += 1
        reply = self.post("version check", with_values(self.bodies["poll"], {"refresh-interval": self.ticks,
                                                                            "data-version": self.version},
                                                       ["refresh-interval.n_intervals"]))
        self.post("header", with_values(self.bodies["header"], {"refresh-interval": self.ticks},
                                        ["refresh-interval.n_intervals"]))
        new = (reply or {}).get("response", {}).get("data-version", {}).get("data")
        if new is None or new == self.version:
            return
        told, opened = time.time(), self.version is None  # a page's first version may be old: not a publish
        self.version = new
        with self.results.lock:
            self.results.versions_seen += 1
            published = published_at(new)
            if published is not None and not opened:
                self.results.publish_to_page.append(told - published)
        values = {"data-version": new, "filters-store": self.query}
        synced = self.post("filter sync", with_values(self.bodies["sync"], values, [VERSION_OUTPUT]))
        self.query = (synced or {}).get("response", {}).get("filters-store", {}).get("data", self.query)
        response = self.post("Overview update", with_values(self.bodies["overview"],
                                                             {"data-version": new, "filters-store": self.query},
                                                             [VERSION_OUTPUT]))
        check_overview(response or {}, self.query)

    def run(self, until: float, interval: float, rng: random.Random) -> None:
        next_at = time.monotonic() + rng.uniform(0, interval)  # open pages do not tick in step
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            try:
                self.poll()
            except Exception as err:  # counted, reported, and the session goes on like a page would
                self.results.error(f"{type(err).__name__}: {str(err)[:200]}")
            next_at += interval


# -- the run -------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--section", default="load", help="BENCHMARKS.md section to write (e.g. a long memory run)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between a session's polls")
    served = DashboardSettings()  # the production defaults of conf/default.yaml's dashboard section
    parser.add_argument("--workers", type=int, default=served.workers, help="gunicorn workers (dashboard.workers)")
    parser.add_argument("--threads", type=int, default=served.threads, help="threads per worker (dashboard.threads)")
    parser.add_argument("--history-days", type=float, default=3)
    parser.add_argument("--rate", type=float, default=5, help="live sales events per second while measuring")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench" / "load")
    args = parser.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = run_env(work)
    began = time.perf_counter()
    salespulse(env, "simulate", "--history-days", f"{args.history_days:g}", "--history-rate", "0.1", "--quiet")
    salespulse(env, "backfill", "--input", str(work / "landing" / "history" / "sales"), "--profile", "canonical")
    salespulse(env, "backfill", "--input", str(work / "landing" / "history" / "inventory"), "--profile",
               "canonical_inventory")
    setup_s = time.perf_counter() - began

    users = "users" in salespulse_cli.commands  # the login arrives with the auth branch (issue 7)
    passwords = {ADMIN[0]: ADMIN[1], USERS[1][0]: secrets.token_urlsafe(16)}
    if users:
        for name, rights in USERS:
            salespulse(env, "users", "add", name, *rights, "--password-stdin", stdin=passwords[name] + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    # Production mode off: its session cookies are Secure, which no client sends over plain-HTTP loopback.
    server_env = {**env, "SALESPULSE_DASHBOARD__PORT": str(port), "SALESPULSE_DASHBOARD__WORKERS": str(args.workers),
                  "SALESPULSE_DASHBOARD__THREADS": str(args.threads)}
    lake = work / "lake"
    procs: list[subprocess.Popen[bytes]] = []
    with LoadWatch() as load, tempfile.TemporaryDirectory(prefix="salespulse-loadbench-") as tmp:
        try:
            procs.append(spawn(env, work / "simulator.log", sys.executable, "-m", "salespulse", "simulate",
                               "--seconds", "0", "--rate", f"{args.rate:g}", "--quiet"))
            procs.append(spawn(env, work / "stream.log", sys.executable, "-m", "salespulse", "stream"))
            procs.append(server := spawn(server_env, work / "gunicorn.log", sys.executable, "-m", "gunicorn",
                                         "--config", "conf/gunicorn.conf.py", "dashboard.app:server"))
            wait_for(lambda: (lake / MANIFEST).exists() and _answers(url), 120, "answer from gunicorn", procs)
            wait_for(lambda: stream_batches(lake) > 0, 300, "first stream batch", procs)
            login = has_login(url)
            if users and not login:
                raise RuntimeError("`salespulse users` exists but the server has no login page")
            browser_load(url + "?" + PAGE_QUERY, Path(tmp), 0)  # the page draws under gunicorn, logged in

            results = Results()
            sessions = [Session(url, results) for _ in range(args.sessions)]
            if login:
                for index, session in enumerate(sessions):
                    name = USERS[index % len(USERS)][0]
                    session.login(name, passwords[name])
            bodies = page_bodies(sessions[0].dependencies())
            for session in sessions:
                session.open_page(bodies)
            rss_start = worker_rss_mb(server)
            batches_start = stream_batches(lake)
            until = time.monotonic() + args.minutes * 60
            threads = [threading.Thread(target=s.run, args=(until, args.interval, random.Random(i)), daemon=True)
                       for i, s in enumerate(sessions)]
            for thread in threads:
                thread.start()
            # once a minute: total RSS of the workers (growth that levels off is a cache filling) and DuckDB's part
            rss_by_minute: list[float] = []
            duckdb_by_minute: list[float | None] = []
            while time.monotonic() + 60 <= until:
                time.sleep(60)
                rss_by_minute.append(sum(worker_rss_mb(server)))
                duckdb_by_minute.append(duckdb_mb(url))
            for thread in threads:
                thread.join()
            rss_end = worker_rss_mb(server)
            batches = stream_batches(lake) - batches_start
        finally:
            for proc in reversed(procs):
                stop(proc)
    figures = {"sessions": args.sessions, "minutes": args.minutes, "interval": args.interval,
               "workers": args.workers, "threads": args.threads, "login": login, "setup_s": setup_s,
               "stats": {kind: stats_ms(values) for kind, values in results.seconds.items() if values},
               "all": stats_ms([s for values in results.seconds.values() for s in values]),
               "errors": len(results.errors), "first_errors": results.errors[:5], "versions": results.versions_seen,
               "publish_to_page": stats_ms(results.publish_to_page) if results.publish_to_page else None,
               "rss_start": rss_start, "rss_end": rss_end, "rss_by_minute": rss_by_minute,
               "duckdb_by_minute": duckdb_by_minute, "batches": batches,
               "rate": args.rate,
               "history_days": args.history_days}
    (work / "dashboard_load.json").write_text(json.dumps(figures, indent=2))
    publish(args.section, body(figures, load.summary()))


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except urllib.error.HTTPError:
        return True  # the app answered (401 to a client that is not logged in)
    except OSError:
        return False
    return True


def body(r: dict[str, Any], load: str) -> str:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def row(name: str, s: dict[str, float]) -> str:
        return f"| {name} | {s['n']:,} | {s['p50']:,.0f} | {s['p95']:,.0f} | {s['max']:,.0f} |"

    growth = sum(r["rss_end"]) / sum(r["rss_start"]) - 1 if r["rss_start"] else 0.0
    rss_minutes = " -> ".join(f"{v:,.0f}" for v in [sum(r["rss_start"]), *r.get("rss_by_minute", []),
                                                     sum(r["rss_end"])])
    rss = " / ".join(f"{a:,.0f} -> {b:,.0f}" for a, b in zip(r["rss_start"], r["rss_end"], strict=False))
    duckdb = " -> ".join("?" if v is None else f"{v:,.0f}" for v in r.get("duckdb_by_minute", [])) or "not sampled"
    slope, margin = trend_mb_per_hour(r.get("rss_by_minute", []))
    trend = (f"{slope:+,.1f} MB/h +- {margin:,.1f} (95 %) over minutes {len(r['rss_by_minute']) // 2 + 1}-"
             f"{len(r['rss_by_minute'])}: " + ("no growth beyond noise" if slope - margin <= 0 else "growing")
             if slope == slope else "run too short for a trend")
    dry = "" if r["sessions"] >= 50 and r["minutes"] >= 5 else (
        f"\n**Dry run** ({r['sessions']} sessions, {r['minutes']:g} min): fewer or shorter than the issue's 50 "
        "sessions x 5 minutes, so not the acceptance figures; `python bench/dashboard_load.py` gives those.\n")
    login = ("each session logged in (POST /login, its own cookie jar; half as an admin, half as a France-only "
             "user)" if r["login"] else "**without logging in: the server had no /login** (run before the login "
             "existed)")
    rows = "\n".join(row(kind, s) for kind, s in r["stats"].items())
    overview = r["stats"].get("Overview update")
    overview_p95 = f"{overview['p95']:,.0f} ms over {overview['n']} updates" if overview else "no update ran"
    errors = "; ".join(r["first_errors"]) or "none"
    told = r.get("publish_to_page")
    told = (f"{told['p50'] / 1000:,.1f} / {told['p95'] / 1000:,.1f} / {told['max'] / 1000:,.1f}" if told
            else "not measured")
    return f"""
## Dashboard under load (`bench/dashboard_load.py`, {r['sessions']} sessions x {r['minutes']:g} min)
{dry}
gunicorn (`conf/gunicorn.conf.py`, {r['workers']} workers x {r['threads']} threads, production mode off so the
session cookies travel over plain-HTTP loopback) over a small lake ({r['history_days']:g} day(s) of history at 0.1
events/s, backfilled in {r['setup_s']:.0f} s), while the simulator lands {r['rate']:g} sales events/s and
`salespulse stream` loads them ({r['batches']} sales batches published during the measurement). {r['sessions']}
sessions, {login}, each polling every {r['interval']:g} s as an open page does, sending the bodies the renderer
builds (from the app's `/_dash-dependencies`): the data-version check and the header refresh on every
tick, and when the version changed ({r['versions']:,} times over all sessions) the filter sync and the Overview
tab's update (cards, five charts, top table). Wall time per request at the client, ms.
Load average during the run: {load}.

| request | n | p50 | p95 | max |
| --- | --- | --- | --- | --- |
{rows}
{row("**all callback requests**", r["all"])}

| measure | value |
| --- | --- |
| **p95 callback latency** | **{r['all']['p95']:,.0f} ms** (target <= {TARGET_P95_MS} ms: \
{met(r['all']['p95'] <= TARGET_P95_MS)}) |
| p95 of the Overview update alone (runs only when the data changed) | {overview_p95} |
| **errors** | **{r['errors']}** (target 0: {met(r['errors'] == 0)}); first: {errors} |
| **RSS of the gunicorn workers**, start -> end, MB | {rss} ({growth:+.0%} in total) |
| RSS of the workers in total: start, each minute, end, MB | {rss_minutes} |
| **RSS trend over the second half** (least squares, one sample a minute) | **{trend}** |
| DuckDB memory of the worker (from /metrics), each minute, MB | {duckdb} |
| From a publish to a page's version check bringing it, s, p50 / p95 / max (polls every {r['interval']:g} s; \
the server holds a version back until its shared tables are built) | {told} |
"""


if __name__ == "__main__":
    main()
