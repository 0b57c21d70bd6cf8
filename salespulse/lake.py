"""The lake's layout and table contracts, shared by Spark jobs, `salespulse kpis`, notebooks and the dashboard.

Every table is a set of Parquet directories listed in one manifest, ``<lake>/_manifest.json``. Writers put
new data in a fresh directory, then replace the manifest with one atomic rename (under a lock, so the stream,
backfill and compaction can run together); readers read the manifest first and only the directories it
lists, so they never see half-written or superseded output (a plain listing of a Spark output folder can show
uncommitted or duplicate files, and an overwrite deletes before it writes). Directories a manifest stops listing are
deleted only after a grace period, so a reader of the previous manifest can finish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from salespulse.metrics import MEASURES
from salespulse.schema import MONEY_COLUMNS, MONEY_SQL
from salespulse.storage import Storage, as_storage

MANIFEST = "_manifest.json"
STATUS = "_status/stream.json"  # the running stream's figures, for the dashboard and monitoring


@dataclass(frozen=True)
class LakeTable:
    name: str
    folder: str  # relative to the lake root
    partition_by: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, meaning)
    description: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


_SALES_COLUMNS = (
    ("order_id", "unique order id (deduplicated)"),
    ("event_time", "UTC timestamp"),
    ("country", "canonical country"), ("segment", "segment"), ("product", "product"),
    ("discount_band", "None / Low / Medium / High"),
    ("units_sold", "double"), *((name, f"money, {MONEY_SQL}") for name in MONEY_COLUMNS),
    ("customer_id", "pseudonymous id or null"),
)
_LINEAGE = (
    ("flags", "comma-separated notes on accepted oddities (e.g. unknown_category under the flag policy), or null"),
    ("source_file", "file the row came from"), ("row_number", "1-based data-record number in that file"),
    ("ingest_time", "UTC time of the run that loaded it"), ("run_id", "id of that run"),
)
SILVER_LINEAGE = tuple(name for name, _ in _LINEAGE)  # the lineage columns every silver row carries


_QUARANTINE = (
    ("reason", "reason code (REASONS)"),
    ("reason_detail", "the culprit and what was found, e.g. \"country: 'Brasil' is not one of USA, ...\" (null in "
                      "rows written before the column existed)"),
    ("raw", "map of source column -> raw text (bad_header: _header, _missing, _detail)"), ("source_file", ""),
    ("row_number", "1-based data-record number (0: a bad_header entry for the whole file)"),
    ("ingest_time", ""), ("run_id", ""),
)

TABLES: dict[str, LakeTable] = {t.name: t for t in (
    LakeTable("silver_sales", "silver/sales", ("event_date",),
              (*_SALES_COLUMNS, *_LINEAGE, ("event_date", "UTC date of event_time (partition)")),
              "Valid, deduplicated sales events."),
    LakeTable("silver_inventory", "silver/inventory", ("event_date",),
              (("event_time", "UTC timestamp"), ("country", ""), ("product", ""), ("kind", "restock/adjustment/count"),
               ("quantity", "double"), ("reorder_point", "double"), *_LINEAGE, ("event_date", "partition")),
              "Valid inventory events."),
    LakeTable("gold_sales_hourly", "gold/sales_hourly", ("event_date",),
              (("hour", "UTC hour start"), ("country", ""), ("segment", ""), ("product", ""),
               ("discount_band", ""), *((m.name, m.description) for m in MEASURES), ("event_date", "partition")),
              "Additive sales measures per hour x country x segment x product x discount band. The stream "
              "writes partial rows per micro-batch until compaction merges them: always SUM by key."),
    LakeTable("gold_customers_daily", "gold/customers_daily", ("event_date",),
              (("country", ""), ("segment", ""), ("customer_id", ""), ("orders", "orders that day"),
               ("sales", "sum of sales that day"),
               ("first_order_date", "UTC date of the customer's first order in this country"),
               ("event_date", "partition")),
              "One row per customer and day (partial rows from the stream until compaction: SUM orders and "
              "sales by key, take MIN(first_order_date) per customer over the countries the viewer may see): exact "
              "distinct, new/returning and repeat counts for any period, country and segment (not per product)."),
    LakeTable("gold_stock", "gold/stock", (),
              (("country", ""), ("product", ""), ("as_of", "UTC time of the latest event used"),
               ("stock_on_hand", "last count + restocks + adjustments - units sold since"),
               ("reorder_point", "latest reorder point"), ("last_count_time", "UTC"),
               ("units_sold_7d", "units sold in the 7 days before as_of"),
               ("avg_daily_units_7d", "units_sold_7d / 7"),
               ("days_of_cover", "stock / avg daily units, null if none sold"),
               ("inventory_value", "stock on hand x manufacturing price"), ("below_reorder_point", "bool")),
              "Stock position per country x product (one snapshot, replaced on each refresh)."),
    LakeTable("gold_reorder_alerts", "gold/reorder_alerts", (),
              (("detected_at", "UTC time of the stock refresh that saw the breach"), ("country", ""),
               ("product", ""), ("stock_on_hand", ""), ("reorder_point", ""), ("days_of_cover", ""),
               ("as_of", "stock as_of")),
              "A row each time a series falls below its reorder point (not repeated while it stays below)."),
    LakeTable("gold_forecasts", "gold/forecasts", (),
              (("level", "'country' (country total) or 'product'"), ("country", ""),
               ("product", "null at level country"),
               ("origin", "UTC hour start of the last complete hour the forecast used"),
               ("hour", "UTC hour start being forecast"), ("horizon", "hours after origin, 1..24"),
               ("sales_p10", ""), ("sales_p50", ""), ("sales_p90", ""),
               ("units_p10", ""), ("units_p50", ""), ("units_p90", ""),
               ("model_version", "registry version that produced it"), ("generated_at", "UTC")),
              "Hourly quantile forecasts per series. Origins accumulate: for a target hour, show the forecast "
              "with the latest origin before that hour."),
    LakeTable("gold_forecast_anomalies", "gold/forecast_anomalies", (),
              (("hour", "UTC hour start"), ("level", ""), ("country", ""), ("product", "null at level country"),
               ("measure", "'sales' or 'units_sold'"), ("actual", ""), ("p10", ""), ("p50", ""), ("p90", ""),
               ("direction", "'above' p90 or 'below' p10"), ("model_version", ""),
               ("origin", "origin of the forecast the actual was judged against"), ("detected_at", "UTC")),
              "Completed hours whose actual fell outside the p10-p90 band of the forecast made for them."),
    LakeTable("gold_stockout", "gold/stockout", (),
              (("country", ""), ("product", ""), ("stock_on_hand", "from gold_stock"), ("as_of", "stock as_of"),
               ("units_p50_24h", "sum of the next 24 h units_p50"),
               ("predicted_stockout_time", "UTC time cumulative p50 units reach the stock; null when the stock "
                                           "lasts beyond the 24 h horizon"),
               ("model_version", ""), ("generated_at", "UTC")),
              "Predicted stock-out per country x product (one snapshot, replaced on each forecast refresh)."),
    LakeTable("targets", "targets", (),
              (("month", "UTC date of the month's first day"), ("country", "canonical country"),
               ("segment", "segment, or null for the whole country"),
               ("sales_target", f"money, {MONEY_SQL}"), ("profit_target", f"money, {MONEY_SQL}"),
               ("source", "where it came from: FILE:LINE of `salespulse targets load`, or 'set'"),
               ("updated_at", "UTC time of the command that set it")),
              "Monthly sales and profit targets per country (and optionally segment), one row per month x country "
              "x segment, set with `salespulse targets load|set`; the whole table is replaced by each change."),
    LakeTable("gold_alert_events", "gold/alert_events", (),
              (("event_time", "UTC time of the evaluation that saw the change"),
               ("alert_id", "rule|country|product: one alert of one rule"), ("rule", "rule name (alerts.rules)"),
               ("kind", "kpi_threshold, forecast_band, stockout or stream_stale"),
               ("status", "'firing' or 'resolved'"), ("country", "null for stream_stale"),
               ("product", "stockout only, else null"), ("value", "the measured value when it fired"),
               ("threshold", "the rule's limit"), ("message", "text for people"),
               ("notified", "sent to the webhooks (false: within the cool-down of its last resolution)")),
              "Alert firings and resolutions, appended by each evaluation that changed something; an alert is "
              "active while its latest event is a firing."),
    LakeTable("quarantine_sales", "quarantine/sales", (), _QUARANTINE, "Rejected sales rows, with their raw values."),
    LakeTable("quarantine_inventory", "quarantine/inventory", (), _QUARANTINE, "Rejected inventory rows."),
)}

REASONS: dict[str, str] = {
    "bad_header": "one entry for a whole file whose header does not fit the profile, or that is empty or unreadable",
    "malformed_row": "wrong number of fields, or a line that is not valid CSV",
    "missing_field": "a required field is blank",
    "malformed_number": "a number that does not parse",
    "malformed_date": "an event time in none of the profile's date formats",
    "unknown_category": "country, segment, product, band or kind not in the configured lists",
    "negative_units": "units sold below zero",
    "amount_mismatch": "gross, sales or profit do not reconcile with units, price, discounts and COGS",
    "future_event_time": "event time further in the future than the configured tolerance",
    "late_event": "stream only: event time more than stream.allowed_lateness_hours before its file landed",
}


def read_manifest(lake: Storage | str | Path) -> dict[str, Any]:
    """The published manifest of a lake (``{}`` when nothing is published yet); a local folder or a Storage."""
    try:
        return json.loads(as_storage(lake).read_text(MANIFEST))
    except FileNotFoundError:
        return {}


def _published_dirs(storage: Storage, table: str) -> list[str]:
    """The committed directories of one table, relative to the lake root."""
    if table not in TABLES:
        raise KeyError(f"no lake table {table!r}; tables are {', '.join(TABLES)}")
    return read_manifest(storage).get("tables", {}).get(table, [])


def table_dirs(lake: Storage | str | Path, table: str) -> list[str]:
    """The committed directories of one table, as the lake's storage names them (``Storage.url``)."""
    storage = as_storage(lake)
    return [storage.url(rel) for rel in _published_dirs(storage, table)]


def table_files(lake: Storage | str | Path, table: str) -> list[str]:
    """The table's committed Parquet files, sorted, as the lake's storage names them. Raises FileNotFoundError
    when the table was never published."""
    return sorted(f for files in table_dir_files(lake, table).values() for f in files or ())


def table_dir_files(lake: Storage | str | Path, table: str) -> dict[str, list[str] | None]:
    """Per committed directory of the table (relative to the lake), its Parquet files, sorted, as the lake's
    storage names them; None for a directory the manifest lists but the storage no longer holds (an empty write
    still leaves its directory). Raises FileNotFoundError when the table was never published."""
    storage = as_storage(lake)
    rels = _published_dirs(storage, table)
    if not rels:
        raise FileNotFoundError(f"the lake at {storage.uri} has no published {table} yet")
    listing = {rel: storage.find(rel, ".parquet", published=True) for rel in rels}
    return {rel: files if files or storage.exists(rel) else None for rel, files in listing.items()}


def table_listed_files(lake: Storage | str | Path, table: str) -> dict[str, tuple[str, ...]]:
    """Per committed directory of the table whose publisher named its files in the manifest (``files``), those
    files as the lake's storage names them: a reader can tell one that is gone, even when it never saw it."""
    storage = as_storage(lake)
    manifest = read_manifest(storage)
    listed = manifest.get("files", {})
    return {rel: tuple(storage.url(f"{rel}/{name}") for name in listed[rel])
            for rel in manifest.get("tables", {}).get(table, []) if rel in listed}


def parquet_scan(files: list[str] | tuple[str, ...]) -> str | None:
    """A DuckDB relation over ``files`` of one table (``table_files``), with the table's own columns (the ``dir``
    level of the folder names is dropped); None for no file. A remote lake's files are named with their
    protocol: run the relation on a connection the storage is ``attach``ed to."""
    if not files:
        return None
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"(SELECT * EXCLUDE (dir) FROM read_parquet([{listed}], hive_partitioning = true, union_by_name = true))"


def duckdb_scan(lake: Storage | str | Path, table: str,
                days: tuple[date | None, date | None] | None = None) -> str | None:
    """``parquet_scan`` of the table's committed files; None when the published table has no rows. Raises
    FileNotFoundError when the table was never published. ``days`` (first, last; None: open) keeps only the
    files of those ``event_date`` partitions: DuckDB would skip the others too, but only after opening each."""
    return parquet_scan([f for f in table_files(lake, table) if in_days(f, days)])


def file_day(file: str) -> date | None:
    """The ``event_date=`` partition ``file`` lies in; None for a table without one."""
    partition = next((p for p in file.split("/") if p.startswith("event_date=")), None)
    return None if partition is None else date.fromisoformat(partition.removeprefix("event_date="))


def in_days(file: str, days: tuple[date | None, date | None] | None) -> bool:
    """Whether ``file``'s ``event_date=`` partition (if it has one) lies within ``days``."""
    if days is None:
        return True
    day = file_day(file)
    if day is None:
        return True
    return (days[0] is None or day >= days[0]) and (days[1] is None or day <= days[1])
