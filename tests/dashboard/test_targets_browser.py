"""The Overview's targets section in real headless Chromium: the attainment cards and the country table show
pandas' numbers for the lake and targets file of tests/dashboard/test_targets.py, the status cells coloured.
Saves tests/artifacts/targets.png (and docs/screenshots/targets.png with SALESPULSE_DOC_SCREENSHOTS=1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from dashboard import ids
from salespulse.kpis import round_half_up
from salespulse.metrics import format_kpi
from tests.accounts import PASSWORD
from tests.dashboard.browser import ARTIFACTS, csp_violations, log_in, serve_as_demo, to_docs, wait_for
from tests.dashboard.test_targets import Expected, build_targeted_lake, read_plan, set_goals
from tests.lakes import SampleLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def targeted(sample_lake: SampleLake, spark, tmp_path: Path) -> tuple[SampleLake, Expected]:
    return build_targeted_lake(sample_lake, spark, tmp_path / "targeted")


@pytest.fixture
def served(targeted: tuple[SampleLake, Expected]) -> Iterator[str]:
    sample, _ = targeted
    yield from serve_as_demo(sample.settings, sample.root / "users.json")


def text_of(browser, xpath: str) -> str:
    try:
        found = browser.find_elements(By.XPATH, xpath)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def table_rows(browser) -> dict[tuple[str, str, str], dict[str, str]]:
    """The targets table's rows by (country, segment, measure): each column's shown text."""
    rows = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, f"#{ids.TARGET_TABLE} tr"):
        cells = {td.get_attribute("data-dash-column"): td for td in tr.find_elements(By.CSS_SELECTOR, "td")}
        if cells:
            texts = {column: td.text for column, td in cells.items()}
            texts["status_colour"] = cells["status"].value_of_css_property("background-color")
            rows[(texts["country"], texts["segment"], texts["measure"])] = texts
    return rows


def test_targets_cards_and_table_show_pandas_numbers(served: str, browser,
                                                     targeted: tuple[SampleLake, Expected]) -> None:
    sample, expected = targeted
    plan = read_plan(sample)
    goals = {r["country"]: r["sales_target"] for r in plan.to_dict("records") if r["segment"] is None}
    goals["Germany"] = set_goals(expected)[("Germany", None)][0]  # set by `targets set` after the plan
    target = sum(goals.values())
    actual = sum(expected.actual[(country, None)][0] for country in goals)
    attainment = f"{round_half_up(actual / target * 100, 1):f}%"

    log_in(browser, served, "demo", PASSWORD)
    card = wait_for(lambda: text_of(browser, """//*[contains(@id, '"type":"target-value"') and
                                                   contains(@id, '"key":"sales"')]"""), timeout=60)
    assert card == f"{attainment} of {format_kpi('total_sales', target)} to date"
    projected = sum(expected.projected[(country, None)][0] for country in goals)
    detail = text_of(browser, """//*[contains(@id, '"type":"target-detail"') and contains(@id, '"key":"sales"')]""")
    assert detail == f"projected {format_kpi('total_sales', projected)} · " \
                     f"{'on track' if projected >= target else 'at risk'}"

    rows = wait_for(lambda: table_rows(browser))
    assert len(rows) == 8
    france = rows[("France", "(whole country)", "Sales")]
    assert france["actual"] == format_kpi("total_sales", expected.actual[("France", None)][0])
    assert france["target"] == format_kpi("total_sales", goals["France"])
    assert france["attainment"] == f"{round_half_up(expected.actual[('France', None)][0] / goals['France'] * 100, 1)}%"
    assert france["projected"] == format_kpi("total_sales", expected.projected[("France", None)][0])
    assert france["status"] == "on track" and france["status_colour"] == "rgba(24, 188, 156, 1)"
    usa = rows[("USA", "(whole country)", "Sales")]
    assert usa["status"] == "at risk" and usa["status_colour"] == "rgba(231, 76, 60, 1)"
    assert rows[("France", "Government", "Profit")]["status"] == "on track"
    assert csp_violations(browser) == []

    section = browser.find_element(By.ID, "overview-targets")
    browser.execute_script("arguments[0].scrollIntoView();", section)
    time.sleep(0.5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "targets.png"
    section.screenshot(str(shot))
    to_docs(shot)
