"""The callback response cache on the real Flask server over the small real lake: identical requests are served
from the cache, but never one viewer's response to a viewer with other countries, never across a publish, never
a failed read, and never the header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboard import ids
from dashboard.app import create_app
from dashboard.callbacks import NO_FORECASTS
from dashboard.data import LakeRepository
from dashboard.filters import parse_query, period
from dashboard.response_cache import CACHE_HEADER
from salespulse.scope import Scope
from salespulse.settings import Settings
from tests.accounts import write_accounts
from tests.dashboard.test_security import OTHERS, callback_body, client_for, texts
from tests.dashboard.test_unreadable_files import corrupt_pages
from tests.lakes import SampleLake, publish_frame, sample_forecasts

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark
QUERY = "?range=30d&grain=day"


def server_for(settings: Settings, folder: Path, **dashboard: Any):
    users = write_accounts(folder / "users.json", {"anna": ("France",), "boss": None})
    return create_app(settings.model_copy(update={
        "auth": settings.auth.model_copy(update={"users_file": str(users)}),
        "dashboard": settings.dashboard.model_copy(update=dashboard)})).server


def tab_body(client, tab: str, query: str = QUERY) -> dict[str, Any]:
    return callback_body(client, f"{ids.warning(tab)}.children", {ids.DATA_VERSION: "v", ids.FILTERS: query},
                         f"{ids.FILTERS}.data")


def post(client, body: dict[str, Any]):
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:300]
    return response


@pytest.fixture(scope="module")
def server(sample_lake: SampleLake, tmp_path_factory: pytest.TempPathFactory):
    return server_for(sample_lake.settings, tmp_path_factory.mktemp("cache"))


def test_a_france_only_user_never_gets_an_admins_cached_response(server) -> None:
    boss, anna = client_for(server, "boss"), client_for(server, "anna")
    body = tab_body(boss, "overview")
    first = post(boss, body)
    again = post(boss, body)
    assert (first.headers[CACHE_HEADER], again.headers[CACHE_HEADER]) == ("miss", "hit")
    assert again.data == first.data
    assert set(OTHERS) <= set(texts(first.get_json()))  # the admin's response names the other countries

    france = post(anna, body)  # the very same request body, from a France-only session
    assert france.headers[CACHE_HEADER] == "miss"
    shown = texts(france.get_json())
    assert "France" in shown and not set(shown) & set(OTHERS)
    assert post(anna, body).data == france.data  # her own entry, from then on
    assert post(boss, body).data == first.data  # and the admin still gets his


def test_filter_sync_is_cached_but_not_the_header_or_the_quality_tab(server) -> None:
    boss = client_for(server, "boss")
    sync = callback_body(boss, f"{ids.FILTERS}.data", {ids.URL: QUERY, ids.DATA_VERSION: "v", ids.FILTERS: QUERY},
                         f"{ids.URL}.search")
    assert [post(boss, sync).headers[CACHE_HEADER] for _ in range(2)] == ["miss", "hit"]
    assert post(boss, sync).get_json()["response"][ids.PRESET]["value"] == "30d"
    header = callback_body(boss, f"{ids.HEADER_FRESHNESS}.children", {ids.REFRESH: 1}, f"{ids.REFRESH}.n_intervals")
    quality = tab_body(boss, "quality")
    for body in (header, header, quality, quality):
        assert CACHE_HEADER not in post(boss, body).headers


def test_a_publish_changes_the_response(lake_copy: SampleLake, spark, tmp_path: Path) -> None:
    boss = client_for(server_for(lake_copy.settings, tmp_path), "boss")
    body = tab_body(boss, "trends", "?range=7d&country=USA&grain=hour")
    before = post(boss, body)
    assert post(boss, body).headers[CACHE_HEADER] == "hit"
    assert NO_FORECASTS in " ".join(texts(before.get_json()))

    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    last30 = period(parse_query("?range=30d"), repo.newest_hour(ADMIN))
    hourly = repo.sales_over_time(ADMIN, last30, "hour", ("country",))
    forecasts = sample_forecasts(hourly.rename(columns={"period": "hour"}),
                                 repo.newest_hour(ADMIN) - pd.Timedelta(hours=5))
    publish_frame(spark, lake_copy.lake, "gold_forecasts", "gold/forecasts", forecasts, "test-1")
    after = post(boss, body)  # the same request body, after a new manifest: computed again
    assert after.headers[CACHE_HEADER] == "miss"
    response = after.get_json()["response"]
    assert NO_FORECASTS not in " ".join(texts(response))
    p50 = [t for t in response[ids.FORECAST_CHART]["figure"]["data"] if t.get("name") == "forecast p50"]
    assert len(p50) == 1 and len(p50[0]["x"]) == 24  # USA's forecast, one per hour of the horizon


def test_a_failed_read_is_not_cached(lake_copy: SampleLake, tmp_path: Path) -> None:
    for part in (lake_copy.lake / "gold").rglob("*.parquet"):  # every gold file's data garbled: each read fails
        corrupt_pages(part)
    boss = client_for(server_for(lake_copy.settings, tmp_path), "boss")
    body = tab_body(boss, "overview")
    for _ in range(2):
        response = post(boss, body)
        assert response.headers[CACHE_HEADER] == "miss"
        assert "Could not read the latest data" in " ".join(texts(response.get_json()))


def test_no_entries_turns_the_cache_off(sample_lake: SampleLake, tmp_path: Path) -> None:
    boss = client_for(server_for(sample_lake.settings, tmp_path, response_cache_entries=0), "boss")
    body = tab_body(boss, "overview")
    assert [CACHE_HEADER in post(boss, body).headers for _ in range(2)] == [False, False]
