"""DuplicateWindow: the keys a stream's micro-batches look their duplicates up in, cached in the executors.

A valid event is a duplicate when its key is already in silver with an event time inside the lateness window
(``stream.allowed_lateness_hours`` before the batch's earliest landing time). Reading those keys from silver in
every batch costs a listing and a scan that grow with the window; this keeps them in memory instead:

- a base, read from silver's partitions of the window when the stream starts, every ``REBUILD_EVERY`` batches
  (which drops keys that have left the window), and whenever a writer other than the stream, such as a
  backfill, publishes a silver directory;
- one small segment per batch since, read from the silver directory the batch wrote; every ``MERGE_EVERY`` of
  them are merged into one, so a lookup runs a few tasks, not one per batch.

Each cached part is read from Parquet directories, never derived from another batch's plan, so query plans stay
small however long the stream runs. Keys may stay up to ``REBUILD_EVERY`` batches past the window. That cannot
change what a batch keeps: a re-sent event carries its original's event time, so once the original has left the
window the copy is older than the lateness allows and goes to quarantine as ``late_event`` anyway.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import io
from spark_jobs.compact import level
from spark_jobs.transforms.dedupe import event_key

MERGE_EVERY = 10  # per-batch segments merged into one
REBUILD_EVERY = 60  # batches between reads of the whole window from silver


class DuplicateWindow:
    def __init__(self, spark: SparkSession, lake: str, event: str):
        self.spark, self.lake, self.table = spark, lake, f"silver_{event}"
        self.key = list(event_key(event))
        self.columns = list(dict.fromkeys([*self.key, "event_time"]))
        self.base: DataFrame | None = None
        self.merged: list[DataFrame] = []
        self.recent: list[DataFrame] = []
        self.built = False
        self.batches = 0  # batches added since the base was read
        self.known: set[str] = set()  # silver directories whose keys the window holds

    def new_rows(self, good: DataFrame, manifest: dict[str, Any], window_start: datetime) -> DataFrame:
        """The rows of ``good`` whose key is not in the window. Two small jobs: the batch's keys are broadcast to
        find those the window holds, and those (few) are broadcast to drop them."""
        listed = manifest.get("tables", {}).get(self.table, [])
        # Compaction's directories hold keys the window has; any other unknown one is another writer's.
        foreign = any(d not in self.known and level(d) is None for d in listed)
        if not self.built or foreign or self.batches >= REBUILD_EVERY:
            self._build(manifest, window_start)
        parts = [p for p in (self.base, *self.merged, *self.recent) if p is not None]
        if not parts:
            return good
        window = functools.reduce(DataFrame.unionByName, parts).select(*self.key)
        seen = window.join(F.broadcast(good.select(*self.key)), self.key, "left_semi")
        return good.join(F.broadcast(seen), self.key, "left_anti")

    def add(self, written: io.WrittenVersion) -> None:
        """A batch's silver directory (``write_table_version``'s result) joins the window: read and cached in a small
        job. A failure leaves the window to be read again from silver at the next lookup, never missing keys."""
        try:
            segment = io.read_version(self.spark, self.lake, self.table, [written[0]], written[1])
            self.recent.append(_cache(segment.select(*self.columns).coalesce(1)))
            self.known.add(written[0])
            self.batches += 1
            if len(self.recent) >= MERGE_EVERY:
                self.merged.append(_cache(functools.reduce(DataFrame.unionByName, self.recent).coalesce(1)))
                _drop(self.recent)
                self.recent = []
        except Exception:
            self.built = False
            raise

    def close(self) -> None:
        _drop([p for p in (self.base, *self.merged, *self.recent) if p is not None])
        self.base, self.merged, self.recent, self.built = None, [], [], False

    def _build(self, manifest: dict[str, Any], window_start: datetime) -> None:
        self.close()
        self.known = set(manifest.get("tables", {}).get(self.table, []))
        self.batches = 0
        existing = io.read_table(self.spark, self.lake, self.table, manifest)
        if existing is not None:
            # Partition pruning on event_date keeps the read to the days of the window.
            keys = existing.where(F.col("event_date") >= F.to_date(F.lit(window_start))).where(
                F.col("event_time") >= F.lit(window_start)).select(*self.columns)
            self.base = _cache(keys.coalesce(self.spark.sparkContext.defaultParallelism))
        self.built = True


def _cache(frame: DataFrame) -> DataFrame:
    cached = frame.persist(StorageLevel.MEMORY_AND_DISK)
    cached.count()  # materialised now, while the directories it is read from are surely there
    return cached


def _drop(frames: list[DataFrame]) -> None:
    for frame in frames:
        frame.unpersist()
