"""The dashboard's one reader of the lake: every callback and the CSV export go through LakeRepository.

DuckDB over the Parquet files the manifest lists (``salespulse.lake.duckdb_scan``: committed output only,
since a plain folder listing could show uncommitted files), on a local folder or on HDFS through WebHDFS
(``salespulse.storage``: the lake's one file-system interface, registered with DuckDB for remote files). Every query is
aggregated in SQL from gold, so only small frames reach Python and the browser (raw rows are slow to ship). Results are
cached per process, keyed by the data version (the manifest file's identity: one ``stat`` locally, one namenode status
call at most every ``hdfs.version_check_seconds`` on HDFS): a gunicorn worker recomputes a query only when a writer has
published something new, and an unchanged lake costs one ``stat`` (or status call) per poll (every open tab polls; each
worker process polls on its own). Per data version the repository also keeps, in its own in-memory DuckDB,
gold_sales_hourly's rollup per UTC day (periods of whole days at day, week and month grain read that; other periods read
only their days' hourly files), and in memory the customer bitsets of ``dashboard/customer_sets.py`` (exact distinct
customers of any period in milliseconds), both built from the previous version's for the days whose files did not
change. docs/dashboard.md says what each costs.
Row-level security: every query method takes the caller's ``salespulse.scope.Scope`` as its first argument (the
countries it may see, or all), checked on entry; nothing is looked up from the request or the thread, and a call
without one fails. The private readers a query calls find its scope through ``_viewer``, which raises outside a query
call, so no read can fall back to every country. Every table is read through ``_visible``, which keeps only the scope's
rows (a table without a country column reads as empty for a restricted scope), and every cache key starts with the
scope's countries (``_cached``), so one viewer's results never serve another. A background build (``ready_version``)
runs for the scope of the call that started it.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from dashboard.customer_sets import COLUMNS as CUSTOMER_COLUMNS
from dashboard.customer_sets import CustomerCells, build_customer_cells, count_customers
from dashboard.heap import release_freed_memory
from salespulse.kpi_report import (
    FIRSTS_SQL,
    SalesFilter,
    data_coverage,
    exact_frame,
    group_hours,
    kpi_totals_over,
    partial_periods,
)
from salespulse.kpis import Coverage, previous_comparison
from salespulse.lake import (
    MANIFEST,
    STATUS,
    TABLES,
    file_day,
    in_days,
    parquet_scan,
    table_dir_files,
    table_listed_files,
)
from salespulse.metrics import MEASURES, SHOWN_MEASURES, compute_kpis, event_measures, measure_sums
from salespulse.schema import COUNTRIES
from salespulse.scope import Scope, require
from salespulse.settings import DashboardSettings
from salespulse.storage import Storage, as_storage
from salespulse.targets import MEASURES as TARGET_MEASURES
from salespulse.targets import MonthToDate, month_to_date, reference_time, remaining_forecast, target_attainment

GRAINS = ("minute", "hour", "day", "week", "month")
DIMENSIONS = ("country", "segment", "product", "discount_band")
# gold_sales_hourly per UTC day and category, with the first and last hour of the day that had sales
DAILY_SQL = f"""SELECT event_date, country, segment, product, discount_band, min(hour) AS first_hour,
                       max(hour) AS last_hour, {measure_sums()}
                FROM {{rows}} GROUP BY ALL"""
# gold_customers_daily with dense integer keys, for the customer bitsets: customers numbered 0.. (with their
# first order in the viewer's countries, over every row they may see whatever the filter, as customer_totals
# counts "new"), country-segment pairs
# numbered 0.., and per UTC day (as days since 1970-01-01), pair and customer its rows' orders. Customers are
# numbered in order of their first day in the lake: a new version's numbers differ from the previous version's only
# from the first day whose customers changed on, so earlier days' bitsets carry over (see _customer_cells).
NEVER = -(2**31)  # the smallest int32 day number
CUSTOMER_IDS_SQL = f"""SELECT *, (row_number() OVER (ORDER BY first_seen, customer_id) - 1)::INTEGER AS customer
                       FROM ({FIRSTS_SQL})"""
# the first day from which two versions' customer numbers differ (NULL: nowhere; least() skips a NULL)
CUSTOMER_IDS_DIFFER_SQL = """SELECT min(least(n.first_seen, o.first_seen))
                             FROM {new} n FULL JOIN {old} o USING (customer)
                             WHERE n.customer_id IS DISTINCT FROM o.customer_id
                                OR n.first_seen IS DISTINCT FROM o.first_seen"""
CUSTOMER_GROUPS_SQL = """SELECT country, segment, (row_number() OVER (ORDER BY country, segment) - 1)::INTEGER AS grp
                         FROM (SELECT DISTINCT country, segment FROM {customers})"""
# (not summed here: a GROUP BY over millions of rows would hold a hash table of them; numpy sums per day)
CUSTOMER_CELLS_SQL = """SELECT (c.event_date - DATE '1970-01-01')::INTEGER AS day, g.grp, i.customer, c.orders
                        FROM {customers} c JOIN {ids} i USING (customer_id) JOIN {groups} g USING (country, segment)"""
CUSTOMER_CHUNK_DAYS = 10
# A version check that finds a new data version starts building the tables every view of it shares (``_prepare``)
# and waits this long for them; if they are not ready by then it answers "no change yet" and the page learns of
# the version at a later poll, so the views it then asks for do not queue behind the build. A version is held
# back for at most PREPARE_HOLD_SECONDS after the repository first saw it (publishes faster than builds must not
# keep new data from the pages).
PREPARE_WAIT_SECONDS = 0.1
PREPARE_HOLD_SECONDS = 3.0
# DuckDB keeps a little memory for good (tens of KB) per version's tables created and dropped in one database, which
# a worker of a live lake does every few seconds; a new database after this many versions frees it.
DATABASE_VERSIONS = 240
# The scope of the query method running in this context (set on entry by ``_query`` from its argument, and by a
# background build for the scope that started it); None outside one, where ``_viewer`` raises.
_CALL_SCOPE: ContextVar[Scope | None] = ContextVar("salespulse_call_scope", default=None)
log = logging.getLogger(__name__)


def _query(method: Callable[..., Any]) -> Callable[..., Any]:
    """A query method: its first argument must be a Scope (``salespulse.scope.require``), which the private readers it
    calls see through ``_viewer`` until it returns."""
    @functools.wraps(method)
    def call(self: LakeRepository, scope: Scope, *args: Any, **kwargs: Any) -> Any:
        token = _CALL_SCOPE.set(require(scope))
        try:
            return method(self, scope, *args, **kwargs)
        finally:
            _CALL_SCOPE.reset(token)
    return call


class TableMissing(LookupError):
    """A table that was never published (e.g. forecasts before the first `salespulse train`)."""


@dataclass(frozen=True)
class ModelInfo:
    version: str
    trained_at: str | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class _Listing:
    """A table's committed files under one data version: those the reads use, and those the manifest lists that
    cannot be read (a missing directory, a file gone from its directory, a file without a readable Parquet footer),
    which the figures leave out and the page, /readyz and /metrics report."""

    readable: tuple[str, ...]
    unreadable: tuple[str, ...]


@dataclass(eq=False)
class _Built:
    """A per-version table of the repository's DuckDB."""

    name: str
    days: dict[date | None, tuple[str, ...]] | None = None  # by-day tables: per day, the files it was built from
    ready: bool = False  # created: a newer version may copy from it


@dataclass(eq=False)
class _Preparation:
    """A background build of a version's shared tables for one viewer."""

    version: str
    done: threading.Event


@dataclass(frozen=True)
class _CellsBuild:
    """A viewer's last customer bitsets, with what they were built from."""

    cells: CustomerCells
    ids: str  # the table numbering its customers (CUSTOMER_IDS_SQL)
    days: dict[date | None, tuple[str, ...]]  # per day, the files read


class LakeRepository:
    """Read-only, cached queries over one lake (a local folder or any Storage, e.g. HDFS through WebHDFS) and the
    model registry (a local folder)."""

    def __init__(self, lake: Storage | str | Path, models: str | Path,
                 memory_mb: int = DashboardSettings.model_fields["query_memory_mb"].default):
        self.lake = as_storage(lake)
        self.models = Path(models)
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._cache_version = ""
        self._lock = threading.Lock()
        self._memory_mb = int(memory_mb)
        self._db = self._new_database()  # holds the per-version tables; every query runs on a cursor of it
        self._db_versions = 0  # data versions whose tables ``_db`` has held (see DATABASE_VERSIONS)
        self._tables: dict[str, list[_Built]] = {}  # per name and visible countries: its tables, newest last
        self._previous_cells: dict[tuple[str, ...] | None, _CellsBuild] = {}  # per visible countries: the last build
        self._building: dict[tuple[Any, ...], threading.Event] = {}  # keys some thread is computing now
        self._computing = 0  # computations running now, in any thread (every read of a table runs inside one)
        self._prepared: dict[tuple[str, ...] | None, str] = {}  # per visible countries: the version last prepared
        self._preparing: dict[tuple[str, ...] | None, _Preparation] = {}  # per visible countries: the running build
        self._first_seen: tuple[str, float] = ("", 0.0)  # the newest data version seen and when (time.monotonic())
        # A published directory never changes (writers add new ones), so the files it held when first listed are the
        # files it must hold, and a file found readable stays so. Per table, for what its manifest lists now.
        self._dir_files: dict[str, dict[str, tuple[str, ...]]] = {}  # per table and directory: its files first seen
        self._readable: dict[str, dict[str, bool]] = {}  # per table and listed file: whether it can be read
        self._serial = itertools.count()

    # -- versions and small files ------------------------------------------------------------------------
    def data_version(self) -> str:
        """Changes whenever a writer publishes: the manifest is replaced by rename, so its identity (inode or
        HDFS file id, size, modification time) changes. No read of the manifest itself."""
        return self.lake.version(MANIFEST)

    @_query
    def ready_version(self, scope: Scope) -> str:
        """The data version to tell the viewer's pages about: the current one once the tables all its views share
        (the daily rollup and the customer bitsets) are built for this viewer, else "" ("no change yet"; for at
        most PREPARE_HOLD_SECONDS after the version appeared). The first request that finds them missing starts
        their build in the background; each waits for it PREPARE_WAIT_SECONDS at most."""
        version, viewer = self.data_version(), scope.countries
        start = None
        with self._lock:
            if self._prepared.get(viewer) == version:
                return version
            if self._first_seen[0] != version:
                self._first_seen = (version, time.monotonic())
            appeared = self._first_seen[1]
            build = self._preparing.get(viewer)
            if build is None:
                build = start = self._preparing[viewer] = _Preparation(version, threading.Event())
        if start is not None:
            threading.Thread(target=self._prepare, args=(scope, start), name="salespulse-prepare", daemon=True).start()
        if build.done.wait(PREPARE_WAIT_SECONDS) and build.version == version:
            return version
        return version if time.monotonic() - appeared > PREPARE_HOLD_SECONDS else ""

    def _prepare(self, scope: Scope, build: _Preparation) -> None:
        """Builds the current version's shared tables for ``scope`` (run in a thread of its own)."""
        _CALL_SCOPE.set(scope)
        try:
            self.newest_hour(scope)  # builds the daily rollup
            self._customer_cells()
            self.unreadable_files()  # lists every table (and reads new files' footers) before the views ask
        except TableMissing:  # nothing published yet: nothing to build
            pass
        except Exception as err:  # the views' own reads report it, with the read warning
            log.warning("building a new data version's tables failed; the views read on demand", exc_info=err)
        finally:
            with self._lock:
                self._prepared[scope.countries] = build.version
                del self._preparing[scope.countries]
            build.done.set()

    def _viewer(self) -> tuple[str, ...] | None:
        """The countries the running query's scope may see (None: all). Raises outside a query method: a read
        must never fall back to every country."""
        scope = _CALL_SCOPE.get()
        if scope is None:
            raise RuntimeError("a lake read outside a query method: no Scope says whose data it may return")
        return scope.countries

    def memory_bytes(self) -> dict[str, int]:
        """The repository's DuckDB memory in use, by part (DuckDB's tags, e.g. IN_MEMORY_TABLE), for /metrics; empty
        when the database was renewed during the read (the next scrape reads the new one)."""
        try:
            rows = self._con().execute("SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                                       "WHERE memory_usage_bytes > 0").fetchall()
        except duckdb.ConnectionException:
            return {}
        return {tag.lower(): int(size) for tag, size in rows}

    def has_data(self) -> bool:
        return bool(self.data_version())

    def published_at(self) -> str | None:
        """When the manifest was last published (UTC ISO), for the header when no stream runs."""
        return _read_json(self.lake, MANIFEST, default={}).get("published_at")

    @_query
    def stream_status(self, scope: Scope) -> dict[str, Any] | None:
        """The running stream's figures (``_status/stream.json``), or None when no stream has run. They count
        every country's rows, so a restricted viewer gets only when it last published (the header's freshness)."""
        status = _read_json(self.lake, STATUS)
        if status is None or not scope.restricted:
            return status
        return {"updated_at": status["updated_at"]} if "updated_at" in status else None

    @_query
    def model_info(self, scope: Scope) -> ModelInfo | None:
        """The promoted model of the registry (``<models>/current``), or None before the first training."""
        try:
            version = (self.models / "current").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        metrics = _read_json(as_storage(self.models), f"{version}/metrics.json") or {}
        # measured over every country's sales: administrators only
        return ModelInfo(version, metrics.get("trained_at"), {} if scope.restricted else metrics)

    # -- cache and scans ---------------------------------------------------------------------------------
    @_query
    def countries(self, scope: Scope) -> tuple[str, ...]:
        """The countries the current viewer may see (the country filter's options)."""
        return scope.visible(COUNTRIES)

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], Any], per_viewer: bool = True) -> Any:
        """``compute()``'s value for ``key`` under the current data version, computed once: threads asking for a
        key another thread is computing wait for its result instead of computing it again (after a publish,
        every open page asks for the same new tables at once)."""
        # Row-level security: results are per set of visible countries, except what holds no row (file listings).
        key = (self._viewer() if per_viewer else "files of every viewer", *key)
        version = self.data_version()
        dropped = False
        while True:
            with self._lock:
                if version != self._cache_version:  # new data: drop everything computed from the old version
                    self._cache, self._cache_version, dropped = {}, version, True
                    self._renew_database()
                if key in self._cache:
                    return self._cache[key]
                running = self._building.get((version, key))
                if running is None:
                    done = self._building[(version, key)] = threading.Event()
                    self._computing += 1
                    break
            running.wait()  # then take its value, or compute it here if that thread failed
        try:
            if dropped:
                release_freed_memory()  # what the old version's results held
            value = compute()
            with self._lock:
                if version == self._cache_version:
                    self._cache[key] = value
        finally:
            with self._lock:
                del self._building[(version, key)]
                self._computing -= 1
                unused = self._unused_tables() if not self._computing else []
            done.set()
            try:
                for name in unused:
                    self._con().execute(f"DROP TABLE IF EXISTS {name}")
            except duckdb.ConnectionException:  # the database was renewed meanwhile, and its tables went with it
                pass
        return value

    def _new_database(self) -> duckdb.DuckDBPyConnection:
        db = duckdb.connect()
        self.lake.attach(db)  # a remote lake's Parquet files are read through its file system
        # A bounded worker: DuckDB's default limit is 80 % of the machine's RAM. Past the limit it drops cached
        # remote file blocks, then spills to its own temp folder (created on demand, removed on close).
        spill = Path(tempfile.gettempdir()) / f"salespulse-duckdb-{os.getpid()}-{id(self)}"
        db.execute(f"SET memory_limit = '{self._memory_mb}MB'")
        db.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
        return db

    def _renew_database(self) -> None:
        """Under the lock, at a new data version: after DATABASE_VERSIONS versions, and only while no computation
        runs (nothing reads the old database's tables then), replaces the database by a new, empty one. The next
        version builds its tables from the lake again instead of copying unchanged days from the previous ones."""
        self._db_versions += 1
        if self._db_versions < DATABASE_VERSIONS or self._computing:
            return
        self._db.close()  # first: the new database may reuse the spill folder the old one removes on close
        self._db, self._db_versions = self._new_database(), 0
        self._tables.clear()
        self._previous_cells.clear()

    def _unused_tables(self) -> list[str]:
        """Takes out of the registry, under the lock and while no computation runs, the per-version tables nothing
        can read any more: not the newest of their name (the next version copies its unchanged days from it), not
        held by a cached value of the current version, not the customer numbering a viewer's next bitsets build
        compares with. Every read of a table runs inside a computation, so none is being read now."""
        held = {v for v in self._cache.values() if isinstance(v, str)} | {b.ids for b in self._previous_cells.values()}
        unused = []
        for versions in self._tables.values():
            newest = next((built for built in reversed(versions) if built.ready), None)
            kept = [built for built in versions if built is newest or not built.ready or built.name in held]
            unused += [built.name for built in versions if built not in kept]
            versions[:] = kept
        return unused

    def _files(self, table: str) -> tuple[str, ...]:
        """The table's committed files that can be read (``_listing``)."""
        return self._listing(table).readable

    def _listing(self, table: str) -> _Listing:
        """The table's committed files, readable or not; listing them costs a manifest read and a directory walk
        (and a footer read per file not seen before), so once per data version. Raises TableMissing for a table
        never published."""
        def listing() -> _Listing:
            try:
                by_dir = table_dir_files(self.lake, table)
            except FileNotFoundError:
                raise TableMissing(table) from None
            return self._check_files(table, by_dir, table_listed_files(self.lake, table))
        return self._cached(("files", table), listing, per_viewer=False)

    def _check_files(self, table: str, by_dir: dict[str, list[str] | None],
                     listed: dict[str, tuple[str, ...]]) -> _Listing:
        """Splits the manifest's directories of ``table`` (their files as listed now; None: the directory is gone)
        into files the reads can use and parts that cannot be read. A directory's files are those the manifest
        names (``listed``; lakes published before it named them: those this process first saw there). A missing
        part must not silently lower the totals: it is reported (``unreadable_files``) and logged with its path and
        cause when first found. Files found unreadable are tried again at each data version (a remote read may
        fail only for a while)."""
        with self._lock:
            first_seen = self._dir_files.get(table, {})
            expected = {d: listed.get(d) or first_seen.get(d, tuple(files or ())) for d, files in by_dir.items()}
            self._dir_files[table] = expected
            readable = dict(self._readable.get(table, {}))
        present = sorted(f for files in by_dir.values() for f in files or ())
        found = set(present)
        gone = [self.lake.url(d) for d, files in by_dir.items() if files is None and not expected[d]]
        gone += [f for d in by_dir for f in expected[d] if f not in found]
        checked = {f: self._footer_error(f) for f in present if not readable.get(f, False)}
        newly = {f: error for f, error in checked.items() if error and readable.get(f, True)}
        newly |= {f: "listed by the manifest but gone" for f in gone if readable.get(f, True)}
        if newly:
            log.warning("%s: parts the manifest lists cannot be read; the figures leave them out: %s", table,
                        "; ".join(f"{part} ({error})" for part, error in newly.items()))
        readable |= {f: error is None for f, error in checked.items()} | dict.fromkeys(gone, False)
        with self._lock:
            self._readable[table] = {f: readable[f] for f in (*present, *gone)}
        return _Listing(tuple(f for f in present if readable[f]),
                        tuple(sorted(gone + [f for f in present if not readable[f]])))

    def _footer_error(self, file: str) -> str | None:
        """Why DuckDB cannot read ``file``'s Parquet footer (a truncated, foreign or vanished file), None when it
        can."""
        try:
            self._con().execute("SELECT 1 FROM parquet_file_metadata(?)", [file]).fetchall()
        except duckdb.OutOfMemoryException:  # the worker's trouble, not the file's
            raise
        except duckdb.Error as err:
            return str(err)
        return None

    def unreadable_files(self) -> dict[str, tuple[str, ...]]:
        """Per published table, the parts the manifest lists under the current data version that cannot be read
        (files, or a directory when it is gone before it was ever listed); the figures leave them out."""
        unreadable = {}
        for table in TABLES:
            try:
                unreadable[table] = self._listing(table).unreadable
            except TableMissing:
                continue
        return unreadable

    def _files_by_day(self, table: str) -> dict[date | None, tuple[str, ...]]:
        """The table's committed files per ``event_date`` partition, oldest day first."""
        days: dict[date | None, list[str]] = {}
        for file in self._files(table):
            days.setdefault(file_day(file), []).append(file)
        return {day: tuple(days[day]) for day in sorted(days, key=lambda d: (d is not None, d))}

    def _scan(self, table: str, days: tuple[date | None, date | None] | None = None) -> str | None:
        """The committed rows of ``table`` the viewer may see (only the files of ``days``' ``event_date``
        partitions, when given); None for an empty table."""
        return self._visible(table, [f for f in self._files(table) if in_days(f, days)])

    def _visible(self, table: str, files: Iterable[str]) -> str | None:
        """The rows of ``files`` (some of ``table``'s) the viewer may see; None when there are none. The one place
        where row-level security applies."""
        scan = parquet_scan(tuple(files))
        allowed = self._viewer()
        if scan is None or allowed is None:
            return scan
        if not allowed or "country" not in TABLES[table].column_names:  # nothing to attribute: nothing shown
            return None
        listed = ", ".join("'" + c.replace("'", "''") + "'" for c in allowed)
        return f"(SELECT * FROM {scan} WHERE country IN ({listed}))"

    def _optional_scan(self, table: str) -> str | None:
        """Like _scan, but a never-published table reads as empty (tables only some writers produce)."""
        try:
            return self._scan(table)
        except TableMissing:
            return None

    def _con(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the repository's DuckDB (one per query: cursors are not shared between threads)."""
        return self._db.cursor()

    def _frame(self, sql: str, params: list[Any] | None = None, exact: bool = False) -> pd.DataFrame:
        """``sql``'s rows; DECIMAL money as floats (for charts), or with ``exact`` as ``decimal.Decimal`` for text
        and files that show cents."""
        if exact:
            return exact_frame(self._con(), sql, params or [])
        return self._con().execute(sql, params or []).df()

    def _table(self, name: str, sql: str) -> str:
        """A table of the repository's DuckDB holding ``sql``'s rows, built once per data version and set of
        visible countries (``sql`` reads through ``_scan``, so it holds only those countries' rows)."""
        return self._cached(("table", name, sql), lambda: self._create(name, lambda _: sql))

    def _table_by_day(self, name: str, table: str, sql: str) -> str | None:
        """Like ``_table``, for ``sql`` over ``{rows}``, the rows of ``table`` the viewer may see, where ``sql``'s
        rows of a day depend only on ``table``'s rows of that day (it groups by event_date); None when the viewer
        sees no row. The days whose files did not change since the viewer's previous version of the table are
        copied from it, and ``sql`` reads only the other days' files: a stream publish touches a day or two, so the
        work after a publish does not grow with the days of history."""
        by_day = self._files_by_day(table)
        if self._visible(table, (f for files in by_day.values() for f in files)) is None:
            return None

        def select(previous: _Built | None) -> str:
            before = previous.days if previous is not None and previous.days is not None else {}
            kept = [day for day, files in by_day.items() if day is not None and before.get(day) == files]
            parts = []
            if previous is not None and kept:
                listed = ", ".join(f"DATE '{day.isoformat()}'" for day in kept)
                parts.append(f"SELECT * FROM {previous.name} WHERE event_date IN ({listed})")
            fresh = self._visible(table, (f for day, files in by_day.items() if day not in kept for f in files))
            if fresh is not None:
                parts.append(sql.format(rows=fresh))
            return f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY event_date"
        return self._cached(("table", name, tuple(by_day.items())), lambda: self._create(name, select, by_day))

    def _create(self, name: str, select: Callable[[_Built | None], str],
                days: dict[date | None, tuple[str, ...]] | None = None) -> str:
        """Creates the viewer's newest ``name`` table from ``select(previous)``, ``previous`` being the newest one
        created before (None: the first). Tables it replaces are dropped once no computation runs
        (``_unused_tables``)."""
        with self._lock:
            versions = self._tables.setdefault(f"{name}:{self._viewer()}", [])
            previous = next((built for built in reversed(versions) if built.ready), None)
            table = _Built(f"{name}_{next(self._serial)}", days)
            versions.append(table)
        try:
            self._con().execute(f"CREATE TABLE {table.name} AS {select(previous)}")
        except BaseException:
            with self._lock:
                versions.remove(table)
            raise
        table.ready = True
        return table.name

    def _daily_table(self) -> str | None:
        """The table of gold_sales_hourly's rows per UTC day and category (DAILY_SQL) the viewer may see."""
        return self._table_by_day("sales_daily", "gold_sales_hourly", DAILY_SQL)

    def _sales_daily(self) -> str | None:
        """gold_sales_hourly rolled up per UTC day, as a relation with gold's columns: each day's sums at its
        first hour with sales, so sums and any filter or grouping on whole days, weeks or months give what gold
        gives."""
        daily = self._daily_table()
        if daily is None:
            return None
        keys = "event_date, country, segment, product, discount_band"
        return f"(SELECT first_hour AS hour, {keys}, {', '.join(m.name for m in MEASURES)} FROM {daily})"

    def _customer_cells(self) -> CustomerCells | None:
        """gold_customers_daily as customer bitsets per UTC day and country-segment pair (see
        dashboard/customer_sets.py), built once per data version; None before any customer row. The bitsets of
        days before the first day whose customers changed, and whose files did not change, are copied from the
        viewer's previous build: after a stream publish, only its day or two are read again."""
        customers = self._optional_scan("gold_customers_daily")
        if customers is None:
            return None

        def build() -> CustomerCells:
            viewer = self._viewer()
            by_day = self._files_by_day("gold_customers_daily")
            ids = self._table("customer_ids", CUSTOMER_IDS_SQL.format(customers=customers))
            groups = self._table("customer_groups", CUSTOMER_GROUPS_SQL.format(customers=customers))
            first, last = self._con().execute(f"""SELECT min(event_date) - DATE '1970-01-01',
                                                    max(event_date) - DATE '1970-01-01' FROM {customers}""").fetchone()
            if first is None:  # files without rows: no day at all
                first, last = 0, -1
            # a customer without a first order date is never "new" (NULL >= day is not true in SQL either)
            firsts = self._con().execute(f"""SELECT coalesce((first_ever - DATE '1970-01-01')::INTEGER, {NEVER})
                                             AS first_ever FROM {ids} ORDER BY customer""").fetchnumpy()
            names = self._con().execute(f"SELECT country, segment FROM {groups} ORDER BY grp").fetchnumpy()
            with self._lock:
                previous = self._previous_cells.get(viewer)
            kept = self._unchanged_customer_days(previous, ids, names, by_day)
            rebuilt = [day for day in by_day if day not in kept]

            def chunks() -> Iterator[tuple[np.ndarray, ...]]:
                # a few days at a time: the rows of all days at once would briefly cost ~250 MB more
                for start in range(0, len(rebuilt), CUSTOMER_CHUNK_DAYS):
                    days = rebuilt[start:start + CUSTOMER_CHUNK_DAYS]
                    part = self._visible("gold_customers_daily", (f for day in days for f in by_day[day]))
                    if part is None:
                        continue
                    rows = self._con().execute(CUSTOMER_CELLS_SQL.format(customers=part, ids=ids, groups=groups)
                                               ).fetchnumpy()
                    yield rows["day"], rows["grp"], rows["customer"], rows["orders"]
            cells = build_customer_cells(first, last - first + 1, chunks(), firsts["first_ever"], names["country"],
                                         names["segment"], previous.cells if previous else None,
                                         [_epoch_day(day) for day in kept])
            with self._lock:
                self._previous_cells[viewer] = _CellsBuild(cells, ids, by_day)
            return cells
        return self._cached(("customer_cells",), build)

    def _unchanged_customer_days(self, previous: _CellsBuild | None, ids: str, names: dict[str, np.ndarray],
                                 by_day: dict[date | None, tuple[str, ...]]) -> list[date]:
        """The days whose bitsets ``previous`` (the viewer's last build) holds as they are now: the same files, the
        same country-segment pairs, and before the first day from which customer numbers differ."""
        if previous is None or not (np.array_equal(previous.cells.countries, names["country"])
                                    and np.array_equal(previous.cells.segments, names["segment"])):
            return []
        try:
            changed = self._con().execute(CUSTOMER_IDS_DIFFER_SQL.format(new=ids, old=previous.ids)).fetchone()[0]
        except duckdb.CatalogException:  # its numbers are gone (dropped after the grace): nothing to compare
            return []
        return [day for day, files in by_day.items()
                if day is not None and (changed is None or day < changed) and previous.days.get(day) == files]

    def _customer_rows(self, where: SalesFilter, dimension: str | None) -> pd.DataFrame | None:
        """customer_totals' rows for ``where`` (whole UTC days touching the period), from the bitsets."""
        cells = self._customer_cells()
        if cells is None:
            return None
        first = _epoch_day(where.start) if where.start is not None else None
        last = _epoch_day(where.end - timedelta(microseconds=1)) if where.end is not None else None
        return count_customers(cells, first, last, where.countries, where.segments, dimension)

    def _sales(self, grain: str = "hour", where: SalesFilter | None = None) -> str | None:
        """Sales measures per period x categories: summed gold for hour and coarser grains (its daily rollup
        when ``where`` is whole UTC days and the grain is a day or coarser); for minutes, the silver events
        rolled up by minute in DuckDB (gold is hourly). The time column is called ``hour`` either way so one
        filter serves all."""
        if grain in ("day", "week", "month") and where is not None and _whole_days(where):
            return self._sales_daily()
        if grain != "minute":
            return self._scan("gold_sales_hourly", _days(where))
        silver = self._scan("silver_sales", _days(where))
        if silver is None:
            return None
        return f"""(SELECT date_trunc('minute', event_time) AS hour, event_date, country, segment, product,
                           discount_band, {event_measures()}
                    FROM {silver})"""

    # -- sales -------------------------------------------------------------------------------------------
    @_query
    def newest_hour(self, scope: Scope) -> pd.Timestamp | None:
        """Start of the newest hour with sales (UTC, naive), the anchor of the date presets."""
        coverage = self._coverage()
        return None if coverage is None else pd.Timestamp(coverage.last_hour)

    def _coverage(self) -> Coverage | None:
        """The viewer's first and last hour with sales and the lake's publish time (items per hour's hours). From
        the daily rollup, which the page's KPIs need anyway: scanning gold for it cost a read of every file per
        version."""
        def compute() -> Coverage | None:
            daily = self._daily_table()
            if daily is None:
                return None
            first, last = self._con().execute(f"SELECT min(first_hour), max(last_hour) FROM {daily}").fetchone()
            return data_coverage(first, last, self.published_at())
        return self._cached(("coverage",), compute)

    @_query
    def kpis(self, scope: Scope, where: SalesFilter) -> dict[str, Any]:
        """The KPI row `salespulse kpis` prints for the same filter (same function), as a dict."""
        def compute() -> dict[str, Any]:
            sales = self._sales("day", where)
            if sales is None:
                return {}
            customers = self._customer_rows(where, None) if where.per_customer else None
            rows = kpi_totals_over(self._con(), sales, None, None, where, customers, coverage=self._coverage())
            if rows.empty or not rows["orders"].iloc[0]:
                return {}
            row = rows.iloc[0].to_dict()
            return row | compute_kpis(row)
        return self._cached(("kpis", where), compute)

    @_query
    def sales_by(self, scope: Scope, where: SalesFilter, dimensions: tuple[str, ...]) -> pd.DataFrame:
        """Additive measures summed per combination of ``dimensions`` (one or more of DIMENSIONS)."""
        if not dimensions or not set(dimensions) <= set(DIMENSIONS):
            raise ValueError(f"dimensions must be one or more of {DIMENSIONS}")
        def compute() -> pd.DataFrame:
            # one query per filter at the finest breakdown (at most a few hundred rows), summed here for each
            # breakdown a page asks for: the Overview's four breakdowns cost one query, not four
            finest = self._cached(("sales_by", where, DIMENSIONS), lambda: self._grouped(where, "day", DIMENSIONS))
            return finest.groupby(list(dimensions), as_index=False, sort=True)[list(SHOWN_MEASURES)].sum()
        return self._cached(("sales_by", where, dimensions), compute)

    @_query
    def sales_over_time(self, scope: Scope, where: SalesFilter, grain: str, dimensions: tuple[str, ...] = (),
                        measures: tuple[str, ...] = SHOWN_MEASURES) -> pd.DataFrame:
        """``measures`` (some of SHOWN_MEASURES) per ``period`` (start of the minute/hour/day/week/month, UTC)
        and ``dimensions``. Asking for fewer measures reads fewer Parquet columns: a 90-day hourly trend of
        sales alone reads gold ~30% faster than all five."""
        if grain not in GRAINS:
            raise ValueError(f"grain must be one of {GRAINS}")
        if not measures or not set(measures) <= set(SHOWN_MEASURES):
            raise ValueError(f"measures must be one or more of {SHOWN_MEASURES}")
        return self._cached(("over_time", where, grain, dimensions, measures),
                            lambda: self._grouped(where, grain, dimensions, measures, period=True))

    def _grouped(self, where: SalesFilter, grain: str, dimensions: tuple[str, ...],
                 measures: tuple[str, ...] = SHOWN_MEASURES, period: bool = False, exact: bool = False) -> pd.DataFrame:
        keys = ([f"date_trunc('{grain}', hour) AS period"] if period else []) + list(dimensions)
        columns = ["period", *dimensions] if period else list(dimensions)
        sales = self._sales(grain, where)
        if sales is None:  # numeric measures even when empty: callers sort and sum them
            return pd.DataFrame(columns=[*columns, *measures]).astype(dict.fromkeys(measures, "float64"))
        condition, params = where.sales_where()
        group = ", ".join(keys) + ", " if keys else ""
        order = f"ORDER BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
        return self._frame(f"""
            SELECT {group}{measure_sums(measures)}
            FROM {sales} WHERE {condition} {"GROUP BY ALL" if keys else ""} {order}""", params, exact)

    @_query
    def export_rows(self, scope: Scope, where: SalesFilter, grain: str) -> pd.DataFrame:
        """The filtered view for CSV: numeric measures per period and every category (UTC periods); money as
        exact Decimals, for the export to round to cents by the display rule."""
        return self._cached(("export", where, grain),
                            lambda: self._grouped(where, grain, DIMENSIONS, period=True, exact=True))

    @_query
    def comparison(self, scope: Scope, where: SalesFilter) -> tuple[SalesFilter | None, str]:
        """What the KPIs of ``where`` (a bounded period) are compared with: the like-for-like part of the previous
        period (None: nothing comparable) and the label saying so (``salespulse.kpis.previous_comparison``, over the
        hours the viewer's data covers)."""
        if where.start is None or where.end is None:
            raise ValueError("only a bounded period has a previous period")
        chosen = previous_comparison(_naive(where.start), _naive(where.end), self._coverage())
        if chosen.start is None or chosen.end is None:
            return None, chosen.label
        return replace(where, start=chosen.start.replace(tzinfo=timezone.utc),
                       end=chosen.end.replace(tzinfo=timezone.utc)), chosen.label

    @_query
    def sales_by_month(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """``sales_over_time`` per month with ``hours``, the month's hours inside the period that the data covers
        (items per hour's ``period_hours``), and ``month_hours``, all its hours: a month with fewer (the month to
        date, or one the period or the data starts inside) is a partial month."""
        months = self.sales_over_time(scope, where, "month")
        starts = pd.to_datetime(months["period"])
        coverage = self._coverage()
        hours = (group_hours(starts.dt.strftime("%Y-%m"), "month", where, coverage) if coverage is not None
                 else [0.0] * len(months))
        month_hours = ((starts + pd.offsets.MonthBegin(1)) - starts).dt.total_seconds() / 3600
        return months.assign(hours=hours, month_hours=month_hours)

    @_query
    def with_partial_periods(self, scope: Scope, frame: pd.DataFrame, where: SalesFilter, grain: str) -> pd.DataFrame:
        """A ``sales_over_time`` frame with ``partial``: its period shows less than the whole day, week or month
        (the data or the filter starts or ends inside it), so a chart can draw it as partial."""
        return frame.assign(partial=partial_periods(frame["period"], grain, where, self._coverage())
                            if not frame.empty else [])

    # -- customers ---------------------------------------------------------------------------------------
    @_query
    def customers_by(self, scope: Scope, where: SalesFilter, dimension: str | None) -> pd.DataFrame:
        """Active, new, returning and repeat customers and orders per ``dimension`` (country or segment)."""
        def compute() -> pd.DataFrame:
            rows = self._customer_rows(where, dimension) if where.per_customer else None
            return pd.DataFrame(columns=CUSTOMER_COLUMNS) if rows is None else rows
        frame = self._cached(("customers_by", where, dimension), compute)
        return frame.rename(columns={"grp": dimension or "scope"})

    # -- forecasts ---------------------------------------------------------------------------------------
    @_query
    def forecasts(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """Country-level forecasts for hours from the period's start on (including the hours after the newest
        data): for each target hour, the forecast with the latest origin before it. Raises TableMissing."""
        def compute() -> pd.DataFrame:
            scan = self._scan("gold_forecasts")
            if scan is None:
                return pd.DataFrame()
            condition, params = _country_period(where, "hour", bounded=False)
            return self._frame(f"""
                SELECT hour, country, sales_p10, sales_p50, sales_p90, units_p10, units_p50, units_p90,
                       origin, model_version
                FROM {scan} WHERE level = 'country' AND origin < hour AND {condition}
                QUALIFY row_number() OVER (PARTITION BY country, hour ORDER BY origin DESC, generated_at DESC) = 1
                ORDER BY country, hour""", params)
        return self._cached(("forecasts", where), compute)

    @_query
    def anomalies(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """Country-level sales anomalies in the period (none before the scorer has published any)."""
        def compute() -> pd.DataFrame:
            scan = self._optional_scan("gold_forecast_anomalies")
            if scan is None:
                return pd.DataFrame()
            condition, params = _country_period(where, "hour")
            return self._frame(f"""
                SELECT hour, country, actual, p10, p50, p90, direction FROM {scan}
                WHERE level = 'country' AND measure = 'sales' AND {condition}
                -- a back-test and the stream may both have judged an hour: the latest forecast's verdict counts
                QUALIFY row_number() OVER (PARTITION BY country, hour ORDER BY origin DESC, detected_at DESC) = 1
                ORDER BY hour""", params)
        return self._cached(("anomalies", where), compute)

    # -- targets -----------------------------------------------------------------------------------------
    @_query
    def target_attainment(self, scope: Scope, where: SalesFilter) -> tuple[MonthToDate, pd.DataFrame] | None:
        """The month ``where`` ends in (or the newest data's month) and, per target of the viewer's countries (and
        the chosen ones) in it, attainment to date and the projected month end (salespulse.targets). Targets judge
        whole countries or segments: the segment, product and band filters do not apply. None before any sales."""
        def compute() -> tuple[MonthToDate, pd.DataFrame] | None:
            coverage = self._coverage()
            if coverage is None:
                return None
            data_end = coverage.last_hour + timedelta(hours=1)
            end = where.end.replace(tzinfo=None) if where.end is not None else None
            window = month_to_date(reference_time(end, data_end), data_end)
            month = SalesFilter(window.start.replace(tzinfo=timezone.utc), window.end.replace(tzinfo=timezone.utc),
                                countries=where.countries)
            scan = self._optional_scan("targets")
            if scan is None:
                return window, target_attainment(pd.DataFrame(columns=["country", "segment"]), pd.DataFrame(), {},
                                                 window)
            condition, params = month.condition(None, columns=("country",))
            targets = self._frame(f"""SELECT country, segment, sales_target, profit_target FROM {scan}
                                      WHERE month = ? AND {condition} ORDER BY country, segment NULLS FIRST""",
                                  [window.month, *params], exact=True)
            targets["segment"] = targets["segment"].astype(object).where(targets["segment"].notna(), None)
            sales = self._sales("day", month)
            actuals = pd.DataFrame(columns=["country", "segment", "sales", "profit"])
            if sales is not None:
                condition, params = month.sales_where()
                actuals = self._frame(f"SELECT country, segment, {measure_sums(TARGET_MEASURES)} "
                                      f"FROM {sales} WHERE {condition} GROUP BY ALL", params, exact=True)
            try:
                # from a day before the data's end: the latest origin's whole day gives the hourly rate past the
                # forecast's horizon
                since = window.data_end.replace(tzinfo=timezone.utc) - timedelta(days=1)
                forecasts = self.forecasts(scope, replace(month, start=since))
            except TableMissing:
                forecasts = pd.DataFrame()
            remaining = remaining_forecast(forecasts, window) if not forecasts.empty else {}
            return window, target_attainment(targets, actuals, remaining, window)
        return self._cached(("target_attainment", where), compute)

    # -- inventory ---------------------------------------------------------------------------------------
    @_query
    def stock(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """The stock snapshot per country x product, with the period's COGS for inventory turnover."""
        def compute() -> pd.DataFrame:
            scan = self._scan("gold_stock")
            if scan is None:
                return pd.DataFrame()
            condition, params = _country_period(where, None, products=True)
            stock = self._frame(f"SELECT * FROM {scan} WHERE {condition} ORDER BY country, product", params)
            cogs = self.sales_by(scope, where, ("country", "product"))[["country", "product", "cogs"]]
            return stock.merge(cogs, on=["country", "product"], how="left").fillna({"cogs": 0.0})
        return self._cached(("stock", where), compute)

    @_query
    def reorder_alerts(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """Series below their reorder point now, with the first alert time and the predicted stock-out time
        when forecasts exist (null: not within the forecast horizon)."""
        def compute() -> pd.DataFrame:
            stock = self._scan("gold_stock")
            if stock is None:
                return pd.DataFrame()
            alerts = self._optional_scan("gold_reorder_alerts")  # written by the stream only
            stockout = self._optional_scan("gold_stockout")
            condition, params = _country_period(where, None, products=True, alias="s.")
            alert_join = (f"LEFT JOIN (SELECT country, product, max(detected_at) AS alerted_at FROM {alerts} "
                          "GROUP BY ALL) a USING (country, product)") if alerts else ""
            stockout_join = (f"LEFT JOIN (SELECT country, product, predicted_stockout_time, units_p50_24h FROM "
                             f"{stockout} QUALIFY row_number() OVER (PARTITION BY country, product ORDER BY "
                             "generated_at DESC) = 1) p USING (country, product)") if stockout else ""
            return self._frame(f"""
                SELECT s.country, s.product, s.stock_on_hand, s.reorder_point, s.days_of_cover,
                       {"a.alerted_at" if alerts else "NULL::TIMESTAMP AS alerted_at"},
                       {"p.units_p50_24h, p.predicted_stockout_time" if stockout else
                        "NULL::DOUBLE AS units_p50_24h, NULL::TIMESTAMP AS predicted_stockout_time"},
                       s.as_of
                FROM {stock} s {alert_join} {stockout_join}
                WHERE s.below_reorder_point AND {condition}
                ORDER BY s.days_of_cover NULLS LAST, s.country, s.product""", params)
        return self._cached(("reorder_alerts", where), compute)

    @_query
    def engagement_by_country(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """Per country: active customers (engagement), sales and stock on hand now (units, gold_stock summed over
        products; NaN without a stock snapshot), for customer engagement against sales and inventory."""
        customers = self.customers_by(scope, where, "country")[["country", "active_customers", "repeat_customers"]]
        sales = self.sales_by(scope, where, ("country",))[["country", "sales", "orders"]]
        stock = self.stock(scope, where)
        units = (stock.groupby("country", as_index=False)["stock_on_hand"].sum() if not stock.empty
                 else pd.DataFrame({"country": pd.Series(dtype=str), "stock_on_hand": pd.Series(dtype=float)}))
        return (customers.merge(sales, on="country", how="outer").merge(units, on="country", how="left")
                .fillna({"active_customers": 0, "repeat_customers": 0, "sales": 0.0, "orders": 0})
                .sort_values("country", ignore_index=True))

    @_query
    def stock_over_time(self, scope: Scope, where: SalesFilter) -> pd.DataFrame:
        """Stock on hand per country at the end of each UTC day of the period (``period``: the day), counted as
        gold_stock counts it now: per product, the last count before the day's end plus the restocks and
        adjustments since that count, minus the units sold since it (silver events), summed over the products
        with a count by then. Days after the newest data are left out. Stock has no segment or discount band:
        only the country and product filters apply."""
        def compute() -> pd.DataFrame:
            empty = pd.DataFrame({"period": pd.Series(dtype="datetime64[us]"), "country": pd.Series(dtype=str),
                                  "stock_on_hand": pd.Series(dtype=float)})
            coverage, inventory = self._coverage(), self._optional_scan("silver_inventory")
            if coverage is None or inventory is None:
                return empty
            first = _naive(where.start) or coverage.first_hour
            last = min(_naive(where.end) or coverage.as_of, coverage.last_hour + timedelta(hours=1))
            day_ends = [datetime.combine(d, datetime.min.time()) + timedelta(days=1)
                        for d in pd.date_range(first.date(), (last - timedelta(microseconds=1)).date()).date]
            if not day_ends:
                return empty
            condition, params = where.condition(None, columns=("country", "product"))
            counts = f"""(SELECT e.country, e.product, e.day_end, c.event_time AS count_time, c.quantity AS counted
                          FROM (SELECT * FROM (SELECT DISTINCT country, product FROM {inventory} WHERE {condition}),
                                               (SELECT unnest(?::TIMESTAMP[]) AS day_end)) e
                          ASOF JOIN (SELECT * FROM {inventory} WHERE kind = 'count') c
                            ON e.country = c.country AND e.product = c.product AND e.day_end > c.event_time)"""
            earliest = self._con().execute(f"SELECT min(count_time) FROM {counts}", [*params, day_ends]).fetchone()[0]
            if earliest is None:
                return empty
            sales = self._scan("silver_sales", (earliest.date(), day_ends[-1].date() - timedelta(days=1)))
            sold = (f"""LEFT JOIN (SELECT l.country, l.product, l.day_end, sum(s.units_sold) AS sold FROM {counts} l
                                   JOIN {sales} s ON s.country = l.country AND s.product = l.product
                                    AND s.event_time >= l.count_time AND s.event_time < l.day_end GROUP BY ALL) s
                         USING (country, product, day_end)""" if sales is not None else "")
            return self._frame(f"""
                SELECT (l.day_end - INTERVAL 1 DAY)::TIMESTAMP AS period, l.country,
                       sum(l.counted + coalesce(m.moved, 0){" - coalesce(s.sold, 0)" if sales else ""})::DOUBLE
                         AS stock_on_hand
                FROM {counts} l
                LEFT JOIN (SELECT l.country, l.product, l.day_end, sum(i.quantity) AS moved FROM {counts} l
                           JOIN {inventory} i ON i.country = l.country AND i.product = l.product
                            AND i.kind <> 'count' AND i.event_time >= l.count_time AND i.event_time < l.day_end
                           GROUP BY ALL) m USING (country, product, day_end)
                {sold}
                GROUP BY ALL ORDER BY country, period""", [*params, day_ends] * (3 if sales is not None else 2))
        return self._cached(("stock_over_time", where), compute)

    @_query
    def has_stockout_forecasts(self, scope: Scope) -> bool:
        return self._optional_scan("gold_stockout") is not None

    # -- alerts ------------------------------------------------------------------------------------------
    @_query
    def active_alerts(self, scope: Scope) -> pd.DataFrame:
        """The alerts firing now (the latest event of each in gold_alert_events is a firing), newest first.
        Through ``_visible`` like every table: a restricted viewer gets their countries' alerts, and not the
        stream's, which have no country."""
        def compute() -> pd.DataFrame:
            scan = self._optional_scan("gold_alert_events")
            if scan is None:
                return pd.DataFrame(columns=["event_time", "alert_id", "kind", "country", "product", "message"])
            return self._frame(f"""
                SELECT event_time, alert_id, kind, country, product, message FROM {scan}
                QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY event_time DESC) = 1 AND status = 'firing'
                ORDER BY event_time DESC, alert_id""")
        return self._cached(("active_alerts",), compute)

    # -- data quality ------------------------------------------------------------------------------------
    @_query
    def quarantine_over_time(self, scope: Scope, grain: str) -> pd.DataFrame:
        """Rejected rows per ingest period, event and reason."""
        def compute() -> pd.DataFrame:
            parts = []
            for event in ("sales", "inventory"):
                scan = self._optional_scan(f"quarantine_{event}")
                if scan is not None:
                    parts.append(f"SELECT date_trunc('{grain}', ingest_time) AS period, '{event}' AS event, "
                                 f"reason, count(*) AS rows FROM {scan} GROUP BY ALL")
            if not parts:
                return pd.DataFrame(columns=["period", "event", "reason", "rows"])
            return self._frame(" UNION ALL ".join(parts) + " ORDER BY period")
        return self._cached(("quarantine_over_time", grain), compute)

    @_query
    def quarantine_sample(self, scope: Scope, limit: int = 20) -> pd.DataFrame:
        """The latest rejected sales rows: reason, its detail (the culprit and what was found), raw values as text."""
        shown = ["ingest_time", "reason", "reason_detail", "source_file", "row_number", "raw"]

        def compute() -> pd.DataFrame:
            scan = self._scan("quarantine_sales")
            if scan is None:
                return pd.DataFrame(columns=shown)
            # SELECT *: a lake written before reason_detail existed has no such column (its rows show none).
            frame = self._frame(f"""SELECT * FROM {scan}
                                    ORDER BY ingest_time DESC, source_file, row_number LIMIT ?""", [limit])
            if "reason_detail" not in frame:
                frame["reason_detail"] = None
            frame = frame[shown]
            frame["source_file"] = frame["source_file"].str.rsplit("/", n=1).str[-1]
            frame["raw"] = [", ".join(f"{k}={v}" for k, v in dict(raw).items() if k and v) for raw in frame["raw"]]
            return frame
        return self._cached(("quarantine_sample", limit), compute)

    @_query
    def ingest_over_time(self, scope: Scope, where: SalesFilter, grain: str) -> pd.DataFrame:
        """Silver sales rows loaded per ingest period and run, and their lag (ingest time - event time):
        ingest rate and freshness over time, from the lineage every silver row carries."""
        def compute() -> pd.DataFrame:
            scan = self._scan("silver_sales")
            if scan is None:
                return pd.DataFrame(columns=["period", "rows", "lag_p50_s", "lag_p95_s"])
            condition, params = _country_period(where, "event_time")
            return self._frame(f"""
                SELECT date_trunc('{grain}', ingest_time) AS period, count(*) AS rows,
                       quantile_cont(epoch(ingest_time) - epoch(event_time), 0.5) AS lag_p50_s,
                       quantile_cont(epoch(ingest_time) - epoch(event_time), 0.95) AS lag_p95_s
                FROM {scan} WHERE {condition} GROUP BY 1 ORDER BY 1""", params)
        return self._cached(("ingest_over_time", where, grain), compute)

    @_query
    def backfill_reports(self, scope: Scope) -> list[dict[str, Any]]:
        """The backfill run reports (``reports/backfill/*.json``), oldest first; all-country counts, so
        administrators only."""
        if scope.restricted:
            return []
        files = self.lake.find("reports/backfill", ".json", recursive=False)
        reports = [_read_json(self.lake, f"reports/backfill/{f.rsplit('/', 1)[1]}") for f in files]
        return [r for r in reports if r]

    @_query
    def manifest_streams(self, scope: Scope) -> dict[str, Any]:
        """The stream counters published with the data (exact after any crash); administrators only."""
        if scope.restricted:
            return {}
        return _read_json(self.lake, MANIFEST, default={}).get("streams", {})


def _naive(moment: datetime | None) -> datetime | None:
    """A UTC time as the lake stores times: naive."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _whole_days(where: SalesFilter) -> bool:
    """Whether the period starts and ends at UTC midnight (or is open), so whole days of gold make it up."""
    return all(t is None or t == t.replace(hour=0, minute=0, second=0, microsecond=0) for t in (where.start, where.end))


def _epoch_day(moment: date) -> int:
    """The UTC day of ``moment`` (a day, or a UTC time) as days since 1970-01-01 (the customer bitsets' day
    numbers)."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return (day - date(1970, 1, 1)).days


def _days(where: SalesFilter | None) -> tuple[date | None, date | None] | None:
    """The UTC days the period touches (None: all), to read only those partitions of a table."""
    if where is None or (where.start is None and where.end is None):
        return None
    return (where.start.date() if where.start else None,
            (where.end - timedelta(microseconds=1)).date() if where.end else None)


def _country_period(where: SalesFilter, time_column: str | None, *, bounded: bool = True, products: bool = False,
                    alias: str = "") -> tuple[str, list[Any]]:
    """Filter for tables keyed by country (and product), not by segment or band; ``bounded=False`` keeps
    everything after the period's start (forecasts reach past the newest data)."""
    chosen = where if bounded else replace(where, end=None)
    return chosen.condition(time_column, columns=("country", "product") if products else ("country",), alias=alias)


def _read_json(storage: Storage, relative: str, default: Any = None) -> Any:
    """A small JSON file, or ``default`` when absent or caught between writes (writers rename atomically, so
    a failure here is a missing file, not a torn one)."""
    try:
        return json.loads(storage.read_text(relative))
    except (FileNotFoundError, json.JSONDecodeError):
        return default
