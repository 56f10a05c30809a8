"""Maintenance flows and what-if on the real sandbox, through a real Prefect server (in-process runs)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import NewTopic

import flows.remediate  # noqa: F401  the dispatcher is registered: maintenance mode must still stop it
from flows.drain import DrainParams, drain_broker
from flows.health_check import health_check
from flows.leader_election import ElectLeadersParams, preferred_leader_election
from flows.maintenance_mode import MaintenanceParams, maintenance_mode
from flows.rolling_restart import RollingRestartParams, rolling_restart
from flows.undrain import UndrainParams, undrain_broker
from flows.what_if import WhatIfParams, what_if
from kafka_medic.audit import read_audit
from kafka_medic.maintenance.rollback import replica_map
from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.policy import HealthPolicy, Mode
from kafka_medic.sandbox.cluster import Sandbox
from tasks.state import cluster_state
from tests.prefect_env import save_sandbox_cluster, unique_cluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio]


def _pids(sb: Sandbox) -> dict[int, int | None]:
    return {b.node_id: sb.pid_of(b) for b in sb.layout.broker_specs}


def _leaders_preferred(sb: Sandbox, topic: str) -> bool:
    parts = describe_partitions(sb.admin(), [topic])
    return all(int(r[0]) == int(ldr) for r, ldr in zip(parts["replicas"], parts["leader"], strict=True))


def _isr_full(sb: Sandbox) -> bool:
    return not_fully_replicated(describe_partitions(sb.admin())).empty


class DownSampler:
    """Samples which brokers are unregistered, every 0.5 s, while a rolling restart runs."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.max_down: set[int] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        ids = {b.node_id for b in self.sb.layout.broker_specs}
        while not self._stop.wait(0.5):
            seen = self.sb.registered_brokers(timeout_s=2)
            if not seen:
                continue  # an unanswered request says nothing about who is down
            down = ids - seen
            self.samples += 1
            if len(down) > len(self.max_down):
                self.max_down = down

    def __enter__(self) -> DownSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


async def test_preferred_leader_election_puts_leaders_back_after_a_restart(
    healthy_sandbox: Sandbox, sandbox_cluster_name: str, topic_factory
) -> None:
    sb, name = healthy_sandbox, sandbox_cluster_name
    topic = topic_factory(partitions=6)
    sb.restart(1, graceful_s=20)
    wait_until(lambda: _isr_full(sb), timeout_s=180, what="broker 1 back in every ISR")
    assert not _leaders_preferred(sb, topic), "a controlled shutdown moves broker 1's leaderships away"

    dry = await preferred_leader_election(name, ElectLeadersParams(topics=[topic]))
    assert dry.dry_run and dry.eligible and dry.moved == 0
    assert not _leaders_preferred(sb, topic), "a dry run changes nothing"

    report = await preferred_leader_election(name, ElectLeadersParams(topics=[topic], dry_run=False))
    assert report.moved == len(report.eligible) > 0 and not report.not_moved
    assert _leaders_preferred(sb, topic)
    assert [r["status"] for r in report.audit] == ["started", "finished"]


async def test_rolling_restart_one_broker_at_a_time_with_full_isr(
    healthy_sandbox: Sandbox, sandbox_cluster_name: str, topic_factory
) -> None:
    sb, name = healthy_sandbox, sandbox_cluster_name
    topic_factory(partitions=6)
    before = _pids(sb)
    dry = await rolling_restart(name, RollingRestartParams(brokers=[2, 5]))
    assert dry.dry_run and dry.blockers == [] and dry.steps == []
    assert _pids(sb) == before

    with DownSampler(sb) as sampler:
        report = await rolling_restart(name, RollingRestartParams(brokers=[2, 5], dry_run=False, settle_s=1))
    assert [s.broker_id for s in report.steps] == [2, 5]
    after = _pids(sb)
    assert after[2] != before[2] and after[5] != before[5], "both brokers were restarted"
    assert {b: p for b, p in after.items() if b not in (2, 5)} == {b: p for b, p in before.items() if b not in (2, 5)}
    assert sampler.samples > 10 and len(sampler.max_down) <= 1, f"two brokers down at once: {sampler.max_down}"
    assert _isr_full(sb), "ISR full at the end"
    assert report.election is not None and not report.election["not_moved"]
    statuses = [r["status"] for r in report.audit]
    assert statuses[0] == "started" and statuses.count("finished") == 3  # two steps + the whole restart


async def test_rolling_restart_refuses_an_unhealthy_cluster_and_changes_nothing(
    healthy_sandbox: Sandbox, sandbox_cluster_name: str, topic_factory
) -> None:
    sb, name = healthy_sandbox, sandbox_cluster_name
    topic_factory(partitions=6)
    sb.kill(4)
    sb.wait_unregistered(4, timeout_s=30)
    # "Already unhealthy" as clients see it: the ISR has shrunk (on a loaded machine a broker's
    # Metadata answer can lag the controller's fencing by a moment; the real run looks twice).
    admin = sb.admin()
    wait_until(lambda: not not_fully_replicated(describe_partitions(admin)).empty, timeout_s=30,
               what="under-replicated partitions visible")  # fmt: skip
    before = _pids(sb)
    dry = await rolling_restart(name)
    assert any(b.startswith(("broker_down", "under_replicated")) or "[4]" in b for b in dry.blockers), dry.blockers
    refused = await rolling_restart(name, RollingRestartParams(dry_run=False))  # completes: nothing changed
    assert refused.status == "refused" and "refused, nothing was restarted" in refused.summary, refused
    assert refused.steps == [] and [r["status"] for r in refused.audit] == ["refused"]
    assert _pids(sb) == before, "no broker was restarted"
    assert 4 not in sb.registered_brokers(), "the dead broker was not touched either"


MAINTENANCE_GRACE_S = 15


async def test_maintenance_mode_stops_health_check_decisions(healthy_sandbox: Sandbox, medic_server) -> None:
    sb = healthy_sandbox
    name = unique_cluster("mm")
    save_sandbox_cluster(sb, name, policy=HealthPolicy(mode=Mode.AUTO, dead_broker_grace_s=MAINTENANCE_GRACE_S))
    on = await maintenance_mode(name, MaintenanceParams(on=True, reason="disk swap on broker 6", by="pytest"))
    assert on.on and on.previous is None
    assert (await cluster_state(name).maintenance()).reason == "disk swap on broker 6"
    await health_check(name, act=False)  # remember every broker while all are up
    sb.kill(6)
    sb.wait_unregistered(6, timeout_s=30)

    report = None
    deadline = time.monotonic() + MAINTENANCE_GRACE_S + 60
    while time.monotonic() < deadline:
        report = await health_check(name, act=True)
        if any(f["rule"] == "broker_down" and f["action"] == "heal_dead_broker" for f in report.findings):
            break
        await asyncio.sleep(1)
    assert report is not None and report.maintenance
    heal = [d for d in report.decisions if d["broker_id"] == 6]
    assert heal and heal[0]["remedy"] == "replace_broker", report.decisions
    assert not any(d["execute"] for d in report.decisions) and "maintenance mode" in heal[0]["reason"]
    assert report.dispatched == [], "nothing was handed to remediation"

    # Leaving maintenance restarts the grace period: the broker was stopped for the work, past its
    # grace, and acting on that time now would wipe a broker the human is about to start again.
    # Taken before the call: the flow records the end of maintenance inside it, at t_off or later
    # (taken after, the test's clock started late and read 14.998 s for a full 15 s grace: CI).
    t_off = time.monotonic()
    off = await maintenance_mode(name, MaintenanceParams(on=False, by="pytest"))
    assert not off.on and off.previous["on"] is True
    first = await health_check(name, act=True)
    assert first.dispatched == [] and not any(d["execute"] for d in first.decisions), first.decisions
    assert not any(f["action"] == "heal_dead_broker" for f in first.findings), "inside its new grace period"
    while time.monotonic() - t_off < MAINTENANCE_GRACE_S + 60:
        again = await health_check(name, act=False)  # act=False: report what would be done, do nothing
        if any(d["execute"] and d["broker_id"] == 6 for d in again.decisions):
            break
        await asyncio.sleep(1)
    else:
        raise AssertionError("the broker never became actionable after maintenance ended")
    assert time.monotonic() - t_off >= MAINTENANCE_GRACE_S, "a whole grace period, counted from the end"


async def test_what_if_reports_unsafe_and_touches_nothing(healthy_sandbox: Sandbox, sandbox_cluster_name: str) -> None:
    sb, name = healthy_sandbox, sandbox_cluster_name
    admin = sb.admin()
    shared, pair = f"wi-{uuid.uuid4().hex[:6]}", f"wi2-{uuid.uuid4().hex[:6]}"
    topics = [
        NewTopic(shared, 2, replica_assignment=[[1, 2, 4], [3, 5, 6]], config={"min.insync.replicas": "2"}),
        NewTopic(pair, 1, replica_assignment=[[2, 1]], config={"min.insync.replicas": "1"}),
    ]
    for fut in admin.create_topics(topics, request_timeout=15).values():
        fut.result(timeout=20)
    try:
        wait_until(lambda: len(describe_partitions(admin, [shared, pair])) == 3, timeout_s=20, what="topics visible")
        before = replica_map(describe_partitions(admin))
        report = await what_if(name, WhatIfParams(broker_ids=[1, 2]))
        assert not report.safe and "UNSAFE" in report.verdict
        assert f"{shared}-0" in report.under_min_isr and f"{pair}-0" in report.offline
        assert f"{shared}-1" not in report.under_min_isr + report.offline
        assert not report.mass_failure and report.plan is not None and report.cost is not None
        assert report.estimate is not None and {"bytes", "cross_az_bytes", "dollars", "eta_s"} <= set(report.estimate)
        assert [c["broker"] for c in report.replace_vs_drain] == [1, 2], "each dead broker: replace in its AZ vs drain"
        for c in report.replace_vs_drain:
            assert c["cheaper"] in ("replace", "drain", "same") and c["verdict"].startswith(f"Broker {c['broker']}:")
        unplaceable = {f"{u['topic']}-{u['partition']}" for u in report.plan["unplaceable"]}
        assert f"{pair}-0" in unplaceable, "an offline partition cannot be moved"
        acting = [d for d in report.decisions if d["execute"] and d["remedy"] in ("replace_broker", "reassign_away")]
        assert report.decisions and not acting, "observe mode: no broker action (a loaded machine may add a page)"

        assert replica_map(describe_partitions(admin)) == before, "no partition moved"
        assert len(sb.registered_brokers()) == 6
        assert await cluster_state(name).down_since() == {}, "no state was written"
        audit = read_audit({"bootstrap.servers": sb.layout.bootstrap_servers}, "__kafka_medic_audit")
        assert not [r for r in audit if r.get("cluster") == name], "what-if audits nothing: it did nothing"
    finally:
        for fut in admin.delete_topics([shared, pair], request_timeout=15).values():
            fut.result(timeout=20)


@pytest.fixture
def topic_on_six(healthy_sandbox: Sandbox, topic_factory) -> Iterator[str]:
    topic = topic_factory(partitions=6)
    parts = describe_partitions(healthy_sandbox.admin(), [topic])
    assert any(6 in reps for reps in parts["replicas"])
    yield topic


async def test_drain_moves_everything_off_and_undrain_puts_it_back(
    healthy_sandbox: Sandbox, sandbox_cluster_name: str, topic_on_six: str
) -> None:
    sb, name = healthy_sandbox, sandbox_cluster_name
    admin = sb.admin()
    before = replica_map(describe_partitions(admin))
    on_six = {k for k, reps in before.items() if 6 in reps}

    def now_of(keys: set) -> dict:
        current = replica_map(describe_partitions(admin))
        return {k: current.get(k) for k in keys}

    dry = await drain_broker(name, DrainParams(broker_id=6))
    assert dry.dry_run and dry.plan is not None and dry.moves >= len(on_six) - 1  # (the audit topic may be new)
    assert dry.cost is not None and {"bytes", "cross_az_bytes", "dollars", "eta_s"} <= set(dry.cost)
    assert now_of(set(before)) == before, "a dry run moves nothing"
    before = replica_map(describe_partitions(admin))  # now with the audit topic the dry run may have created
    on_six = {k for k, reps in before.items() if 6 in reps}

    report = await drain_broker(name, DrainParams(broker_id=6, dry_run=False, reason="pytest"))
    drained = replica_map(describe_partitions(admin))
    assert not [k for k, reps in drained.items() if 6 in reps], "broker 6 holds no replica"
    assert report.remaining_on_broker == 0 and report.moves == len(on_six)
    assert report.rollback_stored_in and "drain_rollback" in report.rollback_stored_in
    audit = read_audit({"bootstrap.servers": sb.layout.bootstrap_servers}, "__kafka_medic_audit")
    started = [
        r for r in audit if r.get("cluster") == name and r["action"] == "drain_broker" and r["status"] == "started"
    ]
    assert {"bytes", "cross_az_bytes", "dollars", "eta_s"} <= set(started[-1]["details"]["cost"]), started

    preview = await undrain_broker(name, UndrainParams(broker_id=6))
    assert preview.moves == len(on_six) and preview.skipped == []
    back = await undrain_broker(name, UndrainParams(broker_id=6, dry_run=False))
    assert back.moves == len(on_six)
    assert now_of(on_six) == {k: before[k] for k in on_six}, "every replica is back, in order"
    wait_until(lambda: _isr_full(sb), timeout_s=120, what="full ISR after the undrain")
    used_up = await undrain_broker(name, UndrainParams(broker_id=6))  # the undo was used up
    assert used_up.status == "skipped" and "no drain of broker 6 is recorded" in used_up.summary


async def test_a_large_drain_undo_is_kept_across_variables(medic_server) -> None:
    entries = [(f"topic-with-a-long-name-{i % 37}", i, (1, 2, 3), (4, 2, 3)) for i in range(600)]
    state = cluster_state(unique_cluster("big"))
    where = await state.save_undo("drain", 1, entries, run_id=None)
    assert "parts" in where
    assert await state.undo("drain", 1) == entries
    await state.clear_undo("drain", 1)
    assert await state.undo("drain", 1) is None
