"""The dashboard in real headless Chromium: login through the form, every tab under the Content-Security-Policy,
filters, a cross-filter click, CSV export, a live update while the page is open, and logout. Saves a screenshot
per tab to tests/artifacts/ (and docs/screenshots/ with SALESPULSE_DOC_SCREENSHOTS=1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from dashboard import ids
from dashboard.layout import TABS
from tests.accounts import PASSWORD
from tests.conftest import END_MS, run_simulator
from tests.dashboard.browser import ARTIFACTS, csp_violations, log_in, serve_as_demo, to_docs, wait_for
from tests.lakes import SampleLake, backfill_more

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def served(lake_copy: SampleLake) -> Iterator[str]:
    yield from serve_as_demo(lake_copy.settings, lake_copy.root / "users.json")


def kpi(browser, key: str) -> str:
    """The text of a KPI card's value ("" while the cards are being re-rendered)."""
    try:
        found = browser.find_elements(By.XPATH, f"""//*[contains(@id, '"key":"{key}"')]""")
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def test_browser_tabs_filters_click_export_and_live_update(served: str, browser, lake_copy: SampleLake,
                                                          spark, tmp_path: Path) -> None:
    log_in(browser, served, "demo", PASSWORD)
    wait_for(lambda: "range=30d" in browser.current_url)
    orders_before = wait_for(lambda: kpi(browser, "orders"))
    assert "data as of" in browser.page_source or "no live stream" in browser.page_source

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for key, label in TABS.items():
        browser.find_element(By.LINK_TEXT, label).click()
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#tab-content .js-plotly-plot .main-svg"))
        time.sleep(2.5)  # let every chart of the tab draw
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1600, max(900, height))
        time.sleep(0.5)
        shot = ARTIFACTS / f"{key}.png"
        browser.save_screenshot(str(shot))
        to_docs(shot)
        assert f"{key}-read-warning" in browser.page_source
        assert "Could not read" not in browser.page_source
        assert csp_violations(browser) == []  # every tab works under the Content-Security-Policy
    browser.set_window_size(1600, 1200)
    browser.find_element(By.LINK_TEXT, "Overview").click()

    # A filter through the URL, as a shared link: the cards follow it.
    browser.get(served + "?range=7d&country=USA&grain=day")
    usa_orders = wait_for(lambda: kpi(browser, "orders"))
    assert usa_orders != orders_before

    # Cross-filter: click the Government slice of the segment donut.
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".slice"))
    slices = browser.find_elements(By.CSS_SELECTOR, '[id*="overview-segment-donut"] .slice')
    government = next(s for s in slices if "Government" in s.text)
    browser.execute_script(
        "arguments[0].querySelector('path').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
        "arguments[0].querySelector('path').dispatchEvent(new MouseEvent('click', {bubbles: true}));", government)
    wait_for(lambda: "segment=Government" in browser.current_url)
    assert "country=USA" in browser.current_url

    # Export the filtered view.
    browser.find_element(By.ID, "export-button").click()
    downloads = tmp_path / "downloads"
    csv = wait_for(lambda: [f for f in downloads.glob("*.csv")] if downloads.exists() else [])[0]
    exported = pd.read_csv(csv, keep_default_na=False)
    assert set(exported["country"]) == {"USA"} and set(exported["segment"]) == {"Government"}
    assert exported["orders"].sum() > 0

    # Live: publish more sales while the page is open; the cards change without a reload.
    browser.get(served + "?range=30d")
    orders_shown = wait_for(lambda: kpi(browser, "orders"))
    browser.execute_script("window.__sameDocument = true;")
    more = tmp_path / "more"
    run_simulator(more, history_days=0.25, history_rate=0.05, end_ms=END_MS + 6 * 3600 * 1000, seed=5)
    backfill_more(spark, lake_copy, more / "history" / "sales", "live")
    published = time.monotonic()
    wait_for(lambda: kpi(browser, "orders") != orders_shown, timeout=10, step=0.1)
    assert time.monotonic() - published < 3.0, "new data must appear within about 2 s of the commit"
    assert browser.execute_script("return window.__sameDocument === true;")  # no page reload

    browser.find_element(By.CSS_SELECTOR, f"#{ids.LOGOUT} button").click()
    wait_for(lambda: "/login" in browser.current_url)
    browser.get(served)
    wait_for(lambda: "/login?next=" in browser.current_url)
