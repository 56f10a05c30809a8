"""Cluster locks (tasks.locks) against a real Prefect server: one holder at a time, fail fast or a
bounded wait, always released, never unprotected (a missing limit is created), leases kept or lost."""

from __future__ import annotations

import asyncio
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

from kafka_medic.errors import ClusterBusy, CoordinationError, LockLost
from kafka_medic.naming import mutate_limit_name, replace_limit_name
from kafka_medic.waiting import NotYet, apoll
from tasks import locks
from tasks.locks import cluster_lock, ensure_cluster_limits

pytestmark = pytest.mark.anyio


async def active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


async def test_ensure_limits_is_idempotent_and_repairs(cluster_name: str) -> None:
    names = await ensure_cluster_limits(cluster_name)
    assert await ensure_cluster_limits(cluster_name) == names
    async with get_client() as client:
        for name in names:
            limit = await client.read_global_concurrency_limit_by_name(name)
            assert (limit.limit, limit.active, limit.active_slots) == (1, True, 0)
        # Someone disables one limit and widens the other in the UI: the lock refuses, ensure repairs.
        await client.update_global_concurrency_limit(names[0], GlobalConcurrencyLimitUpdate(active=False))
        await client.update_global_concurrency_limit(names[1], GlobalConcurrencyLimitUpdate(limit=3))
    with pytest.raises(CoordinationError, match="is disabled"):
        async with cluster_lock(cluster_name):
            pass
    with pytest.raises(CoordinationError, match="set to 3 slots"):
        async with cluster_lock(cluster_name, kind="replace"):
            pass
    await ensure_cluster_limits(cluster_name)
    async with get_client() as client:
        for name in names:
            limit = await client.read_global_concurrency_limit_by_name(name)
            assert (limit.limit, limit.active) == (1, True)


async def test_a_missing_limit_is_created_never_an_unprotected_run(cluster_name: str) -> None:
    # A cluster made in the UI has no limits: the first lock creates them (size 1) and holds it.
    held, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with cluster_lock(cluster_name) as handle:
            assert handle.limit_name == mutate_limit_name(cluster_name)
            held.set()
            await asyncio.wait_for(done.wait(), 10)

    task = asyncio.create_task(holder())
    try:
        await asyncio.wait_for(held.wait(), 10)
        assert await active_slots(mutate_limit_name(cluster_name)) == 1
        with pytest.raises(ClusterBusy):  # and it really protects: a second holder is refused
            async with cluster_lock(cluster_name):
                pytest.fail("two holders at once")
    finally:
        done.set()
        await task
    assert await active_slots(mutate_limit_name(cluster_name)) == 0


async def test_fail_fast_when_held_elsewhere(cluster_name: str) -> None:
    held, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with cluster_lock(cluster_name):
            held.set()
            await asyncio.wait_for(done.wait(), 10)

    task = asyncio.create_task(holder())
    try:
        await asyncio.wait_for(held.wait(), 10)
        started = time.monotonic()
        with pytest.raises(ClusterBusy, match=f"cluster '{cluster_name}' is busy") as info:
            async with cluster_lock(cluster_name):
                pytest.fail("two holders at once")
        assert time.monotonic() - started < 5.0  # ~0.05 s; SQLite "database is locked" retries add ~2 s
        assert "nothing was changed" in str(info.value)
        assert f"prefect gcl update {mutate_limit_name(cluster_name)} --active-slots 0" in str(info.value)
        # The replace lock is a different limit: holding "mutate" does not block it.
        async with cluster_lock(cluster_name, kind="replace") as handle:
            assert handle.limit_name == replace_limit_name(cluster_name)
    finally:
        done.set()
        await task
    assert await active_slots(mutate_limit_name(cluster_name)) == 0


async def test_many_waiters_never_hold_it_together(cluster_name: str) -> None:
    await ensure_cluster_limits(cluster_name)
    inside = max_inside = entries = 0

    async def worker() -> None:
        nonlocal inside, max_inside, entries
        for _ in range(3):
            async with cluster_lock(cluster_name, wait_s=30):
                inside += 1
                entries += 1
                max_inside = max(max_inside, inside)
                await asyncio.sleep(0.05)
                inside -= 1

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(4))), 120)
    assert max_inside == 1 and entries == 12
    assert await active_slots(mutate_limit_name(cluster_name)) == 0


async def test_bounded_wait(cluster_name: str) -> None:
    held, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with cluster_lock(cluster_name):
            held.set()
            await asyncio.wait_for(release.wait(), 20)

    task = asyncio.create_task(holder())
    try:
        await asyncio.wait_for(held.wait(), 10)
        started = time.monotonic()
        with pytest.raises(ClusterBusy, match=r"after waiting 0\.7s"):
            async with cluster_lock(cluster_name, wait_s=0.7):
                pytest.fail("two holders at once")
        assert 0.7 <= time.monotonic() - started < 2.5
        # Now the holder lets go after ~1 s; a waiter with a generous budget gets it promptly.
        asyncio.get_running_loop().call_later(1.0, release.set)
        started = time.monotonic()
        async with cluster_lock(cluster_name, wait_s=15):
            waited = time.monotonic() - started
        assert 0.9 <= waited < 5.0
    finally:
        release.set()
        await task


async def test_released_after_exception_and_cancellation(cluster_name: str) -> None:
    name = mutate_limit_name(cluster_name)
    with pytest.raises(ValueError, match="boom"):
        async with cluster_lock(cluster_name):
            assert await active_slots(name) == 1
            raise ValueError("boom")
    assert await active_slots(name) == 0
    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with cluster_lock(cluster_name):
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold_forever())
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await active_slots(name) == 0
    async with cluster_lock(cluster_name):  # fail-fast succeeds: it really was released
        pass


async def test_lock_inside_a_flow_run(cluster_name: str) -> None:
    @flow
    async def mutate() -> bool:
        async with cluster_lock(cluster_name) as handle:
            return not handle.lost

    assert await mutate()
    assert await active_slots(mutate_limit_name(cluster_name)) == 0


async def test_not_reentrant_and_argument_checks(cluster_name: str) -> None:
    async with cluster_lock(cluster_name):
        with pytest.raises(CoordinationError, match="not re-entrant"):
            async with cluster_lock(cluster_name, wait_s=30):
                pass
    async with cluster_lock(cluster_name):  # the failed nested attempt left nothing behind
        pass
    for kwargs in ({"wait_s": -1}, {"wait_s": float("inf")}, {"lease_s": 10}):
        with pytest.raises(ValueError):
            async with cluster_lock(cluster_name, **kwargs):  # type: ignore[arg-type]
                pass


async def test_lease_is_renewed_and_loss_is_reported(cluster_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "_RENEW_FRACTION", 0.004)  # renew every 0.24 s with the 60 s minimum lease
    async with cluster_lock(cluster_name, lease_s=60) as handle:
        await asyncio.sleep(1.0)  # several renewals
        assert not handle.lost
        handle.ensure_held()
        # Revoke the lease behind the holder's back (what the server does when a lease expires).
        async with get_client() as client:
            await client.release_concurrency_slots_with_lease(handle.lease_id)

        def lost() -> None:
            if not handle.lost:
                raise NotYet("lease not reported lost yet")

        await apoll(lost, timeout_s=10, interval_s=0.05, what="the lost lease reported")
        with pytest.raises(LockLost, match="stop here"):
            handle.ensure_held()
    assert await active_slots(mutate_limit_name(cluster_name)) == 0
