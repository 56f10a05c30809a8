"""Cluster locks, cooldowns, down-since map and maintenance mode against a real Prefect server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate, VariableCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from kafka_medic import coordination as co
from kafka_medic.coordination import ClusterBusy, CoordinationError, LockLost

REPO = Path(__file__).resolve().parents[2]


def active_slots(name: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


# -- limits ---------------------------------------------------------------------------------------------


def test_names() -> None:
    assert co.mutate_limit_name("prod-a") == "kafka-medic-mutate-prod-a"
    assert co.replace_limit_name("prod-a") == "kafka-medic-replace-prod-a"
    assert co.variable_name("prod-a", "replace_broker", "last_success") == (
        "kafka_medic__prod-a__replace_broker__last_success"
    )
    with pytest.raises(ValueError, match="cluster name"):
        co.mutate_limit_name("Prod_A")


def test_ensure_limits_is_idempotent_and_repairs(cluster_name: str) -> None:
    names = co.ensure_cluster_limits(cluster_name)
    assert co.ensure_cluster_limits(cluster_name) == names
    with get_client(sync_client=True) as client:
        for name in names:
            limit = client.read_global_concurrency_limit_by_name(name)
            assert (limit.limit, limit.active, limit.active_slots) == (1, True, 0)
        # Someone disables one limit and widens the other in the UI: ensure repairs both.
        client.update_global_concurrency_limit(names[0], GlobalConcurrencyLimitUpdate(active=False))
        client.update_global_concurrency_limit(names[1], GlobalConcurrencyLimitUpdate(limit=3))
    with pytest.raises(CoordinationError, match="is disabled"), co.cluster_lock(cluster_name):
        pass
    with pytest.raises(CoordinationError, match="set to 3 slots"), co.cluster_lock(cluster_name, kind="replace"):
        pass
    co.ensure_cluster_limits(cluster_name)
    with get_client(sync_client=True) as client:
        for name in names:
            limit = client.read_global_concurrency_limit_by_name(name)
            assert (limit.limit, limit.active) == (1, True)


@pytest.mark.anyio
async def test_async_ensure_limits(cluster_name: str) -> None:
    names = await co.aensure_cluster_limits(cluster_name)
    assert await co.aensure_cluster_limits(cluster_name) == names
    async with co.acluster_lock(cluster_name) as handle:
        assert handle.limit_name == names[0]


# -- locks ----------------------------------------------------------------------------------------------


def test_missing_limit_is_an_error_not_an_unprotected_run(cluster_name: str) -> None:
    ran = False
    with (
        pytest.raises(CoordinationError, match=rf"does not exist; run ensure_cluster_limits\('{cluster_name}'\)"),
        co.cluster_lock(cluster_name),
    ):
        ran = True
    assert not ran


def test_fail_fast_when_held_by_another_thread(cluster_name: str) -> None:
    co.ensure_cluster_limits(cluster_name)
    held, done = threading.Event(), threading.Event()

    def holder() -> None:
        with co.cluster_lock(cluster_name):
            held.set()
            done.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with (
            pytest.raises(ClusterBusy, match=f"cluster '{cluster_name}' is busy") as info,
            co.cluster_lock(cluster_name),
        ):
            pytest.fail("two holders at once")
        assert time.monotonic() - started < 5.0  # ~0.05 s; SQLite "database is locked" retries add ~2 s
        assert "nothing was changed" in str(info.value)
        assert f"prefect gcl update {co.mutate_limit_name(cluster_name)} --active-slots 0" in str(info.value)
        # The replace lock is a different limit: holding "mutate" does not block it.
        with co.cluster_lock(cluster_name, kind="replace") as handle:
            assert handle.limit_name == co.replace_limit_name(cluster_name)
    finally:
        done.set()
        thread.join(10)
    assert active_slots(co.mutate_limit_name(cluster_name)) == 0


def test_threads_never_hold_it_together(cluster_name: str) -> None:
    co.ensure_cluster_limits(cluster_name)
    inside = 0
    max_inside = 0
    entries = 0
    busy = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, max_inside, entries, busy
        for _ in range(3):
            try:
                with co.cluster_lock(cluster_name, wait_s=20):
                    with guard:
                        inside += 1
                        entries += 1
                        max_inside = max(max_inside, inside)
                    time.sleep(0.05)
                    with guard:
                        inside -= 1
            except ClusterBusy:
                with guard:
                    busy += 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert max_inside == 1
    assert entries == 12 and busy == 0
    assert active_slots(co.mutate_limit_name(cluster_name)) == 0


@pytest.mark.anyio
async def test_two_asyncio_tasks_one_wins(cluster_name: str) -> None:
    await co.aensure_cluster_limits(cluster_name)
    attempted = [asyncio.Event(), asyncio.Event()]
    intervals: list[tuple[float, float]] = []

    async def attempt(i: int) -> str:
        try:
            async with co.acluster_lock(cluster_name):
                attempted[i].set()
                start = time.monotonic()
                # Hold until the other task has made its attempt too, however slow it is.
                await asyncio.wait_for(attempted[1 - i].wait(), 30)
                intervals.append((start, time.monotonic()))
                return "held"
        except ClusterBusy:
            attempted[i].set()
            return "busy"

    results = await asyncio.gather(attempt(0), attempt(1))
    assert sorted(results) == ["busy", "held"], intervals
    assert active_slots(co.mutate_limit_name(cluster_name)) == 0


def test_bounded_wait(cluster_name: str) -> None:
    co.ensure_cluster_limits(cluster_name)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with co.cluster_lock(cluster_name):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pytest.raises(ClusterBusy, match=r"after waiting 0\.7s"), co.cluster_lock(cluster_name, wait_s=0.7):
            pytest.fail("two holders at once")
        elapsed = time.monotonic() - started
        assert 0.7 <= elapsed < 2.5

        # Now the holder lets go after ~1 s; a waiter with a generous budget gets it promptly.
        threading.Timer(1.0, release.set).start()
        started = time.monotonic()
        with co.cluster_lock(cluster_name, wait_s=15):
            waited = time.monotonic() - started
        assert 0.9 <= waited < 5.0
    finally:
        release.set()
        thread.join(10)


def test_released_after_exceptions(cluster_name: str) -> None:
    co.ensure_cluster_limits(cluster_name)
    name = co.mutate_limit_name(cluster_name)
    with pytest.raises(RuntimeError, match="boom"), co.cluster_lock(cluster_name):
        assert active_slots(name) == 1
        raise RuntimeError("boom")
    assert active_slots(name) == 0
    with co.cluster_lock(cluster_name):  # fail-fast succeeds: it really was released
        pass


@pytest.mark.anyio
async def test_async_released_after_exception_and_cancellation(cluster_name: str) -> None:
    await co.aensure_cluster_limits(cluster_name)
    name = co.mutate_limit_name(cluster_name)
    with pytest.raises(ValueError, match="boom"):
        async with co.acluster_lock(cluster_name):
            raise ValueError("boom")
    assert active_slots(name) == 0

    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with co.acluster_lock(cluster_name):
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold_forever())
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert active_slots(name) == 0
    async with co.acluster_lock(cluster_name):
        pass


def test_lock_inside_a_flow_run_records_the_holder(cluster_name: str) -> None:
    co.ensure_cluster_limits(cluster_name)

    @flow
    async def mutate() -> bool:
        async with co.acluster_lock(cluster_name) as handle:
            return not handle.lost

    @flow
    def mutate_sync() -> bool:
        with co.cluster_lock(cluster_name) as handle:
            return not handle.lost

    assert asyncio.run(mutate())
    assert mutate_sync()
    assert active_slots(co.mutate_limit_name(cluster_name)) == 0


def test_not_reentrant(cluster_name: str) -> None:
    co.ensure_cluster_limits(cluster_name)
    with (
        co.cluster_lock(cluster_name),
        pytest.raises(CoordinationError, match="not re-entrant"),
        co.cluster_lock(cluster_name, wait_s=30),
    ):
        pass
    with co.cluster_lock(cluster_name):  # the failed nested attempt left nothing behind
        pass


def test_argument_checks(cluster_name: str) -> None:
    for kwargs in ({"wait_s": -1}, {"wait_s": float("inf")}, {"lease_s": 10}):
        with pytest.raises(ValueError), co.cluster_lock(cluster_name, **kwargs):  # type: ignore[arg-type]
            pass


def test_lease_is_renewed_and_loss_is_reported(cluster_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    co.ensure_cluster_limits(cluster_name)
    monkeypatch.setattr(co, "_RENEW_FRACTION", 0.004)  # renew every 0.24 s with the 60 s minimum lease
    with co.cluster_lock(cluster_name, lease_s=60) as handle:
        time.sleep(1.0)  # several renewals
        assert not handle.lost
        handle.ensure_held()
        # Revoke the lease behind the holder's back (what the server does when a lease expires).
        with get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(handle.lease_id)
        deadline = time.monotonic() + 10
        while not handle.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handle.lost
        with pytest.raises(LockLost, match="stop here"):
            handle.ensure_held()
    assert active_slots(co.mutate_limit_name(cluster_name)) == 0


# -- cooldown -------------------------------------------------------------------------------------------


def test_cooldown_round_trip(cluster_name: str) -> None:
    assert co.last_success(cluster_name, "replace_broker") is None
    assert co.cooldown_remaining(cluster_name, "replace_broker", 1800) == 0.0

    when = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    co.record_success(cluster_name, "replace_broker", when)
    assert co.last_success(cluster_name, "replace_broker") == when
    now = when + timedelta(seconds=600)
    assert co.cooldown_remaining(cluster_name, "replace_broker", 1800, now) == pytest.approx(1200)
    assert co.cooldown_remaining(cluster_name, "replace_broker", 1800, when + timedelta(hours=1)) == 0.0
    # Another action of the same cluster has its own clock.
    assert co.last_success(cluster_name, "preferred-election") is None

    # Overwrite, and a non-UTC zone is normalized to UTC.
    later = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
    co.record_success(cluster_name, "replace_broker", later.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")))
    stored = co.last_success(cluster_name, "replace_broker")
    assert stored == later and stored is not None and stored.tzinfo == UTC

    with pytest.raises(ValueError, match="timezone-aware"):
        co.record_success(cluster_name, "replace_broker", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="action"):
        co.last_success(cluster_name, "Replace Broker")
    with pytest.raises(ValueError, match="action"):
        co.last_success(cluster_name, "a__b")


@pytest.mark.anyio
async def test_async_cooldown(cluster_name: str) -> None:
    when = datetime.now(UTC) - timedelta(seconds=100)
    await co.arecord_success(cluster_name, "move", when)
    assert await co.alast_success(cluster_name, "move") == when
    remaining = await co.acooldown_remaining(cluster_name, "move", 1000)
    assert 890 < remaining <= 900


def test_remaining_cooldown_rules() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert co.remaining_cooldown(None, 60, now) == 0.0
    assert co.remaining_cooldown(now - timedelta(seconds=10), 60, now) == 50.0
    assert co.remaining_cooldown(now - timedelta(seconds=100), 60, now) == 0.0
    # A "last success" in the future (clock skew) counts as just now: the safe side.
    assert co.remaining_cooldown(now + timedelta(seconds=30), 60, now) == 60.0
    with pytest.raises(ValueError):
        co.remaining_cooldown(None, -1, now)


def test_corrupt_stored_cooldown_is_refused(cluster_name: str) -> None:
    name = co.variable_name(cluster_name, "replace_broker", "last_success")
    with get_client(sync_client=True) as client:
        client.create_variable(VariableCreate(name=name, value="yesterday"))
    with pytest.raises(CoordinationError, match="holds an invalid value"):
        co.cooldown_remaining(cluster_name, "replace_broker", 60)


# -- down-since -----------------------------------------------------------------------------------------


def test_down_since_round_trip(cluster_name: str) -> None:
    assert co.load_down_since(cluster_name) == {}
    t1 = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    t2 = t1 + timedelta(seconds=42.5)
    mapping = {3: t1, 1: t1, 7: t2}
    co.save_down_since(cluster_name, mapping)
    assert co.load_down_since(cluster_name) == mapping
    co.save_down_since(cluster_name, {7: t2})
    assert co.load_down_since(cluster_name) == {7: t2}
    co.save_down_since(cluster_name, {})
    assert co.load_down_since(cluster_name) == {}

    # A mass failure seen in one pass fits in one variable (grouped by time).
    many = {b: t1 for b in range(1000)}
    co.save_down_since(cluster_name, many)
    assert co.load_down_since(cluster_name) == many

    with pytest.raises(ValueError, match="timezone-aware"):
        co.save_down_since(cluster_name, {1: datetime(2025, 1, 1)})
    with pytest.raises(ValueError, match="broker ids"):
        co.save_down_since(cluster_name, {-1: t1})


def test_down_since_too_large_is_a_clear_error(cluster_name: str) -> None:
    t0 = datetime(2025, 5, 1, tzinfo=UTC)
    distinct = {b: t0 + timedelta(seconds=b) for b in range(400)}
    with pytest.raises(CoordinationError, match="cannot store variable"):
        co.save_down_since(cluster_name, distinct)


@pytest.mark.anyio
async def test_async_down_since(cluster_name: str) -> None:
    mapping = {2: datetime(2025, 5, 1, tzinfo=UTC)}
    await co.asave_down_since(cluster_name, mapping)
    assert await co.aload_down_since(cluster_name) == mapping


# -- maintenance ----------------------------------------------------------------------------------------


def test_maintenance_round_trip(cluster_name: str) -> None:
    assert co.get_maintenance(cluster_name) is None
    assert not co.in_maintenance(cluster_name)
    state = co.set_maintenance(cluster_name, True, "rolling upgrade to 4.1", "alice")
    loaded = co.get_maintenance(cluster_name)
    assert loaded == state and loaded is not None
    assert (loaded.on, loaded.reason, loaded.by) == (True, "rolling upgrade to 4.1", "alice")
    assert co.in_maintenance(cluster_name)
    co.set_maintenance(cluster_name, False, "", "bob")
    off = co.get_maintenance(cluster_name)
    assert off is not None and not off.on and off.by == "bob"
    assert not co.in_maintenance(cluster_name)
    with pytest.raises(ValueError, match="reason is required"):
        co.set_maintenance(cluster_name, True, "  ", "alice")
    with pytest.raises(ValueError, match="'by'"):
        co.set_maintenance(cluster_name, False, "", "")


@pytest.mark.anyio
async def test_async_maintenance(cluster_name: str) -> None:
    await co.aset_maintenance(cluster_name, True, "disk swap", "carol")
    state = await co.aget_maintenance(cluster_name)
    assert state is not None and state.on and state.by == "carol"


# -- persistence and failures -----------------------------------------------------------------------------


def test_state_is_visible_to_another_process(cluster_name: str) -> None:
    when = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
    co.record_success(cluster_name, "replace_broker", when)
    co.set_maintenance(cluster_name, True, "vendor window", "dave")
    co.ensure_cluster_limits(cluster_name)
    script = textwrap.dedent(
        f"""
        from kafka_medic import coordination as co
        print(co.last_success({cluster_name!r}, "replace_broker").isoformat())
        print(co.get_maintenance({cluster_name!r}).by)
        try:
            with co.cluster_lock({cluster_name!r}):
                print("locked")
        except co.ClusterBusy:
            print("busy")
        """
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    with co.cluster_lock(cluster_name):
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [when.isoformat(), "dave", "busy"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lock(cluster_name: str) -> None:
    with co.cluster_lock(cluster_name):
        pass


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: co.ensure_cluster_limits(c), id="limits"),
        pytest.param(_lock, id="lock"),
        pytest.param(lambda c: co.last_success(c, "x"), id="last_success"),
        pytest.param(lambda c: co.record_success(c, "x"), id="record_success"),
        pytest.param(lambda c: co.load_down_since(c), id="load_down_since"),
        pytest.param(lambda c: co.save_down_since(c, {}), id="save_down_since"),
        pytest.param(lambda c: co.set_maintenance(c, True, "r", "me"), id="set_maintenance"),
        pytest.param(lambda c: co.get_maintenance(c), id="get_maintenance"),
    ],
)
def test_unreachable_api_is_a_clear_error(cluster_name: str, call: Callable[[str], Any]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    started = time.monotonic()
    with (
        temporary_settings({PREFECT_API_URL: url}),
        pytest.raises(CoordinationError, match=rf"Prefect API at {url} is unreachable.*PREFECT_API_URL"),
    ):
        call(cluster_name)
    assert time.monotonic() - started < 30


@pytest.mark.anyio
async def test_unreachable_api_async(cluster_name: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        with pytest.raises(CoordinationError, match="is unreachable"):
            async with co.acluster_lock(cluster_name):
                pass
        with pytest.raises(CoordinationError, match="is unreachable"):
            await co.aget_maintenance(cluster_name)
