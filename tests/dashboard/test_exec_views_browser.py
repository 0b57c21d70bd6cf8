"""The executive views in real headless Chromium (issue 29): like-for-like "vs previous period" changes and partial
months, Data quality time axes and inventory gauge labels that do not clip at 1280 and 1600 px, customer engagement
vs sales and sales with stock levels by country (row-level security applied), and the page on a 390 x 844 phone.
Numbers are checked against pandas over the simulator's files or DuckDB over the lake's silver tables."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from dashboard import ids
from dashboard.app import create_app
from dashboard.layout import TABS
from salespulse.lake import duckdb_scan
from tests.accounts import PASSWORD, write_accounts
from tests.conftest import read_landing, stock_from_events
from tests.dashboard.browser import ARTIFACTS, log_in, start_chromium, to_docs, wait_for
from tests.dashboard.test_browser import kpi
from tests.lakes import SampleLake
from tests.servers import serve
from tests.unit.salespulse.test_simulator import valid_mask

pytestmark = [pytest.mark.spark, pytest.mark.slow]
PHONE = (390, 844)


@pytest.fixture(scope="module")
def served(sample_lake: SampleLake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app over the (read-only) sample lake, with an administrator ``demo`` and a France-only ``paris``."""
    users = write_accounts(tmp_path_factory.mktemp("users") / "users.json", {"demo": None, "paris": ("France",)})
    settings = sample_lake.settings
    yield from serve(create_app(settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"users_file": str(users)})})))


@pytest.fixture(scope="module")
def truth(sample_lake: SampleLake) -> pd.DataFrame:
    """The sales a careful analyst keeps from the simulator's files: valid rows, one per order id."""
    raw = read_landing(sample_lake.landing / "history" / "sales")
    kept = raw[valid_mask(raw)].drop_duplicates("order_id")
    return kept.assign(sales=kept["sales"].astype(float),
                       event_time=pd.to_datetime(kept["event_time"]).dt.tz_convert("UTC").dt.tz_localize(None))


def shoot(browser, name: str, docs: bool = False) -> None:
    """A screenshot to tests/artifacts/ (and, for the ``docs`` ones, to docs/screenshots/ with
    SALESPULSE_DOC_SCREENSHOTS=1)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    browser.save_screenshot(str(shot))
    if docs:
        to_docs(shot)


def one_decimal(value: float) -> str:
    """The documented display of a day count: one decimal at most, halves up ("6.4", "8")."""
    return f"{Decimal(repr(float(value))).quantize(Decimal('0.1'), ROUND_HALF_UP).normalize():f}"


def plot(browser, name: str) -> dict[str, Any] | None:
    """The figure (data and layout) Plotly drew in the graph whose id contains ``name``."""
    return browser.execute_script("""
        const host = Array.from(document.querySelectorAll('[id]'))
            .find(e => e.id === arguments[0] || e.id.includes('"chart":"' + arguments[0] + '"'));
        const graph = host && host.querySelector('.js-plotly-plot');
        return graph && graph.data ? JSON.parse(JSON.stringify({data: graph.data, layout: graph.layout})) : null;
    """, name)


def tick_texts(browser, name: str, selector: str) -> list[dict[str, Any]]:
    """The tick labels (text and box) of the graph whose id contains ``name``, with its SVG's box."""
    return browser.execute_script("""
        const host = Array.from(document.querySelectorAll('[id]'))
            .find(e => e.id === arguments[0] || e.id.includes('"chart":"' + arguments[0] + '"'));
        const svg = host.querySelector('.main-svg').getBoundingClientRect();
        return Array.from(host.querySelectorAll(arguments[1])).map(t => {
            const box = t.getBoundingClientRect();
            return {text: t.textContent, left: box.left, right: box.right, svgLeft: svg.left, svgRight: svg.right};
        });
    """, name, selector)


def cards_text(browser) -> str:
    """The Overview cards' text ("" while they are being re-rendered)."""
    try:
        found = browser.find_elements(By.ID, ids.KPI_CARDS)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def open_tab(browser, label: str, graph: str) -> dict[str, Any]:
    browser.find_element(By.LINK_TEXT, label).click()
    return wait_for(lambda: plot(browser, graph), timeout=30)


def test_exec_views_comparisons_are_like_for_like_and_partial_months_say_so(served: str, truth: pd.DataFrame,
                                                                           tmp_path: Path) -> None:
    first_hour = truth["event_time"].min().floor("h")
    browser = start_chromium(tmp_path / "profile", tmp_path / "downloads")
    try:
        log_in(browser, served, "demo", PASSWORD)
        wait_for(lambda: kpi(browser, "orders"))
        # 8 days whose previous 8 days hold data only from the lake's first hour on: no percentage, a note
        browser.get(served + "?start=2026-09-14&end=2026-09-21&grain=day")
        wait_for(lambda: kpi(browser, "orders"))
        covered = (pd.Timestamp("2026-09-14") - first_hour) / pd.Timedelta(days=1)
        assert 0 < covered < 8
        cards = wait_for(lambda: "partly covered" in cards_text(browser) and cards_text(browser))
        assert f"previous period partly covered ({one_decimal(covered)} of 8 days)" in cards
        assert not re.search(r"[+-][\d.]+(%| pts)", cards), cards  # no change against the partial period
        # The month this period holds is partial (8 of September's 30 days): labelled and drawn so.
        months = plot(browser, ids.MONTH_AREA)
        labels = {x for trace in months["data"] for x in trace["x"]}
        assert labels == {"Sep 2026 · 8 of 30 days"}
        partial = next(t for t in months["data"] if t["name"] == "partial month")
        assert partial["line"]["dash"] == "dot" and partial["marker"]["symbol"] == ["circle-open"]
        shoot(browser, "overview-partial-previous")

        # A previous period the data fully covers: the relative change, as pandas computes it.
        browser.get(served + "?start=2026-09-17&end=2026-09-20&grain=day")
        wait_for(lambda: "vs previous period" in cards_text(browser))
        day = truth["event_time"].dt.normalize()
        now = truth.loc[(day >= "2026-09-17") & (day <= "2026-09-20"), "sales"].sum()
        before = truth.loc[(day >= "2026-09-13") & (day <= "2026-09-16"), "sales"].sum()
        change = one_decimal(abs(now / before - 1) * 100)
        sign = "+" if now >= before else "-"
        assert f"{sign}{change}% vs previous period" in cards_text(browser)
    finally:
        browser.quit()


@pytest.mark.parametrize("width", [1280, 1600])
def test_exec_views_time_axes_and_gauge_labels_do_not_clip(served: str, width: int, tmp_path: Path) -> None:
    browser = start_chromium(tmp_path / "profile", tmp_path / "downloads", width=width, height=1000)
    try:
        log_in(browser, served, "demo", PASSWORD)
        wait_for(lambda: kpi(browser, "orders"))
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".dash-datepicker-input")
                 and browser.find_elements(By.ID, ids.PRESET))
        overflow = browser.execute_script(f"""
            const panel = document.getElementById('{ids.PRESET}').closest('.card');
            const card = panel.getBoundingClientRect();
            const shown = 'label, button, svg, .dash-datepicker-input-wrapper, .dash-datepicker-input, .dash-dropdown';
            return Array.from(panel.querySelectorAll(shown))
                .filter(e => e.getBoundingClientRect().width && e.getBoundingClientRect().right > card.right + 0.5)
                .map(e => e.className);""")
        assert overflow == [], overflow  # nothing sticks out of the filter panel (the date picker did)
        edges = browser.execute_script("""return Array.from(document.querySelector('.dash-datepicker-input-wrapper')
            .children).map(e => [e.getBoundingClientRect().left, e.getBoundingClientRect().right]);""")
        assert all(b[0] >= a[1] - 0.5 for a, b in itertools.pairwise(edges)), edges  # dates apart
        shoot(browser, f"overview-{width}")
        # The sample lake was loaded by one backfill run: a single ingest period, which Plotly's autorange
        # would spread over milliseconds.
        open_tab(browser, "Data quality & pipeline", ids.INGEST_CHART)
        for chart in (ids.INGEST_CHART, ids.FRESHNESS_CHART):
            texts = wait_for(lambda chart=chart: [t["text"] for t in tick_texts(browser, chart, ".xtick text")])
            assert not any(re.search(r"\d\.\d|:\d\d\.\d|ms", t) for t in texts), (chart, texts)
        shoot(browser, f"quality-{width}")
        open_tab(browser, "Inventory", ids.STOCK_GAUGES)
        ticks = wait_for(lambda: tick_texts(browser, ids.STOCK_GAUGES, ".xangularaxistick text"))
        assert len(ticks) > 6
        for tick in ticks:
            assert "," not in tick["text"], tick  # short labels (160k), not 160,000
            assert tick["left"] >= tick["svgLeft"] - 0.5 and tick["right"] <= tick["svgRight"] + 0.5, tick
        shoot(browser, f"inventory-{width}")
    finally:
        browser.quit()


def silver(sample_lake: SampleLake, table: str, columns: str) -> pd.DataFrame:
    """Rows of a silver table read with DuckDB straight from the lake's committed files."""
    return duckdb.connect().execute(f"SELECT {columns} FROM {duckdb_scan(sample_lake.lake, table)}").df()


@pytest.mark.parametrize("user", ["demo", "paris"])
def test_exec_views_engagement_and_stock_over_time_match_pandas(served: str, sample_lake: SampleLake,
                                                                truth: pd.DataFrame, user: str,
                                                                tmp_path: Path) -> None:
    seen = truth if user == "demo" else truth[truth["country"] == "France"]
    inventory = silver(sample_lake, "silver_inventory", "event_time, country, product, kind, quantity")
    sales = silver(sample_lake, "silver_sales", "event_time, country, product, units_sold")
    if user == "paris":
        inventory, sales = inventory[inventory["country"] == "France"], sales[sales["country"] == "France"]
    browser = start_chromium(tmp_path / "profile", tmp_path / "downloads")
    try:
        log_in(browser, served, user, PASSWORD)
        wait_for(lambda: kpi(browser, "orders"))
        browser.get(served + "?range=30d&grain=day")  # the whole sample history
        wait_for(lambda: kpi(browser, "orders"))

        figure = open_tab(browser, "Customer engagement", ids.ENGAGEMENT_CHART)
        trace = figure["data"][0]
        countries = [c[0] for c in trace["customdata"]]
        assert sorted(countries) == sorted(seen["country"].unique())
        customers = seen.groupby("country")["customer_id"].nunique()
        by_country = seen.groupby("country")["sales"].sum()
        stock_now = pd.Series(stock_from_events(inventory, sales)).groupby(level=0).sum()
        for country, x, y, size in zip(countries, trace["x"], trace["y"], trace["marker"]["size"], strict=True):
            assert x == customers[country]
            assert y == pytest.approx(by_country[country], abs=0.01)
            assert size == pytest.approx(max(stock_now[country], 0.0))
        shoot(browser, f"customers-engagement-{user}")

        figure = open_tab(browser, "Inventory", ids.SALES_STOCK_CHART)
        lines = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in figure["data"]}
        assert set(lines) == {f"{c} {what}" for c in seen["country"].unique() for what in ("sales", "stock")}
        daily = seen.groupby(["country", seen["event_time"].dt.strftime("%Y-%m-%d")])["sales"].sum()
        for (country, day), value in daily.items():
            assert lines[f"{country} sales"][day] == pytest.approx(value, abs=0.01)
        days = pd.date_range(truth["event_time"].min().normalize(), truth["event_time"].max().normalize())
        expected: dict[str, dict[str, float]] = {}
        for day in days:
            end = day + timedelta(days=1)
            per_series = stock_from_events(inventory[inventory["event_time"] < end], sales[sales["event_time"] < end])
            for (country, _), units in per_series.items():
                expected.setdefault(country, {}).setdefault(f"{day:%Y-%m-%d}", 0.0)
                expected[country][f"{day:%Y-%m-%d}"] += units
        assert expected, "the sample lake holds stock counts"
        for country, by_day in expected.items():
            assert lines[f"{country} stock"] == pytest.approx(by_day), country
        shoot(browser, f"inventory-sales-stock-{user}")
    finally:
        browser.quit()


def test_exec_views_phone_stacks_cards_folds_filters_and_fits_the_width(served: str, tmp_path: Path) -> None:
    browser = start_chromium(tmp_path / "profile", tmp_path / "downloads", width=PHONE[0], height=PHONE[1])
    try:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})
        log_in(browser, served, "demo", PASSWORD)
        wait_for(lambda: kpi(browser, "orders"))
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#tab-content .js-plotly-plot .main-svg"))
        assert browser.execute_script("return window.innerWidth") == PHONE[0]
        toggle = browser.find_element(By.ID, ids.FILTER_TOGGLE)
        assert toggle.is_displayed()
        preset = browser.find_element(By.ID, ids.PRESET)
        assert not preset.is_displayed()  # the filters wait behind the button
        lefts = browser.execute_script(f"""return Array.from(document.querySelectorAll('#{ids.KPI_CARDS} .card'))
                                           .map(c => Math.round(c.getBoundingClientRect().left));""")
        assert len(lefts) == 7 and len(set(lefts)) == 1, lefts  # one card per row
        for key, label in TABS.items():  # every tab fits the phone's width: no sideways scrolling
            browser.find_element(By.LINK_TEXT, label).click()
            wait_for(lambda key=key: browser.find_elements(By.ID, ids.warning(key)))
            wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#tab-content .js-plotly-plot .main-svg"))
            rights = browser.execute_script("""return Array.from(document.querySelectorAll('#tab-content .main-svg'))
                                               .map(s => s.getBoundingClientRect().right);""")
            assert rights and max(rights) <= PHONE[0], (key, rights)
            assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0], key
            if key == "overview":
                shoot(browser, "phone", docs=True)
        browser.find_element(By.LINK_TEXT, TABS["overview"]).click()
        toggle = browser.find_element(By.ID, ids.FILTER_TOGGLE)
        preset = browser.find_element(By.ID, ids.PRESET)
        toggle.click()
        wait_for(lambda: preset.is_displayed())
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
        shoot(browser, "phone-filters", docs=True)
    finally:
        browser.quit()
