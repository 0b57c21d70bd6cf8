"""Alerts end to end on a small real lake (hand-made gold tables published through the manifest, read by Spark):
each rule kind fires, is stored in gold_alert_events and reaches a local webhook receiver exactly once, stays
quiet while it keeps firing, sends one resolution, is not sent again within the cool-down; a France-only viewer
sees only France's alerts; a dead webhook holds up neither the evaluation nor the stream that runs it; the
backfill command evaluates after its publish."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pyspark.sql import SparkSession

from dashboard.callbacks import alert_outputs
from dashboard.data import LakeRepository
from salespulse.cli import main
from salespulse.lake import duckdb_scan
from salespulse.notify import WebhookNotifier
from salespulse.schema import COUNTRIES
from salespulse.scope import Scope
from salespulse.settings import Settings, load_settings
from spark_jobs.alerts import evaluate_alerts_job
from spark_jobs.io import update_manifest
from spark_jobs.stream import run_stream
from tests.conftest import run_simulator
from tests.lakes import publish_frame
from tests.servers import free_port
from tests.webhooks import webhook_receiver

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = [pytest.mark.spark, pytest.mark.slow]
NOW = datetime(2026, 9, 21, 15, 20, tzinfo=timezone.utc)  # the last complete hour is 14:00
HOUR = pd.Timestamp("2026-09-21 14:00", tz="UTC")
RULES = [
    {"name": "sales-low", "kind": "kpi_threshold", "kpi": "total_sales", "below": 1000, "window_hours": 3,
     "countries": ["France", "Germany"]},
    {"name": "off-forecast", "kind": "forecast_band", "hours": 2},
    {"name": "stock-out", "kind": "stockout", "within_hours": 12},
    {"name": "stale", "kind": "stream_stale", "minutes": 10},
]
# What fires on the lake as publish_state(firing=True) leaves it, worked out by hand from the tables below.
FIRING = {"sales-low|France|", "off-forecast|France|", "stock-out|France|Velo", "stock-out|Germany|Velo", "stale||"}


def settings_for(root: Path, webhooks: list[str], **alerts: Any) -> Settings:
    return load_settings(overrides={
        "paths.lake": str(root / "lake"), "paths.models": str(root / "models"), "alerts.rules": RULES,
        "alerts.webhooks": [{"name": f"hook{i}", "url": url} for i, url in enumerate(webhooks)],
        "alerts.retries": 0, **{f"alerts.{key}": value for key, value in alerts.items()}})


def publish(spark: SparkSession, lake: Path, table: str, frame: pd.DataFrame, version: str) -> None:
    """``frame`` as the table's only directory; times in microseconds, as Spark reads them."""
    times = frame.select_dtypes("datetimetz").columns
    publish_frame(spark, lake, table, f"gold/{table.removeprefix('gold_')}",
                  frame.astype(dict.fromkeys(times, "datetime64[us, UTC]")), version)


def publish_state(spark: SparkSession, lake: Path, firing: bool, at: datetime, version: str) -> None:
    """Gold tables on which every rule fires (``firing``) or none does, as of ``at``."""
    hours = [HOUR - pd.Timedelta(hours=h) for h in range(3)]
    france = 100.0 if firing else 900.0  # 3 h x 100 < 1000; 3 h x 900 > 1000
    hourly = pd.DataFrame([
        {"hour": hour, "country": country, "segment": "Government", "product": "Velo", "discount_band": "None",
         "orders": 1, "units_sold": 1.0, "gross_sales": sales, "discounts": 0.0, "sales": sales, "cogs": 0.0,
         "profit": sales, "event_date": hour.date()}
        for hour in hours for country, sales in (("France", france), ("Germany", 5000.0), ("USA", 1.0))])
    publish(spark, lake, "gold_sales_hourly", hourly, f"{version}-hourly")
    # France outside its band in both of the last 2 hours, Germany in the last one only.
    flagged = [("France", HOUR), ("France", HOUR - pd.Timedelta(hours=1)), ("Germany", HOUR)] if firing else [
        ("France", HOUR - pd.Timedelta(hours=2))]
    anomalies = pd.DataFrame([{"hour": hour, "level": "country", "country": country, "measure": "sales",
                               "direction": "below", "origin": hour - pd.Timedelta(hours=1),
                               "detected_at": hour + pd.Timedelta(hours=1)} for country, hour in flagged])
    publish(spark, lake, "gold_forecast_anomalies", anomalies, f"{version}-anom")
    stamp = pd.Timestamp(NOW)
    stockout = pd.DataFrame({"country": ["France", "Germany"], "product": ["Velo", "Velo"],
                             "predicted_stockout_time": [stamp + pd.Timedelta(hours=5 if firing else 30), pd.NaT],
                             "generated_at": [stamp, stamp]})
    publish(spark, lake, "gold_stockout", stockout, f"{version}-stockout")
    # Germany's Velo is not reached by the forecast: its 0.25 days of cover (6 h) count.
    stock = pd.DataFrame({"country": ["Germany", "France"], "product": ["Velo", "Paseo"],
                          "days_of_cover": [0.25 if firing else 3.0, 10.0]})
    publish(spark, lake, "gold_stock", stock, f"{version}-stock")
    last_batch = at - timedelta(minutes=30 if firing else 1)
    update_manifest(spark, str(lake), lambda m: m.setdefault("streams", {}).setdefault("sales", {}).update(
        batch_time=last_batch.isoformat()), f"{version}-stream")


def evaluate(spark: SparkSession, settings: Settings, at: datetime) -> pd.DataFrame:
    """One evaluation, its webhook messages delivered before it returns (the notifier drained)."""
    notifier = WebhookNotifier(settings.alerts, print)
    events = evaluate_alerts_job(spark, settings, at, notifier, print)
    notifier.close(10)
    return events


def sent(receiver: Any) -> list[tuple[str, str]]:
    return sorted((b["alert"]["alert_id"], b["alert"]["status"]) for b in receiver.bodies)


def test_alert_each_kind_sent_once_per_firing_and_resolution(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with webhook_receiver() as receiver:
        settings = settings_for(tmp_path, [receiver.url], cooldown_minutes=30)
        publish_state(spark, lake, True, NOW, "v1")
        evaluate(spark, settings, NOW)
        assert sent(receiver) == sorted((a, "firing") for a in FIRING)
        france = next(b for b in receiver.bodies if b["alert"]["alert_id"] == "sales-low|France|")
        assert france["alert"]["value"] == pytest.approx(300.0)  # 3 hours x 100
        assert france["text"].startswith("SalesPulse · Alert: Total sales in France") and "$300.00" in france["text"]
        stale = next(b for b in receiver.bodies if b["alert"]["kind"] == "stream_stale")
        assert stale["alert"]["value"] == pytest.approx(30.0) and stale["alert"]["country"] is None

        evaluate(spark, settings, NOW + timedelta(minutes=1))  # still firing: nothing new
        assert len(receiver.bodies) == len(FIRING)

        publish_state(spark, lake, False, NOW + timedelta(minutes=2), "v2")
        evaluate(spark, settings, NOW + timedelta(minutes=2))
        assert sent(receiver) == sorted([*((a, "firing") for a in FIRING), *((a, "resolved") for a in FIRING)])

        # Firing again within the cool-down: stored (the header shows it) but not sent, nor its resolution.
        publish_state(spark, lake, True, NOW + timedelta(minutes=5), "v3")
        refired = evaluate(spark, settings, NOW + timedelta(minutes=5))
        assert set(refired["alert_id"]) == FIRING and not refired["notified"].any()
        publish_state(spark, lake, False, NOW + timedelta(minutes=6), "v4")
        evaluate(spark, settings, NOW + timedelta(minutes=6))
        assert len(receiver.bodies) == 2 * len(FIRING)
        # After the cool-down (30 min since the last resolution) a firing is sent again.
        publish_state(spark, lake, True, NOW + timedelta(minutes=37), "v5")
        evaluate(spark, settings, NOW + timedelta(minutes=37))
        assert len(receiver.bodies) == 3 * len(FIRING)

    # The lake holds every change, read back independently of the code under test.
    stored = duckdb.sql(f"SELECT status, notified, count(*) AS n FROM {duckdb_scan(lake, 'gold_alert_events')} "
                        "GROUP BY ALL").df()
    counts = {(row.status, bool(row.notified)): row.n for row in stored.itertuples()}
    assert counts == {("firing", True): 10, ("resolved", True): 5, ("firing", False): 5, ("resolved", False): 5}


def test_alert_list_scoped_to_viewer_countries(spark: SparkSession, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, [])
    publish_state(spark, tmp_path / "lake", True, NOW, "v1")
    evaluate(spark, settings, NOW)
    repo, france = LakeRepository(tmp_path / "lake", tmp_path / "models"), Scope.only(("France",))
    assert set(repo.active_alerts(france)["alert_id"]) == {a for a in FIRING if "|France|" in a}
    assert set(repo.active_alerts(ADMIN)["alert_id"]) == FIRING  # the stream's alert too
    count, color, items = alert_outputs(repo, france, settings.dashboard)
    assert (count, color) == ("3", "danger")
    shown = " ".join(str(item.children) for item in items)
    assert "France" in shown and "Germany" not in shown and "stream" not in shown


def test_alert_dead_webhook_does_not_hold_up_evaluation(spark: SparkSession, tmp_path: Path) -> None:
    refused = free_port()  # nothing listens: connections are refused, retried with backoff
    with webhook_receiver(hold_seconds=60) as dead, webhook_receiver() as alive, socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the kernel's backlog) and never answers
        hooks = [dead.url, f"http://127.0.0.1:{refused}/hook", f"http://127.0.0.1:{silent.getsockname()[1]}/",
                 alive.url]
        settings = settings_for(tmp_path, hooks, timeout_seconds=60, retries=5, backoff_seconds=30)
        publish_state(spark, tmp_path / "lake", True, NOW, "v1")
        notifier = WebhookNotifier(settings.alerts, print)
        events = evaluate_alerts_job(spark, settings, NOW, notifier, print)
        # Returned with every firing published while the dead receiver still holds its first message: the
        # evaluation did not wait for it (nor for the refused and silent ones' 60 s timeouts and backoff).
        assert set(events["alert_id"]) == FIRING and dead.answered == 0
        deadline = time.monotonic() + 20
        while len(alive.bodies) < len(FIRING) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(alive.bodies) == len(FIRING) and dead.answered == 0  # the live one is not held up either
        started = time.monotonic()
        notifier.close(1)  # a stop waits a bounded time for dead receivers
        assert time.monotonic() - started < 5


def test_alert_stream_evaluates_after_publish_without_waiting_for_a_dead_webhook(spark: SparkSession,
                                                                                 tmp_path: Path) -> None:
    """The stream's own hook: its batches publish, the rules are evaluated after them, and the live webhook gets
    the firings while a dead one holds its request; the stream ends without waiting out the dead receiver."""
    run_simulator(tmp_path / "landing", seconds=2, end_ms=None, rate=100, bad_rows_pct=0, duplicate_pct=0,
                  late_pct=0)
    quiet = {"name": "quiet", "kind": "kpi_threshold", "kpi": "orders", "below": 1_000_000, "window_hours": 1}
    with webhook_receiver(hold_seconds=120) as dead, webhook_receiver() as alive:
        settings = load_settings(overrides={
            "paths.landing": str(tmp_path / "landing"), "paths.lake": str(tmp_path / "lake"),
            "paths.checkpoints": str(tmp_path / "checkpoints"), "stream.processed_files": "keep",
            "alerts.rules": [quiet], "alerts.timeout_seconds": 2, "alerts.evaluate_every_seconds": 3600,
            "alerts.webhooks": [{"name": "dead", "url": dead.url}, {"name": "alive", "url": alive.url}]})
        lines: list[str] = []
        assert run_stream(spark, settings, lines.append, threading.Event(), available_now=True) == 0
        assert dead.answered == 0  # the stream ended while the dead receiver still held its request
        assert any(line.startswith("stream sales batch") for line in lines)
        assert sorted(b["alert"]["country"] for b in alive.bodies) == sorted(COUNTRIES), lines


def test_alert_backfill_command_evaluates_after_its_publish(spark: SparkSession, tmp_path: Path) -> None:
    """`salespulse backfill` evaluates the rules once its data is published and sends the firings before it ends."""
    run_simulator(tmp_path / "landing", history_days=0.1, history_rate=0.05, bad_rows_pct=0, duplicate_pct=0,
                  late_pct=0)
    quiet = {"name": "quiet", "kind": "kpi_threshold", "kpi": "orders", "below": 1_000_000, "window_hours": 1}
    with webhook_receiver() as receiver:
        config = tmp_path / "settings.yaml"
        config.write_text(yaml.safe_dump({"paths": {"lake": str(tmp_path / "lake")},
                                          "alerts": {"rules": [quiet],
                                                     "webhooks": [{"name": "ops", "url": receiver.url}]}}))
        result = CliRunner().invoke(main, ["--config", str(config), "backfill", "--input",
                                           str(tmp_path / "landing" / "history" / "sales"), "--profile", "canonical"])
        assert result.exit_code == 0, result.output
        assert sorted(b["alert"]["country"] for b in receiver.bodies) == sorted(COUNTRIES)
    stored = duckdb.sql(f"SELECT count(*) FROM {duckdb_scan(tmp_path / 'lake', 'gold_alert_events')}").fetchall()
    assert stored == [(len(COUNTRIES),)]
