"""The header's alert list in real headless Chromium: an open page shows no alert, then a rule fires on the
pipeline's side (evaluated and published into the lake) and the badge shows the count without a reload; the
dropdown lists them. Saves a screenshot to tests/artifacts/ (and docs/screenshots/ with
SALESPULSE_DOC_SCREENSHOTS=1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import duckdb
import pytest
from selenium.webdriver.common.by import By

from dashboard import ids
from salespulse.lake import duckdb_scan
from salespulse.settings import KpiThresholdRule
from spark_jobs.alerts import evaluate_alerts_job
from tests.accounts import PASSWORD
from tests.dashboard.browser import ARTIFACTS, csp_violations, log_in, serve_as_demo, to_docs, wait_for
from tests.lakes import BUILT_AT, SampleLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]
WINDOW_HOURS = 24 * 3


@pytest.fixture
def served(lake_copy: SampleLake) -> Iterator[str]:
    yield from serve_as_demo(lake_copy.settings, lake_copy.root / "users.json")


def badge(browser) -> str:
    found = browser.find_elements(By.ID, ids.ALERT_COUNT)
    return found[0].text if found else ""


def test_alerts_badge_counts_fired_rule(served: str, browser, lake_copy: SampleLake, spark) -> None:
    log_in(browser, served, "demo", PASSWORD)
    wait_for(lambda: "range=30d" in browser.current_url)
    wait_for(lambda: badge(browser) == "0")

    rule = {"name": "busy", "kind": "kpi_threshold", "kpi": "orders", "above": 0, "window_hours": WINDOW_HOURS}
    settings = lake_copy.settings.model_copy(update={"alerts": lake_copy.settings.alerts.model_copy(
        update={"rules": [KpiThresholdRule(**rule)]})})
    evaluate_alerts_job(spark, settings, BUILT_AT, None, print)
    # Independently: the countries with an order in the rule's window (the complete hours before BUILT_AT).
    last = BUILT_AT.replace(tzinfo=None, minute=0) - timedelta(hours=1)
    busy = duckdb.sql(f"SELECT count(DISTINCT country) FROM {duckdb_scan(lake_copy.lake, 'gold_sales_hourly')} "
                      f"WHERE hour BETWEEN '{last - timedelta(hours=WINDOW_HOURS - 1)}+00' AND '{last}+00' "
                      "AND orders > 0").fetchall()[0][0]
    assert busy > 0
    wait_for(lambda: badge(browser) == str(busy), timeout=30)  # the open page picks the publish up

    browser.find_element(By.CSS_SELECTOR, f"#{ids.ALERT_MENU} .dropdown-toggle").click()
    items = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".alert-item"))
    assert len(items) == busy and all("Orders in " in item.text for item in items)
    assert csp_violations(browser) == []
    time.sleep(0.5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "alerts.png"
    browser.save_screenshot(str(shot))
    to_docs(shot)
