"""/healthz, /readyz, /metrics, request ids, JSON request logs and error pages, on the real app through Flask's
test client. The lake here is its two small JSON files (manifest and stream status), written by the test with
known figures."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
from dash import Input, Output
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from dashboard.app import create_app
from dashboard.data import LakeRepository
from dashboard.monitoring import ACCESS_LOG, JsonFormatter
from salespulse.lake import MANIFEST, STATUS
from salespulse.settings import load_settings
from tests.accounts import login, write_accounts
from tests.api.test_ingest_api import AUTH, TOKEN, sale
from tests.scopes import inside_a_query

STREAMS = {"sales": {"rows_in": 120, "rows_silver": 100, "rows_quarantined": 15, "rows_duplicate": 5, "files": 7,
                     "quarantined_by_reason": {"malformed_number": 9, "unknown_category": 6}, "batch_id": 6}}


def write_lake(lake: Path, status_age_seconds: float | None) -> None:
    lake.mkdir(parents=True, exist_ok=True)
    (lake / MANIFEST).write_text(json.dumps({"tables": {}, "schemas": {}, "streams": STREAMS}))
    if status_age_seconds is not None:
        updated = datetime.now(timezone.utc) - timedelta(seconds=status_age_seconds)
        status = {"updated_at": updated.isoformat(), "events": {"sales": {
            **STREAMS["sales"], "last_batch_seconds": 1.25, "freshness_seconds": 3.5, "files_in_landing": 2}}}
        (lake / STATUS).parent.mkdir(parents=True, exist_ok=True)
        (lake / STATUS).write_text(json.dumps(status))


def make_app(tmp_path: Path, repo: LakeRepository | None = None, **monitoring: Any) -> Any:
    overrides: dict[str, Any] = {"paths.landing": str(tmp_path / "landing"), "paths.lake": str(tmp_path / "lake"),
                                 "paths.models": str(tmp_path / "models"), "api.tokens": [TOKEN],
                                 "auth.users_file": str(write_accounts(tmp_path / "users.json", {"admin": None}))}
    overrides.update({f"monitoring.{k}": v for k, v in monitoring.items()})
    app = create_app(load_settings(overrides=overrides), repo)

    @app.callback(Output("test-out", "children"), Input("test-in", "value"))
    def echo(value: int) -> str:
        if value == 13:
            raise RuntimeError("customer CFR000013 broke it")  # must reach neither the client nor the page
        return f"got {value}"

    @app.server.get("/boom")
    def boom() -> str:
        raise RuntimeError("database password is hunter2")

    return app


def signed_in_client(app: Any) -> FlaskClient:
    """A test client logged in as an administrator: Dash callbacks and app pages sit behind the login."""
    client = app.server.test_client()
    assert login(client, "admin").status_code == 302
    return client


def callback_request(client: FlaskClient, value: int) -> Any:
    payload = {"output": "test-out.children", "outputs": {"id": "test-out", "property": "children"},
               "inputs": [{"id": "test-in", "property": "value", "value": value}], "changedPropIds": ["test-in.value"],
               "state": []}
    return client.post("/_dash-update-component", json=payload)


def test_healthz_is_public_and_says_nothing_sensitive(tmp_path: Path) -> None:
    response = make_app(tmp_path).server.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(("lake", "age", "code", "reason"), [
    (False, None, 503, "lake not readable"),
    (True, None, 503, "no stream status yet"),
    (True, 3600, 503, "stream stale: last batch 36"),  # 3600 s plus however long the test took
    (True, 5, 200, None),
])
def test_readyz_follows_the_lake_and_the_stream_status(tmp_path: Path, lake: bool, age: float | None, code: int,
                                                       reason: str | None) -> None:
    if lake:
        write_lake(tmp_path / "lake", age)
    response = make_app(tmp_path).server.test_client().get("/readyz")
    assert response.status_code == code
    body = response.get_json()
    if reason is None:
        assert body == {"status": "ready"}
    else:
        assert body["reason"].startswith(reason)
        assert str(tmp_path) not in body["reason"]


def _samples(text: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    matching = [s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


def test_metrics_parse_and_count_requests_callbacks_rows_and_stream_figures(tmp_path: Path) -> None:
    write_lake(tmp_path / "lake", 30)
    client = signed_in_client(make_app(tmp_path))
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.post("/api/v1/sales", json=[sale(i) for i in range(7)], headers=AUTH).status_code == 201
    assert client.post("/api/v1/inventory", json=[], headers=AUTH).status_code == 422
    assert callback_request(client, 1).get_json()["response"]["test-out"]["children"] == "got 1"
    assert callback_request(client, 13).status_code == 500
    assert client.get("/boom").status_code == 500

    scraper = client.application.test_client()  # Prometheus has no dashboard session
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = _samples(response.get_data(as_text=True))
    assert _value(samples, "salespulse_http_request_duration_seconds_count", route="/healthz", method="GET") == 3
    assert _value(samples, "salespulse_dash_callback_duration_seconds_count", output="test-out.children") == 2
    assert _value(samples, "salespulse_api_rows_ingested_total", event="sales") == 7
    assert "salespulse_api_rows_ingested_total" not in {s.name for s in samples["salespulse_api_rows_ingested_total"]
                                                         if s.labels.get("event") == "inventory"}
    assert _value(samples, "salespulse_http_errors_total", route="/boom") == 1
    assert _value(samples, "salespulse_http_errors_total", route="/_dash-update-component") == 1
    for kind, expected in (("in", 120), ("silver", 100), ("quarantined", 15), ("duplicate", 5), ("files", 7)):
        assert _value(samples, "salespulse_stream_rows", event="sales", kind=kind) == expected
    assert _value(samples, "salespulse_stream_quarantined_rows", event="sales", reason="unknown_category") == 6
    assert _value(samples, "salespulse_pipeline_lag_seconds", event="sales") == 3.5
    assert _value(samples, "salespulse_stream_last_batch_duration_seconds", event="sales") == 1.25
    assert _value(samples, "salespulse_stream_files_in_landing", event="sales") == 2
    assert 29 <= _value(samples, "salespulse_stream_status_age_seconds") < 90
    latency_sum = _value(samples, "salespulse_http_request_duration_seconds_sum", route="/healthz", method="GET")
    assert 0 < latency_sum < 5


def test_metrics_token_or_loopback_only(tmp_path: Path) -> None:
    open_client = make_app(tmp_path).server.test_client()
    assert open_client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert open_client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403

    secret = "metrics-secret-0123456789"
    guarded = make_app(tmp_path / "b", metrics_token=secret).server.test_client()
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    allowed = guarded.get("/metrics", headers={"Authorization": f"Bearer {secret}"}, environ_base=remote)
    assert allowed.status_code == 200


@pytest.fixture
def log_lines() -> Any:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(ACCESS_LOG), logging.getLogger("salespulse.errors")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_request_log_is_json_with_the_request_id_and_no_body(tmp_path: Path, log_lines: Any) -> None:
    client = make_app(tmp_path).server.test_client()
    given = client.get("/healthz?email=someone@example.com", headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    made = client.post("/api/v1/sales", json=[sale(1)], headers=AUTH)
    generated = made.headers["X-Request-ID"]
    assert len(generated) == 32 and generated != "trace-42"
    hostile = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert hostile.headers["X-Request-ID"] != "<script>alert(1)</script>"

    lines = log_lines()
    requests = [line for line in lines if line["message"] == "request"]
    assert [r["request_id"] for r in requests] == ["trace-42", generated, hostile.headers["X-Request-ID"]]
    first, second = requests[0], requests[1]
    assert (first["method"], first["path"], first["status"]) == ("GET", "/healthz", 200)
    assert first["duration_ms"] >= 0 and first["user"] is None
    assert (second["method"], second["path"], second["status"], second["user"]) == (
        "POST", "/api/v1/sales", 201, "api-token-0")
    signed_in = signed_in_client(make_app(tmp_path / "signed-in"))
    signed_in.get("/_dash-layout")
    layout_line = [line for line in log_lines() if line.get("path") == "/_dash-layout"][-1]
    assert (layout_line["status"], layout_line["user"]) == (200, "admin")  # the name, not the session id
    text = json.dumps(lines)
    assert "someone@example.com" not in text and "CFR000001" not in text and TOKEN not in text


def test_errors_friendly_page_for_browsers_json_for_dash_and_api(tmp_path: Path, log_lines: Any) -> None:
    client = signed_in_client(make_app(tmp_path))
    page = client.get("/boom", headers={"Accept": "text/html", "X-Request-ID": "req-boom-1"})
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "req-boom-1" in html and "Something went wrong" in html
    assert "Traceback" not in html and "hunter2" not in html and "RuntimeError" not in html

    callback = callback_request(client, 13)
    assert callback.status_code == 500
    assert callback.mimetype == "application/json"
    assert callback.get_json()["error"] == "internal error"
    assert "CFR000013" not in callback.get_data(as_text=True)

    wrong_method = client.put("/api/v1/sales")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["status"] == 405

    errors = [line for line in log_lines() if line["message"] == "unhandled error"]
    assert errors[0]["request_id"] == "req-boom-1"
    assert "hunter2" in errors[0]["exception"] and "Traceback" in errors[0]["exception"]
    assert errors[1]["path"] == "/_dash-update-component"


def test_metrics_show_the_workers_resident_and_duckdb_memory(tmp_path: Path) -> None:
    write_lake(tmp_path / "lake", 30)
    served = LakeRepository(tmp_path / "lake", tmp_path / "models")
    app = make_app(tmp_path, served)
    with inside_a_query():
        served._table("numbers", "SELECT range AS n FROM range(2000000)")  # 2M BIGINTs: 16 MB in DuckDB's table
    samples = _samples(app.server.test_client().get("/metrics").get_data(as_text=True))
    assert 16e6 <= _value(samples, "salespulse_dashboard_duckdb_memory_bytes", part="in_memory_table") < 24e6
    assert 0.8 < _value(samples, "process_resident_memory_bytes") / psutil.Process().memory_info().rss < 1.25
