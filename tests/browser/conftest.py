"""tests/browser: a real Prefect server for the UI test, and the headless browser it drives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.local_server import LocalPrefectServer
from tests.browser.cdp import Chromium, find_chromium
from tests.operate.prefect_env import local_prefect


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    with local_prefect(tmp_path_factory.mktemp("prefect-ui-home")) as server:
        yield server


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    """Headless Chromium with a fresh profile. Missing browser = FAILED (CI installs it), never skipped."""
    binary = find_chromium()
    if binary is None:
        pytest.fail(
            "Chromium is not installed: the UI test needs Debian's chromium "
            "(apt-get update && apt-get install -y chromium); it is never skipped",
            pytrace=False,
        )
    browser = Chromium(binary, tmp_path / "chromium-profile")
    try:
        yield browser
    finally:
        browser.close()
