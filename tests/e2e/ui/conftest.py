"""tests/e2e/ui: a real Prefect server for the UI test, and the headless browser it drives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.local_server import LocalPrefectServer
from tests.e2e.ui.browser import Page, find_binaries
from tests.prefect_env import local_prefect


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    with local_prefect(tmp_path_factory.mktemp("prefect-ui-home")) as server:
        yield server


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """Headless Chromium with a fresh profile. Missing browser = FAILED (CI installs it), never skipped."""
    binaries = find_binaries()
    if binaries is None:
        pytest.fail(
            "Chromium/ChromeDriver are not installed: the UI test needs Debian's chromium and chromium-driver "
            "(apt-get update && apt-get install -y chromium chromium-driver); it is never skipped",
            pytrace=False,
        )
    browser = Page(*binaries, tmp_path / "chromium-profile", tmp_path / "chromedriver.log")
    try:
        yield browser
    finally:
        browser.close()
