"""One Prefect test server for the whole session (it takes ~10 s to start).

Every test in this directory gets it automatically and is marked ``prefect``. Tests must not
depend on each other's state: use the ``cluster_name`` fixture (a fresh name per test).

No ``__init__.py`` here on purpose: it would make this directory a package named ``prefect``
and shadow the real library.
"""

from __future__ import annotations

import os

# Before Prefect reads its settings: no log shipping to the API, no analytics from the server.
os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(prefect_server: None) -> Iterator[None]:
    """The session's one Prefect test server (defined in tests/conftest.py), for every test here."""
    yield


@pytest.fixture
def cluster_name() -> str:
    """A fresh, valid cluster name, so tests never see each other's limits or variables."""
    return f"t-{uuid.uuid4().hex[:10]}"
