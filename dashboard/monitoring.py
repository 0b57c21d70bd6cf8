"""Health, readiness, Prometheus metrics, JSON request logs with request ids, and friendly errors.

``register_monitoring(server, settings, repo, served)`` adds to the dashboard's Flask server:

- ``/healthz``: 200 while the process serves requests; ``/readyz``: 200 when the lake is readable (every file
  the manifest lists too) and the stream's status file shows a batch within ``monitoring.ready_max_lag_seconds``,
  else 503 with a reason.
  Both are public and say nothing about data, paths or versions.
- ``/metrics`` (Prometheus text): bearer ``monitoring.metrics_token``, or loopback clients only when unset.
  Request and Dash-callback latency histograms, errors, rows taken by the ingest API, and the stream's
  figures read from the manifest and ``_status/stream.json`` at scrape time, and the files the manifest lists
  that cannot be read. With ``PROMETHEUS_MULTIPROC_DIR``
  set (gunicorn with several workers), the workers' metrics are summed over that folder. Memory is per process:
  the resident memory (``process_*``) and DuckDB memory by part of the worker that answers the scrape.
- One JSON log line per request (``salespulse.access``; no bodies, no query strings) carrying the request
  id from ``X-Request-ID`` (or a new one), which every response returns in that header.
- Errors: an HTML navigation gets a friendly page with the request id, everything else (the ingest API,
  Dash's callback requests, JSON clients) a JSON error; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from werkzeug.exceptions import HTTPException

from dashboard.auth import viewer
from dashboard.data import LakeRepository
from salespulse.scope import Scope
from salespulse.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a client's id is echoed only when it is this harmless
DASH_UPDATE = "/_dash-update-component"
ACCESS_LOG = "salespulse.access"
EXTENSION = "salespulse.metrics"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STREAM_COUNTERS = ("rows_in", "rows_silver", "rows_quarantined", "rows_duplicate", "files")
# Label values come from these fixed sets, never from the request: every distinct value is a series kept (and
# printed at each scrape) for the life of the process.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
OTHER_CALLBACK = "<other>"
# The probes and /metrics report on the whole pipeline and are guarded by their own token, not by a user session.
SYSTEM = Scope.everything()

log = logging.getLogger("salespulse.errors")
access_log = logging.getLogger(ACCESS_LOG)


@dataclass
class Metrics:
    """The process's own metrics for one Flask server; the ingest API counts its rows here."""

    registry: CollectorRegistry
    request_seconds: Histogram
    callback_seconds: Histogram
    errors: Counter
    rows_ingested: Counter

    @classmethod
    def build(cls) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            request_seconds=Histogram("salespulse_http_request_duration_seconds", "HTTP request latency by route",
                                      ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry),
            callback_seconds=Histogram("salespulse_dash_callback_duration_seconds",
                                       "Dash callback latency of signed-in users by the registered callback's "
                                       "output id (<other> for any other)", ["output"],
                                       buckets=LATENCY_BUCKETS, registry=registry),
            errors=Counter("salespulse_http_errors_total", "Responses with a 5xx status (unhandled errors included)",
                           ["route"], registry=registry),
            rows_ingested=Counter("salespulse_api_rows_ingested_total", "Rows accepted and landed by the ingest API",
                                  ["event"], registry=registry),
        )


def metrics_for(server: Flask) -> Metrics:
    """The one :class:`Metrics` of ``server``, created on first use (monitoring and the ingest API share it)."""
    if EXTENSION not in server.extensions:
        server.extensions[EXTENSION] = Metrics.build()
    return server.extensions[EXTENSION]


class LakeCollector(Collector):
    """Gauges read at scrape time from the manifest's stream counters, the stream's status file and the files the
    manifest lists that cannot be read."""

    def __init__(self, repo: LakeRepository, clock: Any = time.time):
        self.repo, self.clock = repo, clock

    def collect(self) -> Iterator[Metric]:
        rows = GaugeMetricFamily("salespulse_stream_rows", "Rows the stream has handled since its checkpoint began "
                                 "(manifest counters)", labels=["event", "kind"])
        by_reason = GaugeMetricFamily("salespulse_stream_quarantined_rows", "Quarantined rows by reason code",
                                      labels=["event", "reason"])
        for event, state in sorted(self.repo.manifest_streams(SYSTEM).items()):
            for counter in STREAM_COUNTERS:
                rows.add_metric([event, counter.removeprefix("rows_")], float(state.get(counter, 0)))
            for reason, count in sorted(state.get("quarantined_by_reason", {}).items()):
                by_reason.add_metric([event, reason], float(count))
        yield rows
        yield by_reason

        lag = GaugeMetricFamily("salespulse_pipeline_lag_seconds", "Last batch: from its first file landing to its "
                                "rows published in gold", labels=["event"])
        duration = GaugeMetricFamily("salespulse_stream_last_batch_duration_seconds", "Duration of the last batch",
                                     labels=["event"])
        pending = GaugeMetricFamily("salespulse_stream_files_in_landing", "Files waiting in the landing folder",
                                    labels=["event"])
        age = GaugeMetricFamily("salespulse_stream_status_age_seconds", "Seconds since the stream last wrote its "
                                "status (after every batch)")
        status = self.repo.stream_status(SYSTEM) or {}
        for event, figures in sorted(status.get("events", {}).items()):
            for family, key in ((lag, "freshness_seconds"), (duration, "last_batch_seconds"),
                                (pending, "files_in_landing")):
                if figures.get(key) is not None:
                    family.add_metric([event], float(figures[key]))
        updated = _parse_time(status.get("updated_at"))
        if updated is not None:
            age.add_metric([], max(0.0, self.clock() - updated.timestamp()))
        yield from (lag, duration, pending, age)

        unreadable = GaugeMetricFamily("salespulse_lake_unreadable_files", "Parts (files, or a vanished directory) "
                                       "the manifest lists that cannot be read; the dashboard's figures leave them "
                                       "out", labels=["table"])
        for table, parts in sorted(self.repo.unreadable_files().items()):
            unreadable.add_metric([table], float(len(parts)))
        yield unreadable


class MemoryCollector(Collector):
    """The answering worker's DuckDB memory by part (per-version tables, cached file blocks, ...), read at scrape
    time: with resident memory, what an operator watches for a worker that keeps growing."""

    def __init__(self, repo: LakeRepository):
        self.repo = repo

    def collect(self) -> Iterator[Metric]:
        parts = GaugeMetricFamily("salespulse_dashboard_duckdb_memory_bytes", "DuckDB memory of the dashboard "
                                  "worker answering this scrape, by part", labels=["part"])
        for part, size in sorted(self.repo.memory_bytes().items()):
            parts.add_metric([part], float(size))
        yield parts


def _parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def readiness(repo: LakeRepository, max_lag_seconds: float, now: float) -> str | None:
    """None when ready, else why not (no paths, no figures: /readyz is public). A remote lake's connection
    errors (WebHDFS over HTTP) are OSErrors too."""
    try:
        if not repo.has_data():
            return "lake not readable: no published manifest"
        repo.manifest_streams(SYSTEM)
        status = repo.stream_status(SYSTEM)
        unreadable = sum(len(parts) for parts in repo.unreadable_files().values())
    except OSError:
        return "lake not readable: permission or I/O error"
    if unreadable:
        return "lake partly unreadable: files the manifest lists cannot be read (count by table in /metrics)"
    if status is None:
        return "no stream status yet: the stream has not completed a batch"
    updated = _parse_time(status.get("updated_at"))
    if updated is None:
        return "stream status has no valid updated_at"
    age = now - updated.timestamp()
    if age > max_lag_seconds:
        return f"stream stale: last batch {age:.0f} s ago (limit {max_lag_seconds:g} s)"
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's ``fields`` and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _json_logger(logger: logging.Logger) -> None:
    if not any(getattr(h, "salespulse_json", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        handler.salespulse_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _route() -> str:
    # The URL rule, not the path: bounded label values whatever clients ask for.
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


def _method() -> str:
    return request.method if request.method in HTTP_METHODS else OTHER_METHOD  # Werkzeug takes any token


def _callback_label(callback_ids: Collection[str]) -> str:
    body = request.get_json(silent=True, cache=True)  # Dash has parsed it already: no second read
    output = body.get("output") if isinstance(body, dict) else None
    return output if isinstance(output, str) and output in callback_ids else OTHER_CALLBACK


def _user() -> str | None:
    """The signed-in user (Flask-Login, when the app uses it) or the ingest API's token label; never a secret."""
    if getattr(g, "api_client", None):
        return g.api_client
    user = viewer()  # by name: the session id carries a password fingerprint, so it is not logged
    return user.name if user is not None else None


def current_request_id() -> str:
    """The id of the request being served, which its log lines carry and a user quotes to the operators; a new
    one outside a request (or before the request hook ran)."""
    request_id = getattr(g, "request_id", None) if has_request_context() else None
    return request_id or uuid.uuid4().hex


def wants_json() -> bool:
    """API, Dash callback and JSON requests get JSON errors; browser navigations an HTML page."""
    if request.path.startswith(("/api/", "/_dash-")) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_page(status: int, title: str, request_id: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SalesPulse: {escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:40rem;margin:4rem auto;color:#2c3e50}}
code{{background:#eee;padding:2px 4px}}</style>
</head><body><h1>{escape(title)}</h1>
<p>Something went wrong on our side ({status}). Reload the page in a moment; if it keeps happening, send the
operators this request id: <code>{escape(request_id)}</code></p>
<p><a href="/">Back to the dashboard</a></p></body></html>"""


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def register_monitoring(server: Flask, settings: Settings, repo: LakeRepository, served: LakeRepository,
                        callback_ids: Collection[str]) -> None:
    """Health and readiness probes, /metrics, request ids and JSON request logs, error pages. ``repo`` reads the
    stream's figures (every country); ``served`` is the repository the dashboard's callbacks query;
    ``callback_ids`` (a live view: callbacks may be registered later) the Dash callbacks timed by their id."""
    config = settings.monitoring
    metrics = metrics_for(server)
    per_process = (LakeCollector(repo), MemoryCollector(served))
    for collector in per_process:
        metrics.registry.register(collector)
    ProcessCollector(registry=metrics.registry)
    if config.log_requests:
        _json_logger(access_log)
    _json_logger(log)

    @server.before_request
    def _start() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @server.after_request
    def _finish(response: Response) -> Response:
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        seconds = time.perf_counter() - getattr(g, "request_started", time.perf_counter())
        route = _route()
        metrics.request_seconds.labels(route, _method()).observe(seconds)
        if response.status_code >= 500:
            metrics.errors.labels(route).inc()
        # Only a signed-in user's callbacks: an anonymous request is refused before Dash reads its body, and
        # reading it here would let anyone make the worker parse megabytes per request.
        if request.path.endswith(DASH_UPDATE) and request.method == "POST" and viewer() is not None:
            metrics.callback_seconds.labels(_callback_label(callback_ids)).observe(seconds)
        if config.log_requests:
            access_log.info("request", extra={"fields": {
                "request_id": request_id, "method": request.method, "path": request.path,
                "status": response.status_code, "duration_ms": round(seconds * 1000, 2), "user": _user(),
            }})
        return response

    @server.errorhandler(Exception)
    def _error(error: Exception) -> Any:
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        g.request_id = request_id
        if isinstance(error, HTTPException):
            if not wants_json():
                return error
            return jsonify(error=error.description, status=error.code, request_id=request_id), error.code
        log.error("unhandled error", exc_info=error, extra={"fields": {
            "request_id": request_id, "method": request.method, "path": request.path}})
        if wants_json():
            return jsonify(error="internal error", status=500, request_id=request_id), 500
        return Response(error_page(500, "Something went wrong", request_id), status=500, mimetype="text/html")

    @server.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @server.get("/readyz")
    def readyz() -> Any:
        reason = readiness(repo, config.ready_max_lag_seconds, time.time())
        if reason is None:
            return jsonify(status="ready")
        return jsonify(status="not ready", reason=reason), 503

    @server.get("/metrics")
    def prometheus_metrics() -> Any:
        token = config.metrics_token
        if token is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                return jsonify(error="a valid bearer token is required for /metrics"), 401
        elif not _is_loopback(request.remote_addr):
            return jsonify(error="/metrics answers loopback clients only when monitoring.metrics_token is unset"), 403
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in per_process:
                registry.register(collector)
            ProcessCollector(registry=registry)
        else:
            registry = metrics.registry
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
