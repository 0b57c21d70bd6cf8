"""The ingest API through Flask's real test client on the real app: every refusal lands nothing, an accepted
request lands exactly one file holding exactly the request's rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient

from dashboard.app import create_app
from salespulse.schema import INVENTORY_EVENT, SALES_EVENT
from salespulse.settings import Settings, load_settings
from tests.accounts import write_accounts

TOKEN = "test-token-0123456789abcdef"
OTHER_TOKEN = "second-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sale(i: int, **changes: Any) -> dict[str, Any]:
    """A valid Midmarket sale: 10 units at 15, Low band (2 %), unit cost 10, worked out by hand."""
    row = {
        "order_id": f"pos-{i}", "event_time": f"2026-11-23T10:{i % 60:02d}:00.000Z", "country": "France",
        "segment": "Midmarket", "product": "Paseo", "discount_band": "Low", "units_sold": 10,
        "manufacturing_price": 10.0, "sale_price": 15.0, "gross_sales": 150.0, "discounts": 3.0, "sales": 147.0,
        "cogs": 100.0, "profit": 47.0, "customer_id": f"CFR{i:06d}",
    }
    row.update(changes)
    return row


def api_settings(tmp_path: Path, **api: Any) -> Settings:
    overrides = {"paths.landing": str(tmp_path / "landing"), "paths.lake": str(tmp_path / "lake"),
                 "paths.models": str(tmp_path / "models"), "api.tokens": [TOKEN, OTHER_TOKEN]}
    overrides.update({f"api.{key}": value for key, value in api.items()})
    return load_settings(overrides=overrides)


def client_for(tmp_path: Path, **api: Any) -> FlaskClient:
    return create_app(api_settings(tmp_path, **api)).server.test_client()


def landed(tmp_path: Path) -> list[Path]:
    """Every file under the landing folder, staging included."""
    root = tmp_path / "landing"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def as_csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    return client_for(tmp_path)


def test_ingest_api_json_push_lands_one_file_equal_to_the_request(client: FlaskClient, tmp_path: Path) -> None:
    rows = [sale(i) for i in range(25)]
    rows[3]["customer_id"] = None  # optional
    response = client.post("/api/v1/sales", json=rows, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    files = landed(tmp_path)
    assert [f.name for f in files] == [body["file"]]
    assert files[0].parent == tmp_path / "landing" / "sales"
    assert body["rows_accepted"] == 25
    frame = pd.read_csv(files[0], dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(SALES_EVENT.names)
    expected = pd.DataFrame(rows).fillna("")
    for column in ("order_id", "country", "segment", "product", "discount_band", "customer_id", "event_time"):
        assert frame[column].tolist() == expected[column].astype(str).tolist(), column
    for column in ("units_sold", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit"):
        assert frame[column].astype(float).tolist() == expected[column].astype(float).tolist(), column


def test_ingest_api_csv_push_normalises_times_to_utc(client: FlaskClient, tmp_path: Path) -> None:
    rows = [{"event_time": "2026-11-23T11:30:00+01:00", "country": "germany", "product": "VTT", "kind": "restock",
             "quantity": "40", "reorder_point": "12.5"}]
    response = client.post("/api/v1/inventory", data=as_csv(rows, list(INVENTORY_EVENT.names)),
                           headers={**AUTH, "Content-Type": "text/csv"})
    assert response.status_code == 201, response.get_json()
    frame = pd.read_csv(landed(tmp_path)[0], dtype=str)
    assert frame.loc[0, "event_time"] == "2026-11-23T10:30:00.000Z"
    assert frame.loc[0, "country"] == "germany"  # the stream maps spellings; the API only checks them
    assert float(frame.loc[0, "reorder_point"]) == 12.5


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}])
def test_ingest_api_rejects_missing_or_invalid_tokens(client: FlaskClient, tmp_path: Path,
                                                      headers: dict[str, str]) -> None:
    response = client.post("/api/v1/sales", json=[sale(1)], headers=headers)
    assert response.status_code == 401
    assert "bearer token" in response.get_json()["error"]
    assert landed(tmp_path) == []


def test_ingest_api_accepts_every_configured_token(client: FlaskClient, tmp_path: Path) -> None:
    response = client.post("/api/v1/sales", json=[sale(1)], headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert response.status_code == 201
    assert len(landed(tmp_path)) == 1


def test_ingest_api_rejects_oversized_bodies_and_too_many_rows(tmp_path: Path) -> None:
    client = client_for(tmp_path, max_body_bytes=2_000, max_rows=3)
    big = client.post("/api/v1/sales", json=[sale(i) for i in range(20)], headers=AUTH)
    assert big.status_code == 413
    assert "api.max_body_bytes" in big.get_json()["error"]
    many = client.post("/api/v1/sales", json=[{"order_id": str(i)} for i in range(4)], headers=AUTH)
    assert many.status_code == 413
    assert "at most 3" in many.get_json()["error"]
    assert landed(tmp_path) == []


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'[{"order_id": "x",'),
    ("application/json", b'{"order_id": "x"}'),
    ("application/json", b'[1, 2]'),
    ("application/json", b'\xff\xfe'),
    ("text/csv", b'order_id,event_time\n"unterminated,2026-11-23T10:00:00Z\n'),
    ("text/csv", b''),
])
def test_ingest_api_rejects_malformed_bodies(client: FlaskClient, tmp_path: Path, content_type: str,
                                             body: bytes) -> None:
    response = client.post("/api/v1/sales", data=body, headers={**AUTH, "Content-Type": content_type})
    assert response.status_code == 400, response.get_json()
    assert landed(tmp_path) == []


def test_ingest_api_rejects_other_content_types(client: FlaskClient, tmp_path: Path) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = client.post("/api/v1/sales", data=b"order_id\n1\n", headers={**AUTH, "Content-Type": content_type})
        assert response.status_code == 415, content_type
    assert landed(tmp_path) == []


def test_ingest_api_rejects_wrong_schema_with_failing_rows_and_reasons(client: FlaskClient, tmp_path: Path) -> None:
    rows = [sale(0), sale(1, units_sold="12..5"), sale(2), sale(3, event_time="yesterday"),
            sale(4, country="Atlantis"), sale(5, order_id=""), sale(6, sales=True)]
    del rows[2]["product"]
    response = client.post("/api/v1/sales", json=rows, headers=AUTH)
    assert response.status_code == 422
    body = response.get_json()
    reasons = {r["row"]: r["reasons"] for r in body["rows"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert reasons[1] == ["units_sold: not a finite number"]
    assert reasons[2] == ["product: missing"]
    assert reasons[3][0].startswith("event_time: not an ISO 8601 time")
    assert reasons[4][0].startswith("country: not one of USA")
    assert reasons[5] == ["order_id: required, got a blank"]
    assert reasons[6] == ["sales: not a finite number"]
    assert body["failing_rows"] == 6
    assert "nothing was landed" in body["error"]

    unknown = client.post("/api/v1/sales", json=[sale(0, coupon="X")], headers=AUTH)
    assert unknown.status_code == 422
    assert unknown.get_json()["problems"][0].startswith("unknown column(s) coupon")

    columns = [c for c in SALES_EVENT.names if c != "profit"]
    missing = client.post("/api/v1/sales", data=as_csv([{c: sale(0)[c] for c in columns}], columns),
                          headers={**AUTH, "Content-Type": "text/csv"})
    assert missing.status_code == 422
    assert missing.get_json()["problems"] == ["missing column(s) profit"]

    ragged = as_csv([sale(0)], list(SALES_EVENT.names)) + b"a,b\n"
    short = client.post("/api/v1/sales", data=ragged, headers={**AUTH, "Content-Type": "text/csv"})
    assert short.status_code == 422
    assert short.get_json()["rows"] == [{"row": 1, "reasons": ["has 2 fields, the header has 15"]}]
    assert landed(tmp_path) == []


def test_ingest_api_rate_limit_per_token(tmp_path: Path) -> None:
    client = client_for(tmp_path, rate_limit="2/minute")
    codes = [client.post("/api/v1/sales", json=[sale(i)], headers=AUTH).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    other = client.post("/api/v1/sales", json=[sale(9)], headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert other.status_code == 201  # another token has its own budget
    assert len(landed(tmp_path)) == 3


def test_ingest_api_without_tokens_is_disabled(tmp_path: Path) -> None:
    users = write_accounts(tmp_path / "users.json", {"admin": None})  # production refuses to start without
    for production in (False, True):
        settings = load_settings(overrides={
            "paths.landing": str(tmp_path / "landing"), "paths.lake": str(tmp_path / "lake"),
            "paths.models": str(tmp_path / "models"), "api.tokens": [], "dashboard.production": production,
            "auth.users_file": str(users), "auth.secret_key": "s" * 32})
        client = create_app(settings).server.test_client()
        response = client.post("/api/v1/sales", json=[sale(1)], headers=AUTH)
        assert response.status_code == 503
        assert "disabled" in response.get_json()["error"]
    assert landed(tmp_path) == []


def test_ingest_api_file_names_never_come_from_the_request(client: FlaskClient, tmp_path: Path) -> None:
    response = client.post("/api/v1/sales?file=../../evil.csv", json=[sale(1)],
                           headers={**AUTH, "X-File-Name": "../../evil.csv"})
    assert response.status_code == 201
    assert [p.relative_to(tmp_path).parts[:2] for p in landed(tmp_path)] == [("landing", "sales")]
    assert not list(tmp_path.rglob("evil*"))
    assert json.loads(response.data)["file"].startswith("api-sales-")
