"""The stream's sustained rate and freshness at trigger 1 s, with the simulator running on the same machine,
beside Spark's raw CSV -> Parquet throughput on the same files (the ceiling).

Usage: python bench/stream_sustained.py [--rates 200,1000,4000] [--seconds 180] [--warmup 45] [--window-keys N]
[--section stream]. For each rate,
`salespulse stream` runs as its own process (local[2], as `make demo` runs it) while this process lands
simulator files for warm-up + measured seconds. Freshness is the stream's own per-batch figure: the time the
batch's gold was committed minus the landing time of its oldest file. A rate is sustained when the stream ends
the window with no backlog growth (everything landed during the window is processed within one batch after
it) and p95 freshness <= 3 s. Writes the 'stream' section of BENCHMARKS.md.

``--window-keys N`` first fills silver with N events spread over the lateness window (as hours of a stream at
a high rate leave it), so the batches' duplicate lookup works against that many keys.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, publish
from pyspark.sql import functions as F

from salespulse.profiles import load_profile
from salespulse.settings import SimulatorSettings, load_settings
from salespulse.simulator.run import simulate
from spark_jobs import io
from spark_jobs.backfill import run_backfill
from spark_jobs.session import build_session

LINE = re.compile(r"^stream sales batch (\d+): ([\d,]+) rows from (\d+) file\(s\) in ([\d.]+) s .*freshness ([\d.]+) s")
TARGET_FRESHNESS_S = 3.0
TARGET_RATE = 50_000
HEADER = ("| simulator rate | landed rows/s | processing rows/s | freshness p50 / p95 / max (s) | batch s p50 / p95 "
          "| batches | peak RSS MiB | p95 <= 3 s |\n| --- | --- | --- | --- | --- | --- | --- | --- |")


@dataclass
class Level:
    rate: float
    landed_rows: int = 0
    landed_seconds: float = 0.0
    batches: list[tuple[int, int, float, float]] = field(default_factory=list)  # id, rows, seconds, freshness
    peak_rss_mib: float = 0.0
    files: list[Path] = field(default_factory=list)
    stream_exit: int | None = None  # the stream's exit code when it ended by itself during the run (a failure)

    @property
    def processed_rows(self) -> int:
        return sum(rows for _, rows, _, _ in self.batches)

    def percentile(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (the Python driver and Spark's JVM). A child the JVM
    has forked to run a command (Hadoop's chmod, for one) shows the JVM's whole resident memory until it
    execs: counting it counted the JVM twice, so a descendant still running the JVM's own binary is left out."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue

    def binary(process: int) -> str:
        try:
            return os.readlink(f"/proc/{process}/exe")
        except OSError:
            return ""

    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        parent = binary(current)
        todo += [child for child in children.get(current, [])
                 if not (parent.endswith("/java") and binary(child) == parent)]
        try:
            found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{current}/status").read_text())
        except OSError:
            continue
        total += int(found.group(1)) / 1024 if found else 0
    return total


def fill_window(root: Path, keys: int) -> None:
    """Silver holding ``keys`` events with event times spread over the last ``allowed_lateness_hours``: copies
    of a few seconds of simulated sales (loaded by the backfill) under new order ids."""
    settings = load_settings(overrides={"spark.master": "local[2]", "paths.lake": str(root / "lake")})
    simulate(SimulatorSettings(rate=200, seed=7), root / "seed", history_days=0, seconds=3, stop=threading.Event(),
             say=lambda _: None, progress=False)
    spark = build_session(settings.spark)
    try:
        lake = settings.paths.lake
        now = datetime.now(timezone.utc)
        run_backfill(spark, settings, str(root / "seed" / "sales"), load_profile("canonical"), now, "seed",
                     lambda _: None)
        seed = io.read_table(spark, lake, "silver_sales")
        window_seconds = int(settings.stream.allowed_lateness_hours * 3600) - 60
        copies = (spark.range(keys).crossJoin(seed.limit(1).drop("order_id", "event_time", "event_date"))
                  .withColumn("order_id", F.concat(F.lit("window-"), F.col("id").cast("string")))
                  .withColumn("event_time", F.lit(now) - F.make_interval(secs=F.col("id") % window_seconds))
                  .withColumn("event_date", F.to_date("event_time"))
                  .select(*seed.columns))
        written = io.write_table_version(copies, lake, "silver_sales", "window-fill")
        io.update_manifest(spark, lake, lambda current: io.set_dirs(current, "silver_sales", written, []),
                           "window-fill")
    finally:
        spark.stop()


def run_level(rate: float, seconds: float, warmup: float, root: Path, window_keys: int) -> Level:
    level = Level(rate)
    if window_keys:
        fill_window(root, window_keys)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update({"SALESPULSE_PATHS__LANDING": str(root / "landing"), "SALESPULSE_PATHS__LAKE": str(root / "lake"),
                "SALESPULSE_PATHS__CHECKPOINTS": str(root / "checkpoints"),
                "SALESPULSE_PATHS__ARCHIVE": str(root / "archive"), "SALESPULSE_SPARK__MASTER": "local[2]",
                "PYSPARK_PYTHON": sys.executable})
    (root / "landing").mkdir(parents=True, exist_ok=True)
    log = (root / "stream.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "salespulse", "stream"], env=env, stdout=subprocess.PIPE,
                            stderr=log, text=True, start_new_session=True)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: [lines.append((time.monotonic(), line)) for line in proc.stdout],
                              daemon=True)
    reader.start()
    while not any("stream: watching" in line for _, line in lines):
        if proc.poll() is not None:
            raise SystemExit(f"the stream did not start; see {root / 'stream.log'}")
        time.sleep(0.2)
    stop = threading.Event()
    totals: dict[str, object] = {}

    def land() -> None:
        totals["run"] = simulate(SimulatorSettings(rate=rate), root / "landing", history_days=0,
                                 seconds=warmup + seconds, stop=stop, say=lambda _: None, progress=False)

    simulator = threading.Thread(target=land)
    simulator.start()
    started = time.monotonic()
    measured_from = started + warmup
    while simulator.is_alive():
        level.peak_rss_mib = max(level.peak_rss_mib, tree_rss_mib(proc.pid))
        time.sleep(1)
    ended = time.monotonic()
    time.sleep(10)  # the batch holding the last files
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=300)
    else:
        level.stream_exit = proc.returncode
        print(f"bench: the stream exited with code {proc.returncode} during the run; see {root / 'stream.log'}")
    log.close()
    level.files = sorted([*(root / "archive").rglob("sales-*.csv"), *(root / "landing" / "sales").glob("*.csv")])
    for seen, line in lines:
        match = LINE.match(line)
        if match and measured_from <= seen <= ended + 10:
            level.batches.append((int(match.group(1)), int(match.group(2).replace(",", "")),
                                  float(match.group(4)), float(match.group(5))))
    run = totals["run"]
    level.landed_seconds = ended - started
    level.landed_rows = run.sales_rows  # type: ignore[attr-defined]
    return level


def raw_ceiling(files: list[Path], out: Path) -> tuple[float, int]:
    """Spark reading the same CSV files as text and writing Parquet, best of two (the first warms up)."""
    settings = load_settings(overrides={"spark.master": "local[2]"})
    spark = build_session(settings.spark)
    try:
        best, rows = float("inf"), 0
        for attempt in range(2):
            frame = spark.read.option("header", True).option("multiLine", True).csv([f.as_posix() for f in files])
            begin = time.monotonic()
            frame.write.mode("overwrite").parquet(str(out / f"raw{attempt}"))
            best = min(best, time.monotonic() - begin)
        rows = spark.read.parquet(str(out / "raw1")).count()
        return best, rows
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,1000,4000", help="simulator rates (weekly-mean sales/s) to try")
    parser.add_argument("--seconds", type=float, default=180, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=45, help="seconds landed before measuring")
    parser.add_argument("--window-keys", type=int, default=0,
                        help="events in silver's lateness window before the stream starts (the dedupe lookup's size)")
    parser.add_argument("--section", default="stream", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    levels: list[Level] = []
    with LoadWatch() as load, tempfile.TemporaryDirectory(prefix="salespulse-stream-bench-") as tmp:
        for rate in [float(r) for r in args.rates.split(",")]:
            print(f"bench: stream at simulator rate {rate:g}/s for {args.warmup:g} + {args.seconds:g} s")
            level = run_level(rate, args.seconds, args.warmup, Path(tmp) / f"rate-{rate:g}", args.window_keys)
            levels.append(level)
            print(f"bench: {level.processed_rows:,} rows in {len(level.batches)} batches measured")
        biggest = max(levels, key=lambda lv: lv.landed_rows)
        ceiling_s, ceiling_rows = raw_ceiling(biggest.files, Path(tmp) / "ceiling")

    rows = []
    sustained = None
    for level in levels:
        freshness = [f for *_, f in level.batches]
        durations = [s for _, _, s, _ in level.batches]
        landed_rps = level.landed_rows / level.landed_seconds
        window = sum(s for s in durations) or 1.0
        p95 = level.percentile(freshness, 0.95)
        ok = p95 <= TARGET_FRESHNESS_S and level.stream_exit is None
        failed = f" (the stream failed, exit code {level.stream_exit})" if level.stream_exit is not None else ""
        if ok:
            sustained = level
        rows.append(
            f"| {level.rate:g} | {landed_rps:,.0f} | {level.processed_rows / window:,.0f} | "
            f"{statistics.median(freshness) if freshness else float('nan'):.1f} / {p95:.1f} / "
            f"{max(freshness, default=float('nan')):.1f} | "
            f"{statistics.median(durations) if durations else float('nan'):.1f} / "
            f"{level.percentile(durations, 0.95):.1f} | {len(level.batches)} | {level.peak_rss_mib:,.0f} | "
            f"{'yes' if ok else 'no'}{failed} |")
    ceiling_rps = ceiling_rows / ceiling_s
    best = max(levels, key=lambda lv: lv.processed_rows / (sum(s for _, _, s, _ in lv.batches) or 1))
    best_rps = best.processed_rows / (sum(s for _, _, s, _ in best.batches) or 1)
    verdict = (f"highest rate with p95 freshness <= {TARGET_FRESHNESS_S:g} s: simulator rate {sustained.rate:g}/s"
               if sustained else f"no rate tried kept p95 freshness <= {TARGET_FRESHNESS_S:g} s")
    met = sustained is not None and sustained.landed_rows / sustained.landed_seconds >= TARGET_RATE
    table = "\n".join(rows)
    window = (f" Before each rate, silver holds {args.window_keys:,} events spread over the lateness window, so "
              "every batch's duplicate lookup works against that many keys." if args.window_keys else "")
    flags = f" --window-keys {args.window_keys}" if args.window_keys else ""
    publish(args.section, f"""
## Stream sustained rate and freshness
(`bench/stream_sustained.py --rates {args.rates} --seconds {args.seconds:g}{flags}`)

`salespulse stream` (local[2], trigger 1 s, defaults of `conf/default.yaml`) as its own process while the
simulator lands a sales file per second from the benchmark process, {args.warmup:g} s warm-up then
{args.seconds:g} s measured per rate. Freshness: gold committed minus the landing time of the batch's oldest
file (the stream's own figure). Processing rate: rows of the measured batches / their summed durations.
Memory: peak RSS of the stream's Python driver + JVM. 1-minute load average during the run: {load.summary()}.{window}

{HEADER}
{table}

- **{verdict}**; target >= {TARGET_RATE:,} events/s at p95 <= 3 s: **{"met" if met else "NOT met"}**.
- Spark raw CSV -> Parquet ceiling on the same {len(biggest.files)} files ({ceiling_rows:,} rows, header + multiLine,
  all text, best of two in one warm session): {ceiling_s:,.1f} s, **{ceiling_rps:,.0f} rows/s**; the stream's best
  processing rate ({best_rps:,.0f} rows/s) is **{best_rps / ceiling_rps:.2f}x** of it.
""")


if __name__ == "__main__":
    main()
