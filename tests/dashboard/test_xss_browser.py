"""Untrusted names stay text, in real headless Chromium under the Content-Security-Policy: a lake whose product
and segment names are script, event-handler and javascript: payloads (and spreadsheet formulas) is shown on
every tab; no payload runs, the names appear literally, and the exported CSV opens them as text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from dashboard.layout import TABS
from tests.accounts import PASSWORD
from tests.dashboard.browser import csp_violations, log_in, serve_as_demo, wait_for
from tests.lakes import SampleLake, build_renamed_lake

pytestmark = [pytest.mark.spark, pytest.mark.slow]
SCRIPT = "<script>window.__xss=1</script>"
IMAGE = '<img src=x onerror="window.__xss=1">'
LINK = "javascript:alert(1)"
FORMULA = "=1+2"
RENAMES = {"product": {"Carretera": SCRIPT, "Montana": IMAGE, "Paseo": LINK, "Velo": FORMULA},
           "segment": {"Government": SCRIPT, "Midmarket": IMAGE, "Channel Partners": LINK, "Enterprise": "@SUM(1)"}}


@pytest.fixture(scope="module")
def hostile_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> SampleLake:
    return build_renamed_lake(spark, tmp_path_factory.mktemp("hostile"), RENAMES)


@pytest.fixture
def served(hostile_lake: SampleLake, tmp_path: Path) -> Iterator[str]:
    yield from serve_as_demo(hostile_lake.settings, tmp_path / "users.json")


def test_hostile_names_render_as_text_on_every_tab(served: str, browser, tmp_path: Path) -> None:
    log_in(browser, served, "demo", PASSWORD)
    wait_for(lambda: "range=30d" in browser.current_url)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#tab-content td.dash-cell"))
    time.sleep(2)  # let every chart draw
    shown = browser.execute_script("return document.body.innerText;")
    for name in (SCRIPT, IMAGE, LINK, FORMULA):  # in the top table, verbatim
        assert name in shown, name
    assert browser.execute_script("return document.querySelectorAll('#tab-content script, #tab-content img')"
                                  ".length;") == 0
    svg_text = ""
    for label in TABS.values():
        browser.find_element(By.LINK_TEXT, label).click()
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#tab-content .js-plotly-plot .main-svg"))
        time.sleep(2)
        assert browser.execute_script("return typeof window.__xss;") == "undefined", label
        assert "Could not read" not in browser.page_source, label
        assert csp_violations(browser) == [], label
        svg_text += browser.execute_script("return Array.from(document.querySelectorAll('svg text'))"
                                           ".map(t => t.textContent).join('|');")
        assert "onerror" not in browser.execute_script(
            "return Array.from(document.querySelectorAll('svg *'))"
            ".map(e => e.getAttributeNames().join(' ')).join(' ');"), label
        assert not browser.execute_script("return document.querySelectorAll('svg a').length;"), label
    for name in (SCRIPT, IMAGE, LINK):  # chart labels (axes, legends, gauges) show the names literally too
        assert name in svg_text, name

    browser.find_element(By.LINK_TEXT, "Overview").click()
    wait_for(lambda: browser.find_elements(By.ID, "export-button"))
    browser.find_element(By.ID, "export-button").click()
    downloads = tmp_path / "downloads"
    exported = wait_for(lambda: list(downloads.glob("*.csv")) if downloads.exists() else [])[0]
    frame = pd.read_csv(exported, keep_default_na=False)
    assert "'" + FORMULA in set(frame["product"]) and FORMULA not in set(frame["product"])
    assert "'@SUM(1)" in set(frame["segment"])
    assert {SCRIPT, IMAGE, LINK} <= set(frame["product"])  # other names unchanged
    assert pd.api.types.is_numeric_dtype(frame["sales"]) and pd.api.types.is_numeric_dtype(frame["profit"])
    assert browser.execute_script("return typeof window.__xss;") == "undefined"
