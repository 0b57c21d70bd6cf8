"""The stream's freshness at calibrated landed rates, beside Spark's own floor measured in the same run.

Usage: python bench/stream_sustained.py [--rates 2000,10000,28000] [--warmup 180] [--transition 20]
[--window 120] [--designs floor,product] [--section stream]

Each design runs alone on the machine as its own process (local[2], trigger 1 s), while the simulator lands files
as another process (one sales and one inventory file per second, as `salespulse simulate` does):

- ``floor``: Spark's own cost of a micro-batch here: ``readStream`` CSV (every column text) and a ``foreachBatch``
  that writes the rows to Parquet. No product code in the batch.
- ``product``: ``salespulse stream`` with its defaults (both event streams, stock refresh, compaction and
  publishing on).

The simulator's rate is a weekly mean that follows the hour of day, so each target rate (landed sales rows per
second) is first calibrated: a short simulator run measures landed rows per unit of rate now, then the rate is
set. The first rate is measured after ``--warmup`` seconds (the JVM's JIT keeps speeding batches up for minutes),
each following one after ``--transition`` seconds; each is measured for ``--window`` seconds.

Everything is read from what Spark itself records, the same way for both designs, so the measurement costs the
batches nothing: the checkpoint's offset log (batch start), commit log (batch end) and file-source log (each
file's landing time, its modification time) give batch time and freshness (batch committed minus the landing of
its oldest file); Spark's event log gives the jobs each batch ran (jobs carry their batch's id). Backlog growth:
files landed but not yet in a committed batch, at the window's end minus at its start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, publish

LIMITS_S = (3.0, 5.0)  # the freshness budgets reported: the highest rate whose p95 holds each
HEADER = ("| design | target rows/s | landed rows/s | freshness p50 / p95 / max (s) | batch p50 / p95 (s) "
          "| jobs per batch | batches | backlog growth (files) | p95 <= 3 s | p95 <= 5 s |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
READY = {"floor": "floor: watching", "product": "stream: watching"}


@dataclass
class Batch:
    batch_id: int
    started: float
    committed: float
    first_landed: float
    files: int
    jobs: int = 0

    @property
    def seconds(self) -> float:
        return self.committed - self.started

    @property
    def freshness(self) -> float:
        return self.committed - self.first_landed


@dataclass
class Window:
    target: float  # landed sales rows/s asked for
    rate: float  # the simulator rate set for it
    begin: float  # measured from (wall clock), after warm-up or transition
    end: float
    batches: list[Batch] = field(default_factory=list)
    landed_rows: int = 0
    backlog_growth: int = 0

    @property
    def landed_per_s(self) -> float:
        return self.landed_rows / (self.end - self.begin)

    def percentile(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def p95(self) -> float:
        return self.percentile([b.freshness for b in self.batches], 0.95)


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    events = root / "events"
    events.mkdir(parents=True, exist_ok=True)
    env.update({
        "SALESPULSE_PATHS__LANDING": str(root / "landing"), "SALESPULSE_PATHS__LAKE": str(root / "lake"),
        "SALESPULSE_PATHS__CHECKPOINTS": str(root / "checkpoints"), "SALESPULSE_PATHS__ARCHIVE": str(root / "archive"),
        "SALESPULSE_SPARK__MASTER": "local[2]", "SALESPULSE_SPARK__LOG_FILE": str(root / "spark.log"),
        "SALESPULSE_SPARK__EXTRA_CONF": json.dumps({
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false",
            # Spark keeps the offset and commit logs of the last 100 batches only; the run reads them all.
            "spark.sql.streaming.minBatchesToRetain": "100000"}),
        "PYSPARK_PYTHON": sys.executable,
    })
    return env


def sales_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def landed_files(root: Path) -> dict[str, tuple[float, Path]]:
    """Every sales file landed, by name: its landing time (modification time, kept when archived) and path."""
    found: dict[str, tuple[float, Path]] = {}
    for folder in (root / "landing" / "sales", root / "archive"):
        for path in folder.rglob("*.csv") if folder.exists() else ():
            staged = any(part.startswith(".") for part in path.relative_to(folder).parts)
            if path.parent.name == "sales" and not staged:
                found[path.name] = (path.stat().st_mtime, path)
    return found


def simulator(landing: Path, rate: float, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "salespulse", "simulate", "--out", str(landing), "--rate",
                             f"{rate:.3f}", "--seconds", f"{seconds:g}", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def calibrate(root: Path) -> float:
    """Landed sales rows per second per unit of simulator rate, now (the rate follows the hour of day)."""
    probe, seconds, rate = root / "calibration", 12.0, 1000.0
    simulator(probe, rate, seconds).wait()
    rows = sum(sales_rows(p) for p in (probe / "sales").glob("*.csv"))
    return rows / seconds / rate


def start_design(design: str, root: Path) -> tuple[subprocess.Popen[str], list[str]]:
    command = ([sys.executable, "-m", "salespulse", "stream"] if design == "product"
               else [sys.executable, str(Path(__file__).resolve()), "--run-floor", str(root)])
    (root / "landing" / "sales").mkdir(parents=True, exist_ok=True)
    (root / "landing" / "inventory").mkdir(parents=True, exist_ok=True)
    log = (root / f"{design}.log").open("w")
    proc = subprocess.Popen(command, env=environment(root), stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
    while not any(READY[design] in line for line in lines):
        if proc.poll() is not None:
            raise SystemExit(f"bench: the {design} did not start; see {root / f'{design}.log'}")
        time.sleep(0.2)
    return proc, lines


def run_floor(root: Path) -> None:
    """The floor query, until SIGTERM: CSV in, the same rows out as Parquet, one job a batch."""
    from pyspark.sql.types import StringType, StructField, StructType

    from salespulse.schema import SALES_EVENT
    from salespulse.settings import load_settings
    from spark_jobs.session import build_session

    settings = load_settings()
    spark = build_session(settings.spark)
    schema = StructType([StructField(name, StringType()) for name in SALES_EVENT.names])
    source = (spark.readStream.schema(schema).option("header", True)
              .option("maxFilesPerTrigger", settings.stream.max_files_per_trigger)
              .csv(f"{settings.paths.landing}/sales"))
    out = f"{settings.paths.lake}/floor"
    query = (source.writeStream.foreachBatch(lambda frame, _: frame.write.mode("append").parquet(out))
             .option("checkpointLocation", f"{settings.paths.checkpoints}/floor/sales")
             .trigger(processingTime="1 second").start())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(READY["floor"], flush=True)
    while not stop.wait(0.5) and query.isActive:
        pass
    query.stop()
    spark.stop()


def sales_checkpoints(root: Path) -> list[Path]:
    """The checkpoint folders of the sales queries (the product rotates its checkpoint: several)."""
    return sorted(p.parent for p in (root / "checkpoints").rglob("metadata")
                  if (p.parent / "sources" / "0").is_dir() and p.parent.name.split(".")[0] == "sales")


def read_batches(checkpoint: Path) -> tuple[str, list[Batch]]:
    query_id = json.loads((checkpoint / "metadata").read_text())["id"]
    files: dict[int, dict[str, float]] = {}  # by batch: path -> landing time (a compacted log repeats entries)
    for log in (checkpoint / "sources" / "0").iterdir():
        if log.name.startswith("."):  # checksum files
            continue
        for line in log.read_text().splitlines()[1:]:
            entry = json.loads(line)
            files.setdefault(int(entry["batchId"]), {})[entry["path"]] = entry["timestamp"] / 1000
    batches = []
    for commit in (checkpoint / "commits").iterdir():
        if not commit.name.isdigit() or int(commit.name) not in files:
            continue
        batch_id = int(commit.name)
        landed = files[batch_id].values()
        batches.append(Batch(batch_id, (checkpoint / "offsets" / commit.name).stat().st_mtime,
                             commit.stat().st_mtime, min(landed), len(landed)))
    return query_id, sorted(batches, key=lambda b: b.committed)


def jobs_per_batch(root: Path) -> Counter[tuple[str, int]]:
    """Jobs by (query id, batch id), from Spark's event log."""
    jobs: Counter[tuple[str, int]] = Counter()
    for log in (root / "events").iterdir():
        with log.open() as handle:
            for line in handle:
                if '"SparkListenerJobStart"' not in line:
                    continue
                properties = json.loads(line).get("Properties", {})
                if "streaming.sql.batchId" in properties and "sql.streaming.queryId" in properties:
                    jobs[(properties["sql.streaming.queryId"], int(properties["streaming.sql.batchId"]))] += 1
    return jobs


def measure(design: str, root: Path, targets: list[float], per_rate: float, args: argparse.Namespace) -> list[Window]:
    proc, _ = start_design(design, root)
    windows: list[Window] = []
    try:
        for index, target in enumerate(targets):
            lead = args.warmup if index == 0 else args.transition
            rate = target / per_rate
            print(f"bench: {design} at {target:,.0f} landed rows/s (simulator rate {rate:,.0f}): "
                  f"{lead:g} + {args.window:g} s", flush=True)
            begin = time.time() + lead
            simulator(root / "landing", rate, lead + args.window).wait()
            windows.append(Window(target, rate, begin, time.time()))
            if proc.poll() is not None:
                raise SystemExit(f"bench: the {design} exited with {proc.returncode}; see {root / f'{design}.log'}")
        time.sleep(10)  # the batch holding the last files
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # the process stops its own JVM
            proc.wait(timeout=300)
    batches: list[Batch] = []
    jobs = jobs_per_batch(root)
    for checkpoint in sales_checkpoints(root):
        query_id, found = read_batches(checkpoint)
        for batch in found:
            batch.jobs = jobs.get((query_id, batch.batch_id), 0)
        batches += found
    landed = landed_files(root)
    print(f"bench: {design}: {len(batches)} sales batches committed, {len(landed)} sales files landed", flush=True)
    for window in windows:
        window.batches = [b for b in batches if window.begin <= b.committed <= window.end]
        window.landed_rows = sum(sales_rows(path) for when, path in landed.values()
                                 if window.begin <= when <= window.end)

        def backlog(at: float) -> int:
            return (sum(1 for when, _ in landed.values() if when <= at)
                    - sum(b.files for b in batches if b.committed <= at))

        window.backlog_growth = backlog(window.end) - backlog(window.begin)
    return windows


def row(design: str, window: Window) -> str:
    fresh = [b.freshness for b in window.batches]
    seconds = [b.seconds for b in window.batches]
    jobs = [b.jobs for b in window.batches]
    held = ["yes" if window.p95() <= limit and window.backlog_growth <= 2 else "no" for limit in LIMITS_S]
    return (f"| {design} | {window.target:,.0f} | {window.landed_per_s:,.0f} | "
            f"{statistics.median(fresh) if fresh else float('nan'):.2f} / {window.p95():.2f} / "
            f"{max(fresh, default=float('nan')):.2f} | "
            f"{statistics.median(seconds) if seconds else float('nan'):.2f} / "
            f"{window.percentile(seconds, 0.95):.2f} | {statistics.median(jobs) if jobs else 0:g} | "
            f"{len(window.batches)} | {window.backlog_growth:+d} | {' | '.join(held)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="2000,10000,28000", help="landed sales rows/s to measure")
    parser.add_argument("--warmup", type=float, default=180, help="seconds before the first rate is measured")
    parser.add_argument("--transition", type=float, default=20, help="seconds before each later rate is measured")
    parser.add_argument("--window", type=float, default=120, help="measured seconds per rate")
    parser.add_argument("--designs", default="floor,product", help="designs to run, in this order")
    parser.add_argument("--section", default="stream", help="BENCHMARKS.md section to write")
    parser.add_argument("--run-floor", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_floor:
        run_floor(Path(args.run_floor))
        return
    targets = [float(r) for r in args.rates.split(",")]
    designs = args.designs.split(",")
    results: dict[str, list[Window]] = {}
    with LoadWatch() as load, tempfile.TemporaryDirectory(prefix="salespulse-stream-bench-") as tmp:
        per_rate = calibrate(Path(tmp))
        print(f"bench: the simulator lands {per_rate:.3f} sales rows/s per unit of rate now", flush=True)
        for design in designs:
            results[design] = measure(design, Path(tmp) / design, targets, per_rate, args)
            for window in results[design]:
                print(row(design, window), flush=True)
    table = "\n".join(row(design, window) for design in designs for window in results[design])
    verdicts = []
    for design in designs:
        for limit in LIMITS_S:
            held = [w for w in results[design] if w.p95() <= limit and w.backlog_growth <= 2]
            best = max(held, key=lambda w: w.landed_per_s, default=None)
            verdicts.append(f"- {design}: highest landed rate holding p95 freshness <= {limit:g} s: "
                            + (f"**{best.landed_per_s:,.0f} rows/s**" if best else "none of the rates tried"))
    flags = (f"--rates {args.rates} --warmup {args.warmup:g} --transition {args.transition:g} "
             f"--window {args.window:g} --designs {args.designs}")
    publish(args.section, f"""
## Stream freshness at landed rates, beside Spark's floor
(`bench/stream_sustained.py {flags}`)

Each design alone on the machine as its own process (local[2], trigger 1 s); the simulator as another process,
one sales file per second at the rate calibrated for each target. **floor**: `readStream` CSV + `foreachBatch`
writing the rows to Parquet. **product**: `salespulse stream` with its defaults (inventory stream, stock refresh,
compaction and publishing on). Warm-up {args.warmup:g} s before the first rate, {args.transition:g} s before each
other, {args.window:g} s measured. Freshness: batch committed minus the landing of its oldest file; batch: commit
minus start; both from Spark's checkpoint logs, jobs per batch from its event log (median). Backlog: files landed
and not yet in a committed batch, end of window minus start. A rate holds a budget when p95 freshness is within it
and the backlog grew by at most 2 files. 1-minute load average during the run: {load.summary()}.

{HEADER}
{table}

{chr(10).join(verdicts)}
""")


if __name__ == "__main__":
    main()
