"""The ingest API's body limit and its parsing of hostile JSON, through real HTTP servers: the threaded Werkzeug
server of `salespulse dashboard` and gunicorn with the project's config (`--prod`). A body over
``api.max_body_bytes`` gets 413 however it is framed (a Content-Length, or chunked in pieces of any size) and
lands nothing; a body under it, chunked, lands every one of its rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from dashboard.app import create_app
from salespulse.schema import SALES_EVENT
from tests.api.test_ingest_api import AUTH, TOKEN, api_settings, as_csv, sale
from tests.servers import GUNICORN, free_port, serve, serve_process, server_env

LIMIT = 400_000  # api.max_body_bytes of these servers: small, so the bodies that cross it stay quick to send


def pieces(body: bytes, size: int) -> Iterator[bytes]:
    """The body as a generator: requests sends it with Transfer-Encoding: chunked, one chunk per piece."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


def sales_csv(rows: int) -> bytes:
    return as_csv([sale(i) for i in range(rows)], list(SALES_EVENT.names))


def landed_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(the API's URL, its landing folder) on each kind of server."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "werkzeug":
        for url in serve(create_app(api_settings(root, max_body_bytes=LIMIT))):
            yield url + "api/v1/sales", root / "landing"
        return
    port, lake = free_port(), root / "lake"
    lake.mkdir()
    env = server_env(lake, port, SALESPULSE_PATHS__LANDING=str(root / "landing"),
                     SALESPULSE_API__TOKENS=json.dumps([TOKEN]), SALESPULSE_API__MAX_BODY_BYTES=str(LIMIT),
                     SALESPULSE_AUTH__USERS_FILE=str(root / "users.json"),
                     SALESPULSE_DASHBOARD__WORKERS="1", SALESPULSE_DASHBOARD__THREADS="2")
    with serve_process(GUNICORN, env, root / "gunicorn.log", port):
        yield f"http://127.0.0.1:{port}/api/v1/sales", root / "landing"


def post(url: str, body: Any, content_type: str) -> requests.Response:
    return requests.post(url, data=body, headers={**AUTH, "Content-Type": content_type}, timeout=60)


def test_ingest_limits_over_limit_body_is_413_however_it_arrives(server: tuple[str, Path]) -> None:
    url, landing = server
    before = landed_files(landing)
    csv_body = sales_csv(4_000)
    json_body = json.dumps([sale(i) for i in range(1_500)]).encode()
    assert LIMIT < len(csv_body) < 2 * LIMIT and len(json_body) > LIMIT
    attempts = {
        "csv with a Content-Length": (csv_body, "text/csv"),
        "csv chunked whole": (pieces(csv_body, len(csv_body)), "text/csv"),
        "csv chunked in 64 KB pieces": (pieces(csv_body, 64 * 1024), "text/csv"),
        "csv chunked in 1 KB pieces": (pieces(csv_body, 1024), "text/csv"),
        "json chunked in 64 KB pieces": (pieces(json_body, 64 * 1024), "application/json"),
        "csv one byte over, chunked": (pieces(csv_body[:LIMIT + 1], 64 * 1024), "text/csv"),
    }
    for name, (body, content_type) in attempts.items():
        response = post(url, body, content_type)
        assert response.status_code == 413, (name, response.text[:300])
        assert f"larger than {LIMIT} bytes (api.max_body_bytes)" in response.json()["error"], name
    assert landed_files(landing) == before


def test_ingest_limits_chunked_body_under_the_limit_lands_every_row(server: tuple[str, Path]) -> None:
    url, landing = server
    rows = 3_550
    body = sales_csv(rows)
    assert LIMIT - 20_000 < len(body) <= LIMIT  # most of the limit: a cut anywhere would lose rows
    for size in (len(body), 64 * 1024, 1024):
        before = landed_files(landing)
        response = post(url, pieces(body, size), "text/csv")
        assert response.status_code == 201, (size, response.text[:300])
        assert response.json()["rows_accepted"] == rows
        (new,) = landed_files(landing) - before
        frame = pd.read_csv(new, dtype=str, keep_default_na=False)
        assert frame["order_id"].tolist() == [f"pos-{i}" for i in range(rows)]
        assert frame["customer_id"].tolist() == [f"CFR{i:06d}" for i in range(rows)]


NESTED_OBJECTS = b"[" + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]"


@pytest.mark.parametrize(("name", "body", "status", "reason"), [
    ("100k open brackets", b"[" * 100_000, 400, "nests arrays or objects too deeply"),
    ("50k nested objects", NESTED_OBJECTS, 400, "nests arrays or objects too deeply"),
    ("400-digit number", json.dumps([sale(0)]).replace('"units_sold": 10', '"units_sold": ' + "9" * 400).encode(),
     422, "units_sold: not a finite number"),
    ("5000-digit number", json.dumps([sale(0)]).replace('"sales": 147.0', '"sales": ' + "7" * 5000).encode(),
     422, "sales: not a finite number"),
    ("lone surrogate escape", json.dumps([sale(0, order_id="\ud800")]).encode(), 422,
     "order_id: not valid Unicode text"),
])
def test_ingest_limits_pathological_json_is_refused_with_a_reason(server: tuple[str, Path], name: str, body: bytes,
                                                                  status: int, reason: str) -> None:
    url, landing = server
    before = landed_files(landing)
    response = post(url, body, "application/json")
    assert response.status_code == status, (name, response.text[:300])
    assert reason in response.text, (name, response.text[:300])
    assert landed_files(landing) == before
