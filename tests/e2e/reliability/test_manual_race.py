"""Reliability scenario 8: a manual maintenance run racing automatic healing -> never two mutations
on one cluster at a time.

Automation replaces a killed broker (its replace + mutate locks held from the wipe to the end of
ISR verification) while an operator keeps starting a real preferred-leader election with
``dry_run=False`` every half second, as someone impatient in the UI would, on a topic whose leaders
really need moving. Every attempt either finds the cluster busy (ClusterBusy, audited "skipped")
or runs while nobody else mutates. The audit trail
of the cluster is the evidence: the intervals between each action's "started" and its
"finished"/"failed" never overlap. The reverse direction (a human holding the lock first, the
automation skipping) is test_automation_skips_while_a_manual_action_holds_the_mutate_lock in
tests/flows/test_remediate.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from flows.leader_election import ElectLeadersParams, preferred_leader_election
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.maintenance.election import election_candidates
from kafka_medic.monitor import kip455
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.naming import mutate_limit_name
from kafka_medic.sandbox.cluster import Sandbox
from tests import scenarios
from tests.flows.test_remediate import detected_after, full_isr, heal_until, replaced, scenario_line
from tests.flows.test_replace_broker import active_slots, audit_of, remember_brokers, save_cluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

MUTATING = {
    "replace_broker", "restart_broker", "demote_broker", "restore_broker", "preferred_leader_election", "reassign",
    "drain_broker", "rolling_restart",
}  # fmt: skip


def mutation_intervals(records: list[dict[str, Any]]) -> list[tuple[datetime, datetime, str]]:
    """(start, end, label) per mutating action run, from its "started" to its "finished"/"failed" record."""
    open_: dict[tuple[str, str | None], datetime] = {}
    out: list[tuple[datetime, datetime, str]] = []
    for r in sorted(records, key=lambda r: r["at"]):
        if r["action"] not in MUTATING:
            continue
        key = (r["action"], r.get("run_id"))
        at = datetime.fromisoformat(r["at"])
        if r["status"] == "started":
            open_[key] = at
        elif r["status"] in ("finished", "failed") and key in open_:
            out.append((open_.pop(key), at, r["action"]))
    assert not open_, f"actions started but never finished: {open_}"
    return out


def skew_leaders(sb: Sandbox, topic: str) -> int:
    """Swap the first two replicas of every partition of ``topic`` (same replica set: the reassignment
    completes at once) so that the leader is no longer the preferred replica; returns how many
    partitions a preferred election now has to move."""
    admin = sb.admin()
    parts = describe_partitions(admin, [topic])
    targets = {
        (str(t), int(p)): [int(r[1]), int(r[0]), *map(int, r[2:])]
        for t, p, r in zip(parts["topic"], parts["partition"], parts["replicas"], strict=True)
    }
    with kip455.kafka_python_admin({"bootstrap_servers": sb.layout.bootstrap_servers}) as kp:
        assert not kip455.alter_reassignments(kp, targets)
    return wait_until(
        lambda: len(election_candidates(describe_partitions(admin, [topic]))[0]) == len(targets) and len(targets),
        timeout_s=30, what="leaders off their preferred replicas",
    )  # fmt: skip


async def test_manual_election_racing_a_replacement_never_overlaps(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    topic = topic_factory(partitions=6)
    elect_topic = f"race-elect-{uuid.uuid4().hex[:6]}"
    # no replica on broker 3 (the one that dies), one replica per AZ: the election can run during the outage
    assignment = [[1, 2, 6], [2, 6, 4], [6, 4, 5], [5, 1, 6]]
    admin = sb.admin()  # keep the client alive until its futures are done
    created = admin.create_topics(
        [NewTopic(elect_topic, num_partitions=len(assignment), replica_assignment=assignment)]
    )
    created[elect_topic].result(timeout=20)
    block = await save_cluster(sb, prefix="race")
    await remember_brokers(block.name)
    to_move = skew_leaders(sb, elect_topic)
    producer = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
    outcomes: dict[str, int] = {"busy": 0, "ran": 0}
    election = None
    try:
        await asyncio.sleep(2)
        sb.kill(3, lose_disk=True)  # a replacement (not a restart): it holds the locks for a while
        t_kill = time.monotonic()
        times: list[float] = []
        healed = heal_until(block.name, lambda rs: 3 in replaced(rs), 300, "broker 3 replaced", times)
        heal = asyncio.create_task(healed)
        # the operator starts once the automation is mid-replacement (it holds the cluster's mutate lock)...
        lock = mutate_limit_name(block.name)
        deadline = time.monotonic() + 240
        while not heal.done() and await active_slots(lock) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        # ...and keeps trying until the election has run (bounded)
        deadline = time.monotonic() + 330
        while election is None and time.monotonic() < deadline:
            report = await preferred_leader_election(
                block.name, ElectLeadersParams(topics=[elect_topic], dry_run=False, lock_wait_s=0)
            )
            if report.status == "busy":  # completed, nothing changed: the automation holds the lock
                assert "busy" in report.summary and report.moved == 0, report
                outcomes["busy"] += 1
                await asyncio.sleep(0.5)
            else:
                election = report
                outcomes["ran"] += 1
        reports = await heal
        healed_s = time.monotonic() - t_kill
    finally:
        stats = producer.stop()
        with contextlib.suppress(Exception):
            admin.delete_topics([elect_topic])[elect_topic].result(timeout=20)

    assert outcomes["busy"] >= 1, f"the race never happened (no attempt found the cluster busy): {outcomes}"
    assert election is not None and election.moved == to_move and not election.not_moved, election
    records = audit_of(block)
    intervals = sorted(mutation_intervals(records))
    labels = [label for *_, label in intervals]
    assert "replace_broker" in labels and "preferred_leader_election" in labels, records
    for (s1, e1, a1), (s2, e2, a2) in itertools.pairwise(intervals):
        assert e1 <= s2, f"two mutations overlapped: {a1} {s1}..{e1} and {a2} {s2}..{e2}"
    skipped = [r for r in records if r["action"] == "preferred_leader_election" and r["status"] == "skipped"]
    assert len(skipped) >= outcomes["busy"], "every busy attempt is in the audit trail as skipped"
    wait_until(lambda: full_isr(sb), timeout_s=120, what="full ISR after the race")
    result = verify_acked(sb.layout.bootstrap_servers, topic, producer.acked_keys, timeout_s=60)
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
    line = scenario_line("8 (manual election racing a replacement)", detected_after(reports, times, t_kill),
                         healed_s, stats, result)  # fmt: skip
    scenarios.report(f"{line}; election attempts {outcomes}, {len(intervals)} mutations, 0 overlaps")
