"""Headless Chromium for the dashboard's browser tests: Debian's chromium and chromedriver, no downloads."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from dashboard.app import create_app
from salespulse.settings import Settings
from tests.accounts import write_accounts
from tests.servers import serve

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # git-ignored: every run's screenshots
# Read at import: the autouse fixture of tests/conftest.py removes every SALESPULSE_* variable before a test runs.
DOC_SCREENSHOTS = bool(os.environ.get("SALESPULSE_DOC_SCREENSHOTS"))
CHROMEDRIVER = "/usr/bin/chromedriver"


def start_chromium(profile: Path, downloads: Path, width: int = 1600, height: int = 1200) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, e.g. CSP violations
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def log_in(driver: webdriver.Chrome, base_url: str, name: str, password: str) -> None:
    """Log in through the real form: open the app, get sent to /login, fill it in, land back on the app."""
    driver.get(base_url)
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def csp_violations(driver: webdriver.Chrome) -> list[str]:
    """Console messages about the Content-Security-Policy since the last call."""
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
            or "Content-Security-Policy" in e["message"]]


def wait_for(check: Callable[[], object], timeout: float = 20.0, step: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {check}")
        time.sleep(step)


def serve_as_demo(settings: Settings, users_file: Path) -> Iterator[str]:
    """The app over ``settings``' lake with one administrator, ``demo`` (password tests.accounts.PASSWORD)."""
    write_accounts(users_file, {"demo": None})
    yield from serve(create_app(settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"users_file": str(users_file)})})))


def to_docs(shot: Path) -> None:
    """Refresh the docs' copy of a screenshot, only when asked (SALESPULSE_DOC_SCREENSHOTS=1)."""
    if DOC_SCREENSHOTS:
        shutil.copy(shot, ROOT / "docs" / "screenshots" / shot.name)
