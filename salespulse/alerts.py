"""Alerts: which rules fire on the lake's small gold tables, what changed since the last evaluation, and the
webhook message for each change. Pure functions of their inputs (tables, rules, ``now``); reading the lake,
publishing the events and posting them are the callers' (``spark_jobs/alerts.py``, ``salespulse/notify.py``).

An alert is one rule for one subject (a country, a country x product, or the stream). Each evaluation compares
the alerts firing now with the active ones of ``gold_alert_events`` (the latest event per alert is a firing) and
appends a ``firing`` event for each new one and a ``resolved`` event for each that stopped, so an alert that
keeps firing is stored and sent once. A firing within ``alerts.cooldown_minutes`` of that alert's last
resolution is stored and shown but not sent (``notified`` false), and nor is its resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from salespulse.lake import TABLES
from salespulse.metrics import KPI_BY_KEY, MEASURE_BY_NAME, compute_kpis, format_kpi
from salespulse.schema import COUNTRIES
from salespulse.settings import AlertRule, ForecastBandRule, KpiThresholdRule, StockoutRule, StreamStaleRule

EVENT_COLUMNS = TABLES["gold_alert_events"].column_names
FIRING, RESOLVED = "firing", "resolved"


@dataclass(frozen=True)
class Alert:
    """One rule firing for one subject."""

    rule: str
    kind: str
    country: str | None
    product: str | None
    value: float | None
    threshold: float
    message: str

    @property
    def alert_id(self) -> str:
        return f"{self.rule}|{self.country or ''}|{self.product or ''}"


@dataclass(frozen=True)
class AlertInputs:
    """What the rules read, all small (naive UTC times):

    - ``hourly``: hour, country and the additive measures, summed per hour x country (gold_sales_hourly), for
      at least the longest KPI window;
    - ``anomalies``: hour, country, direction of the country-level sales anomalies (the latest verdict per hour);
    - ``stockout``: country, product, predicted_stockout_time (the latest forecast per series; null: beyond it);
    - ``stock``: country, product, days_of_cover (gold_stock);
    - ``last_batch``: when the stream last published a batch, None when no stream has run."""

    hourly: pd.DataFrame
    anomalies: pd.DataFrame
    stockout: pd.DataFrame
    stock: pd.DataFrame
    last_batch: datetime | None


def last_complete_hour(now: datetime) -> datetime:
    """The start of the last hour that has fully passed before ``now``."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def window_start(rules: Iterable[AlertRule], now: datetime) -> datetime:
    """The first hour any KPI or band rule looks at: what ``AlertInputs.hourly`` and ``anomalies`` must cover."""
    hours = [r.window_hours for r in rules if isinstance(r, KpiThresholdRule)]
    hours += [r.hours for r in rules if isinstance(r, ForecastBandRule)]
    return last_complete_hour(now) - timedelta(hours=max(hours, default=1) - 1)


def evaluate_alerts(inputs: AlertInputs, rules: Iterable[AlertRule], now: datetime) -> list[Alert]:
    """The alerts firing at ``now`` (naive UTC)."""
    fired: list[Alert] = []
    for rule in rules:
        if isinstance(rule, KpiThresholdRule):
            fired += _kpi_alerts(rule, inputs.hourly, now)
        elif isinstance(rule, ForecastBandRule):
            fired += _band_alerts(rule, inputs.anomalies, now)
        elif isinstance(rule, StockoutRule):
            fired += _stockout_alerts(rule, inputs.stockout, inputs.stock, now)
        elif isinstance(rule, StreamStaleRule):
            fired += _stale_alerts(rule, inputs.last_batch, now)
    return fired


def _countries(rule: KpiThresholdRule | ForecastBandRule | StockoutRule) -> tuple[str, ...]:
    return tuple(rule.countries) if rule.countries else COUNTRIES


def _kpi_alerts(rule: KpiThresholdRule, hourly: pd.DataFrame, now: datetime) -> list[Alert]:
    last = last_complete_hour(now)
    first = last - timedelta(hours=rule.window_hours - 1)
    window = hourly[(hourly["hour"] >= first) & (hourly["hour"] <= last)] if len(hourly) else hourly
    kpi = KPI_BY_KEY[rule.kpi]
    threshold = rule.below if rule.below is not None else rule.above
    alerts = []
    for country in _countries(rule):
        rows = window[window["country"] == country] if len(window) else window
        # A country without a sale in the window has totals of zero, not no totals: "no sales" is what a
        # falling-sales rule is for.
        totals = {m: float(rows[m].astype(float).sum()) if m in rows else 0.0 for m in MEASURE_BY_NAME}
        value = compute_kpis({**totals, "hours": rule.window_hours}, (rule.kpi,))[rule.kpi]
        if value is None:
            continue
        value = float(value)
        if (rule.below is not None and value < rule.below) or (rule.above is not None and value > rule.above):
            side = "below" if rule.below is not None else "above"
            alerts.append(Alert(rule.name, rule.kind, country, None, value, float(threshold),
                                f"{kpi.label} in {country} over the last {rule.window_hours} h is "
                                f"{format_kpi(rule.kpi, value)}, {side} {format_kpi(rule.kpi, threshold)}"))
    return alerts


def _band_alerts(rule: ForecastBandRule, anomalies: pd.DataFrame, now: datetime) -> list[Alert]:
    last = last_complete_hour(now)
    hours = {last - timedelta(hours=h) for h in range(rule.hours)}
    if not len(anomalies):
        return []
    outside = anomalies[anomalies["hour"].isin(hours)]
    if rule.direction != "either":
        outside = outside[outside["direction"] == rule.direction]
    alerts = []
    for country in _countries(rule):
        flagged = set(outside.loc[outside["country"] == country, "hour"])
        if flagged >= hours:
            sides = {"either": "outside", "above": "above", "below": "below"}[rule.direction]
            alerts.append(Alert(rule.name, rule.kind, country, None, float(len(flagged)), float(rule.hours),
                                f"Sales in {country} {sides} the forecast's p10–p90 band for each of the last "
                                f"{rule.hours} h"))
    return alerts


def _stockout_alerts(rule: StockoutRule, stockout: pd.DataFrame, stock: pd.DataFrame, now: datetime
                     ) -> list[Alert]:
    """Hours of stock left per series: the forecast's predicted stock-out time when it predicts one, else
    days of cover (trailing 7 days' sales) for series the forecast does not reach."""
    predicted = {} if not len(stockout) else {
        (row.country, row.product): (row.predicted_stockout_time - now).total_seconds() / 3600
        for row in stockout.itertuples() if pd.notna(row.predicted_stockout_time)}
    covered = {} if not len(stock) else {
        (row.country, row.product): row.days_of_cover * 24 for row in stock.itertuples()
        if pd.notna(row.days_of_cover)}
    alerts = []
    for (country, product), hours in sorted({**covered, **predicted}.items()):
        if country in _countries(rule) and hours <= rule.within_hours:
            alerts.append(Alert(rule.name, rule.kind, country, product, float(hours), rule.within_hours,
                                f"{product} in {country} is predicted to run out of stock in {max(hours, 0):,.1f} h "
                                f"(rule: within {rule.within_hours:g} h)"))
    return alerts


def _stale_alerts(rule: StreamStaleRule, last_batch: datetime | None, now: datetime) -> list[Alert]:
    if last_batch is None:  # no stream has run: a lake loaded by backfills is not stale
        return []
    minutes = (now - last_batch).total_seconds() / 60
    if minutes < rule.minutes:
        return []
    return [Alert(rule.name, rule.kind, None, None, minutes, rule.minutes,
                  f"The stream has published nothing for {minutes:,.0f} minutes (rule: {rule.minutes:g})")]


def active_alerts(history: pd.DataFrame) -> pd.DataFrame:
    """The latest event per alert of ``history`` (gold_alert_events rows) whose status is firing."""
    if not len(history):
        return history
    latest = history.sort_values(["event_time"], kind="stable").groupby("alert_id", sort=False).tail(1)
    return latest[latest["status"] == FIRING].sort_values(["event_time", "alert_id"])


def alert_transitions(history: pd.DataFrame, current: list[Alert], now: datetime,
                      cooldown: timedelta) -> pd.DataFrame:
    """The events to append to ``history`` (gold_alert_events rows so far) when ``current`` fire at ``now``: a
    firing for each alert not active yet, a resolution for each active one no longer firing."""
    active = active_alerts(history)
    active_ids = set(active["alert_id"]) if len(active) else set()
    firing = {alert.alert_id: alert for alert in current}
    rows: list[dict[str, Any]] = []
    for alert_id, alert in firing.items():
        if alert_id in active_ids:
            continue
        past = history[(history["alert_id"] == alert_id) & (history["status"] == RESOLVED)] if len(history) else history
        quiet = not len(past) or now - past["event_time"].max() >= cooldown
        rows.append({"event_time": now, "alert_id": alert_id, **asdict(alert), "status": FIRING, "notified": quiet})
    for row in active.to_dict("records") if len(active) else []:
        if row["alert_id"] not in firing:
            rows.append({**row, "event_time": now, "status": RESOLVED,
                         "message": f"Resolved: {row['message']}"})
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))


def webhook_body(event: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message (Slack and Teams read ``text``) with the event's fields under ``alert``."""
    status = event["status"]
    text = event["message"] if status == RESOLVED else f"Alert: {event['message']}"
    fields = {key: event[key] for key in ("alert_id", "rule", "kind", "status", "country", "product", "value",
                                          "threshold", "message")}
    fields["event_time"] = pd.Timestamp(event["event_time"]).isoformat() + "Z"
    fields["value"] = None if fields["value"] is None or pd.isna(fields["value"]) else float(fields["value"])
    fields["threshold"] = float(fields["threshold"])
    return {"text": f"SalesPulse · {text}", "alert": fields}
