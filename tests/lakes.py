"""Small real lakes for tests and benchmarks, built by the project's own code: simulator files pinned in time,
loaded by the Spark backfill, plus hand-made forecast tables published into the manifest the way writers do."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from salespulse.profiles import load_profile
from salespulse.settings import Settings, load_settings
from spark_jobs.backfill import run_backfill
from spark_jobs.io import update_manifest
from tests.conftest import run_simulator

BUILT_AT = datetime(2026, 9, 21, 15, 0, tzinfo=timezone.utc)  # the backfill's "now", just after END_MS


@dataclass(frozen=True)
class SampleLake:
    root: Path
    landing: Path  # the simulator's files (history/sales, history/inventory)
    settings: Settings  # paths.lake and paths.models point inside root

    @property
    def lake(self) -> Path:
        return Path(self.settings.paths.lake)


def build_sample_lake(spark: SparkSession, root: Path, *, history_days: float = 14, history_rate: float = 0.03,
                      seed: int = 7) -> SampleLake:
    """``history_days`` of simulated sales and inventory ending at tests.conftest.END_MS, backfilled."""
    landing = root / "landing"
    run_simulator(landing, history_days=history_days, history_rate=history_rate, seed=seed,
                  bad_rows_pct=2, duplicate_pct=1, late_pct=1)
    settings = load_settings(overrides={"paths.lake": str(root / "lake"), "paths.models": str(root / "models")})
    for event, profile in (("sales", "canonical"), ("inventory", "canonical_inventory")):
        run_backfill(spark, settings, str(landing / "history" / event), load_profile(profile), BUILT_AT,
                     f"sample-{event}", say=lambda _: None)
    return SampleLake(root, landing, settings)


def build_renamed_lake(spark: SparkSession, root: Path, renames: dict[str, dict[str, str]], *,
                       history_days: float = 3, history_rate: float = 0.03, seed: int = 9) -> SampleLake:
    """Like build_sample_lake, with category names of the simulator's files replaced before the backfill
    (``{"product": {"Velo": "<b>Velo</b>"}}``, in sales and inventory files alike), loaded with
    ``ingest.category_policy: flag`` so the unknown names are kept (flagged) instead of quarantined."""
    landing = root / "landing"
    run_simulator(landing, history_days=history_days, history_rate=history_rate, seed=seed, bad_rows_pct=0,
                  duplicate_pct=0, late_pct=0)
    for event in ("sales", "inventory"):
        for path in sorted((landing / "history" / event).glob("*.csv")):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            for column, names in renames.items():
                if column in frame:
                    frame[column] = frame[column].replace(names)
            # quotes inside values doubled (RFC 4180), as Python's csv writes them and the readers read them
            frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    settings = load_settings(overrides={"paths.lake": str(root / "lake"), "paths.models": str(root / "models"),
                                        "ingest.category_policy": "flag"})
    for event, profile in (("sales", "canonical"), ("inventory", "canonical_inventory")):
        run_backfill(spark, settings, str(landing / "history" / event), load_profile(profile), BUILT_AT,
                     f"renamed-{event}", say=lambda _: None)
    return SampleLake(root, landing, settings)


def backfill_more(spark: SparkSession, sample: SampleLake, folder: Path, run_id: str) -> None:
    """Publish more sales files (e.g. a later simulator run) into the sample lake, as an operator would."""
    run_backfill(spark, sample.settings, str(folder), load_profile("canonical"), BUILT_AT + timedelta(days=30),
                 run_id, say=lambda _: None)


def publish_frame(spark: SparkSession, lake: Path, table: str, folder: str, frame: pd.DataFrame,
                  version: str) -> None:
    """Write ``frame`` as one Parquet file of a new table directory and list it in the manifest (the contract
    other writers, e.g. the forecaster, follow)."""
    relative = f"{folder}/dir={version}"
    target = lake / relative
    target.mkdir(parents=True)
    frame.to_parquet(target / "part-0.parquet", index=False)
    schema = spark.createDataFrame(frame).schema.json()

    def change(manifest: dict) -> None:
        manifest["tables"][table] = [relative]
        manifest["schemas"][table] = schema

    update_manifest(spark, str(lake), change, version)


def sample_forecasts(hourly: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """Country forecasts for the 24 hours after ``origin``: p50 = the actual sales of that hour one week
    earlier, band ±30 %. ``hourly``: hour, country, sales, units_sold (summed gold)."""
    rows = []
    for country, series in hourly.groupby("country"):
        by_hour = series.set_index("hour")[["sales", "units_sold"]]
        for horizon in range(1, 25):
            hour = origin + pd.Timedelta(hours=horizon)
            week_before = by_hour.reindex([hour - pd.Timedelta(days=7)]).fillna(0).iloc[0]
            sales, units = float(week_before["sales"]), float(week_before["units_sold"])
            rows.append({
                "level": "country", "country": country, "product": None, "origin": origin, "hour": hour,
                "horizon": horizon, "sales_p10": sales * 0.7, "sales_p50": sales, "sales_p90": sales * 1.3,
                "units_p10": units * 0.7, "units_p50": units, "units_p90": units * 1.3,
                "model_version": "test-1", "generated_at": origin + pd.Timedelta(minutes=5),
            })
    return pd.DataFrame(rows)
