"""Authentication and row-level security through raw HTTP on the real Flask server (Flask test client) over
the small real lake: every route needs a login, and a France-only user who replays the renderer's own callback
requests with other countries in the filter state gets nothing of them; France's totals equal pandas over
France's rows of the simulator's files."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.dashboard_latency import renderer_body
from dashboard import ids
from dashboard.app import create_app
from dashboard.auth import is_open_path
from dashboard.filters import parse_query, period
from salespulse.metrics import format_kpi
from salespulse.schema import COUNTRIES
from tests.accounts import login, write_accounts
from tests.conftest import read_landing
from tests.lakes import SampleLake
from tests.unit.salespulse.test_simulator import valid_mask

pytestmark = pytest.mark.spark
OTHERS = tuple(c for c in COUNTRIES if c != "France")
GUARD_BODY = {"error": "authentication required", "login": "/login"}


@pytest.fixture(scope="module")
def server(sample_lake: SampleLake, tmp_path_factory: pytest.TempPathFactory):
    users = write_accounts(tmp_path_factory.mktemp("auth") / "users.json", {"anna": ("France",), "boss": None})
    settings = sample_lake.settings.model_copy(
        update={"auth": sample_lake.settings.auth.model_copy(update={"users_file": str(users)})})
    return create_app(settings).server


@pytest.fixture(scope="module")
def france(sample_lake: SampleLake) -> pd.DataFrame:
    """France's sales as a careful analyst keeps them from the simulator's files: valid rows, one per order."""
    raw = read_landing(sample_lake.landing / "history" / "sales")
    kept = raw[valid_mask(raw)].drop_duplicates("order_id")
    kept = kept.assign(sales=kept["sales"].astype(float), event_time=pd.to_datetime(kept["event_time"], utc=True))
    assert set(kept["country"]) == set(COUNTRIES)  # the lake holds every country: the restriction has work to do
    return kept[kept["country"] == "France"]


def client_for(server, name: str):
    client = server.test_client()
    assert login(client, name).status_code == 302
    return client


def concrete(rule: str) -> str:
    """A URL of ``rule`` with every converter filled in."""
    return re.sub(r"<[^>]+>", "x", rule)


def callback_body(client, output: str, values: dict[str, Any], changed: str) -> dict[str, Any]:
    """The request the Dash renderer sends for the callback with ``output`` among its outputs (the benches'
    builder, from the app's own /_dash-dependencies), with ``values`` for its inputs and states (by id)."""
    return renderer_body(client.get("/_dash-dependencies").get_json(), output, values, [changed])


def tab_request(client, tab: str, query: str) -> dict[str, Any]:
    body = callback_body(client, f"{ids.warning(tab)}.children", {ids.DATA_VERSION: "v", ids.FILTERS: query},
                         f"{ids.FILTERS}.data")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:300]
    return response.get_json()["response"]


def export_request(client, query: str) -> pd.DataFrame:
    body = callback_body(client, f"{ids.EXPORT_DOWNLOAD}.data", {ids.EXPORT_BUTTON: 1, ids.FILTERS: query},
                         f"{ids.EXPORT_BUTTON}.n_clicks")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    content = response.get_json()["response"][ids.EXPORT_DOWNLOAD]["data"]["content"]
    return pd.read_csv(io.StringIO(content), keep_default_na=False)


def find(node: Any, component_id: Any) -> dict[str, Any] | None:
    """The props of the component with ``component_id`` in a JSON-decoded Dash layout."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == component_id:
            return node["props"]
        return next((f for v in node.values() if (f := find(v, component_id))), None)
    if isinstance(node, list):
        return next((f for v in node if (f := find(v, component_id))), None)
    return None


def first_tab(client, query: str) -> dict[str, Any]:
    """The first tab as the page opens on ``/{query}``: the renderer asks for the layout from the page, so the
    page's address arrives as the Referer."""
    response = client.get("/_dash-layout", headers={"Referer": f"http://localhost/{query}"})
    assert response.status_code == 200
    return find(response.get_json(), ids.TAB_CONTENT)


def texts(node: Any) -> list[str]:
    """Every string in a JSON-decoded Dash response."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in texts(v)]
    return []


def test_every_route_needs_a_login_and_shows_no_data(server) -> None:
    client = server.test_client()
    # The open routes (login, probes, /metrics, the token-guarded API) are tested in tests/api and
    # tests/security; every other route, and the app's page under an API-looking path, needs a login.
    paths = {concrete(r.rule): sorted(r.methods - {"HEAD", "OPTIONS"}) for r in server.url_map.iter_rules()
             if not is_open_path(r.rule)}
    assert {"/", "/_dash-layout", "/_dash-dependencies", "/_dash-update-component", "/_reload-hash"} <= set(paths)
    paths |= {"/assets/bootstrap-flatly.min.css": ["GET"], "/?range=7d&country=Germany": ["GET"],
              "/api/v1/sales": ["GET"], "/api/anything": ["GET", "POST"], "/metricsx": ["GET"]}
    for path, methods in paths.items():
        for method in methods:
            answer = client.open(path, method=method, json={} if method == "POST" else None)
            assert (answer.status_code, answer.get_json()) == (401, GUARD_BODY), (method, path)
            if method == "GET":
                page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
                assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=%2F"), path
                body = page.data.replace(page.headers["Location"].encode(), b"")  # the redirect names the path
                assert b"France" not in body and b"sales" not in body
    # replayed callback and export requests without a session: refused before any data is read
    anna = client_for(server, "anna")
    for body in (callback_body(anna, f"{ids.warning('overview')}.children", {ids.FILTERS: "?range=30d"},
                               f"{ids.FILTERS}.data"),
                 callback_body(anna, f"{ids.EXPORT_DOWNLOAD}.data", {ids.EXPORT_BUTTON: 1},
                               f"{ids.EXPORT_BUTTON}.n_clicks")):
        answer = client.post("/_dash-update-component", json=body)
        assert (answer.status_code, answer.get_json()) == (401, GUARD_BODY)
    assert anna.get("/assets/bootstrap-flatly.min.css").status_code == 200  # the same asset, logged in


def test_france_only_user_gets_nothing_of_germany_through_raw_callbacks(server, france: pd.DataFrame,
                                                                       sample_lake: SampleLake) -> None:
    anna = client_for(server, "anna")
    newest = france["event_time"].max().floor("h").tz_localize(None)
    pie_id = ids.clickable(ids.COUNTRY_PIE, "country")
    for query in ("?range=30d&country=Germany", "?range=30d&country=Germany,USA,Canada,Mexico"):
        response = tab_request(anna, "overview", query)
        shown = texts(response)
        assert not set(shown) & set(OTHERS), query
        assert response[ids.TOP_TABLE]["data"] == []
        pie = response[json.dumps(pie_id, sort_keys=True, separators=(",", ":"))]
        assert not any(trace.get("values") for trace in pie["figure"]["data"])
        assert export_request(anna, query).empty
        opened = first_tab(anna, query)  # the same view asked for by opening a crafted link
        assert not set(texts(opened)) & set(OTHERS), query
        assert find(opened, ids.TOP_TABLE)["data"] == []
        assert not any(trace.get("values") for trace in find(opened, pie_id)["figure"]["data"])

    for query in ("?range=30d", "?range=30d&country=France,Germany"):  # "all countries" = all of hers
        where = period(parse_query(query), newest)
        rows = france[(france["event_time"] >= where.start) & (france["event_time"] < where.end)]
        assert format_kpi("total_sales", round(rows["sales"].sum(), 2)) in texts(first_tab(anna, query))
        response = tab_request(anna, "overview", query)
        shown = texts(response)
        assert not set(shown) & set(OTHERS), query
        assert format_kpi("total_sales", round(rows["sales"].sum(), 2)) in shown
        assert format_kpi("orders", len(rows)) in shown
        exported = export_request(anna, query)
        assert set(exported["country"]) == {"France"}
        assert exported["orders"].sum() == len(rows)
        assert exported["sales"].sum() == pytest.approx(rows["sales"].sum(), abs=0.01)


def test_france_only_user_sees_only_france_on_every_tab(server) -> None:
    anna, boss = client_for(server, "anna"), client_for(server, "boss")
    for tab in ("overview", "trends", "customers", "inventory", "quality"):
        shown = texts(tab_request(anna, tab, "?range=30d&grain=day"))
        assert "France" in " ".join(shown) or tab == "quality", tab
        assert not set(shown) & set(OTHERS), tab
        assert set(OTHERS) <= set(texts(tab_request(boss, tab, "?range=30d&grain=day"))) or tab == "quality"
    quality = tab_request(anna, "quality", "?range=30d")
    assert quality[ids.QUARANTINE_TABLE]["data"] == []  # rejected rows carry no trusted country: admins only
    assert "administrators only" in " ".join(texts(quality[ids.PIPELINE_CARDS]))
    assert tab_request(boss, "quality", "?range=30d")[ids.QUARANTINE_TABLE]["data"]  # the admin sees them


def test_filter_options_and_header_follow_the_user(server) -> None:
    def dropdown_options(client) -> list[str]:
        return find(client.get("/_dash-layout").get_json(), ids.COUNTRY)["options"]

    assert dropdown_options(client_for(server, "anna")) == ["France"]
    assert dropdown_options(client_for(server, "boss")) == list(COUNTRIES)
    header = find(client_for(server, "anna").get("/_dash-layout").get_json(), ids.ACCOUNT)
    assert header["children"] == "anna · France"
    logout = find(client_for(server, "anna").get("/_dash-layout").get_json(), ids.LOGOUT)
    assert (logout["action"], logout["method"]) == ("/logout", "post")  # a form: /logout answers POST only


def test_export_csv_is_safe_to_open_in_a_spreadsheet(server, tmp_path: Path) -> None:
    exported = export_request(client_for(server, "boss"), "?range=7d")
    numbers = exported.select_dtypes("number")
    assert {"orders", "sales", "profit"} <= set(numbers.columns)  # numbers stay numbers in the file
    text = exported.to_csv(index=False)
    for row in csv.reader(io.StringIO(text)):
        assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row)


def test_a_link_whose_query_missed_the_layout_still_opens_on_its_view(server) -> None:
    """Without a Referer the layout opens on the default view; the filter sync's first call (nothing
    triggered) then takes the address's filters, not the controls' defaults."""
    boss = client_for(server, "boss")
    opened = boss.get("/_dash-layout").get_json()
    assert find(opened, ids.COUNTRY)["value"] == [] and find(opened, ids.PRESET)["value"] == "30d"
    link = "?range=7d&country=France&grain=week"
    controls = {ids.URL: link, ids.PRESET: "30d", ids.GRAIN: "day", ids.COUNTRY: [],
                ids.FILTERS: find(opened, ids.FILTERS)["data"]}
    body = {**callback_body(boss, f"{ids.FILTERS}.data", controls, f"{ids.URL}.search"), "changedPropIds": []}
    response = boss.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    applied = parse_query(response.get_json()["response"][ids.FILTERS]["data"])
    assert (applied.preset, applied.countries, applied.grain) == ("7d", ("France",), "week")
