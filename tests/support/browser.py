"""Headless Chromium for tests: the system's chromium and chromedriver, driven by Selenium.

Selenium Manager is never asked to download anything (`SE_OFFLINE`), and the browser binary and
driver are the Debian packages' (found on PATH). Selenium is imported only when a browser is
started, so test modules collect where it is missing (they are skipped loudly instead).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Chrome WebDriver on headless Chromium, 1280 px wide; quit when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a browser or driver
    options = Options()
    options.binary_location = str(shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=str(shutil.which("chromedriver")))
    )
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_path(name: str) -> Path:
    """Where a test keeps its screenshot (test-artifacts/ is git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
