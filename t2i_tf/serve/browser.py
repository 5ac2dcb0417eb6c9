"""Headless Chromium through Selenium, with the system's browser and driver (nothing downloaded): used by the
browser tests (tests/serve/test_browser_*.py) and the screenshot script (t2i_tf/serve/screenshots.py).

The browser and driver are ``$T2I_CHROMIUM`` / ``$T2I_CHROMEDRIVER`` when set, else ``chromium`` / ``chromedriver``
on the PATH (Debian's ``chromium`` and ``chromium-driver`` packages). Selenium Manager is switched off
(``SE_OFFLINE``): a missing driver is an error, never a download.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from t2i_tf.errors import UserError

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


def browser_paths() -> tuple[str | None, str | None]:
    """(browser binary, chromedriver) found on this machine, None where missing."""
    browser = os.environ.get("T2I_CHROMIUM") or next(filter(None, map(shutil.which, BROWSER_NAMES)), None)
    driver = os.environ.get("T2I_CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser if browser and os.path.isfile(browser) else None,
            driver if driver and os.path.isfile(driver) else None)


def missing_browser() -> str | None:
    """Why a headless browser cannot be started here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    browser, driver = browser_paths()
    if not browser:
        return "no chromium binary (apt-get install chromium, or set T2I_CHROMIUM)"
    if not driver:
        return "no chromedriver (apt-get install chromium-driver, or set T2I_CHROMEDRIVER)"
    return None


def headless_chromium(width: int = 1280, height: int = 1000) -> Any:
    """A Selenium WebDriver on headless Chromium (call ``quit()`` when done)."""
    reason = missing_browser()
    if reason:
        raise UserError(f"cannot start a headless browser: {reason}")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait_for_state(driver: Any, timeout: float = 60.0, states: tuple[str, ...] = ("done", "error")) -> str:
    """Wait until the demo page's ``body[data-state]`` is one of ``states``; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait

    def state(d):
        value = d.execute_script("return document.body.dataset.state")
        return value if value in states else False

    return WebDriverWait(driver, timeout).until(state)


def wait_ready(driver: Any, timeout: float = 30.0) -> None:
    """Wait until the page's script has loaded its info (and its gallery, if it has one)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return document.body.dataset.ready === '1' && (!document.getElementById('gallery') || "
        "document.querySelectorAll('.gallery-item').length > 0 || "
        "document.getElementById('gallery-note').textContent.length > 0)"))
