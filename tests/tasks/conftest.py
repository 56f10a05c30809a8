"""tests/tasks: the Prefect adapters (locks, Variables, notifications) against the session's Prefect
test server. Every test gets a fresh cluster name, so tests never see each other's limits or state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _prefect(prefect_server: None) -> Iterator[None]:
    yield


@pytest.fixture
def cluster_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
