"""/metrics label values never come from a request, through real servers: anonymous Dash callback requests are
not timed at all, a signed-in user's are labelled with a registered callback's id or one fixed value, and an
unknown HTTP method is one fixed value. A flood of anonymous callback requests with distinct 100 KB ``output``
fields leaves /metrics small and the gunicorn worker's resident memory where it was."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.monitoring import DASH_UPDATE, HTTP_METHODS, OTHER_CALLBACK, OTHER_METHOD
from tests.accounts import PASSWORD, write_accounts
from tests.api.test_monitoring import make_app
from tests.servers import GUNICORN, free_port, serve, serve_process, server_env

CALLBACK_SERIES = "salespulse_dash_callback_duration_seconds_count"


def callback_body(output: str, value: int = 1) -> dict[str, object]:
    """A callback request as the renderer sends it, for the test app's ``echo`` callback unless ``output``
    names another."""
    return {"output": output, "outputs": {"id": "test-out", "property": "children"},
            "inputs": [{"id": "test-in", "property": "value", "value": value}], "changedPropIds": ["test-in.value"],
            "state": []}


def series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


def test_metrics_labels_come_from_registered_callbacks_only(tmp_path: Path) -> None:
    for base in serve(make_app(tmp_path)):
        update = base + DASH_UPDATE.lstrip("/")
        anonymous = requests.Session()
        for i in range(5):
            refused = anonymous.post(update, json=callback_body(f"attacker-{i}-" + "x" * 1000), timeout=30)
            assert refused.status_code == 401
        assert anonymous.post(update, json=callback_body("test-out.children"), timeout=30).status_code == 401

        signed_in = requests.Session()
        assert signed_in.post(base + "login", data={"username": "admin", "password": PASSWORD},
                              allow_redirects=False, timeout=30).status_code == 302
        answered = signed_in.post(update, json=callback_body("test-out.children", 7), timeout=30)
        assert answered.json()["response"]["test-out"]["children"] == "got 7"
        for output in ("made-up.children", "..test-out.children...other.value..", ["not", "a", "string"]):
            signed_in.post(update, json={**callback_body("x"), "output": output}, timeout=30)
        assert requests.request("FROBNICATE", base + "healthz", timeout=30).status_code == 401  # the login guard

        text = requests.get(base + "metrics", timeout=30).text
    callbacks = series(text, CALLBACK_SERIES)
    assert callbacks == {(("output", "test-out.children"),): 1, (("output", OTHER_CALLBACK),): 3}
    methods = {dict(labels)["method"] for labels in series(text, "salespulse_http_request_duration_seconds_count")}
    assert OTHER_METHOD in methods and methods <= HTTP_METHODS | {OTHER_METHOD}
    assert "attacker" not in text and "made-up" not in text and "FROBNICATE" not in text


FLOOD_POSTS = 1_000
FLOOD_OUTPUT_BYTES = 100_000


@pytest.mark.slow
def test_metrics_anonymous_callback_flood_leaves_metrics_and_worker_memory_flat(tmp_path: Path) -> None:
    """gunicorn with the project's config and one worker: the worker's RSS before and after the flood, with
    /metrics scraped once before (so its own first-use allocations are in the baseline)."""
    lake, port = tmp_path / "lake", free_port()
    lake.mkdir()
    users = write_accounts(tmp_path / "users.json", {"admin": None})
    (tmp_path / "metrics").mkdir()
    env = server_env(lake, port, SALESPULSE_AUTH__USERS_FILE=str(users), SALESPULSE_DASHBOARD__WORKERS="1",
                     SALESPULSE_DASHBOARD__THREADS="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    base = f"http://127.0.0.1:{port}/"
    with serve_process(GUNICORN, env, tmp_path / "gunicorn.log", port) as master:
        # A connection per request: gunicorn closes a keep-alive connection rather than drain more than 64 KB
        # of a body the app left unread.
        def post(output: str) -> requests.Response:
            return requests.post(base + DASH_UPDATE.lstrip("/"), data=json.dumps(callback_body(output)).encode(),
                                 headers={"Content-Type": "application/json", "Connection": "close"}, timeout=30)

        filler = "y" * FLOOD_OUTPUT_BYTES
        for i in range(20):  # warm up the worker's paths for these requests
            assert post(f"warm-{i}-{filler}").status_code == 401
        assert requests.get(base + "metrics", timeout=30).status_code == 200
        (worker,) = psutil.Process(master.pid).children()
        before = worker.memory_info().rss

        for i in range(FLOOD_POSTS):
            response = post(f"{i:06d}-{filler}")  # a distinct output every time
            assert response.status_code == 401, response.text[:200]
        grown = worker.memory_info().rss - before
        assert grown < 20 * 2**20, f"worker grew {grown / 2**20:.1f} MiB over {FLOOD_POSTS} anonymous posts"

        scrape = requests.get(base + "metrics", timeout=60)
    assert scrape.status_code == 200
    assert len(scrape.content) < 100_000, len(scrape.content)
    assert CALLBACK_SERIES not in scrape.text and "yyyy" not in scrape.text
