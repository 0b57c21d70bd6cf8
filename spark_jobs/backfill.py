"""run_backfill: read -> parse -> clean -> dedupe -> silver, gold, quarantine -> publish -> report.

No rules of its own: every rule lives in spark_jobs/transforms. Each run writes new versions of the tables
it touches (merged with what the lake already holds, deduplicated) and publishes them with one manifest
swap, so re-running the same input changes nothing and readers never see half-written output.
Runnable with plain spark-submit: ``spark-submit spark_jobs/backfill.py --input ... --profile ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from salespulse.kpis import round_money
from salespulse.lake import REASONS, SILVER_LINEAGE
from salespulse.profiles import SourceProfile
from salespulse.settings import Settings
from spark_jobs import io
from spark_jobs.schemas import MONEY_TOTAL
from spark_jobs.session import build_source_session
from spark_jobs.transforms.aggregate import aggregate_customers_daily, aggregate_sales_hourly, compute_stock
from spark_jobs.transforms.clean import (
    CleaningRules,
    clean_events,
    date_order_census,
    date_order_warnings,
    detail_culprit,
)
from spark_jobs.transforms.dedupe import dedupe_events, event_key
from spark_jobs.transforms.parse import map_to_canonical


def run_backfill(spark: SparkSession, settings: Settings, inputs: str, profile: SourceProfile, now: datetime,
                 run_id: str, say: Callable[[str], None]) -> dict[str, Any]:
    lake = settings.paths.lake
    event = profile.event
    spark = build_source_session(spark)  # one scan partition per input file: rows are numbered as they are read
    files = io.expand_inputs(spark, inputs)
    say(f"backfill {run_id}: {len(files)} {event} file(s) with profile {profile.name!r} into {lake}")
    source = io.read_source(spark, files, profile)
    for problem in source.bad_headers:
        say(f"backfill {run_id}: {problem.line()}")
    raw = io.number_rows(source.frame, profile, source.bad_headers)
    rules = CleaningRules.build(profile, settings.ingest, now, privacy=settings.privacy)
    canonical = map_to_canonical(raw, profile)
    census = date_order_census(canonical, profile.date_formats)
    date_warnings = date_order_warnings([row.asDict() for row in census.collect()], profile.date_formats) if (
        census is not None) else []
    for warning in date_warnings:
        say(f"backfill {run_id}: warning: {warning['message']}")
    cleaned = clean_events(canonical, rules)
    cleaned = cleaned.withColumn("ingest_time", F.lit(now)).withColumn("run_id", F.lit(run_id))
    cleaned = cleaned.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        groups = _outcome_groups(cleaned, event)
        valid = sum(g["rows"] for g in groups if g["reason"] is None)
        rejected = sum(g["rows"] for g in groups if g["reason"] is not None)
        say(f"backfill {run_id}: read {valid + rejected:,} rows, {valid:,} valid, {rejected:,} to quarantine")
        manifest = io.read_manifest(spark, lake)
        silver_table, quarantine_table = f"silver_{event}", f"quarantine_{event}"
        columns = [c.name for c in profile.schema.columns]
        good = cleaned.where(F.col("reason").isNull()).select(*columns, *SILVER_LINEAGE)
        key = event_key(event)
        existing = io.read_table(spark, lake, silver_table, manifest)
        candidates = good.withColumn("_priority", F.lit(1))
        if existing is not None:
            already = existing.select(*columns, *SILVER_LINEAGE).withColumn("_priority", F.lit(0))
            candidates = already.unionByName(candidates)
        silver = dedupe_events(candidates, key, "_priority").drop("_priority")
        silver = silver.withColumn("event_date", F.to_date("event_time"))
        version = f"version-{run_id}"
        written = {silver_table: io.write_table_version(silver, lake, silver_table, version)}
        silver_now = io.read_version(spark, lake, silver_table, [written[silver_table][0]], written[silver_table][1])
        added = silver_now.where(F.col("run_id") == run_id)
        rows_silver = added.count()
        # Into an empty table every valid key lands once, so only a merge needs the extra distinct count.
        input_keys = rows_silver if existing is None else good.select(*key).distinct().count()
        say(f"backfill {run_id}: silver {silver_table} +{rows_silver:,} rows")

        bad = cleaned.where(F.col("reason").isNotNull()).select(
            "reason", "reason_detail", "raw", "source_file", "row_number", "ingest_time", "run_id")
        old_bad = io.read_table(spark, lake, quarantine_table, manifest)
        quarantine = bad.withColumn("_priority", F.lit(1))
        if old_bad is not None:
            # A lake written before reason_detail existed: its rows keep a null detail.
            quarantine = old_bad.withColumn("_priority", F.lit(0)).unionByName(quarantine, allowMissingColumns=True)
        quarantine = dedupe_events(quarantine, ("source_file", "row_number", "reason"), "_priority").drop("_priority")
        written[quarantine_table] = io.write_table_version(quarantine, lake, quarantine_table, version)

        other = io.read_table(spark, lake, "silver_inventory" if event == "sales" else "silver_sales", manifest)
        sales, inventory = (silver_now, other) if event == "sales" else (other, silver_now)
        written.update(_write_gold(lake, version, sales, inventory, rebuild_sales=event == "sales"))

        def replace_what_was_read(published: dict[str, Any]) -> None:
            # Each new version was built from the directories listed when this run started; directories a
            # running stream published since then stay listed beside it. gold_stock is a snapshot: it replaces
            # whatever is listed, or a stream's refresh meanwhile would be counted twice.
            for table, version_written in written.items():
                read = published if table == "gold_stock" else manifest
                io.set_dirs(published, table, version_written, read.get("tables", {}).get(table, []))

        io.update_manifest(spark, lake, replace_what_was_read, run_id)

        report = _report(run_id, profile, files, groups, rows_silver, input_keys, added, event)
        # Each counted as one quarantined row (reason bad_header), so the rows still reconcile.
        report["bad_header_files"] = [{"file": p.file, "problem": p.summary, "headers": p.headers,
                                       "missing": p.missing}
                                      for p in source.bad_headers]
        report["date_warnings"] = date_warnings
        report["report_path"] = io.write_report(spark, lake, run_id, report)
        return report
    finally:
        cleaned.unpersist()


def _write_gold(lake: str, version: str, sales: DataFrame | None, inventory: DataFrame | None,
                rebuild_sales: bool) -> dict[str, io.WrittenVersion]:
    gold: dict[str, DataFrame] = {}
    if sales is not None and rebuild_sales:
        gold["gold_sales_hourly"] = aggregate_sales_hourly(sales)
        gold["gold_customers_daily"] = aggregate_customers_daily(sales)
    if sales is not None and inventory is not None:
        gold["gold_stock"] = compute_stock(inventory, aggregate_sales_hourly(sales), sales)
    # Gold is what the dashboard reads on every filter change: written as compaction writes it (aggregates are
    # small, so the extra shuffle is cheap).
    return {table: io.write_table_version(io.one_file_per_partition(frame, table), lake, table, version)
            for table, frame in gold.items()}


MONEY_MEASURES = ("sales", "profit")  # the money a sales backfill reconciles


def _outcome_groups(cleaned: DataFrame, event: str) -> list[dict[str, Any]]:
    """Rows per outcome (``reason``, null when valid) and culprit of the detail, with the sums of the money
    measures (exact, as the lake's total type) and the rows whose amount is missing or unreadable: one Spark job
    over the persisted cleaning gives the report its row counts, detail counts and money split."""
    measures = MONEY_MEASURES if event == "sales" else ()
    return [row.asDict() for row in cleaned.groupBy(
        "reason", detail_culprit(F.col("reason_detail")).alias("culprit")).agg(
        F.count(F.lit(1)).alias("rows"),
        *[F.sum(F.col(m).cast(MONEY_TOTAL)).alias(m) for m in measures],
        *[F.count_if(F.col(m).isNull()).alias(f"{m}_unreadable") for m in measures]).collect()]


def _report(run_id: str, profile: SourceProfile, files: list[str], groups: list[dict[str, Any]], rows_silver: int,
            input_keys: int, added: DataFrame, event: str) -> dict[str, Any]:
    valid = sum(g["rows"] for g in groups if g["reason"] is None)
    quarantined = sum(g["rows"] for g in groups if g["reason"] is not None)
    by_detail: dict[str, dict[str, int]] = {}
    for group in groups:
        if group["reason"] is not None:
            culprits = by_detail.setdefault(group["reason"], {})
            culprits[group["culprit"]] = culprits.get(group["culprit"], 0) + group["rows"]
    report: dict[str, Any] = {
        "run_id": run_id,
        "event": event,
        "profile": profile.name,
        "files": len(files),
        "rows_in": valid + quarantined,
        "rows_silver": rows_silver,
        "rows_quarantined": quarantined,
        "rows_duplicate": valid - rows_silver,
        "rows_duplicate_in_input": valid - input_keys,
        "rows_already_in_lake": input_keys - rows_silver,
        "quarantined_by_reason": {reason: sum(by_detail[reason].values()) for reason in REASONS if reason in by_detail},
        "quarantined_by_detail": {reason: dict(sorted(by_detail[reason].items())) for reason in REASONS
                                  if reason in by_detail},
    }
    if report["rows_in"] != report["rows_silver"] + report["rows_quarantined"] + report["rows_duplicate"]:
        raise RuntimeError(f"backfill {run_id}: counts do not reconcile: {report}")
    if event == "sales":
        totals = added.agg(*[F.sum(c).alias(c) for c in (*MONEY_MEASURES, "units_sold")]).first()
        # money rounded to cents by the display rule, as JSON numbers (the report is for people and monitors)
        report["silver_totals"] = {c: float(round_money(totals[c] or 0)) for c in MONEY_MEASURES}
        report["silver_totals"]["units_sold"] = round(totals["units_sold"] or 0.0, 2)
        report["money"] = {m: _reconcile_money(run_id, m, groups, totals[m] or Decimal(0), report)
                           for m in MONEY_MEASURES}
    return report


def _reconcile_money(run_id: str, measure: str, groups: list[dict[str, Any]], silver: Decimal,
                     report: dict[str, Any]) -> dict[str, Any]:
    """in = silver + duplicates + quarantined (per reason), checked on the exact sums, then rounded to cents for
    the report; rows whose amount is blank or unreadable add nothing to any line and are counted apart."""
    def total(rows: list[dict[str, Any]]) -> Decimal:
        return sum((g[measure] for g in rows if g[measure] is not None), Decimal(0))

    quarantined = {reason: total([g for g in groups if g["reason"] == reason])
                   for reason in report["quarantined_by_reason"]}
    entered, valid = total(groups), total([g for g in groups if g["reason"] is None])
    duplicates = valid - silver
    # The rows' own arithmetic says nothing about money: a valid row the silver write lost or changed shows here.
    if entered != silver + duplicates + sum(quarantined.values()) or (not report["rows_duplicate"] and duplicates):
        raise RuntimeError(f"backfill {run_id}: {measure} does not reconcile: in {entered} = silver {silver} + "
                           f"duplicates {duplicates} (of {report['rows_duplicate']} rows) + quarantined {quarantined}")
    cents = {"in": entered, "silver": silver, "duplicates": duplicates}
    return {**{line: float(round_money(value)) for line, value in cents.items()},
            "quarantined": {reason: float(round_money(value)) for reason, value in quarantined.items()},
            "unreadable": sum(g[f"{measure}_unreadable"] for g in groups)}


if __name__ == "__main__":  # spark-submit spark_jobs/backfill.py --input ... --profile ...
    from salespulse.cli import main

    main(["backfill", *sys.argv[1:]])
