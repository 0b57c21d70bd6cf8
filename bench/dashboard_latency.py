"""The dashboard on 90 days of history (>= 10M silver events): server-side latency of the Overview's filter-change
callback (target p95 <= 150 ms), first full render in headless Chromium (target <= 1.5 s) and the dashboard
process's RSS (target <= 600 MB), beside the peer: a plain DuckDB filter + aggregate over the raw silver rows
for the same filters.

Usage: python bench/dashboard_latency.py [--days 90] [--rate 1.1] [--workdir data/bench/dashboard]
[--filters 50] [--loads 5]. Builds the lake with the real commands (`salespulse simulate`, then `salespulse
backfill` for sales and for inventory) unless WORKDIR/lake already holds one, starts `salespulse dashboard` as
a user does, and talks to it only over HTTP: the Overview's callback request, built from the app's
/_dash-dependencies as the renderer builds it, is replayed with ~50 different filters, each new to the server's
cache. Writes the 'dashboard' section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, publish

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dashboard.filters import ViewFilters, parse_query, period, to_query  # noqa: E402
from salespulse.kpi_report import SalesFilter, kpi_totals_over  # noqa: E402
from salespulse.lake import duckdb_scan  # noqa: E402
from salespulse.schema import COUNTRIES, DISCOUNT_BANDS, PRODUCTS, SEGMENTS  # noqa: E402

END = "2026-09-21T14:13:20Z"  # the other benches' end time
TARGET_P95_MS, TARGET_RENDER_S, TARGET_RSS_MB = 150, 1.5, 600
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BENCH_USER, BENCH_PASSWORD = "bench", "bench-password"  # an admin in the run's own users file
OVERVIEW_OUTPUT = "overview-kpis.children"
SYNC_OUTPUT = "filters-store.data"

# Injected before any page script: polls every 10 ms until every Overview graph holds traces, every KPI card
# shows a value and the top table has rows, then records performance.now() (ms since navigation start); also
# when Plotly.js (the partial bundle served from dashboard/assets) became available.
RENDERED_JS = """
(() => {
  const done = () => {
    const tab = document.getElementById('tab-content');
    if (!tab) return false;
    const graphs = tab.querySelectorAll('.js-plotly-plot');
    if (graphs.length < 5) return false;
    for (const g of graphs) if (!g.data || !g.data.length || !g.querySelector('.main-svg')) return false;
    const cards = document.querySelectorAll('[id*="kpi-value"]');
    if (cards.length < 7) return false;
    for (const c of cards) if (!c.textContent.trim()) return false;
    return tab.querySelectorAll('td.dash-cell').length > 0;
  };
  const timer = setInterval(() => {
    if (window.Plotly && !window.__plotlyMs) window.__plotlyMs = performance.now();
    if (done()) { window.__renderedMs = performance.now(); clearInterval(timer); }
  }, 10);
})();
"""


def salespulse(*args: str) -> float:
    """Run `salespulse ARGS` from this checkout; wall seconds."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "salespulse", *args], check=True, cwd=ROOT, env=_env())
    return time.perf_counter() - began


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable}


def build_lake(work: Path, days: float, rate: float) -> str:
    lake, landing = work / "lake", work / "landing"
    if (lake / "_manifest.json").exists():
        return f"not timed here: reused the lake already in {lake}, built with these three commands"
    simulate_s = salespulse("simulate", "--history-days", f"{days:g}", "--history-rate", f"{rate:g}", "--end", END,
                            "--out", str(landing), "--quiet")
    sales_s = salespulse("backfill", "--input", str(landing / "history" / "sales"), "--profile", "canonical",
                         "--lake", str(lake))
    stock_s = salespulse("backfill", "--input", str(landing / "history" / "inventory"), "--profile",
                         "canonical_inventory", "--lake", str(lake))
    return f"built in {simulate_s:,.0f} s (simulate) + {sales_s:,.0f} s + {stock_s:,.0f} s (backfills)"


# -- filters -------------------------------------------------------------------------------------------------
def filter_queries(n: int, newest: Any, first_day: date, seed: int = 7) -> list[str]:
    """``n`` different, realistic filter states as the filters store holds them (URL queries): presets and
    custom ranges, category picks, grains. None is the default view the page opens on."""
    rng = random.Random(seed)
    last_day = newest.date()
    default = to_query(ViewFilters(), newest)
    queries: list[str] = []

    def some(values: tuple[str, ...], chance: float) -> tuple[str, ...]:
        if rng.random() > chance:
            return ()
        return tuple(sorted(rng.sample(values, rng.randint(1, min(3, len(values) - 1))), key=values.index))

    while len(queries) < n:
        preset = rng.choice(["7d", "30d", "90d", "today", "last-hour", "custom", "custom", "custom"])
        start = end = None
        if preset == "custom":
            length = rng.choice([1, 2, 3, 7, 14, 21, 45, 60])
            start = first_day + timedelta(days=rng.randint(0, max((last_day - first_day).days - length, 0)))
            end = start + timedelta(days=length - 1)
        short = preset in ("today", "last-hour") or (start is not None and (end - start).days < 2)
        grain = rng.choice(["minute", "hour", "day"] if short else ["hour", "day", "day", "week", "month"])
        view = ViewFilters(preset, start, end, some(COUNTRIES, 0.5), some(SEGMENTS, 0.4), some(PRODUCTS, 0.4),
                           some(DISCOUNT_BANDS, 0.15), grain)
        query = to_query(view, newest)
        if query != default and query not in queries:
            queries.append(query)
    return queries


# -- the dashboard process -----------------------------------------------------------------------------------
class Dashboard:
    """`salespulse dashboard --lake LAKE --port P`, as a user starts it, with one admin (BENCH_USER) in its own
    users file; the HTTP client is logged in through the login form and keeps the session cookie."""

    def __init__(self, lake: Path, log: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        users = log.parent / "users.json"
        subprocess.run([sys.executable, "-m", "salespulse", "users", "add", BENCH_USER, "--admin", "--password-stdin",
                        "--users-file", str(users)], input=BENCH_PASSWORD.encode(), check=True, cwd=ROOT, env=_env(),
                       stdout=subprocess.DEVNULL)
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "salespulse", "dashboard", "--lake", str(lake), "--port", str(self.port)],
                cwd=ROOT, env={**_env(), "SALESPULSE_AUTH__USERS_FILE": str(users)}, stdout=out,
                stderr=subprocess.STDOUT)
        self.client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "login", timeout=5).read()
                form = urllib.parse.urlencode({"username": BENCH_USER, "password": BENCH_PASSWORD}).encode()
                self.client.open(self.url + "login", data=form, timeout=30).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dashboard did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)

    def post(self, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """One callback request; (wall seconds, response JSON)."""
        request = urllib.request.Request(self.url + "_dash-update-component", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        began = time.perf_counter()
        with self.client.open(request, timeout=120) as response:
            payload = response.read()
        seconds = time.perf_counter() - began
        return seconds, json.loads(payload)

    def dependencies(self) -> list[dict[str, Any]]:
        with self.client.open(self.url + "_dash-dependencies", timeout=30) as response:
            return json.loads(response.read())

    def memory(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB of the dashboard process."""
        rss = psutil.Process(self.proc.pid).memory_info().rss / 1e6
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) * 1024 / 1e6
        return rss, peak

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


# -- the browser ---------------------------------------------------------------------------------------------
def start_chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1600,1200"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@dataclass
class Load:
    seconds: float
    plotly_seconds: float  # when Plotly.js was ready
    requests: list[dict[str, Any]]  # the callback requests the page sent (bodies from the network log)


def browser_load(url: str, tmp: Path, index: int) -> Load:
    """One page load in a fresh browser profile, logged in through the form first (untimed): seconds from
    navigation start to a fully drawn Overview."""
    from selenium.webdriver.common.by import By

    profile = tmp / f"profile-{index}"
    driver = start_chromium(profile)
    try:
        base = url.split("?")[0]
        driver.get(base + "login?next=/login")  # back to the light login page: the timed load starts cold
        driver.find_element(By.ID, "username").send_keys(BENCH_USER)
        driver.find_element(By.ID, "password").send_keys(BENCH_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        deadline = time.monotonic() + 30
        while driver.get_cookie("salespulse_session") is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not log in to {base} as {BENCH_USER}")
            time.sleep(0.05)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RENDERED_JS})
        driver.get(url)
        deadline = time.monotonic() + 120
        while (rendered := driver.execute_script("return window.__renderedMs || null;")) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Overview of {url} did not finish drawing in 120 s")
            time.sleep(0.05)
        if "Could not read" in driver.page_source:
            raise RuntimeError(f"the dashboard showed a read warning for {url}")
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            req = message.get("params", {}).get("request", {})
            if (message["method"] == "Network.requestWillBeSent"
                    and "_dash-update-component" in req.get("url", "") and req.get("postData")):
                requests.append(json.loads(req["postData"]))
        plotly = driver.execute_script("return window.__plotlyMs || null;") or rendered
        return Load(rendered / 1000, plotly / 1000, requests)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def renderer_body(dependencies: list[dict[str, Any]], output: str, values: dict[str, Any],
                  changed: list[str]) -> dict[str, Any]:
    """The request the Dash renderer sends for the callback with ``output`` among its outputs, built from the
    app's /_dash-dependencies as the renderer builds it, with ``values`` for its inputs and states (by id): for
    the callbacks a page load no longer sends (the Overview arrives filled in the layout)."""
    dependency = next(d for d in dependencies if output in d["output"])

    def prop(spec: str) -> dict[str, Any]:
        ident, name = spec.rsplit(".", 1)
        return {"id": json.loads(ident) if ident.startswith("{") else ident, "property": name}

    outputs = [prop(s) for s in dependency["output"].strip(".").split("...")]
    return {"output": dependency["output"],
            "outputs": outputs if dependency["output"].startswith("..") else outputs[0],  # one output: not a list
            "inputs": [{**i, "value": values.get(i["id"])} for i in dependency["inputs"]],
            "state": [{**s, "value": values.get(s["id"])} for s in dependency["state"]],
            "changedPropIds": changed}


def captured(loads: list[Load], output: str) -> dict[str, Any]:
    """The last body the browser sent for the callback with ``output`` among its outputs."""
    bodies = [b for load in loads for b in load.requests if output in b.get("output", "")]
    if not bodies:
        raise RuntimeError(f"no browser request for {output} in the network log")
    return bodies[-1]


def with_filters(template: dict[str, Any], query: str) -> dict[str, Any]:
    """The browser's Overview request with another filters-store value (what a filter change sends)."""
    body = json.loads(json.dumps(template))
    for item in body["inputs"]:
        if item["id"] == "filters-store":
            item["value"] = query
    body["changedPropIds"] = ["filters-store.data"]
    return body


def url_change(template: dict[str, Any], query: str) -> dict[str, Any]:
    """The browser's filter-sync request after the URL's query changed (a pasted link or a cross-filter click)."""
    body = json.loads(json.dumps(template))
    for item in body["inputs"]:
        if item["id"] == "url" and item["property"] == "search":
            item["value"] = query
    body["changedPropIds"] = ["url.search"]
    return body


def check_overview(response: dict[str, Any], query: str) -> None:
    """The reply must hold the cards and figures, not the read-failure warning."""
    text = json.dumps(response)
    if "Could not read" in text or "overview-kpis" not in text:
        raise RuntimeError(f"the Overview callback failed for {query}: {text[:500]}")


# -- the peer ------------------------------------------------------------------------------------------------
PEER_SQL = """SELECT count(*) AS orders, sum(units_sold) AS units_sold, sum(gross_sales) AS gross_sales,
                     sum(discounts) AS discounts, sum(sales) AS sales, sum(cogs) AS cogs, sum(profit) AS profit,
                     min(event_time) AS first_event, max(event_time) AS last_event
              FROM {silver} WHERE {condition}"""


def peer(silver: str, where: SalesFilter) -> tuple[float, tuple[Any, ...]]:
    """Plain DuckDB over the raw silver events: filter + aggregate the Overview's totals, fresh connection."""
    condition, params = where.condition("event_time")
    began = time.perf_counter()
    row = duckdb.connect().execute(PEER_SQL.format(silver=silver, condition=condition), params).fetchone()
    return time.perf_counter() - began, row


# -- the run -------------------------------------------------------------------------------------------------
def stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms) + 0.5) - 1))]  # nearest rank
    return {"p50": statistics.median(ms), "p95": p95, "max": ms[-1], "mean": statistics.fmean(ms), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--rate", type=float, default=1.1, help="history sales events per second")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench" / "dashboard")
    parser.add_argument("--filters", type=int, default=50, help="filter combinations to time")
    parser.add_argument("--loads", type=int, default=5, help="browser loads per case")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    lake_note = build_lake(args.workdir, args.days, args.rate)
    lake = args.workdir / "lake"

    silver = duckdb_scan(lake, "silver_sales")
    gold = duckdb_scan(lake, "gold_sales_hourly")
    con = duckdb.connect()
    silver_rows, first_event = con.execute(f"SELECT count(*), min(event_time) FROM {silver}").fetchone()
    gold_rows, newest = con.execute(f"SELECT count(*), max(hour) FROM {gold}").fetchone()
    silver_files, gold_files = silver.count(".parquet'"), gold.count(".parquet'")
    queries = filter_queries(args.filters, newest, first_event.date())
    default_url = "?range=30d&grain=day"
    fresh_urls = filter_queries(args.filters + args.loads, newest, first_event.date(), seed=11)[-args.loads:]

    with LoadWatch() as load, tempfile.TemporaryDirectory(prefix="salespulse-dashbench-") as tmp:
        started = time.perf_counter()
        app = Dashboard(lake, args.workdir / "dashboard.log")
        start_s = time.perf_counter() - started
        try:
            # First renders: the default view (load 1 on a just-started server, then from its cache) and views
            # no one opened before (every query of the callback a cache miss).
            default_loads = [browser_load(app.url + default_url, Path(tmp), i) for i in range(args.loads)]
            fresh_loads = [browser_load(app.url + q, Path(tmp), 100 + i) for i, q in enumerate(fresh_urls)]
            sync = captured(default_loads, SYNC_OUTPUT)
            overview = renderer_body(app.dependencies(), OVERVIEW_OUTPUT,
                                     {"filters-store": to_query(parse_query(default_url), newest)},
                                     ["filters-store.data"])

            miss, hit, chain = [], [], []
            for query in queries:  # each filter new to the server: every query of the callback misses the cache
                sync_s, _ = app.post(url_change(sync, query))
                seconds, response = app.post(with_filters(overview, query))
                check_overview(response, query)
                miss.append(seconds)
                chain.append(sync_s + seconds)
            for query in queries:  # the same filters again: served from the per-version cache
                seconds, response = app.post(with_filters(overview, query))
                check_overview(response, query)
                hit.append(seconds)
            rss_mb, peak_mb = app.memory()
        finally:
            app.stop()

        peer(silver, period(parse_query(default_url), newest))  # warm-up, untimed (file metadata, page cache)
        peer_s, mismatches = [], []
        for query in queries:
            where = period(parse_query(query), newest)
            seconds, row = peer(silver, where)
            peer_s.append(seconds)
            # what the cards show, from gold (sums only: items per hour is not compared, so no coverage)
            kpis = kpi_totals_over(duckdb.connect(), gold, None, None, where, coverage=None)
            gold_orders = int(kpis["orders"].iloc[0]) if len(kpis) else 0
            gold_sales = float(kpis["sales"].iloc[0]) if len(kpis) else 0.0
            if row[0] != gold_orders or abs(float(row[4] or 0) - gold_sales) > 0.01:  # silver sums are Decimals
                mismatches.append(f"{query}: silver {row[0]} orders / {row[4]} vs gold {gold_orders} / {gold_sales}")
    if mismatches:
        raise RuntimeError("peer and dashboard disagree:\n" + "\n".join(mismatches))

    results = {
        "silver_rows": silver_rows, "silver_files": silver_files, "gold_rows": gold_rows,
        "gold_files": gold_files, "newest": str(newest),
        "start_s": start_s, "miss": stats_ms(miss), "hit": stats_ms(hit), "chain": stats_ms(chain),
        "peer": stats_ms(peer_s), "rss_mb": rss_mb, "peak_mb": peak_mb,
        "default_loads": [x.seconds for x in default_loads], "fresh_loads": [x.seconds for x in fresh_loads],
        "plotly_ready": [x.plotly_seconds for x in default_loads + fresh_loads],
        "queries": queries, "fresh_urls": fresh_urls,
        # where the p95 comes from: each filter state's cache-miss time, slowest first
        "miss_by_state_ms": sorted(({"query": q, "ms": round(s * 1000, 1)} for q, s in zip(queries, miss, strict=True)),
                                   key=lambda state: -state["ms"]),
    }
    for state in results["miss_by_state_ms"][:5]:
        print(f"slowest cache miss: {state['ms']:,.0f} ms {state['query']}")
    (args.workdir / "dashboard_latency.json").write_text(json.dumps(results, indent=2))
    publish("dashboard", body(results, args, lake_note, load.summary()))


def body(r: dict[str, Any], args: argparse.Namespace, lake_note: str, load: str) -> str:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def row(name: str, s: dict[str, float]) -> str:
        return f"| {name} | {s['p50']:,.0f} | {s['p95']:,.0f} | {s['max']:,.0f} |"

    default, fresh = r["default_loads"], r["fresh_loads"]
    best = min(default + fresh)
    median_default, median_fresh = statistics.median(default), statistics.median(fresh)
    miss, peer_ = r["miss"], r["peer"]
    loads = ", ".join(f"{s:.2f}" for s in default)
    fresh_loads = ", ".join(f"{s:.2f}" for s in fresh)
    return f"""
## Dashboard latency (`bench/dashboard_latency.py`, {r['silver_rows']:,} silver events over {args.days:g} days)

Lake: `salespulse simulate --history-days {args.days:g} --history-rate {args.rate:g} --end {END}`, then
`salespulse backfill` for sales (profile `canonical`) and inventory (`canonical_inventory`) ({lake_note});
silver_sales {r['silver_rows']:,} rows in {r['silver_files']} Parquet files, gold_sales_hourly
{r['gold_rows']:,} rows in {r['gold_files']} files, newest hour {r['newest']}. The app runs as
`salespulse dashboard --lake ...` (Flask's
threaded server, one process; started in {r['start_s']:.1f} s) and is driven over HTTP only. Load average during
the run: {load}.

**Server side.** The Overview's tab callback (cards, five charts, top table: the callback a filter change runs)
replayed from the request body the renderer sends (built from the app's `/_dash-dependencies`; the filter sync's
body is the one Chromium sent, from its network log) with {len(r['queries'])} different
filter states (presets 7d/30d/90d/today/last-hour and custom ranges of 1-60 days; 0-3 countries, segments,
products, discount bands; minute to month grains), each new to the server, so every query of the callback
misses the per-version cache (the data version does not change). Wall time per request at the client, ms:

| case | p50 | p95 | max |
| --- | --- | --- | --- |
{row("**filter change, first time (cache miss)**", miss)}
{row("same + the filter-sync callback before it (URL change -> filters store)", r["chain"])}
{row("same filters again (cached)", r["hit"])}
{row("**peer: plain DuckDB filter + aggregate over raw silver**, same filters, fresh connection", peer_)}

| measure | value |
| --- | --- |
| **p95, filter change (cache miss)** | **{miss['p95']:,.0f} ms** (target <= {TARGET_P95_MS} ms: \
{met(miss['p95'] <= TARGET_P95_MS)}) |
| ratio dashboard callback / peer, p50 and p95 | **{miss['p50'] / peer_['p50']:.2f}x** and \
**{miss['p95'] / peer_['p95']:.2f}x** (below 1: faster than the one plain query) |
| **first full render**, headless Chromium, default view (`{'?range=30d&grain=day'}`) | best **{min(default):.2f} s**, \
median **{median_default:.2f} s** (loads: {loads}; the first on a just-started server) |
| first full render, views not opened before (cache miss on the server) | best {min(fresh):.2f} s, median \
{median_fresh:.2f} s (loads: {fresh_loads}) |
| first full render vs target | best {best:.2f} s, worst median {max(median_default, median_fresh):.2f} s \
(target <= {TARGET_RENDER_S} s: {met(max(median_default, median_fresh) <= TARGET_RENDER_S)}) |
| of which: Plotly.js ready (the 1.3 MB finance partial bundle, a page asset, parsed) | median \
{statistics.median(r['plotly_ready']):.2f} s after navigation start |
| **dashboard process RSS** after all runs / peak | **{r['rss_mb']:,.0f} MB** / {r['peak_mb']:,.0f} MB \
(target <= {TARGET_RSS_MB} MB: {met(r['peak_mb'] <= TARGET_RSS_MB)}) |

First full render: navigation start (`performance.now()` in the page) to every Overview chart holding traces,
every KPI card showing a value and the top table holding rows (a script injected before the page's own polls
every 10 ms); a fresh Chromium and user-data dir per load (`--headless=new`, Debian's chromium and
chromedriver). The peer computes only the card totals (one query; the callback also computes the previous
period, customers, four breakdowns and the trend), and its totals equal the dashboard's (from gold) for every
filter, checked in the run.

Where the time goes now: the slowest filter changes are 90-day periods at hour grain, whose trend reads the
period's hourly gold files (the sales column only); the other queries (cards of the period and of the previous
one, customers from the per-version bitsets, the breakdowns, months) run beside it on a 4-thread pool, and
figures and their JSON take a few ms (time axes are encoded as text in one step). Each filter state's time is in
`miss_by_state_ms` of the JSON result. The per-version tables are built by the first request after a publish
(not timed here: the data version does not change during the run). In the browser: the scripts (plotly.js'
1.3 MB finance partial bundle the largest) are parsed, then `_dash-layout`, which holds the Overview already
filled for the page's address (cards, charts, top table) and the current data version, then the lazily loaded
component code (graph, table, dropdowns) and Plotly drawing five charts: no callback round trip comes before
the charts (the filter sync and the header refresh run beside them).
"""


if __name__ == "__main__":
    main()
