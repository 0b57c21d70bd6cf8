"""compact_tables: merge a table's small directories into bigger ones, beside running writers and readers.

The stream adds directories per micro-batch (level 0: ``stream-<event>-<batch>``). Compaction merges all
level-0 directories of a table into one level-1 directory (``compact-1-<time>``), eight level-1 directories
into a level-2 one, and so on, so a table holds a few directories per level however long the stream runs.
Gold partial aggregates are re-aggregated on the way; backfill versions are left alone. Each merge is
published with the manifest lock, replacing exactly the directories it read, so a stream batch published
meanwhile stays listed; the replaced directories are deleted after the manifest's grace period. Directories
no manifest lists and older than an hour (left by a killed writer) are removed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from salespulse.lake import TABLES
from salespulse.settings import Settings
from spark_jobs import io
from spark_jobs.transforms.aggregate import combine_customers_daily, combine_sales_hourly

FANOUT = 8  # directories of one level merged into the next
ORPHAN_AGE_SECONDS = 3600
SNAPSHOTS = ("gold_stock",)
# Event-level tables under retention and the column that dates a row (silver: event day; quarantine: ingest).
RETENTION = {"silver_sales": "event_date", "silver_inventory": "event_date", "quarantine_sales": "ingest_time",
             "quarantine_inventory": "ingest_time"}  # replaced whole on each refresh: nothing to merge
COMBINE: dict[str, Callable[[DataFrame], DataFrame]] = {
    "gold_sales_hourly": combine_sales_hourly,
    "gold_customers_daily": combine_customers_daily,
}
_LEVEL = re.compile(r"^dir=(?:stream-.*|compact-(\d+)-.*)$")


def level(directory: str) -> int | None:
    """0 for a stream batch, N for a compact-N directory, None for anything else (backfill versions)."""
    match = _LEVEL.match(directory.rsplit("/", 1)[-1])
    if not match:
        return None
    return int(match.group(1)) if match.group(1) else 0


def compact_tables(spark: SparkSession, settings: Settings, tables: list[str] | None = None) -> list[str]:
    """Compact the given tables (default: all but snapshots); returns one line per merge or removal."""
    lake = settings.paths.lake.rstrip("/")
    lines: list[str] = []
    for table in tables or [t for t in TABLES if t not in SNAPSHOTS]:
        manifest = io.read_manifest(spark, lake)
        dirs = manifest.get("tables", {}).get(table, [])
        levels: dict[int, list[str]] = {}
        for directory in dirs:
            found = level(directory)
            if found is not None:
                levels.setdefault(found, []).append(directory)
        for current in sorted(levels):
            group = levels[current]
            if len(group) < (2 if current == 0 else FANOUT):
                continue
            frame = io.read_version(spark, lake, table, group, manifest["schemas"][table])
            frame = COMBINE.get(table, lambda f: f)(frame)
            frame = io.one_file_per_partition(frame, table)
            name = f"compact-{current + 1}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}"
            written = io.write_table_version(frame, lake, table, name)
            io.update_manifest(spark, lake, lambda m, w=written, g=group, t=table: io.set_dirs(m, t, w, g), name)
            lines.append(f"compact {table}: {len(group)} level-{current} directories -> {written[0]}")
        lines += _remove_orphans(spark, lake, table)
    return lines


def apply_retention(spark: SparkSession, settings: Settings, days: int, now: datetime) -> list[str]:
    """Drop event-level data older than ``days`` (0: keep everything): silver rows whose event date is before
    the cut-off day, quarantine rows ingested before the cut-off time. Gold aggregates stay. Directories wholly
    older are unlisted, mixed ones replaced by a filtered copy, each table in one manifest swap, so readers see
    the table before or after, never half of it; unlisted directories are deleted after the grace period."""
    if days <= 0:
        return []
    lake = settings.paths.lake.rstrip("/")
    cutoff = now - timedelta(days=days)
    lines: list[str] = []
    for table, column in RETENTION.items():
        manifest = io.read_manifest(spark, lake)
        dirs = manifest.get("tables", {}).get(table, [])
        if not dirs:
            continue
        schema = manifest["schemas"][table]
        limit = F.lit(cutoff.date()) if column == "event_date" else F.lit(cutoff)
        old = F.coalesce(F.col(column) < limit, F.lit(False))
        ages = io.share_matching(spark, lake, table, dirs, schema, old)
        dropped = [d for d in dirs if ages.get(d) == 1.0]
        mixed = [d for d in dirs if 0.0 < ages.get(d, 0.0) < 1.0]
        if not dropped and not mixed:
            continue
        stamp = f"{now:%Y%m%dT%H%M%S%f}"
        rewritten = []
        for directory in mixed:
            kept = io.one_file_per_partition(io.read_version(spark, lake, table, [directory], schema).where(~old),
                                             table)
            # The name keeps the original's prefix, so compaction still knows the directory's level.
            name = f"{directory.rsplit('/', 1)[-1].removeprefix(io.DIR_PREFIX)}-retained-{stamp}"
            rewritten.append((directory, io.write_table_version(kept, lake, table, name)))

        def change(current: dict[str, Any], t: str = table, gone: tuple[str, ...] = tuple(dropped),
                   swaps: tuple[tuple[str, io.WrittenVersion], ...] = tuple(rewritten)) -> None:
            current["tables"][t] = [d for d in current["tables"].get(t, []) if d not in gone]
            for directory in gone:
                current.get("files", {}).pop(directory, None)
            for replaced, written in swaps:
                io.set_dirs(current, t, written, [replaced])

        io.update_manifest(spark, lake, change, f"retention-{stamp}")
        lines.append(f"retention {table}: before {cutoff:%Y-%m-%d %H:%M} UTC ({days} days): {len(dropped)} "
                     f"director{'y' if len(dropped) == 1 else 'ies'} unlisted, {len(mixed)} rewritten without "
                     "the old rows")
    return lines


def _remove_orphans(spark: SparkSession, lake: str, table: str) -> list[str]:
    manifest = io.read_manifest(spark, lake)
    known = {d for dirs in manifest.get("tables", {}).values() for d in dirs}
    known |= {r["dir"] for r in manifest.get("retired", [])}
    folder = TABLES[table].folder
    removed = []
    for name, modified in io.list_dirs(spark, f"{lake}/{folder}"):
        if f"{folder}/{name}" not in known and time.time() - modified > ORPHAN_AGE_SECONDS:
            io.delete_path(spark, f"{lake}/{folder}/{name}")
            removed.append(f"compact {table}: removed {folder}/{name} (never published, older than an hour)")
    return removed
