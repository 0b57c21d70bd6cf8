"""Spark backfill throughput (target >= 0.5x DuckDB) on simulator history, beside DuckDB computing the same
gold_sales_hourly aggregation from the same CSV files, and Spark's own raw CSV -> Parquet ceiling.

Usage: python bench/backfill_vs_duckdb.py [--rows 5000000] [--days 30]. Writes the 'backfill' section of
BENCHMARKS.md. One Spark session (local[2], 6g driver) is started and warmed up before anything is timed;
DuckDB gets the same 2 threads. Every engine reads the same files, already in the page cache.
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
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, load_average, peak_rss_mib, publish

from salespulse.profiles import load_profile
from salespulse.settings import Settings, load_settings
from salespulse.simulator.run import simulate
from spark_jobs.backfill import run_backfill
from spark_jobs.session import build_session

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


def jvm_option(spark: SparkSession, name: str) -> str:
    """A HotSpot flag's value in the running JVM (e.g. DontCompileHugeMethods)."""
    try:
        jvm = spark.sparkContext._jvm
        bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
            jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
        return str(bean.getVMOption(name).getValue())
    except Exception:  # a diagnostic only: never fail the benchmark over it
        return "n/a"


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


def time_backfill(spark: SparkSession, settings: Settings, sales_dir: Path, jvm_pid: int) -> Backfill:
    sc = spark.sparkContext
    now = datetime.fromtimestamp(END_MS / 1000, tz=timezone.utc) + timedelta(days=1)  # pinned: reproducible
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


def _timed_job(spark: SparkSession, description: str, jvm_pid: int, action: Callable[[], None]) -> tuple[float, float]:
    """Run one Spark action under a job description; wall seconds and JVM CPU seconds it took."""
    spark.sparkContext.setJobDescription(description)
    cpu = _cpu_s(jvm_pid)
    began = time.perf_counter()
    action()
    took = time.perf_counter() - began
    cpu_after = _cpu_s(jvm_pid)
    spark.sparkContext.setJobDescription(None)
    return took, (cpu_after or 0) - (cpu or 0)


def time_raw(spark: SparkSession, sales_dir: Path, out: Path, multiline: bool, jvm_pid: int) -> tuple[float, int]:
    """Spark's ceiling: the same CSV files, every column a string, straight to Parquet."""
    label = f"raw CSV{' (multiLine)' if multiline else ''}"
    reader = spark.read.option("header", True).option("multiLine", multiline)
    took, cpu = _timed_job(spark, label, jvm_pid, lambda: reader.csv(str(sales_dir)).write.parquet(str(out)))
    rows = spark.read.parquet(str(out)).count()
    print(f"bench: {label} -> Parquet {rows:,} rows in {took:.1f} s ({cpu:.1f} CPU s)")
    return took, rows


def time_spark_gold(spark: SparkSession, sales_dir: Path, out: Path, jvm_pid: int) -> tuple[float, int]:
    """DuckDB's query on Spark: the hourly aggregate straight from the CSVs (strings, TRY_CAST), no cleaning."""
    frame = spark.read.option("header", True).csv(str(sales_dir))
    hour = F.date_trunc("hour", F.col("event_time").try_cast("timestamp"))
    gold = (frame.groupBy(hour.alias("hour"), "country", "segment", "product", "discount_band")
            .agg(F.count(F.lit(1)).alias("orders"), *[F.sum(F.col(m).try_cast("double")).alias(m) for m in MEASURES])
            .withColumn("event_date", F.to_date("hour")))
    took, cpu = _timed_job(spark, "gold hourly straight from csv", jvm_pid, lambda: gold.write.parquet(str(out)))
    groups = spark.read.parquet(str(out)).count()
    print(f"bench: Spark, DuckDB's query -> gold {groups:,} groups in {took:.1f} s ({cpu:.1f} CPU s)")
    return took, groups


def duckdb_gold(sales_dir: Path, out: Path, threads: int, typed: bool) -> tuple[float, float, int]:
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
    return took, cpu, groups


def print_jobs(jobs: list[Job]) -> None:
    print(f"{'step':<58} {'job':<30} {'wall s':>7} {'tasks':>5} {'run s':>7} {'gc s':>5} {'in rows':>11} "
          f"{'out rows':>11} {'shuf MiB':>8} {'spill MiB':>9}")
    for j in jobs:
        print(f"{j.phase[:58]:<58} {j.name[:30]:<30} {j.wall_s:7.1f} {j.tasks:5d} {j.run_ms / 1000:7.1f} "
              f"{j.gc_ms / 1000:5.1f} {j.input_rows:11,} {j.output_rows:11,} {j.shuffle_write / 2**20:8.1f} "
              f"{j.spilled / 2**20:9.1f}")


def _mib(value: float | None) -> str:
    return f"{value:,.0f} MiB" if value is not None else "n/a"


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
            "paths.lake": str(root / "lake"),
            "spark.master": f"local[{args.threads}]",
            "spark.driver_memory": args.driver_memory,
            "spark.shuffle_partitions": args.shuffle_partitions,
        })
        _reset_hwm()
        spark = build_session(settings.spark)
        try:
            spark.range(10).count()  # JVM start-up and first-job set-up stay out of every timing
            jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
            huge = jvm_option(spark, "DontCompileHugeMethods")
            print(f"bench: Spark {spark.version} up ({settings.spark.master}, JVM pid {jvm_pid}, "
                  f"load {load_average()}); timing the backfill")
            backfill = time_backfill(spark, settings, sales_dir, jvm_pid)
            python_spark_peak = _hwm_mib()
            raw_s, _ = time_raw(spark, sales_dir, root / "raw", False, jvm_pid)
            raw_ml_s, _ = time_raw(spark, sales_dir, root / "raw_multiline", True, jvm_pid)
            query_s, _ = time_spark_gold(spark, sales_dir, root / "spark_gold", jvm_pid)
        finally:
            spark.stop()
        print_jobs(backfill.jobs)
        _reset_hwm()
        duck_typed_s, duck_typed_cpu, groups = duckdb_gold(sales_dir, root / "typed.parquet", args.threads, True)
        duck_text_s, duck_text_cpu, _ = duckdb_gold(sales_dir, root / "text.parquet", args.threads, False)
        duck_peak = _hwm_mib()

    report = backfill.report
    rows_in = report["rows_in"]
    if rows_in != rows:
        print(f"bench: warning: the backfill read {rows_in:,} rows, the simulator wrote {rows:,}")
    spark_rps = rows_in / backfill.seconds
    duck_s, duck_cpu = min((duck_typed_s, duck_typed_cpu), (duck_text_s, duck_text_cpu))
    duck_rps = rows_in / duck_s
    ratio = spark_rps / duck_rps
    raw_rps, raw_ml_rps = rows_in / raw_s, rows_in / raw_ml_s
    busy = busy_s(backfill.jobs)
    gc = sum(j.gc_ms for j in backfill.jobs) / 1000
    spill = sum(j.spilled for j in backfill.jobs) / 2**20
    steps = "\n".join(f"- {name}: {seconds:,.1f} s" for name, seconds in backfill.steps if seconds >= 0.05)
    cores = args.threads
    cpu = (f"Spark JVM {backfill.jvm_cpu_s:,.0f} s ({backfill.jvm_cpu_s / backfill.seconds / cores:.0%} of "
           f"{cores} cores) vs DuckDB {duck_cpu:,.1f} s ({duck_cpu / duck_s / cores:.0%}); "
           f"Spark / DuckDB on CPU time {duck_cpu / backfill.jvm_cpu_s:.3f}x" if backfill.jvm_cpu_s else "n/a")
    publish("backfill", f"""
## Backfill vs DuckDB (`bench/backfill_vs_duckdb.py --rows {args.rows}`)

{rows_in:,} simulator sales rows ({size_mib:,.0f} MiB CSV, {files} daily files, history_rate {rate:.3f} over
{args.days:g} days), code {code}. Spark `{settings.spark.master}`, driver memory {args.driver_memory},
{args.shuffle_partitions} shuffle partitions, JVM DontCompileHugeMethods={huge}, one session warmed up before
timing; DuckDB {duckdb.__version__} with {args.threads} threads; the files in the page cache for all. 1-minute load
average during the run: {load.summary()}, this run's own {args.threads} threads included (other processes share the
machine: compare CPU time when wall times look noisy).

| measure | value |
| --- | --- |
| Spark `run_backfill` (canonical profile, fresh lake) | {backfill.seconds:,.1f} s, **{spark_rps:,.0f} rows/s** |
| DuckDB gold_sales_hourly from the CSVs -> Parquet | {duck_s:,.1f} s, **{duck_rps:,.0f} rows/s** ({groups:,} groups) |
| **ratio Spark / DuckDB** | **{ratio:.2f}x** (target >= 0.5x: {"met" if ratio >= 0.5 else "NOT met"}) |
| CPU time (wall-time contention aside) | {cpu} |
| Spark raw CSV -> Parquet ceiling (all strings) | {raw_s:,.1f} s, {raw_rps:,.0f} rows/s; \
backfill = {spark_rps / raw_rps:.0%} of it |
| same, with `multiLine` as the canonical profile reads | {raw_ml_s:,.1f} s, {raw_ml_rps:,.0f} rows/s |
| Spark running DuckDB's query (no cleaning) | {query_s:,.1f} s, {rows_in / query_s:,.0f} rows/s, \
{rows_in / query_s / duck_rps:.2f}x DuckDB |
| backfill output | {report["rows_silver"]:,} silver, {report["rows_quarantined"]:,} quarantined, \
{report["rows_duplicate"]:,} duplicates dropped |
| peak RSS, Spark JVM during the backfill | {_mib(backfill.jvm_peak_mib)} |
| peak RSS, Python process: Spark part / DuckDB part / whole run | {_mib(python_spark_peak)} / {_mib(duck_peak)} \
/ {peak_rss_mib():,.0f} MiB |

Not the same work: the backfill parses and validates every row (bad ones to quarantine with a reason),
deduplicates on order_id, writes silver (partitioned by date), quarantine, gold hourly and gold customers daily,
then publishes a manifest; DuckDB only computes the hourly aggregate (no cleaning, quarantine, dedupe or silver).
DuckDB's faster of two reads is used: typed `read_csv(columns=..., ignore_errors=true)` {duck_typed_s:,.1f} s,
all-text `read_csv(all_varchar=true)` + `TRY_CAST` {duck_text_s:,.1f} s.

Where the backfill's time goes (steps from its progress lines; Spark's status store for the rest):

{steps}
- Spark jobs running {busy:,.1f} s of the {backfill.seconds:,.1f} s (the rest is driver-side planning and
  file listing); {gc:,.1f} s of task time in GC, {spill:,.0f} MiB spilled.
""")


if __name__ == "__main__":
    main()
