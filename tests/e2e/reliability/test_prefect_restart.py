"""Reliability scenario 6: the Prefect server is restarted in the middle of a health-check cycle.

What must survive a restart of the real server process (``prefect server start``, SQLite in tmp):
- the health checks: the cycle caught by the restart may fail, every cycle after it succeeds;
- the per-cluster locks: a replacement "running on another worker" holds the replace and mutate
  locks across the restart; afterwards a real replace attempt (cooldown bypassed) and a mutate
  attempt are still refused as busy, and once the holder finishes the locks are free again;
- the replacement cooldown (a Prefect Variable): the dead broker is not replaced after the
  restart, because a replacement succeeded a moment before it.

The lock part caught a real bug: Prefect keeps concurrency *leases* in server memory by default
but slot counts in its database, so a lock held across a restart stayed taken forever (releasing
"with lease" is a silent no-op for a forgotten lease, and the repossessor works from leases): every
later action on the cluster was "busy". ``tasks.locks`` now notices the forgotten
lease and frees its slot by name on release.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from flows.health_check import health_check
from flows.replace_broker import ReplaceBrokerParams, replace_broker
from kafka_medic.errors import ClusterBusy
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.naming import limit_name
from kafka_medic.reports.health import HealthReport
from kafka_medic.reports.replace import ReplaceStatus
from kafka_medic.sandbox.cluster import Sandbox
from tasks.locks import LockHandle, cluster_lock
from tasks.state import cluster_state
from tests import scenarios
from tests.e2e.reliability.conftest import RealPrefect
from tests.flows.test_remediate import full_isr, scenario_line
from tests.flows.test_replace_broker import active_slots, directory_id, poll, remember_brokers, save_cluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio]

VICTIM = 6
COOLDOWN_S = 3600.0
CYCLE_TIMEOUT_S = 150.0  # one cycle, including the Prefect client's retries through the outage


@dataclass
class Cycle:
    started: float
    ended: float
    report: HealthReport | None
    error: str | None


def cooling_down(report: HealthReport) -> dict | None:
    return next(
        (
            d
            for d in report.dispatched
            if d.get("remedy") == "replace_broker" and d.get("broker_id") == VICTIM and d["status"] == "cooling down"
        ),
        None,
    )


async def test_prefect_restart_mid_cycle_keeps_locks_and_cooldown(
    healthy_sandbox: Sandbox, topic_factory, real_prefect: RealPrefect, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    block = await save_cluster(sb, prefix="rst", replacement_cooldown_s=COOLDOWN_S)
    name = block.name
    await remember_brokers(name)
    # What replace_broker records when a replacement succeeds: a broker was replaced a moment ago.
    await cluster_state(name).record_success("replace_broker")
    disk_before = directory_id(sb, VICTIM)

    # A long replacement on another worker holds both locks (default 300 s lease) across the restart.
    held, release = asyncio.Event(), asyncio.Event()
    handles: list[LockHandle] = []

    async def other_worker() -> None:
        async with (
            cluster_lock(name, kind="replace") as replace_lock,
            cluster_lock(name, kind="mutate") as mutate_lock,
        ):
            handles.extend([replace_lock, mutate_lock])
            held.set()
            await release.wait()

    holder = asyncio.create_task(other_worker())
    await asyncio.wait_for(held.wait(), 60)

    cycles: list[Cycle] = []
    running = asyncio.Event()
    stop = asyncio.Event()

    async def schedule() -> None:
        """Health checks back to back, as the deployment's schedule would run them; each bounded."""
        while not stop.is_set():
            t0 = time.monotonic()
            running.set()
            try:
                report = await asyncio.wait_for(health_check(name, act=True), CYCLE_TIMEOUT_S)
                cycles.append(Cycle(t0, time.monotonic(), report, None))
            except Exception as exc:  # the cycle caught by the restart may fail; the loop goes on
                cycles.append(Cycle(t0, time.monotonic(), None, f"{type(exc).__name__}: {exc}"[:300]))
            running.clear()
            await asyncio.sleep(0.5)

    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    loop_task: asyncio.Task[None] | None = None
    try:
        await asyncio.sleep(2)
        sb.kill(VICTIM)
        t_kill = time.monotonic()
        loop_task = asyncio.create_task(schedule())

        async def cooling_seen() -> bool:
            return any(c.report is not None and cooling_down(c.report) for c in cycles)

        await poll(cooling_seen, 90, f"a cycle deciding to replace broker {VICTIM} and finding it cooling down")

        # -- restart the server while a cycle is in flight
        await poll(lambda: _true_when(running.is_set()), 30, "a health-check cycle in flight", interval_s=0.05)
        t_restart = time.monotonic()
        stop_s, start_s = await asyncio.to_thread(real_prefect.restart, monkeypatch)
        t_back = time.monotonic()

        async def two_ok_after() -> bool:
            return sum(c.started >= t_back and c.report is not None for c in cycles) >= 2

        await poll(two_ok_after, 2 * CYCLE_TIMEOUT_S, "two successful cycles after the restart")
        resumed_s = min(c.ended for c in cycles if c.started >= t_back and c.report is not None) - t_back

        # -- the locks held across the restart still hold: a real replace (cooldown bypassed) and a
        # mutating action are both refused as busy, nothing touched
        res = await replace_broker(
            name, ReplaceBrokerParams(broker_id=VICTIM, dry_run=False, cooldown_s=0, reason="scenario 6")
        )
        assert res.status is ReplaceStatus.BUSY and "busy" in res.message, res
        with pytest.raises(ClusterBusy):
            async with cluster_lock(name, kind="mutate"):
                pass

        # -- the holder finishes: its locks are free again (they used to stay taken forever)
        release.set()
        await asyncio.wait_for(holder, 60)
        for kind in ("replace", "mutate"):
            assert await active_slots(limit_name(name, kind)) == 0, f"{kind} lock leaked"
            async with cluster_lock(name, kind=kind):  # fail-fast: free now
                pass

        # -- with the locks free, the persisted cooldown still stops the replacement
        n = len(cycles)
        await poll(lambda: _true_when(len(cycles) > n), CYCLE_TIMEOUT_S, "one more cycle after the release")
        last = cycles[-1]
        assert last.report is not None, last.error
        remaining = cooling_down(last.report)
        assert remaining is not None, last.report.dispatched
    finally:
        stop.set()
        release.set()
        if loop_task is not None:
            await asyncio.wait_for(loop_task, CYCLE_TIMEOUT_S + 30)
        if not holder.done():
            await asyncio.wait_for(holder, 60)
        sb.start_broker(VICTIM, wait=True, timeout_s=120)
        wait_until(lambda: full_isr(sb), timeout_s=120, what="full ISR with the victim back")
        stats = producer.stop()

    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    across = [c for c in cycles if c.started < t_back and c.ended > t_restart]
    after = [c for c in cycles if c.started >= t_back]
    detect = next(
        (c.ended - t_kill for c in cycles if c.report and any(f["rule"] == "broker_down" for f in c.report.findings)),
        None,
    )
    scenarios.report(
        scenario_line("6 (Prefect server restarted mid-cycle)", detect, None, stats, result)
        + f"; healed n/a (cooldown, by design); server stop {stop_s:.1f}s + start {start_s:.1f}s, first cycle "
        f"after it completed {resumed_s:.1f}s later; cycles: {len(across)} across the restart "
        f"({sum(c.error is not None for c in across)} failed), {len(after)} after "
        f"({sum(c.error is not None for c in after)} failed); locks held across it and freed on release "
        f"(holder saw its lease lost: {[h.lost for h in handles]}); cooldown held "
        f"({remaining['remaining_cooldown_s']:.0f}s left)"
    )

    assert across, "the restart happened during a health-check cycle"
    assert all(c.error is None for c in after), [c.error for c in after]
    assert all(c.report is not None and cooling_down(c.report) for c in after), "cooldown held in every later cycle"
    assert directory_id(sb, VICTIM) == disk_before, "the victim was never wiped"
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"


async def _true_when(value: bool) -> bool:
    return value
