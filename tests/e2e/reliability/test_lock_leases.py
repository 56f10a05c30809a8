"""Cluster locks across a restart of a real Prefect server (no Kafka needed).

Prefect keeps concurrency leases in server memory by default and slot counts in its database. A
lock held while the server restarts therefore kept its slot with no lease behind it: the release
was a silent no-op and the repossessor (which works from leases) never freed it, so every later
action on the cluster was "busy" until someone ran ``prefect gcl update``. The fix frees such a
slot by name on release -- but only when the lease vanished while it was still valid by the
holder's clock, never after a real expiry (then the server already freed the slot and someone
else may hold it).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from prefect.client.orchestration import get_client

from kafka_medic.errors import ClusterBusy
from tasks import locks
from tasks.locks import LockHandle, cluster_lock, ensure_cluster_limits
from tests.e2e.reliability.conftest import RealPrefect

pytestmark = [pytest.mark.prefect, pytest.mark.anyio]


async def _slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


async def test_a_lock_held_across_a_server_restart_is_freed_on_release(
    real_prefect: RealPrefect, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = f"lease-{uuid.uuid4().hex[:8]}"
    mutate, _ = await ensure_cluster_limits(cluster)
    async with cluster_lock(cluster) as handle:
        await asyncio.to_thread(real_prefect.restart, monkeypatch)
        assert await _slots(mutate) == 1, "the slot survives the restart (it lives in the database)"
        with pytest.raises(ClusterBusy):  # and still excludes others
            await _other_attempt(cluster)
        assert not handle.lost  # the next renewal is minutes away; the release must cope on its own
    assert await _slots(mutate) == 0, "released: not taken forever"
    async with cluster_lock(cluster):  # fail-fast attempt succeeds
        pass
    assert await _slots(mutate) == 0


async def _other_attempt(cluster: str) -> None:
    """A fail-fast attempt from another context (the lock is not re-entrant within one)."""

    async def attempt() -> None:
        async with cluster_lock(cluster):
            pass

    ctx = contextvars.copy_context()
    ctx.run(locks._held.set, frozenset())
    await asyncio.get_running_loop().create_task(attempt(), context=ctx)


def _gone(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/api/v2/concurrency_limits/leases/x/renew")
    return httpx.HTTPStatusError("gone", request=request, response=httpx.Response(status, request=request))


def test_only_a_lease_lost_while_still_valid_counts_as_forgotten() -> None:
    def handle(valid_for_s: float) -> LockHandle:
        return LockHandle(
            "c", "kafka-medic-mutate-c", uuid.uuid4(), datetime.now(UTC), valid_until=time.monotonic() + valid_for_s
        )

    assert locks._gone_early(handle(120), _gone(410))  # the server forgot a valid lease
    assert not locks._gone_early(handle(10), _gone(410))  # within the margin: may have expired
    assert not locks._gone_early(handle(-5), _gone(410))  # expired: the slot may be someone else's now
    assert not locks._gone_early(handle(120), _gone(404))
    orphan = LockHandle("?", "x", uuid.uuid4(), datetime.now(UTC))
    assert not locks._lease_forgotten(object(), orphan), "nothing known about an orphan's lease"
