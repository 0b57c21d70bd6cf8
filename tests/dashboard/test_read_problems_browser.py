"""Read problems as a user meets them, in real headless Chromium on the real server: a lake whose gold sales are
three hand-made files (known sales, product names that spreadsheets run as formulas) with one file unreadable. The
page says part of the data is missing and its totals are those of the two readable files; /readyz and /metrics
report it; the CSV export holds the readable rows with every formula-like cell neutralised. Then a read that
fails outright: the page and the export show a short message with the request id, never the error, which the log
holds under that id."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from dashboard import ids
from salespulse.metrics import format_kpi
from spark_jobs.io import update_manifest
from tests.accounts import PASSWORD
from tests.dashboard.browser import log_in, serve_as_demo, wait_for
from tests.dashboard.test_browser import kpi
from tests.dashboard.test_unreadable_files import Collected, corrupt_pages, republish
from tests.lakes import SampleLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]
# Product names a spreadsheet would run as formulas: full-width signs, and a formula behind a line break.
HOSTILE = ("＝1+2", "＋1", "－1", "＠SUM(1)", "\n=1+2")
# (file, product, sales in cents): the first two files stay readable, the third loses its footer
ROWS = ((0, HOSTILE[0], 10025), (0, HOSTILE[1], 1010), (1, HOSTILE[2], 2020), (1, HOSTILE[3], 3030),
        (1, HOSTILE[4], 4040), (2, "Velo", 99999))
READABLE_CENTS = sum(cents for file, _, cents in ROWS if file < 2)


def publish_gold(spark, lake: Path) -> list[Path]:
    """gold_sales_hourly replaced by one hand-made file per directory, as writers publish (one manifest swap)."""
    files, relatives = [], []
    for file in range(3):
        rows = [r for r in ROWS if r[0] == file]
        day = date(2026, 9, 19 + file)
        frame = pd.DataFrame({
            "hour": [datetime(day.year, day.month, day.day, 10 + i) for i in range(len(rows))],
            "country": "USA", "segment": "Government", "product": [r[1] for r in rows], "discount_band": "None",
            "orders": 1, "units_sold": 1.0, "gross_sales": [r[2] / 100 for r in rows], "discounts": 0.0,
            "sales": [r[2] / 100 for r in rows], "cogs": 0.0, "profit": [r[2] / 100 for r in rows],
            "event_date": day})
        relative = f"gold/sales_hourly/dir=hand-{file}"
        (lake / relative).mkdir(parents=True)
        frame.to_parquet(lake / relative / "part-0.parquet", index=False)
        files.append(lake / relative / "part-0.parquet")
        relatives.append(relative)
    schema = spark.createDataFrame(frame).schema.json()

    def change(manifest: dict) -> None:
        manifest["tables"]["gold_sales_hourly"] = relatives
        manifest["schemas"]["gold_sales_hourly"] = schema

    update_manifest(spark, str(lake), change, "hand-made")
    return files


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_unreadable_files_and_failed_reads_in_the_browser(lake_copy: SampleLake, browser, spark,
                                                          tmp_path: Path) -> None:
    files = publish_gold(spark, lake_copy.lake)
    files[2].write_bytes(b"not parquet")
    errors, collected = logging.getLogger("salespulse.errors"), Collected()
    errors.addHandler(collected)
    server = serve_as_demo(lake_copy.settings, tmp_path / "users.json")
    base = next(server)
    try:
        # Part of the data cannot be read: said on the page, totals of what can be read.
        log_in(browser, base, "demo", PASSWORD)
        wait_for(lambda: "range=30d" in browser.current_url)
        notice = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f"#{ids.warning('overview')} .partial-data"))
        assert "Part of the data could not be read (1 file)" in notice[0].text
        assert wait_for(lambda: kpi(browser, "total_sales")) == format_kpi("total_sales", READABLE_CENTS / 100)
        assert str(lake_copy.lake) not in browser.page_source

        status, body = get(base + "readyz")
        assert status == 503 and "partly unreadable" in json.loads(body)["reason"]
        status, body = get(base + "metrics")
        assert status == 200 and 'salespulse_lake_unreadable_files{table="gold_sales_hourly"} 1.0' in body

        # The export: the readable rows, formulas neutralised, and the page says the file is partial.
        browser.find_element(By.ID, ids.EXPORT_BUTTON).click()
        downloads = tmp_path / "downloads"
        exported = wait_for(lambda: list(downloads.glob("*.csv")) if downloads.exists() else [])[0]
        frame = pd.read_csv(exported, keep_default_na=False)
        assert round(frame["sales"].sum() * 100) == READABLE_CENTS
        assert set(frame["product"]) == {"'" + name for name in HOSTILE}
        assert "leaves it out" in wait_for(lambda: browser.find_element(By.ID, ids.EXPORT_NOTE).text)

        # A read that fails outright (footer intact, data garbled): a short message and the request id.
        corrupt_pages(files[1])
        republish(lake_copy.lake)
        browser.get(base + "?range=30d")
        warning = wait_for(lambda: " ".join(e.text for e in browser.find_elements(By.ID, ids.warning("overview"))))
        assert "Could not read the latest data" in warning
        shown_id = browser.find_element(By.CSS_SELECTOR, f"#{ids.warning('overview')} .request-id").text
        logged = [r for r in collected.records if getattr(r, "fields", {}).get("request_id") == shown_id]
        assert len(logged) == 1 and logged[0].exc_info is not None
        for leak in (str(lake_copy.lake), "parquet", "SELECT", "Error", "Exception"):
            assert leak not in warning, leak

        # The export of that view: the same kind of message beside the button, no download, no failed request.
        browser.find_element(By.ID, ids.EXPORT_BUTTON).click()
        note = wait_for(lambda: "request id" in (text := browser.find_element(By.ID, ids.EXPORT_NOTE).text) and text)
        assert "Could not read the data to export" in note
        export_id = browser.find_element(By.CSS_SELECTOR, f"#{ids.EXPORT_NOTE} .request-id").text
        assert export_id != shown_id and export_id in note
        assert any(getattr(r, "fields", {}).get("request_id") == export_id for r in collected.records)
        assert len(list(downloads.glob("*.csv"))) == 1
    finally:
        errors.removeHandler(collected)
        next(server, None)
