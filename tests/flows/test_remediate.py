"""Healing end to end: health_check -> dispatch -> remediate -> replace_broker, on the real sandbox.

The health check is called in a loop the way a schedule would run it; with no ``remediate``
deployment on the test server, the dispatcher runs each remediation in-process as a subflow.
Pages go to a CustomWebhookNotificationBlock pointed at an HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterTags
from prefect.flow_runs import aresume_flow_run

from blocks.kafka_cluster import KafkaCluster
from blocks.replacers import ScriptReplacer
from flows.health_check import health_check
from flows.remediate import RemediationParams, dispatch, remediate
from kafka_medic.decide import Decision, Remedy
from kafka_medic.leadership import preferred_of
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated
from kafka_medic.naming import DEPLOYMENT_NAME, cluster_tag
from kafka_medic.policy import Mode
from kafka_medic.reports.health import HealthReport
from kafka_medic.sandbox.cluster import Sandbox
from tasks.locks import cluster_lock
from tasks.state import cluster_state
from tests import scenarios
from tests.flows.test_replace_broker import (
    audit_of,
    directory_id,
    poll,
    remember_brokers,
    save_cluster,
    statuses,
)
from tests.waiting import wait_until
from tests.webhook import WEBHOOK_TOKEN, Hook, save_webhook

pytestmark = [pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]
kafka = pytest.mark.kafka


# -- helpers -----------------------------------------------------------------------------------------


def dispatched(report: HealthReport, status: str | None = None) -> list[dict[str, Any]]:
    return [d for d in report.dispatched if status is None or d.get("status") == status]


async def heal_until(
    name: str, done: Any, timeout_s: float, what: str, times: list[float] | None = None
) -> list[HealthReport]:
    """Run health checks (act=True) back to back until ``done(reports)``; bounded.

    ``times`` (if given) receives the monotonic time each report was complete, for the scenario report.
    """
    reports: list[HealthReport] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reports.append(await health_check(name, act=True))
        if times is not None:
            times.append(time.monotonic())
        if done(reports):
            return reports
        await asyncio.sleep(1)
    raise AssertionError(
        f"timed out after {timeout_s:.0f}s waiting for {what}; last dispatched: "
        f"{reports[-1].dispatched if reports else None}"
    )


def detected_after(
    reports: list[HealthReport], times: list[float], t0: float, rule: str = "broker_down"
) -> float | None:
    """Seconds from ``t0`` to the first report carrying ``rule`` (None: never seen)."""
    for r, t in zip(reports, times, strict=True):
        if any(f["rule"] == rule for f in r.findings):
            return t - t0
    return None


def scenario_line(name: str, detect_s: float | None, heal_s: float | None, stats: Any, result: Any) -> str:
    """The one-line report every reliability scenario prints: detection, heal time, messages."""
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}s"  # noqa: E731
    return (
        f"\nSCENARIO {name}: detected {fmt(detect_s)}, healed {fmt(heal_s)}; messages produced "
        f"{stats.attempted}, acked {stats.acked}, read back {result.found}, lost {result.lost}"
    )


def replaced(reports: list[HealthReport]) -> list[int]:
    return [d["broker_id"] for r in reports for d in dispatched(r, "replaced")]


def restarted(reports: list[HealthReport]) -> list[int]:
    return [d["broker_id"] for r in reports for d in dispatched(r, "restarted")]


def at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["at"])


def full_isr(sb: Sandbox) -> bool:
    return not_fully_replicated(describe_partitions(sb.admin())).empty


# -- healing end to end ----------------------------------------------------------------------------------


@kafka
async def test_auto_mode_replaces_a_broker_whose_machine_is_lost_losing_no_acked_message(
    healthy_sandbox: Sandbox, topic_factory, hook: Hook
) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    block = await save_cluster(sb, prefix="auto")
    await save_webhook(hook, block.name)
    await remember_brokers(block.name)
    before = directory_id(sb, 3)
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    try:
        await asyncio.sleep(2)
        sb.kill(3, lose_disk=True)  # the machine is gone: nothing to restart, only a replacement helps
        t_kill = time.monotonic()
        times: list[float] = []
        reports = await heal_until(block.name, lambda rs: 3 in replaced(rs), 240, "broker 3 replaced", times)
        healed_s = time.monotonic() - t_kill
        await asyncio.sleep(2)  # keep producing on the healed cluster for a moment
    finally:
        stats = producer.stop()

    assert directory_id(sb, 3) not in (None, before), "broker 3 came back on a fresh, empty disk"
    assert stats.acked > 0
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    assert result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    wait_until(lambda: full_isr(sb), timeout_s=60, what="full ISR after the replacement")

    # the health check found it first, then remediation replaced it
    assert any("broker_down" in {f["rule"] for f in r.findings} for r in reports)
    records = audit_of(block)
    assert statuses(records, "replace_broker") == ["started", "finished"], records
    finished = records[-1]
    assert finished["brokers"] == [3] and finished["actor"] == "kafka-medic automation"
    assert finished["details"]["timings"]["in_sync_s"] >= 0
    # the heal ends where it started: the new broker 3 leads the partitions it prefers again
    assert finished["details"]["leaders"]["requested"] > 0, finished
    assert not preferred_of(describe_partitions(sb.admin()), 3), "broker 3 leads every partition it prefers"
    # on-call learns of the repair from its channel: a notice (not a page), started is not one
    notices = [b for b in hook.bodies() if "replace_broker" in b]
    assert len(notices) == 1 and "replace_broker broker(s) 3 FINISHED" in notices[0], hook.bodies()
    assert "replaced and back in sync" in notices[0]
    scenarios.report(
        scenario_line("1 (SIGKILL one broker, disk lost)", detected_after(reports, times, t_kill), healed_s, stats,
                      result)
    )  # fmt: skip


@kafka
async def test_a_crashed_broker_with_its_disk_intact_is_restarted_not_wiped(
    healthy_sandbox: Sandbox, topic_factory
) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    block = await save_cluster(sb, prefix="crash")
    await remember_brokers(block.name)
    before = directory_id(sb, 4)
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    try:
        await asyncio.sleep(2)
        sb.kill(4)  # the JVM crashed; the machine and its disk are fine
        t_kill = time.monotonic()
        times: list[float] = []
        reports = await heal_until(block.name, lambda rs: 4 in restarted(rs), 240, "broker 4 restarted", times)
        healed_s = time.monotonic() - t_kill
        await asyncio.sleep(2)
    finally:
        stats = producer.stop()
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    assert directory_id(sb, 4) == before, "the same disk: restarted, never wiped"
    records = audit_of(block)
    assert statuses(records, "restart_broker") == ["started", "finished"], records
    assert statuses(records, "replace_broker") == [], "nothing was replaced"
    started, finished = [r for r in records if r["action"] == "restart_broker"]
    assert "its host and disk are still there" in started["summary"], started
    assert "restarted with its disk and back in sync" in finished["summary"], finished
    assert not replaced(reports)
    # the heal ends where it started: broker 4 leads the partitions it prefers again
    assert finished["details"]["leaders"]["requested"] > 0, finished
    assert not preferred_of(describe_partitions(sb.admin()), 4), "broker 4 leads every partition it prefers"
    scenarios.report(
        scenario_line("1b (SIGKILL one broker, disk intact: restart)", detected_after(reports, times, t_kill),
                      healed_s, stats, result)
    )  # fmt: skip


COOLDOWN_S = 20


@kafka
async def test_two_dead_brokers_are_replaced_strictly_one_at_a_time(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    # cutoff: 2 brokers may be down. The cooldown is longer than a health-check cycle on a loaded box
    # (2-8 s), so some cycle surely sees it: a 5 s one could elapse between two cycles unseen.
    block = await save_cluster(sb, prefix="two", replacement_cooldown_s=COOLDOWN_S)
    await remember_brokers(block.name)
    before = {b: directory_id(sb, b) for b in (2, 6)}
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    try:
        await asyncio.sleep(2)
        sb.kill(2, lose_disk=True)
        sb.kill(6, lose_disk=True)
        t_kill = time.monotonic()
        times: list[float] = []
        reports = await heal_until(
            block.name, lambda rs: {2, 6} <= set(replaced(rs)), 420, "brokers 2 and 6 both replaced", times
        )
        healed_s = time.monotonic() - t_kill
        await asyncio.sleep(2)
    finally:
        stats = producer.stop()
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    # RF 3 / min ISR 2 with two brokers gone: partitions on both are below min ISR until the first
    # replacement is in sync, so some produce requests fail (not acknowledged); none acknowledged is lost.
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    scenarios.report(
        scenario_line("3 (two brokers killed)", detected_after(reports, times, t_kill), healed_s, stats, result)
    )

    assert all(directory_id(sb, b) not in (None, before[b]) for b in (2, 6))
    assert not any(f["rule"] == "mass_failure" for r in reports for f in r.findings), "2 down is within the cutoff"
    records = [r for r in audit_of(block) if r["action"] == "replace_broker"]
    starts = [r for r in records if r["status"] == "started"]
    ends = [r for r in records if r["status"] == "finished"]
    assert [r["status"] for r in records] == ["started", "finished", "started", "finished"], records
    first, second = starts[0]["brokers"][0], starts[1]["brokers"][0]
    assert {first, second} == {2, 6}
    # strictly one at a time, the first verified in sync before the second starts...
    assert at(starts[0]) < at(ends[0]) < at(starts[1]) < at(ends[1])
    assert ends[0]["brokers"] == [first] and "in_sync_s" in ends[0]["details"]["timings"]
    # ...and the second waited for the cooldown, counted from the first one's success
    assert (at(starts[1]) - at(ends[0])).total_seconds() >= COOLDOWN_S
    assert any(d.get("status") == "cooling down" for r in reports for d in r.dispatched)
    wait_until(lambda: full_isr(sb), timeout_s=60, what="full ISR after both replacements")


@kafka
async def test_a_replacer_that_always_fails_is_tried_a_bounded_number_of_times_then_pages(
    healthy_sandbox: Sandbox, hook: Hook, tmp_path: Path
) -> None:
    sb = healthy_sandbox
    script = tmp_path / "replace.py"
    script.write_text("import sys\nprint('no capacity in any AZ', file=sys.stderr)\nsys.exit(7)\n")
    block = await save_cluster(
        sb, prefix="fail", replacer_block=ScriptReplacer(argv=[sys.executable, str(script), "{broker_id}"]),
        remediation_backoff_s=6, remediation_max_attempts=2, replacement_cooldown_s=0,
    )  # fmt: skip
    await save_webhook(hook, block.name)
    await remember_brokers(block.name)
    sb.kill(6, lose_disk=True)

    def gave_up_twice(rs: list[HealthReport]) -> bool:
        return sum(d.get("status") == "gave up" for r in rs for d in r.dispatched) >= 2

    reports = await heal_until(block.name, gave_up_twice, 180, "automation giving up on broker 6")

    records = audit_of(block)
    assert statuses(records, "replace_broker") == ["started", "failed"] * 2, "exactly max_attempts tries"
    outcomes = [d.get("status") for r in reports for d in r.dispatched if d.get("broker_id") == 6]
    assert "backing off" in outcomes, outcomes  # the second try waited (6 s after the first failure)
    first_gave_up = outcomes.index("gave up")
    assert all(o == "gave up" for o in outcomes[first_gave_up:]), "no try after giving up: no loop"
    # humans hear of it through one incident: a notice at the first failure, one page when it gave up
    notes = [
        (i["transition"], i["rule"], i["page"]) for r in reports for i in r.incidents if i["key"] == "remediation:6"
    ]
    assert notes == [("opened", "remediation_failing", False), ("escalated", "remediation_gave_up", True)], notes
    bodies = [b for b in hook.bodies() if "gave up on broker 6" in b]
    assert len(bodies) == 1 and "2 failed attempt(s)" in bodies[0], hook.bodies()
    assert [r for r in records if r["status"] == "paged"], "the page is in the audit trail"
    ladder = (await cluster_state(block.name).ladder()).of(6)
    assert [(a.action, a.ok) for a in ladder.attempts] == [("replace_broker", False)] * 2


@kafka
async def test_mass_failure_pages_once_and_replaces_nothing(
    healthy_sandbox: Sandbox, hook: Hook, topic_factory
) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    # a 10 s pending window (default 30 s): still longer than a clean failover's fencing (9 s); what
    # is proven here is the stand-down and the single page, not the window's length
    block = await save_cluster(sb, prefix="mass", mass_failure_max_brokers=1, incident_pending_s=10)
    await save_webhook(hook, block.name)
    await remember_brokers(block.name)
    before = {b: directory_id(sb, b) for b in (2, 6)}
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    await asyncio.sleep(2)
    sb.kill(2)
    sb.kill(6)
    t_kill = time.monotonic()
    times: list[float] = []

    def beyond_grace_twice(rs: list[HealthReport]) -> bool:
        # two cycles in which both brokers are dead past their grace period: without the
        # stand-down they would be replaced now
        def past(r: HealthReport) -> bool:
            downs = [f for f in r.findings if f["rule"] == "broker_down"]
            return len(downs) == 2 and all(f["evidence"]["beyond_grace"] for f in downs)

        # ...and the page went out (once the condition lasted the incident's pending window)
        paged = any(i["key"] == "mass_failure" for r in rs for i in r.incidents)
        return sum(past(r) for r in rs) >= 2 and paged

    try:
        reports = await heal_until(block.name, beyond_grace_twice, 150, "two cycles past the grace period and a page",
                                   times)  # fmt: skip
    finally:
        stats = producer.stop()

    last = reports[-1]
    mass = [f for f in last.findings if f["rule"] == "mass_failure"]
    assert mass and mass[0]["severity"] == "critical" and set(mass[0]["brokers"]) == {2, 6}
    assert not last.automation_allowed
    assert not any(d["remedy"] in ("replace_broker", "reassign_away") for r in reports for d in r.dispatched)
    assert {b: directory_id(sb, b) for b in (2, 6)} == before, "nothing was wiped"
    assert all(st.process == "stopped" for st in sb.status() if st.node_id in (2, 6))

    # The human the page reached brings the brokers back (same disks). Only then can every acked
    # message be read: a partition whose replicas were on 2 and 6 is left with one in-sync replica,
    # under min ISR, and Kafka 4.1 (eligible leader replicas, KIP-966) keeps its high watermark
    # where it was until the ISR is back to min ISR -- its new leader answers OFFSET_NOT_AVAILABLE.
    for b in (2, 6):
        sb.start_broker(b, wait=False)
    sb.wait_registered([2, 6], timeout_s=120)
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=120)
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    detected = detected_after(reports, times, t_kill, "mass_failure")
    scenarios.report(scenario_line("4 (beyond the mass-failure cutoff: stand down)", detected, None, stats, result))
    # one page per incident, however many cycles it lasts (the mass failure; partitions under min
    # ISR are an incident of their own where a partition had replicas on both), no secrets
    opened = [i for r in reports for i in r.incidents]
    assert [i["transition"] for i in opened] == ["opened"] * len(opened), "no repeat within the interval"
    keys = [i["key"] for i in opened]
    assert "mass_failure" in keys and len(keys) == len(set(keys)) and set(keys) <= {"mass_failure", "under_min_isr"}
    assert len(hook.requests) == len(keys), hook.bodies()
    bodies = [json.loads(r["body"])["text"] for r in hook.requests]
    mass_page = [b for b in bodies if "mass_failure" in b]
    assert len(mass_page) == 1 and block.name in mass_page[0] and "Mass failure" in mass_page[0]
    assert not any(WEBHOOK_TOKEN in b for b in bodies)
    records = audit_of(block)
    assert statuses(records) == ["paged"] * len(keys), "pages only: nothing acted"
    mass_record = next(r for r in records if r["details"]["rule"] == "mass_failure")
    assert mass_record["details"]["sent_to"]


@kafka
async def test_automation_stands_back_while_a_manual_action_holds_the_mutate_lock(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb, prefix="lock")
    await remember_brokers(block.name)
    before = directory_id(sb, 4)
    held, release = asyncio.Event(), asyncio.Event()

    async def manual_drain() -> None:  # stands for a human's drain/replace: it holds the mutate lock
        async with cluster_lock(block.name, kind="mutate"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(manual_drain())
    try:
        await asyncio.wait_for(held.wait(), 30)
        sb.kill(4)
        reports = await heal_until(
            block.name, lambda rs: any(dispatched(r, "busy") for r in rs), 90, "the automation run to find it busy"
        )
    finally:
        release.set()
        await asyncio.wait_for(holder, 30)

    skip = next(d for r in reports for d in dispatched(r, "busy"))
    assert skip["broker_id"] == 4 and "is busy" in skip["message"] and skip["mode"] == "in-process"
    assert directory_id(sb, 4) == before and next(s for s in sb.status() if s.node_id == 4).process == "stopped"
    records = audit_of(block)
    assert statuses(records, "replace_broker") == ["skipped"]
    assert records[-1]["details"]["why"] == "busy"
    assert await cluster_state(block.name).last_success("replace_broker") is None


async def _paused_run(cluster: str) -> Any:
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["remediate"])))
    return next((r for r in runs if r.state and r.state.is_paused() and r.parameters.get("cluster") == cluster), None)


@kafka
async def test_approve_mode_pauses_and_only_an_approval_proceeds(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb, prefix="appr", mode=Mode.APPROVE, approval_timeout_s=30)  # polls every 3 s
    quick = await save_cluster(sb, prefix="apto", mode=Mode.APPROVE, approval_timeout_s=2)
    await remember_brokers(block.name)
    await remember_brokers(quick.name)
    before = directory_id(sb, 5)
    sb.kill(5)
    sb.wait_unregistered(5, timeout_s=20)

    found: list[dict[str, Any]] = []

    async def actionable() -> bool:  # the health check (observe only) sees broker 5 dead past its grace
        r = await health_check(block.name, act=False)
        await health_check(quick.name, act=False)
        found[:] = [d for d in r.decisions if d["remedy"] == "replace_broker" and d["broker_id"] == 5]
        return any(d["needs_approval"] for d in found)

    await poll(actionable, 40, "an approve-mode decision for broker 5")
    cost = found[0]["cost"]  # the decision carries what the replacement would copy
    assert cost and {"bytes", "cross_az_bytes", "dollars", "eta_s"} <= set(cost), found[0]

    def decision(dry_run: bool) -> RemediationParams:
        return RemediationParams(
            remedy=Remedy.REPLACE_BROKER, broker_id=5, rule="broker_down", reason="broker 5 down",
            needs_approval=True, dry_run=dry_run, cost=cost,
        )  # fmt: skip

    # approved -> proceeds (as a dry run here, to keep the test short: the replacement itself is
    # covered above); the approver is the actor of what follows
    run = asyncio.create_task(remediate(block.name, decision(dry_run=True)))
    paused = await poll(lambda: _paused_run(block.name), 30, "the remediate run to pause")
    await aresume_flow_run(paused.id, run_input={"approve": True, "approver": "alice", "comment": "go"})
    res = await asyncio.wait_for(run, 120)
    assert res["status"] == "planned", res
    assert res["result"]["audit"], res

    # rejected -> nothing changes, even though this one would act for real
    run = asyncio.create_task(remediate(block.name, decision(dry_run=False)))
    paused = await poll(lambda: _paused_run(block.name), 30, "the second run to pause")
    await aresume_flow_run(paused.id, run_input={"approve": False, "approver": "bob", "comment": "not now"})
    res = await asyncio.wait_for(run, 60)
    assert res["status"] == "rejected" and "bob" in res["message"], res

    # nobody answers -> times out, nothing changes
    res = await asyncio.wait_for(remediate(quick.name, decision(dry_run=False)), 60)
    assert res["status"] == "approval_timeout", res

    assert directory_id(sb, 5) == before and next(s for s in sb.status() if s.node_id == 5).process == "stopped"
    records = audit_of(block)
    assert statuses(records) == ["approval_requested", "approved", "planned", "approval_requested", "rejected"]
    approved = records[1]
    assert approved["details"]["approver"] == "alice" and records[2]["actor"].startswith("alice")
    assert records[0]["details"]["cost"]["eta_s"] == cost["eta_s"], "the approval request shows the cost"
    assert {"bytes", "dollars", "eta_s"} <= set(records[2]["details"]["cost"]), "so does the replacement's plan"
    assert records[4]["details"]["comment"] == "not now"
    assert statuses(audit_of(quick)) == ["approval_requested", "skipped"]
    assert await cluster_state(block.name).last_success("replace_broker") is None

    # without a replacer the decision is "reassign away": wired to the reassign flow (dry run here)
    drain = RemediationParams(remedy=Remedy.REASSIGN_AWAY, broker_id=5, rule="broker_down", reason="r", dry_run=True)
    res = await asyncio.wait_for(remediate(block.name, drain), 120)
    assert res["status"] == "dry_run" and res["result"]["request"]["brokers"] == [5], res


async def test_dispatch_starts_the_remediate_deployment_and_never_twice() -> None:
    name = f"d-{uuid.uuid4().hex[:8]}"
    block = KafkaCluster(name=name, bootstrap_servers="127.0.0.1:9")
    await block.save(name, overwrite=True)
    deployment = await remediate.ato_deployment(name=DEPLOYMENT_NAME)  # the catalogue's name for it
    dep_id = await deployment.aapply()
    decision = Decision(Remedy.REPLACE_BROKER, 3, "broker_down", "broker 3 down", execute=True, needs_approval=False)
    # another broker's remediation waiting for a human's approval (a run of the same deployment)
    other = Decision(Remedy.REPLACE_BROKER, 5, "broker_down", "broker 5 down", execute=True, needs_approval=True)
    try:
        waiting = await dispatch(block, [other], [])
        first = await dispatch(block, [decision], [])
        again = await dispatch(block, [decision], [])
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[cluster_tag(name)]))
            )
    finally:
        async with get_client() as client:
            for r in await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[cluster_tag(name)]))
            ):
                await client.delete_flow_run(r.id)
            await client.delete_deployment(dep_id)

    assert [d["status"] for d in waiting] == ["started"], waiting
    # broker 5's pending run does not hold back broker 3's, but broker 3's is never started twice
    assert [d["status"] for d in first] == ["started"] and first[0]["mode"] == "deployment", first
    assert first[0]["deployment"] == f"remediate/{DEPLOYMENT_NAME}"
    assert [d["status"] for d in again] == ["already running"], again
    assert again[0]["flow_run_id"] == first[0]["flow_run_id"]
    assert len(runs) == 2 and {str(r.id) for r in runs} == {first[0]["flow_run_id"], waiting[0]["flow_run_id"]}
    run = next(r for r in runs if str(r.id) == first[0]["flow_run_id"])
    assert "broker:3" in run.tags
    params = run.parameters
    assert params["cluster"] == name and params["decision"]["broker_id"] == 3
    assert params["decision"]["remedy"] == "replace_broker" and params["decision"]["needs_approval"] is False
