"""Spark backfill throughput against Spark's own floor, the raw CSV read -> Parquet of the same files in the same
session (target >= 0.35x), stage by stage: raw read, read + parse + clean -> Parquet, the whole backfill. DuckDB
computing the gold_sales_hourly aggregation from the same files is measured beside.

Usage: python bench/backfill_vs_duckdb.py [--rows 5000000] [--days 30]. Writes the 'backfill' section of
BENCHMARKS.md. One Spark session (local[2], 6g driver) runs every stage twice on the same files: the first round
warms it up (JIT, class loading) and is discarded. DuckDB gets the same 2 threads after the session stopped.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
from pyspark.sql import DataFrame, SparkSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, load_average, publish

from salespulse.profiles import load_profile
from salespulse.settings import Settings, load_settings
from salespulse.simulator.run import simulate
from spark_jobs import io
from spark_jobs.backfill import run_backfill
from spark_jobs.session import build_session, build_source_session
from spark_jobs.transforms.clean import CleaningRules, clean_events
from spark_jobs.transforms.parse import map_to_canonical

END_MS = 1_790_000_000_000
# Rows written per second of history at history_rate 1.0: the weekly mean of 1 sale/s, times the demand trend
# over the window, plus duplicates and injected bad rows (measured: 1.187 over 30 days ending at END_MS).
ROWS_PER_RATE_SECOND = 1.187
MEASURES = ("units_sold", "gross_sales", "discounts", "sales", "cogs", "profit")
SALES_COLUMNS = ("order_id", "event_time", "country", "segment", "product", "discount_band", "units_sold",
                 "manufacturing_price", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit",
                 "customer_id")
# run_backfill announces each step with `say`; the jobs that follow a message belong to this step.
PHASES = ("list inputs", "read + clean + count by reason (persisted)",
          "silver: dedupe, write, re-read count",
          "quarantine, gold hourly + customers daily, publish, report")


# -- memory -------------------------------------------------------------------------------------------------
def _hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident set (VmHWM) of a process since start or since :func:`_reset_hwm`."""
    try:
        found = re.search(r"VmHWM:\s+(\d+)\s+kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) / 1024 if found else None


def _reset_hwm(pid: int | str = "self") -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := current RSS
        return True
    except OSError:
        return False


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def code_version() -> str:
    """The commit measured, and whether the code the benchmark imports had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "salespulse", "spark_jobs", "conf"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"`{head}`" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


# -- Spark's own record of the jobs (kept even with the UI off) -----------------------------------------------
@dataclass
class Job:
    phase: str
    name: str
    start_ms: int
    end_ms: int
    tasks: int = 0
    run_ms: int = 0  # executor run time summed over tasks
    gc_ms: int = 0
    input_rows: int = 0
    output_rows: int = 0
    shuffle_write: int = 0
    spilled: int = 0

    @property
    def wall_s(self) -> float:
        return (self.end_ms - self.start_ms) / 1000


def _opt(option: object) -> object | None:
    return option.get() if option.isDefined() else None  # type: ignore[attr-defined]


def spark_jobs(spark: SparkSession, after_job: int) -> list[Job]:
    """Finished jobs with id > ``after_job``, with their stages' metrics, from the status store."""
    sc = spark.sparkContext
    store = sc._jsc.sc().statusStore()
    stages: dict[int, list[object]] = {}
    seq = store.stageList(None, False, False, sc._gateway.new_array(sc._jvm.double, 0), sc._jvm.java.util.ArrayList())
    for i in range(seq.size()):
        stage = seq.apply(i)
        stages.setdefault(stage.stageId(), []).append(stage)
    jobs: list[Job] = []
    seq = store.jobsList(None)
    for i in range(seq.size()):
        data = seq.apply(i)
        began, ended = _opt(data.submissionTime()), _opt(data.completionTime())
        if data.jobId() <= after_job or began is None or ended is None:
            continue
        name = re.sub(r"\S*/", "", data.name())  # "parquet at /work/main/spark_jobs/io.py:207" -> "... io.py:207"
        job = Job(str(_opt(data.description()) or ""), name, began.getTime(), ended.getTime())
        ids = data.stageIds()
        for k in range(ids.size()):
            for stage in stages.get(ids.apply(k), []):
                if str(stage.status()) == "SKIPPED":
                    continue
                job.tasks += stage.numCompleteTasks()
                job.run_ms += stage.executorRunTime()
                job.gc_ms += stage.jvmGcTime()
                job.input_rows += stage.inputRecords()
                job.output_rows += stage.outputRecords()
                job.shuffle_write += stage.shuffleWriteBytes()
                job.spilled += stage.diskBytesSpilled()
        jobs.append(job)
    return sorted(jobs, key=lambda j: j.start_ms)


def last_job_id(spark: SparkSession) -> int:
    ids = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    return max(ids, default=-1)


def busy_s(jobs: list[Job]) -> float:
    """Wall time during which at least one job ran (jobs can overlap)."""
    total, reach = 0, 0
    for job in sorted(jobs, key=lambda j: j.start_ms):
        start = max(job.start_ms, reach)
        if job.end_ms > start:
            total += job.end_ms - start
        reach = max(reach, job.end_ms)
    return total / 1000


# -- the measurements -----------------------------------------------------------------------------------------
@dataclass
class Backfill:
    seconds: float
    report: dict
    steps: list[tuple[str, float]] = field(default_factory=list)  # (phase, seconds)
    jobs: list[Job] = field(default_factory=list)
    jvm_peak_mib: float | None = None
    jvm_cpu_s: float | None = None


def generate(rows: int, days: float, out: Path) -> tuple[int, float, float]:
    rate = rows / (days * 86_400 * ROWS_PER_RATE_SECOND)
    settings = load_settings().simulator.model_copy(update={"history_rate": rate})
    began = time.perf_counter()
    totals = simulate(settings, out, history_days=days, seconds=None, stop=threading.Event(), say=print,
                      end_ms=END_MS, progress=False)
    took = time.perf_counter() - began
    size_mib = sum(p.stat().st_size for p in (out / "history" / "sales").glob("*.csv")) / 2**20
    print(f"bench: {totals.sales_rows:,} sales rows ({size_mib:,.0f} MiB CSV) at history_rate {rate:.4f} "
          f"over {days:g} days in {took:.1f} s")
    return totals.sales_rows, size_mib, rate


def backfill_time() -> datetime:
    return datetime.fromtimestamp(END_MS / 1000, tz=timezone.utc) + timedelta(days=1)  # pinned: reproducible


def time_backfill(spark: SparkSession, settings: Settings, sales_dir: Path, jvm_pid: int) -> Backfill:
    sc = spark.sparkContext
    now = backfill_time()
    run_id = f"bench-{now:%Y%m%dT%H%M%S}"
    marks: list[float] = []

    def say(message: str) -> None:
        marks.append(time.perf_counter())
        print(f"[{marks[-1] - began:7.1f} s] {message}")
        sc.setJobDescription(PHASES[min(len(marks), len(PHASES) - 1)])

    first_job = last_job_id(spark)
    _reset_hwm(jvm_pid)
    sc.setJobDescription(PHASES[0])
    cpu = _cpu_s(jvm_pid)
    began = time.perf_counter()
    report = run_backfill(spark, settings, str(sales_dir), load_profile("canonical"), now, run_id, say)
    took = time.perf_counter() - began
    cpu_after = _cpu_s(jvm_pid)
    sc.setJobDescription(None)
    print(f"[{took:7.1f} s] backfill done: {report}")
    edges = [began, *marks, began + took]
    steps = [(PHASES[i], edges[i + 1] - edges[i]) for i in range(len(edges) - 1)]
    return Backfill(took, report, steps, spark_jobs(spark, first_job), _hwm_mib(jvm_pid),
                    cpu_after - cpu if cpu is not None and cpu_after is not None else None)


@dataclass
class Stage:
    seconds: float
    cpu_s: float  # the JVM's, all threads
    load: float | None  # 1-minute load average when it ended


def _timed(spark: SparkSession, description: str, jvm_pid: int, action: Callable[[], object]) -> Stage:
    """Run Spark work under a job description: wall seconds and JVM CPU seconds it took."""
    spark.sparkContext.setJobDescription(description)
    cpu = _cpu_s(jvm_pid)
    began = time.perf_counter()
    action()
    took = time.perf_counter() - began
    cpu_after = _cpu_s(jvm_pid)
    spark.sparkContext.setJobDescription(None)
    return Stage(took, (cpu_after or 0) - (cpu or 0), load_average())


def time_stages(spark: SparkSession, settings: Settings, sales_dir: Path, out: Path, jvm_pid: int
                ) -> tuple[dict[str, Stage], Backfill]:
    """The raw read (the floor: the backfill's own CSV reader, every column text, straight to Parquet), the
    read + parse + clean (every cleaned row to Parquet) and the whole backfill into a fresh lake, in that order."""
    profile = load_profile("canonical")
    source = build_source_session(spark)  # as run_backfill reads: one scan partition per file
    files = io.expand_inputs(source, str(sales_dir))
    now = backfill_time()
    rules = CleaningRules.build(profile, settings.ingest, now, privacy=settings.privacy)

    def cleaned() -> DataFrame:
        read = io.read_source(source, files, profile)
        return clean_events(map_to_canonical(io.number_rows(read.frame, profile, read.bad_headers), profile), rules)

    stages = {
        "raw": _timed(spark, "raw read", jvm_pid,
                      lambda: io.read_source(source, files, profile).frame.write.parquet(str(out / "raw"))),
        "clean": _timed(spark, "read + parse + clean", jvm_pid, lambda: cleaned().write.parquet(str(out / "clean"))),
    }
    lake = settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": str(out / "lake")})})
    backfill = time_backfill(spark, lake, sales_dir, jvm_pid)
    stages["backfill"] = Stage(backfill.seconds, backfill.jvm_cpu_s or 0, load_average())
    for name, stage in stages.items():
        print(f"bench: {name}: {stage.seconds:,.1f} s ({stage.cpu_s:,.1f} JVM CPU s, load {stage.load})")
    return stages, backfill


def duckdb_gold(sales_dir: Path, out: Path, threads: int, typed: bool) -> tuple[float, int]:
    """gold_sales_hourly's aggregation, straight from the CSV files: no cleaning, quarantine or dedupe.

    typed: the CSV reader parses each column to its type and skips rows it cannot parse (ignore_errors);
    otherwise every column is read as text and converted with TRY_CAST (bad values become NULL)."""
    files = f"{sales_dir}/*.csv"
    if typed:
        types = {c: "DOUBLE" for c in (*MEASURES, "manufacturing_price", "sale_price")}
        types["event_time"] = "TIMESTAMP"
        columns = ", ".join(f"'{c}': '{types.get(c, 'VARCHAR')}'" for c in SALES_COLUMNS)
        source = f"read_csv('{files}', header = true, columns = {{{columns}}}, ignore_errors = true)"
        value = "{}".format
    else:
        source = f"read_csv('{files}', header = true, all_varchar = true)"
        value = "TRY_CAST({} AS DOUBLE)".format
    when = "event_time::TIMESTAMP" if typed else "TRY_CAST(event_time AS TIMESTAMP)"
    hour = f"date_trunc('hour', {when})"
    sums = ", ".join(f"sum({value(m)}) AS {m}" for m in MEASURES)
    query = f"""
        COPY (
            SELECT *, CAST(hour AS DATE) AS event_date FROM (
                SELECT {hour} AS hour, country, segment, product, discount_band, count(*) AS orders, {sums}
                FROM {source}
                GROUP BY 1, 2, 3, 4, 5)
        ) TO '{out}' (FORMAT parquet)"""
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {threads}")
        cpu, began = time.process_time(), time.perf_counter()
        con.execute(query)
        took, cpu = time.perf_counter() - began, time.process_time() - cpu
        groups = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    finally:
        con.close()
    print(f"bench: DuckDB {'typed read' if typed else 'text read + TRY_CAST'} -> gold {groups:,} groups in "
          f"{took:.1f} s ({cpu:.1f} CPU s)")
    return took, groups


def print_jobs(jobs: list[Job]) -> None:
    print(f"{'step':<58} {'job':<30} {'wall s':>7} {'tasks':>5} {'run s':>7} {'gc s':>5} {'in rows':>11} "
          f"{'out rows':>11} {'shuf MiB':>8} {'spill MiB':>9}")
    for j in jobs:
        print(f"{j.phase[:58]:<58} {j.name[:30]:<30} {j.wall_s:7.1f} {j.tasks:5d} {j.run_ms / 1000:7.1f} "
              f"{j.gc_ms / 1000:5.1f} {j.input_rows:11,} {j.output_rows:11,} {j.shuffle_write / 2**20:8.1f} "
              f"{j.spilled / 2**20:9.1f}")


def _mib(value: float | None) -> str:
    return f"{value:,.0f} MiB" if value is not None else "n/a"


STAGES = {"raw": "raw CSV read -> Parquet (the floor: same reader, every column text)",
          "clean": "read + parse + clean -> Parquet (every cleaned row)",
          "backfill": "`run_backfill` (canonical profile, fresh lake)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000, help="about this many sales rows (default 5M)")
    parser.add_argument("--days", type=float, default=30, help="days of history they span (one file per day)")
    parser.add_argument("--threads", type=int, default=2, help="Spark local[N] and DuckDB threads")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--tmp", help="folder for the temporary data (default: the system temp folder)")
    args = parser.parse_args()
    code = code_version()  # before anything runs: the modules are imported already
    with LoadWatch() as load, tempfile.TemporaryDirectory(prefix="salespulse-bench-", dir=args.tmp) as tmp:
        root = Path(tmp)
        rows, size_mib, rate = generate(args.rows, args.days, root / "landing")
        sales_dir = root / "landing" / "history" / "sales"
        files = len(list(sales_dir.glob("*.csv")))
        settings = load_settings(overrides={
            "spark.master": f"local[{args.threads}]",
            "spark.driver_memory": args.driver_memory,
            "spark.shuffle_partitions": args.shuffle_partitions,
        })
        _reset_hwm()
        spark = build_session(settings.spark)
        try:
            jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
            print(f"bench: Spark {spark.version} up ({settings.spark.master}, JVM pid {jvm_pid}, "
                  f"load {load_average()}); warm-up round (discarded)")
            time_stages(spark, settings, sales_dir, root / "warm-up", jvm_pid)
            print(f"bench: timed round (load {load_average()})")
            stages, backfill = time_stages(spark, settings, sales_dir, root / "timed", jvm_pid)
            python_spark_peak = _hwm_mib()
        finally:
            spark.stop()
        print_jobs(backfill.jobs)
        _reset_hwm()
        duck_typed_s, groups = duckdb_gold(sales_dir, root / "typed.parquet", args.threads, True)
        duck_text_s, _ = duckdb_gold(sales_dir, root / "text.parquet", args.threads, False)
        duck_peak = _hwm_mib()

    report = backfill.report
    rows_in = report["rows_in"]
    if rows_in != rows:
        print(f"bench: warning: the backfill read {rows_in:,} rows, the simulator wrote {rows:,}")
    raw_rps = rows_in / stages["raw"].seconds
    ratio = rows_in / backfill.seconds / raw_rps
    duck_s = min(duck_typed_s, duck_text_s)
    lines = "\n".join(
        f"| {STAGES[name]} | {stage.seconds:,.1f} s | **{rows_in / stage.seconds:,.0f}** | "
        f"**{rows_in / stage.seconds / raw_rps:.2f}x** | {stage.cpu_s:,.0f} s | {stage.load:.1f} |"
        for name, stage in stages.items())
    busy = busy_s(backfill.jobs)
    gc = sum(j.gc_ms for j in backfill.jobs) / 1000
    spill = sum(j.spilled for j in backfill.jobs) / 2**20
    steps = "\n".join(f"- {name}: {seconds:,.1f} s" for name, seconds in backfill.steps if seconds >= 0.05)
    publish("backfill", f"""
## Backfill against the raw read (`bench/backfill_vs_duckdb.py --rows {args.rows}`)

{rows_in:,} simulator sales rows ({size_mib:,.0f} MiB CSV, {files} daily files, history_rate {rate:.3f} over
{args.days:g} days), code {code}. Spark `{settings.spark.master}`, driver memory {args.driver_memory},
{args.shuffle_partitions} shuffle partitions; one session runs every stage twice on the same files, the first round
(warm-up) discarded; the files in the page cache. 1-minute load average during the whole run: {load.summary()},
this run's own {args.threads} threads included: when it is well above {args.threads}, other processes shared the
machine and wall times stretch (JVM CPU seconds stretch less).

| stage (rows/s over the {rows_in:,} rows read) | wall | rows/s | vs raw read | JVM CPU | load at end |
| --- | --- | --- | --- | --- | --- |
{lines}

**Backfill / raw read: {ratio:.2f}x** (target >= 0.35x: {"met" if ratio >= 0.35 else "NOT met"}). Backfill output:
{report["rows_silver"]:,} silver, {report["rows_quarantined"]:,} quarantined, {report["rows_duplicate"]:,}
duplicates dropped; {len(backfill.jobs)} Spark jobs, running {busy:,.1f} s of its {backfill.seconds:,.1f} s (the rest
is driver-side planning and file listing); {gc:,.1f} s of task time in GC, {spill:,.0f} MiB spilled. Peak RSS: Spark
JVM during the backfill {_mib(backfill.jvm_peak_mib)}; Python process, Spark part / DuckDB part:
{_mib(python_spark_peak)} / {_mib(duck_peak)}.

Where the backfill's time goes (steps from its progress lines):

{steps}

Beside it, not the same work: DuckDB {duckdb.__version__} ({args.threads} threads) computes only the hourly aggregate
from the same files (no cleaning, quarantine, dedupe or silver) in {duck_s:,.1f} s, {rows_in / duck_s:,.0f} rows/s
(typed `read_csv` {duck_typed_s:,.1f} s, all-text + `TRY_CAST` {duck_text_s:,.1f} s; {groups:,} groups).
""")


if __name__ == "__main__":
    main()
