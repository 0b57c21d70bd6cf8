"""run_stream: landing files -> the backfill's own clean / validate / dedupe / aggregate -> lake, per micro-batch.

One Structured Streaming query per event (``<landing>/sales``, ``<landing>/inventory``) with an explicit raw
schema and ``foreachBatch``. Each micro-batch is a static DataFrame, so it goes through exactly the functions
the backfill uses. Exactly-once under a crash (foreachBatch replays a batch after a crash, and readers must never see a
half-written table):

- batch N writes only to directories named after it and its checkpoint (``stream-<event>-<query>-<N>``),
  replacing whatever an interrupted attempt left there, and becomes visible in one manifest swap that also
  records ``streams.<event>.batch_id = N``;
- a batch Spark replays after a crash is skipped when the manifest already holds it, rewritten otherwise.

Duplicates: a valid event whose key is already in silver with an event time inside the lateness window
(``stream.allowed_lateness_hours`` before the earliest landing time of the batch) or earlier in the same batch
is counted as a duplicate; older events are quarantined as ``late_event`` anyway, so that window is the whole
dedupe state. Its keys are kept in the executors' cache (:class:`spark_jobs.duplicates.DuplicateWindow`).

A batch's time is mostly fixed costs per Spark job and per query plan, so a batch reads its files once (rows
numbered and cleaned in that pass, then cached), writes gold and quarantine side by side, and keeps per-batch
values out of generated code; the stock, forecast and compaction work runs beside the batches.

Runnable with plain spark-submit: ``spark-submit spark_jobs/stream.py [--available-now] ...``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from model.registry import ModelError
from salespulse.lake import SILVER_LINEAGE, STATUS
from salespulse.notify import WebhookNotifier
from salespulse.profiles import ProfileError, SourceProfile, load_profile
from salespulse.settings import Settings
from spark_jobs import io
from spark_jobs.alerts import evaluate_alerts_job
from spark_jobs.compact import compact_tables
from spark_jobs.duplicates import DuplicateWindow
from spark_jobs.forecast import last_complete_hour, model_version, publish_forecasts, run_forecasts
from spark_jobs.session import build_source_session
from spark_jobs.transforms.aggregate import (
    aggregate_customers_daily,
    aggregate_sales_hourly,
    compute_stock,
    reorder_alerts,
)
from spark_jobs.transforms.clean import REASON_ORDER, CleaningRules, build_cleaning
from spark_jobs.transforms.dedupe import dedupe_events, event_key
from spark_jobs.transforms.parse import build_canonical_mapping

EVENTS = {"sales": "canonical", "inventory": "canonical_inventory"}
CHECKPOINT_VERSION = "v1"  # bump when the query's shape changes: an old checkpoint cannot be reused
COUNTERS = ("rows_in", "rows_silver", "rows_quarantined", "rows_duplicate", "files")
SUMMED = {"sales": ("sales", "profit", "units_sold"), "inventory": ()}  # silver totals kept in the manifest
# The Spark local properties that tie a job to its query and micro-batch (Spark sets them on the query's thread).
BATCH_PROPERTIES = ("spark.job.description", "sql.streaming.queryId", "streaming.sql.batchId")


class StreamSetupError(RuntimeError):
    """The landing folder or the lake cannot be used; the message says which and why."""


@dataclass
class BatchFigures:
    event: str
    batch_id: int
    rows_in: int = 0
    rows_silver: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    files: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    freshness_seconds: float | None = None  # gold committed minus the earliest landing time in the batch
    totals: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        rate = self.rows_in / self.seconds if self.seconds else 0.0
        fresh = f"{self.freshness_seconds:.1f} s" if self.freshness_seconds is not None else "-"
        return (f"stream {self.event} batch {self.batch_id}: {self.rows_in:,} rows from {self.files} file(s) in "
                f"{self.seconds:.2f} s ({rate:,.0f} rows/s); +{self.rows_silver:,} silver, "
                f"{self.rows_quarantined:,} quarantined, {self.rows_duplicate:,} duplicate; freshness {fresh}")


BACKGROUND_POOL = "background"  # FAIR scheduler pool of the work beside the batches (spark.scheduler_mode)


class BackgroundWork:
    """Work that runs in its own thread, off the micro-batch path: a batch only wakes it (:meth:`request`), and
    ``refresh`` runs once for all wake-ups since its last run. Its Spark jobs run in their own FAIR pool and
    job group, so batches keep getting cores; what it writes goes to unpublished directories and appears in one
    manifest swap, so a run abandoned at stop leaves nothing visible (compaction removes such directories
    after an hour)."""

    name = "background work"  # in its messages
    job_group = "salespulse-background"  # Spark job group of its jobs, also its thread's name

    def __init__(self, spark: SparkSession, settings: Settings, say: Callable[[str], None]):
        self.spark, self.settings, self.say = spark, settings, say
        self.lake = settings.paths.lake.rstrip("/")
        self.wanted = threading.Event()  # a batch was published since the last run
        self.closing = threading.Event()  # run once more if wanted, then end
        self.abandoning = False  # set by abandon(): a failure of the running refresh is the cancellation
        self.thread = threading.Thread(target=self._run, name=self.job_group, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def request(self) -> None:
        self.wanted.set()

    def finish(self, stop: threading.Event | None = None) -> None:
        """Let a requested or running refresh complete, then end the thread. ``stop`` (a signal meanwhile)
        turns this into :meth:`abandon`."""
        self.closing.set()
        self.wanted.set()
        while self.thread.is_alive():
            self.thread.join(0.2)
            if stop is not None and stop.is_set():
                self.abandon()

    def abandon(self) -> None:
        """End the thread now: the running refresh's Spark jobs are cancelled and it is not published."""
        self.abandoning = True
        self.closing.set()
        self.wanted.set()
        while self.thread.is_alive():
            # Again each time: a job the refresh started after the previous cancel must go too.
            self.spark.sparkContext.cancelJobGroup(self.job_group)
            self.thread.join(0.5)

    def pause(self) -> None:
        """Between wake-up and refresh: nothing by default."""

    def _run(self) -> None:
        context = self.spark.sparkContext
        # Thread-local (PySpark pins each Python thread to a JVM thread): only this thread's jobs.
        context.setLocalProperty("spark.scheduler.pool", BACKGROUND_POOL)
        context.setJobGroup(self.job_group, self.name)
        while not self.abandoning:
            self.wanted.wait()
            self.pause()
            last = self.closing.is_set()
            self.wanted.clear()
            if self.abandoning:
                return
            try:
                self.refresh(datetime.now(timezone.utc))
            except Exception as err:  # the thread must outlive a lake hiccup; the next batch tries again
                if self.abandoning:
                    return
                self.say(f"stream: {self.name} failed, tried again after the next batch: {_reason(err)}")
            if last:
                return

    def refresh(self, now: datetime) -> None:
        raise NotImplementedError


class ForecastRefresher(BackgroundWork):
    """Forecasts the next 24 hours when an hour has completed since the last forecast or the registry promoted
    another model; without a usable model the stream goes on with KPIs only, and says why once."""

    name = "forecast refresh"
    job_group = "salespulse-forecast"

    def __init__(self, spark: SparkSession, settings: Settings, say: Callable[[str], None]):
        super().__init__(spark, settings, say)
        self.model_note = ""  # the last thing said about the model, so it is said once, not every batch
        self.failed_version: str | None = None  # not retried until the registry promotes another version

    def refresh(self, now: datetime) -> None:
        registry = self.settings.paths.models
        try:
            version = model_version(self.settings)
        except ModelError as err:
            self._say_once(f"stream: no forecasts ({err}); KPIs go on")
            return
        if version is None:
            self._say_once(f"stream: no model in {registry} yet; KPIs only until `salespulse train` promotes one "
                           "(picked up at the next batch)")
            return
        if version == self.failed_version:
            return
        origin = last_complete_hour(now)
        manifest = io.read_manifest(self.spark, self.lake)
        state = manifest.get("forecasts", {})
        if state.get("origin") == origin.isoformat() and state.get("model_version") == version:
            return
        # Hours completed since the last judged one (at most a day back) are judged against their forecasts.
        judged = datetime.fromisoformat(state["judged_through"]) if "judged_through" in state else None
        first = max(judged + timedelta(hours=1) if judged else origin, origin - timedelta(hours=23))
        judge = (first, origin) if first <= origin else None
        started = time.monotonic()
        try:
            run = f"stream-forecast-{origin:%Y%m%dT%H}"
            output = run_forecasts(self.spark, self.settings, manifest, version, [origin], judge, run, now)
        except Exception as err:  # a model that fails in the workers must not stop the KPIs
            if self.abandoning:
                self.say(f"stream: forecast for {origin:%Y-%m-%d %H}:00 UTC abandoned at stop (not published; "
                         "made again at the next start)")
                return
            self.failed_version = version
            self._say_once(f"stream: forecasting with model {version} failed, KPIs go on without forecasts "
                           f"until another model is promoted: {_reason(err)}")
            return
        # The manifest lock is held for the swap only; sales batches published meanwhile stay listed.
        io.update_manifest(self.spark, self.lake, lambda current: publish_forecasts(current, output),
                           f"{run}-{version}")
        self.model_note = ""
        self.say(f"stream: forecast from model {version} for the 24 h after {origin:%Y-%m-%d %H}:00 UTC: "
                 f"{output.forecasts:,} rows, {output.anomalies:,} anomalies, {time.monotonic() - started:.1f} s")

    def _say_once(self, note: str) -> None:
        if note != self.model_note:
            self.model_note = note
            self.say(note)


STOCK_INPUTS = ("silver_inventory", "gold_sales_hourly", "silver_sales")


class StockRefresher(BackgroundWork):
    """Replaces the stock snapshot (``gold_stock``) from the published lake after batches added sales or
    inventory, at most every ``stream.stock_refresh_seconds``, and appends to ``gold_reorder_alerts`` the series
    that have just fallen below their reorder point."""

    name = "stock refresh"
    job_group = "salespulse-stock"

    def __init__(self, spark: SparkSession, settings: Settings, say: Callable[[str], None]):
        super().__init__(spark, settings, say)
        self.last_started = float("-inf")

    def pause(self) -> None:
        wait = self.last_started + self.settings.stream.stock_refresh_seconds - time.monotonic()
        if wait > 0:
            self.closing.wait(wait)  # a stop or the end of a catch-up run refreshes at once

    def refresh(self, now: datetime) -> None:
        spark, lake = self.spark, self.lake
        manifest = io.read_manifest(spark, lake)
        # The published directories it is computed from: the snapshot is not rewritten while they stay the same.
        inputs = hashlib.sha256(json.dumps(
            [manifest.get("tables", {}).get(table, []) for table in STOCK_INPUTS]).encode()).hexdigest()
        if manifest.get("stock", {}).get("inputs") == inputs:
            return
        inventory, hourly, sales = (io.read_table(spark, lake, table, manifest) for table in STOCK_INPUTS)
        if inventory is None or hourly is None or sales is None:
            return
        first_count = inventory.where(F.col("kind") == "count").groupBy("country", "product").agg(
            F.max("event_time").alias("t")).agg(F.min("t")).first()[0]
        if first_count is None:
            return
        self.last_started = time.monotonic()  # the interval counts refreshes that computed a snapshot
        run_id = f"stream-stock-{now:%Y%m%dT%H%M%S%f}"
        # Only the days holding the last counts are scanned for events; later hours come from gold.
        stock = compute_stock(inventory, hourly, sales.where(F.col("event_date") >= F.to_date(F.lit(first_count))))
        written = {"gold_stock": io.write_table_version(stock, lake, "gold_stock", run_id, replace=True,
                                                        files_per_partition=1)}
        snapshot = io.read_version(spark, lake, "gold_stock", [written["gold_stock"][0]], written["gold_stock"][1])
        alerts = reorder_alerts(io.read_table(spark, lake, "gold_stock", manifest), snapshot, now)
        if not alerts.isEmpty():
            written["gold_reorder_alerts"] = io.write_table_version(
                alerts, lake, "gold_reorder_alerts", run_id, replace=True, files_per_partition=1)

        def publish(current: dict[str, Any]) -> None:
            io.set_dirs(current, "gold_stock", written["gold_stock"], current["tables"].get("gold_stock", []))
            if "gold_reorder_alerts" in written:
                io.set_dirs(current, "gold_reorder_alerts", written["gold_reorder_alerts"], [])
            current["stock"] = {"inputs": inputs, "refreshed_at": now.isoformat()}

        io.update_manifest(spark, lake, publish, run_id)


class Compactor(BackgroundWork):
    """Merges the stream's small directories (``spark_jobs.compact``) beside the batches: an event's tables after
    every ``stream.compact_every_batches`` of its published batches. Compaction publishes under the manifest
    lock and replaces exactly the directories it merged, so batches published meanwhile stay listed."""

    name = "compaction"
    job_group = "salespulse-compact"

    def __init__(self, spark: SparkSession, settings: Settings, say: Callable[[str], None]):
        super().__init__(spark, settings, say)
        self.due: set[str] = set()
        self.due_lock = threading.Lock()

    def published(self, event: str, batch_id: int) -> None:
        every = self.settings.stream.compact_every_batches
        if every and batch_id > 0 and batch_id % every == 0:
            with self.due_lock:
                self.due.add(event)
            self.request()

    def refresh(self, now: datetime) -> None:
        with self.due_lock:
            events, self.due = self.due, set()
        tables = [table for event in sorted(events) for table in COMPACTED[event]]
        for line in compact_tables(self.spark, self.settings, tables):
            self.say(line)


class AlertEvaluator(BackgroundWork):
    """Evaluates the alert rules (``spark_jobs.alerts``) after batches published, and every
    ``alerts.evaluate_every_seconds`` without one: a stale stream publishes nothing. Webhooks are posted from
    their own threads (``salespulse.notify``), so neither this thread nor a batch waits for a receiver."""

    name = "alert evaluation"
    job_group = "salespulse-alerts"

    def __init__(self, spark: SparkSession, settings: Settings, say: Callable[[str], None]):
        super().__init__(spark, settings, say)
        self.notifier = WebhookNotifier(settings.alerts, say)
        self.clock = threading.Thread(target=self._tick, name="salespulse-alerts-clock", daemon=True)

    def start(self) -> None:
        if self.settings.alerts.rules:
            super().start()
            self.clock.start()

    def request(self) -> None:
        if self.settings.alerts.rules:
            super().request()

    def _tick(self) -> None:
        while not self.closing.wait(self.settings.alerts.evaluate_every_seconds):
            self.request()

    def refresh(self, now: datetime) -> None:
        evaluate_alerts_job(self.spark, self.settings, now, self.notifier, self.say)


COMPACTED = {  # the tables the stream adds directories to, per event
    "sales": ("silver_sales", "quarantine_sales", "gold_sales_hourly", "gold_customers_daily", "gold_forecasts",
              "gold_forecast_anomalies"),
    "inventory": ("silver_inventory", "quarantine_inventory", "gold_reorder_alerts"),
}


class StreamJob:
    """The two streaming queries and their micro-batch handler. The two queries' batches run side by side: each
    publishes under the manifest's lock, and the status file is written by one at a time. The queries and
    batches run in a session of their own (:func:`build_stream_session`); what reads the lake's Parquet (the
    duplicate window, the work beside the batches) uses ``spark``'s, which packs small files into few tasks."""

    def __init__(self, spark: SparkSession, settings: Settings, say: Callable[[str], None]):
        self.spark, self.settings, self.say = build_stream_session(spark, settings), settings, say
        self.lake = settings.paths.lake.rstrip("/")
        self.profiles: dict[str, SourceProfile] = {event: load_profile(name) for event, name in EVENTS.items()}
        lateness = timedelta(hours=settings.stream.allowed_lateness_hours)
        # Numbering, mapping and cleaning as one function per event, its expressions built once for all batches.
        self.preparations: dict[str, Callable[[DataFrame, list[io.HeaderProblem]], DataFrame]] = {}
        for event, profile in self.profiles.items():
            try:
                rules = CleaningRules.build(profile, settings.ingest, None, lateness, settings.privacy)
            except ProfileError as err:  # found now, not in the first batch
                raise StreamSetupError(str(err)) from None
            self.preparations[event] = _build_preparation(profile, rules)
        self.status_lock = threading.Lock()
        self.writers = ThreadPoolExecutor(max_workers=6, thread_name_prefix="salespulse-write")
        self.duplicates = {event: DuplicateWindow(spark, self.lake, event) for event in EVENTS}
        self.queries: dict[str, StreamingQuery] = {}
        self.query_ids: dict[str, str] = {}
        self.available_now = False
        self.generations = {event: self._latest_generation(event) for event in EVENTS}
        self.last_files: dict[str, list[str]] = {}  # the files of the event's last published batch
        self.rotation_due: set[str] = set()
        self.rotated: set[str] = set()  # events whose next batch starts a checkpoint this job rotated to
        self.recent: dict[str, BatchFigures] = {}
        self.forecasts = ForecastRefresher(spark, settings, say)
        self.stock = StockRefresher(spark, settings, say)
        self.compactor = Compactor(spark, settings, say)
        self.alerts = AlertEvaluator(spark, settings, say)
        self.history: deque[dict[str, Any]] | None = None  # the status file's batch history, read at first write
        self.in_history: dict[str, BatchFigures] = {}

    # -- queries ---------------------------------------------------------------------------------------------
    def start(self, available_now: bool = False) -> dict[str, StreamingQuery]:
        self.available_now = available_now
        self.forecasts.start()
        self.stock.start()
        self.compactor.start()
        self.alerts.start()
        self.stock.request()  # a refresh a kill cut off before its swap is made up for at start
        for event in EVENTS:
            for name, _ in io.list_dirs(self.spark, self._checkpoints()):  # left by a crash inside a rotation
                if name.startswith(f"{event}.") and f"{self._checkpoints()}/{name}" != self.checkpoint(event):
                    io.delete_path(self.spark, f"{self._checkpoints()}/{name}")
            self._start_query(event)
        return self.queries

    def _start_query(self, event: str) -> None:
        stream = self.settings.stream
        options = {"maxFilesPerTrigger": str(stream.max_files_per_trigger), "latestFirst": "false"}
        if stream.processed_files == "archive":
            options |= {"cleanSource": "archive", "sourceArchiveDir": self._archive(event)}
        elif stream.processed_files == "delete":
            options |= {"cleanSource": "delete"}
        landing = self.settings.paths.landing.rstrip("/")
        frame = io.read_stream(self.spark, f"{landing}/{event}", self.profiles[event], options)
        writer = (
            frame.writeStream.queryName(f"salespulse-{event}")
            .option("checkpointLocation", self.checkpoint(event))
            .foreachBatch(lambda batch, batch_id: self.process(event, batch, batch_id))
        )
        every = {"processingTime": f"{stream.trigger_seconds} seconds"}
        self.queries[event] = writer.trigger(**({"availableNow": True} if self.available_now else every)).start()

    def checkpoint(self, event: str) -> str:
        """The event's checkpoint: ``stream-v1/<event>``, then ``stream-v1/<event>.<n>`` after each rotation."""
        generation = self.generations.get(event, 0) if event in EVENTS else 0
        return f"{self._checkpoints()}/{event}" + (f".{generation}" if generation else "")

    def _checkpoints(self) -> str:
        return f"{self.settings.paths.checkpoints.rstrip('/')}/stream-{CHECKPOINT_VERSION}"

    def _archive(self, event: str) -> str:
        return f"{self.settings.paths.archive.rstrip('/')}/{event}"

    def _latest_generation(self, event: str) -> int:
        found = [name.removeprefix(f"{event}.") for name, _ in io.list_dirs(self.spark, self._checkpoints())
                 if name == event or name.startswith(f"{event}.")]
        return max((int(g) for g in found if g.isdigit()), default=0)

    def rotate(self, event: str) -> None:
        """Continue the event's query in a new checkpoint. Spark's file source remembers every file it has
        processed and rewrites that whole list every ten batches, so a long-running checkpoint grows without
        bound; a new one starts empty. The last batch's files, which Spark would move out of the landing folder
        only when it plans the next batch, are moved (or deleted) first, so the new checkpoint does not read
        them again. A crash at any step leaves the newest checkpoint, which resumes as usual."""
        self.rotation_due.discard(event)
        old = self.checkpoint(event)
        self._stop_queries([self.queries[event]])
        if self.queries[event].exception() is not None:
            return
        for path in self.last_files.pop(event, []):
            if self.settings.stream.processed_files == "archive":
                io.move_into(self.spark, path, self._archive(event))
            else:
                io.delete_path(self.spark, path)
        self.generations[event] += 1
        self.query_ids.pop(event, None)
        self.rotated.add(event)
        self._start_query(event)
        io.delete_path(self.spark, old)
        self.say(f"stream {event}: checkpoint {old} reached {self.settings.stream.checkpoint_rotate_batches:,} "
                 f"batches; continuing in {self.checkpoint(event)}, whose batch ids start at 0")

    def stop(self, timeout_seconds: float = 60) -> None:
        """Wait until no query is inside a trigger (planning or running a batch), then stop them all: the
        running batch is finished and published, and none is cut off halfway. With a backlog, triggers follow
        each other without a gap; after ``timeout_seconds`` the queries are stopped anyway, and a batch cut off
        then is not published and is replayed at the next start."""
        self._stop_queries(list(self.queries.values()), timeout_seconds)

    def _stop_queries(self, queries: list[StreamingQuery], timeout_seconds: float = 60) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            if not any(q.isActive and q.status["isTriggerActive"] for q in queries):
                break
            if time.monotonic() > deadline:
                self.say(f"stream: still busy after {timeout_seconds:g} s; stopping now (an unfinished batch is "
                         "replayed at the next start)")
                break
            time.sleep(0.05)
        for query in queries:
            query.stop()

    def query_id(self, event: str) -> str:
        """The id Spark keeps in the checkpoint: the same across restarts, new with a new checkpoint."""
        if event not in self.query_ids:
            self.query_ids[event] = json.loads(io.read_text(self.spark, f"{self.checkpoint(event)}/metadata"))["id"]
        return self.query_ids[event]

    # -- one micro-batch ---------------------------------------------------------------------------------------
    def process(self, event: str, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        manifest = io.read_manifest(self.spark, self.lake)
        state = manifest.get("streams", {}).get(event, {})
        if state.get("query_id") == self.query_id(event) and batch_id <= state["batch_id"]:
            self.say(f"stream {event} batch {batch_id}: already published before a restart; not applied again")
            return
        if state.get("query_id") not in (None, self.query_id(event)) and event not in self.rotated:
            self.say(f"stream {event}: a new checkpoint ({self.checkpoint(event)}); batch ids start again "
                     f"and every file still in the landing folder is read again (docs/operations.md)")
        self.rotated.discard(event)
        figures = self._apply(event, batch, batch_id, manifest)
        figures.seconds = time.monotonic() - started
        if event == "sales":
            self.forecasts.request()
        if figures.rows_silver:
            self.stock.request()
        with self.status_lock:
            self.recent[event] = figures
            published = self._write_status()
        state = published.get("streams", {}).get(event, {})
        totals = state.get("silver_totals", {})
        running = f"; stream total {state.get('rows_silver', 0):,} events"
        if "sales" in totals:
            running += f", sales {totals['sales']:,.2f}, profit {totals['profit']:,.2f}"
        self.say(figures.line() + running)

    def _apply(self, event: str, batch: DataFrame, batch_id: int, manifest: dict[str, Any]) -> BatchFigures:
        spark, lake = self.spark, self.lake
        run_id = self.run_id(event, batch_id)
        now = datetime.now(timezone.utc)
        lateness = timedelta(hours=self.settings.stream.allowed_lateness_hours)
        # Rows are numbered and cleaned in the pass that reads them (one file per scan partition), then the files'
        # partitions are packed into one task per core: each later stage runs a few tasks, not one per file.
        scanned = io.csv_scan_files(batch)
        bad_headers = io.header_problems(spark, scanned, self.profiles[event])
        for problem in bad_headers:
            self.say(f"stream {event} batch {batch_id}: {problem.line()}")
        persisted = self.preparations[event](batch, bad_headers).coalesce(
            self.spark.sparkContext.defaultParallelism).persist(StorageLevel.MEMORY_AND_DISK)
        # The batch's own values (ingest time, run id) are added after the cache, so the cached cleaning plan
        # is the same in every batch.
        cleaned = persisted.withColumn("ingest_time", _batch_time(now)).withColumn("run_id", F.lit(run_id))
        silver: DataFrame | None = None
        try:
            # The batch's counts are observed by its quarantine write (in the write's only stage, so a retried
            # task is not counted twice), which runs beside silver and gold: the writes are small and each job
            # costs mostly fixed planning and scheduling time, which overlaps.
            counts = Observation(f"batch-{run_id}")
            observed = cleaned.observe(
                counts, F.count(F.lit(1)).alias("rows"), F.count_if(F.col("reason").isNull()).alias("valid"),
                *[F.count_if(F.col("reason") == reason).alias(reason) for reason in REASON_ORDER],
                F.collect_set("source_file").alias("files"))
            bad = observed.where(F.col("reason").isNotNull()).select(
                "reason", "reason_detail", "raw", "source_file", "row_number", "ingest_time", "run_id")
            quarantine = self.submit(io.write_table_version, bad, lake, f"quarantine_{event}", run_id,
                                     replace=True, files_per_partition=1)
            # The landing times of the files the plan reads, so no job is needed for the oldest.
            first_landed = min((f.modified for f in scanned.values()), default=None)
            figures = BatchFigures(event, batch_id)
            written: dict[str, io.WrittenVersion] = {}
            if first_landed is not None:
                silver = self._new_silver(event, cleaned, manifest, first_landed - lateness)
                silver_written, sums = self._write_silver(event, silver, run_id)
                figures.rows_silver = int(sums["rows"])
                figures.totals = {c: float(sums[c] or 0.0) for c in SUMMED[event]}
                if figures.rows_silver:
                    written.update(silver_written)
                    window = self.submit(self.duplicates[event].add, silver_written[f"silver_{event}"])
                    if event == "sales":
                        written.update(self._write_sales_gold(silver, run_id))
                    try:
                        window.result()
                    except Exception as err:  # the window is read from silver again at the next batch instead
                        self.say(f"stream {event}: duplicate window read again at the next batch: {_reason(err)}")
            quarantined = quarantine.result()
            observed_counts = counts.get
            figures.by_reason = {r: observed_counts[r] for r in REASON_ORDER if observed_counts[r]}
            figures.rows_in = observed_counts["rows"]
            figures.rows_quarantined = sum(figures.by_reason.values())
            figures.rows_duplicate = observed_counts["valid"] - figures.rows_silver
            if figures.rows_quarantined:
                written[f"quarantine_{event}"] = quarantined
            read = set(observed_counts["files"])
            figures.files = len(read)
            if not read <= scanned.keys():  # headers were checked for the files found in the plan, not these
                raise RuntimeError(f"stream {event} batch {batch_id}: rows from files the batch's plan does not "
                                   f"name: {sorted(read - scanned.keys())[:3]}; their headers were not checked")

            def publish(current: dict[str, Any]) -> None:
                for table, version in written.items():
                    io.set_dirs(current, table, version, [])
                state = current.setdefault("streams", {}).setdefault(event, {c: 0 for c in COUNTERS})
                for counter in COUNTERS:
                    state[counter] = state.get(counter, 0) + getattr(figures, counter)
                by_reason = state.setdefault("quarantined_by_reason", {})
                for reason, rows in figures.by_reason.items():
                    by_reason[reason] = by_reason.get(reason, 0) + rows
                totals = state.setdefault("silver_totals", {})
                for name, value in figures.totals.items():
                    totals[name] = totals.get(name, 0.0) + value
                state.update(batch_id=batch_id, query_id=self.query_id(event),
                             batch_time=datetime.now(timezone.utc).isoformat())

            io.update_manifest(spark, lake, publish, run_id)
            self.last_files[event] = sorted(file.path for file in scanned.values())
            rotate_after = self.settings.stream.checkpoint_rotate_batches
            if rotate_after and batch_id + 1 >= rotate_after and self.settings.stream.processed_files != "keep":
                self.rotation_due.add(event)
            if first_landed is not None:
                figures.freshness_seconds = (datetime.now(timezone.utc) - first_landed).total_seconds()
            self.compactor.published(event, batch_id)
            self.alerts.request()
            return figures
        finally:
            if silver is not None:
                silver.unpersist()
            persisted.unpersist()

    def submit(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """``work`` on the writer pool as part of the calling thread's micro-batch: the pool thread takes the batch's
        job description, query and batch ids, so its jobs are counted and shown under that batch (Spark UI, event
        log) like the jobs of the query's own thread."""
        context = self.spark.sparkContext
        batch = {key: context.getLocalProperty(key) for key in BATCH_PROPERTIES}

        def run() -> Any:
            for key, value in batch.items():
                context.setLocalProperty(key, value)  # None removes it: a reused thread keeps no older batch's ids
            return work(*args, **kwargs)

        return self.writers.submit(run)

    def run_id(self, event: str, batch_id: int) -> str:
        """The name of batch ``batch_id``'s directories. It holds the checkpoint's query id: a new checkpoint starts
        its batch ids at 0 again, and must not overwrite directories an earlier one published."""
        return f"stream-{event}-{self.query_id(event)[:8]}-{batch_id:010d}"

    def _new_silver(self, event: str, cleaned: DataFrame, manifest: dict[str, Any],
                    window_start: datetime) -> DataFrame:
        """The batch's valid events that are not in silver yet (looked up in the duplicate window), deduplicated
        within the batch, cached: silver, gold and the window are extended from it."""
        columns = [c.name for c in self.profiles[event].schema.columns]
        good = cleaned.where(F.col("reason").isNull()).select(*columns, *SILVER_LINEAGE)
        good = self.duplicates[event].new_rows(good, manifest, window_start)
        silver = dedupe_events(good, event_key(event)).withColumn("event_date", F.to_date("event_time"))
        return silver.persist(StorageLevel.MEMORY_AND_DISK)

    def _write_silver(self, event: str, silver: DataFrame, run_id: str
                      ) -> tuple[dict[str, io.WrittenVersion], dict[str, Any]]:
        """Writes the batch's new silver rows; returns the version written and its row count and sums (``rows`` and
        SUMMED[event])."""
        # The rows and sums written, counted by the write itself: a separate count would be one more Spark job.
        sums = Observation(f"silver-{run_id}")
        observed = silver.observe(sums, F.count(F.lit(1)).alias("rows"), *[F.sum(c).alias(c) for c in SUMMED[event]])
        written = {f"silver_{event}": io.write_table_version(observed, self.lake, f"silver_{event}", run_id,
                                                             replace=True, files_per_partition=1)}
        return written, sums.get

    def _write_sales_gold(self, silver: DataFrame, run_id: str) -> dict[str, io.WrittenVersion]:
        def write(table: str, aggregate: Callable[[DataFrame], DataFrame]) -> io.WrittenVersion:
            return io.write_table_version(aggregate(silver), self.lake, table, run_id, replace=True,
                                          files_per_partition=1)

        # Each in its own thread, plan included: building a query costs the driver as much as running it here.
        writes = {table: self.submit(write, table, aggregate) for table, aggregate in
                  (("gold_sales_hourly", aggregate_sales_hourly), ("gold_customers_daily", aggregate_customers_daily))}
        return {table: future.result() for table, future in writes.items()}

    def _write_status(self) -> dict[str, Any]:
        manifest = io.read_manifest(self.spark, self.lake)
        now = datetime.now(timezone.utc)
        status: dict[str, Any] = {"updated_at": now.isoformat(), "events": {},
                                  "history": self._status_history(now)}
        for event, state in manifest.get("streams", {}).items():
            last = self.recent.get(event)
            status["events"][event] = {
                **state,
                "last_batch_seconds": last.seconds if last else None,
                "last_batch_rows_per_second": (last.rows_in / last.seconds) if last and last.seconds else None,
                "freshness_seconds": last.freshness_seconds if last else None,
                "files_in_landing": self._files_in_landing(event),
            }
        io.write_json(self.spark, f"{self.lake}/{STATUS}", status)
        return manifest

    def _status_history(self, now: datetime) -> list[dict[str, Any]]:
        """The last ``stream.status_history`` batches, oldest first, for the dashboard's charts over time:
        the previous status file's list (so a restart keeps it) plus the batch just published."""
        if self.history is None:
            try:
                previous = json.loads(io.read_text(self.spark, f"{self.lake}/{STATUS}")).get("history", [])
            except Exception:  # none yet (a missing-file error of Python or of the JVM's filesystem) or unreadable
                previous = []
            self.history = deque(previous, maxlen=self.settings.stream.status_history)
        for event, figures in self.recent.items():
            if self.in_history.get(event) is not figures:  # this event's newest batch, not recorded yet
                self.in_history[event] = figures
                self.history.append({"event": event, "batch_id": figures.batch_id, "time": now.isoformat(),
                                     "rows": figures.rows_in, "seconds": figures.seconds,
                                     "freshness_seconds": figures.freshness_seconds})
        return list(self.history)

    def _files_in_landing(self, event: str) -> int:
        """Files not processed yet, plus (with archive or delete) the last batch's, which Spark cleans up at the
        next batch."""
        return len(io.list_files(self.spark, f"{self.settings.paths.landing.rstrip('/')}/{event}"))


def _build_preparation(profile: SourceProfile, rules: CleaningRules
                       ) -> Callable[[DataFrame, list[io.HeaderProblem]], DataFrame]:
    number, to_canonical = io.build_row_numbering(profile), build_canonical_mapping(profile)
    clean = build_cleaning(rules)
    return lambda raw, bad_headers: clean(to_canonical(number(raw, bad_headers)))


def _batch_time(now: datetime) -> Column:
    """``now`` as a timestamp column whose value stays out of generated code. Spark writes timestamp literals into
    the Java it generates, so a new one in every batch compiled (and JIT-compiled) the write stages again each
    time; a string literal is passed by reference, and tying it to a column keeps it from being folded back."""
    return F.to_timestamp(F.concat(F.lit(now.isoformat()), F.substring(F.col("source_file"), 1, 0)))


def _reason(err: Exception) -> str:
    """The model's own one-line message when a worker raised ModelError, else the error's first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "ModelError: " in line:
            return line.split("ModelError: ", 1)[1]
    return lines[0] if lines else type(err).__name__


def check_paths(spark: SparkSession, settings: Settings) -> None:
    """Fail early, with the path and the reason, when the landing folder or the lake cannot be used."""
    landing, lake = settings.paths.landing.rstrip("/"), settings.paths.lake.rstrip("/")
    if not io.path_exists(spark, landing):
        raise StreamSetupError(f"landing folder {landing} does not exist (paths.landing; the simulator creates it)")
    for event in EVENTS:
        io.make_dirs(spark, f"{landing}/{event}")
    try:
        io.write_json(spark, f"{lake}/_status/.probe.json", {"probe": True})
        io.delete_path(spark, f"{lake}/_status/.probe.json")
    except Exception as err:  # any failure here means the lake is unusable
        raise StreamSetupError(f"lake {lake} is not writable: {str(err).splitlines()[0]}") from None


def build_stream_session(spark: SparkSession, settings: Settings) -> SparkSession:
    """A SQL session of its own for the stream (same SparkContext), so its SQL settings do not reach other users
    of ``spark``: one scan partition per landed file (rows are numbered as they are read), and settings for many
    small micro-batches."""
    session = build_source_session(spark)
    session.conf.set("spark.sql.adaptive.enabled", str(settings.stream.adaptive_query_execution).lower())
    # A batch caches its rows once and reads them a few times: compressing the cache costs more than it saves.
    session.conf.set("spark.sql.inMemoryColumnarStorage.compressed", "false")
    # Silver's directories of the lateness window are listed on the driver: beyond 32 paths Spark would run a
    # listing job of its own in every batch.
    session.conf.set("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
    return session


def run_stream(spark: SparkSession, settings: Settings, say: Callable[[str], None], stop: threading.Event,
               available_now: bool = False) -> int:
    """Run until ``stop`` is set (or, with ``available_now``, until every landed file is processed and the
    forecast refresh those files call for is published; a stop abandons a running forecast unpublished).
    Returns the process exit code: 0 after a clean stop, 1 when a query failed."""
    check_paths(spark, settings)
    job = StreamJob(spark, settings, say)
    say(f"stream: watching {settings.paths.landing}/{{sales,inventory}} -> lake {settings.paths.lake} "
        f"(trigger {settings.stream.trigger_seconds:g} s, checkpoints {job.checkpoint('*')})")
    job.start(available_now)
    queries = job.queries
    while not stop.is_set() and not any(q.exception() is not None for q in queries.values()):
        for event in sorted(job.rotation_due):
            job.rotate(event)
        if not any(q.isActive for q in queries.values()) and not job.rotation_due:
            break
        time.sleep(0.2)
    if any(q.isActive for q in queries.values()):
        say("stream: stopping after the running batch")
        job.stop()
    if available_now and not stop.is_set():
        job.forecasts.finish(stop)  # a catch-up run ends with the forecasts its data calls for
        job.compactor.finish(stop)  # and with its tables compacted
    else:
        job.forecasts.abandon()
        job.compactor.abandon()  # resumed after the restart; what it wrote unpublished is removed as orphans
    job.stock.finish()  # short: the stock snapshot reflects every published batch, also after a stop
    if job.alerts.thread.is_alive():
        job.alerts.finish(stop)  # the last batches' alerts
    job.alerts.notifier.close(settings.alerts.timeout_seconds)  # bounded: a dead receiver does not hold a stop
    failed = [q for q in queries.values() if q.exception() is not None]
    for query in failed:
        say(f"stream: query {query.name} failed: {str(query.exception()).splitlines()[0]}")
    return 1 if failed else 0


if __name__ == "__main__":  # spark-submit spark_jobs/stream.py [--available-now] ...
    from salespulse.cli import main

    main(["stream", *sys.argv[1:]])
