"""The cluster's persisted state on a real Prefect server (tasks.state): Variables round-trip, what
another process sees, what a corrupt value or an unreachable API does."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from kafka_medic.errors import CoordinationError
from kafka_medic.naming import variable_name
from tasks.locks import cluster_lock, ensure_cluster_limits
from tasks.state import cluster_state

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


async def test_round_trip_through_variables(cluster_name: str) -> None:
    state = cluster_state(cluster_name)
    when = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
    await state.record_success("replace_broker", when)
    await state.save_down_since({3: when})
    await state.set_maintenance(True, "vendor window", "dave")
    fresh = cluster_state(cluster_name)  # nothing is cached between two views
    assert await fresh.last_success("replace_broker") == when
    assert await fresh.down_since() == {3: when}
    assert (await fresh.maintenance()).by == "dave"  # type: ignore[union-attr]
    async with get_client() as client:
        var = await client.read_variable_by_name(variable_name(cluster_name, "maintenance"))
    assert var is not None and set(var.tags) == {"kafka-medic", f"cluster:{cluster_name}"}
    await fresh.save_undo("drain", 2, [("t", i, (2, 1), (3, 1)) for i in range(2000)], "r")
    assert len(await fresh.undo("drain", 2) or []) == 2000
    await fresh.clear_undo("drain", 2)
    assert await fresh.undo("drain", 2) is None


async def test_corrupt_stored_cooldown_is_refused(cluster_name: str) -> None:
    async with get_client() as client:
        name = variable_name(cluster_name, "replace_broker", "last_success")
        await client.create_variable(VariableCreate(name=name, value="yesterday"))
    with pytest.raises(CoordinationError, match="holds an invalid value"):
        await cluster_state(cluster_name).cooldown_remaining("replace_broker", 60)


async def test_state_is_visible_to_another_process(cluster_name: str) -> None:
    when = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
    state = cluster_state(cluster_name)
    await state.record_success("replace_broker", when)
    await state.set_maintenance(True, "vendor window", "dave")
    await ensure_cluster_limits(cluster_name)
    script = textwrap.dedent(
        f"""
        import asyncio
        from kafka_medic.errors import ClusterBusy
        from tasks.locks import cluster_lock
        from tasks.state import cluster_state

        async def main():
            s = cluster_state({cluster_name!r})
            print((await s.last_success("replace_broker")).isoformat())
            print((await s.maintenance()).by)
            try:
                async with cluster_lock({cluster_name!r}):
                    print("locked")
            except ClusterBusy:
                print("busy")

        asyncio.run(main())
        """
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    async with cluster_lock(cluster_name):
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [when.isoformat(), "dave", "busy"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _lock(cluster: str) -> None:
    async with cluster_lock(cluster):
        pass


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: ensure_cluster_limits(c), id="limits"),
        pytest.param(_lock, id="lock"),
        pytest.param(lambda c: cluster_state(c).last_success("x"), id="last_success"),
        pytest.param(lambda c: cluster_state(c).record_success("x"), id="record_success"),
        pytest.param(lambda c: cluster_state(c).down_since(), id="down_since"),
        pytest.param(lambda c: cluster_state(c).save_down_since({}), id="save_down_since"),
        pytest.param(lambda c: cluster_state(c).set_maintenance(True, "r", "me"), id="set_maintenance"),
        pytest.param(lambda c: cluster_state(c).maintenance(), id="maintenance"),
    ],
)
async def test_unreachable_api_is_a_clear_error(cluster_name: str, call: Callable[[str], Awaitable[Any]]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    started = time.monotonic()
    with (
        temporary_settings({PREFECT_API_URL: url}),
        pytest.raises(CoordinationError, match=rf"Prefect API at {url} is unreachable.*PREFECT_API_URL"),
    ):
        await call(cluster_name)
    assert time.monotonic() - started < 30
