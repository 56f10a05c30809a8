"""Headless Debian Chromium driven by Selenium through Debian's ChromeDriver: a person's browser.

Both binaries come from Debian (``apt-get install chromium chromium-driver``; ``./medic test``
installs them when it runs as root). Their paths are given to Selenium explicitly, so Selenium
Manager never downloads a browser or a driver. Clicks are WebDriver clicks (real mouse events at
the element) and typing is WebDriver key input, so the page's own handlers (Vue's v-model) see
exactly what a person's browser would send.

Elements are found with small JavaScript expressions (e.g. "the button whose text is Submit"):
the Prefect UI's markup has no stable ids, and text is what an operator looks for too. Every wait
is bounded; the browser profile is fresh per test and the driver is quit in a ``finally``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, JavascriptException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-default-browser-check",
    "--window-size=1400,1000",
)


def find_binaries() -> tuple[str, str] | None:
    """(chromium, chromedriver) from PATH or Debian's locations, or None if either is missing."""
    browser = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return (browser, driver) if browser and driver else None


class BrowserError(AssertionError):
    """The browser or the page did not do what the test needed (an assertion failure with context)."""


#: How long an element may stay covered by another before it gets its own click (see Page.click).
COVERED_S = 5.0


class Page:
    """One headless Chromium window: navigate, evaluate JavaScript, click, type, wait, screenshot."""

    def __init__(self, browser: str, driver: str, profile_dir: Path, log_path: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in BROWSER_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile_dir}")
        service = Service(executable_path=driver, log_output=str(log_path))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(30)

    def navigate(self, url: str) -> None:
        self.driver.get(url)

    def reload(self) -> None:
        self.driver.refresh()

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page and return its value (elements come back as WebElements)."""
        try:
            return self.driver.execute_script(f"return ({expression});")
        except JavascriptException as exc:
            raise BrowserError(f"page script failed: {exc.msg} in {expression[:200]}") from None

    def wait_js(self, expression: str, *, timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
            except (BrowserError, WebDriverException) as exc:
                last = str(exc)
            else:
                if last:
                    return last
            time.sleep(interval_s)
        raise BrowserError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {str(last)[:300]})")

    def element(self, finder_js: str, *, what: str, timeout_s: float = 30.0) -> WebElement:
        """The element ``finder_js`` returns, once it is on the page and visible (bounded wait)."""
        found = self.wait_js(
            f"(() => {{ const el = ({finder_js}); if (!el) return null; el.scrollIntoView({{block: 'center'}});"
            " const r = el.getBoundingClientRect(); return r.width && r.height ? el : null; })()",
            timeout_s=timeout_s,
            what=what,
        )
        if not isinstance(found, WebElement):
            raise BrowserError(f"{what}: the page returned {found!r}, not an element")
        return found

    def click(self, finder_js: str, *, what: str, timeout_s: float = 30.0) -> None:
        """A WebDriver click (mouse events at the element's centre), retried while the SPA re-renders.

        An element covered by another one for ``COVERED_S`` (the UI's notification toasts sit in the
        bottom-right corner, over the form's Submit: CI twice saw a click intercepted for 30 s) gets
        the element's own click instead, as a person would reach it after moving the toast away.
        """
        deadline = time.monotonic() + timeout_s
        covered_since: float | None = None
        while True:
            try:
                el = self.element(finder_js, what=what, timeout_s=max(1.0, deadline - time.monotonic()))
                try:
                    el.click()
                except ElementClickInterceptedException:
                    covered_since = covered_since or time.monotonic()
                    if time.monotonic() - covered_since < COVERED_S:
                        raise
                    self.driver.execute_script("arguments[0].click();", el)
                return
            except WebDriverException as exc:  # stale or covered for a moment: the list re-rendered
                if time.monotonic() > deadline:
                    raise BrowserError(f"could not click {what}: {exc.msg}") from None
                time.sleep(0.5)

    def type_into(self, finder_js: str, text: str, *, what: str) -> None:
        """Click the field, select what it holds, and type ``text`` over it (real key events)."""
        field = self.element(finder_js, what=what)
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)

    def screenshot(self, path: Path) -> Path:
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing after a failure must not hide the failure
            self.driver.quit()
