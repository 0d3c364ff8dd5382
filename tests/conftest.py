"""Shared pytest fixtures. Each section belongs to one area of the tests; add new fixtures in their own section."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# --------------------------------------------------------------------------------------------------------------
# Headless Chromium (selenium) for browser tests of the HTML report (tests/test_report.py)
# --------------------------------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_PACKAGES = "chromium chromium-driver"


def _require_external() -> bool:
    return os.environ.get("SIMLINE_REQUIRE_EXTERNAL") == "1"


def _unavailable(reason: str) -> None:
    """Skip the test, or fail it where external programs are required (CI sets SIMLINE_REQUIRE_EXTERNAL=1)."""
    if _require_external():
        pytest.fail(
            f"{reason}; SIMLINE_REQUIRE_EXTERNAL=1 requires it. Install it with: "
            f"apt-get install -y {CHROMIUM_PACKAGES}",
            pytrace=False,
        )
    pytest.skip(f"{reason} (apt-get install {CHROMIUM_PACKAGES})")


@pytest.fixture
def chromium_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium WebDriver that never downloads anything (explicit browser and driver paths).

    Browser console messages of every level are kept (``driver.get_log("browser")``).
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        _unavailable(f"{' and '.join(missing)} not found")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the selenium package is not installed (pip install -e '.[test]')")
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
