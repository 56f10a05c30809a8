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

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from prefect.client.orchestration import get_client

from kafka_medic import coordination
from tests.e2e.reliability.conftest import RealPrefect

pytestmark = [pytest.mark.prefect]


def _slots(name: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_a_lock_held_across_a_server_restart_is_freed_on_release(
    real_prefect: RealPrefect, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = f"lease-{uuid.uuid4().hex[:8]}"
    mutate, _ = coordination.ensure_cluster_limits(cluster)
    with coordination.cluster_lock(cluster) as handle:
        real_prefect.restart(monkeypatch)
        assert _slots(mutate) == 1, "the slot survives the restart (it lives in the database)"
        with pytest.raises(coordination.ClusterBusy):  # and still excludes others
            _other_attempt(cluster)
        assert not handle.lost  # the next renewal is minutes away; the release must cope on its own
    assert _slots(mutate) == 0, "released: not taken forever"
    with coordination.cluster_lock(cluster):  # fail-fast attempt succeeds
        pass
    assert _slots(mutate) == 0


def _other_attempt(cluster: str) -> None:
    """A fail-fast attempt from another context (the lock is not re-entrant within one)."""
    import contextvars
    import threading

    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            with coordination.cluster_lock(cluster):
                pass
        except BaseException as exc:
            errors.append(exc)

    ctx = contextvars.copy_context()
    ctx.run(coordination._held.set, frozenset())
    thread = threading.Thread(target=ctx.run, args=(attempt,))
    thread.start()
    thread.join(timeout=60)
    if errors:
        raise errors[0]


def _gone(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/api/v2/concurrency_limits/leases/x/renew")
    return httpx.HTTPStatusError("gone", request=request, response=httpx.Response(status, request=request))


def test_only_a_lease_lost_while_still_valid_counts_as_forgotten() -> None:
    def handle(valid_for_s: float) -> coordination.LockHandle:
        return coordination.LockHandle(
            "c", "kafka-medic-mutate-c", uuid.uuid4(), datetime.now(UTC), valid_until=time.monotonic() + valid_for_s
        )

    assert coordination._gone_early(handle(120), _gone(410))  # the server forgot a valid lease
    assert not coordination._gone_early(handle(10), _gone(410))  # within the margin: may have expired
    assert not coordination._gone_early(handle(-5), _gone(410))  # expired: the slot may be someone else's now
    assert not coordination._gone_early(handle(120), _gone(404))
    orphan = coordination.LockHandle("?", "x", uuid.uuid4(), datetime.now(UTC))
    assert not coordination._lease_forgotten(object(), orphan), "nothing known about an orphan's lease"
