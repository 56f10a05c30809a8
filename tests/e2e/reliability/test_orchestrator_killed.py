"""Reliability scenario 5: the orchestrator process is SIGKILLed in the middle of a throttled
reassignment; the next runs neither duplicate nor fight its work, the move completes (adopted from
the journal), its throttles do not stay behind, and its cluster lock is not held forever.

The orchestrator is a real, separate Python process (``tests/e2e/reliability/reassign_child.py``)
running the ``reassign`` flow against a real Prefect server (``prefect server start``): the
session's test harness runs Prefect's server in ephemeral mode, without the repossessor service
that frees the slots of expired leases, so it cannot show how a dead holder's lock ends. Kafka
keeps moving the partitions after the kill; nothing else is mocked.

What a new run must do, in order:
1. right after the kill: the dead process's lease still holds the mutate lock -> "busy", and
   nothing is submitted, cancelled or unthrottled (no duplicate, no conflicting action);
2. the lease expires without renewals and the server's repossessor frees the slot (bounded);
3. the next run adopts the journal: waits for the dead run's moves, removes exactly its
   throttles, clears the journal, re-plans on a fresh snapshot and completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flows.reassign import ReassignParams, reassign
from kafka_medic.executor.journal import decode
from kafka_medic.loadgen import AckedProducer, verify_acked
from kafka_medic.monitor import kip455
from kafka_medic.naming import mutate_limit_name
from kafka_medic.sandbox.cluster import Sandbox
from tests import scenarios
from tests.e2e.reliability.conftest import RealPrefect
from tests.flows.test_reassign import audit_of, create_topic, fill, journal_value, replica_map, save_cluster
from tests.flows.test_remediate import full_isr, scenario_line
from tests.flows.test_replace_broker import active_slots, poll
from tests.topics import drop_topics
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio]

REPO = Path(__file__).resolve().parents[3]
DRAINED = 5
#: Three partitions with a replica on broker 5 (az-b); drained, they all go to broker 2 (az-b).
ASSIGNMENT = [[5, 1, 3], [1, 5, 3], [3, 1, 5]]
MB_PER_PARTITION = 6.0
THROTTLE = 300_000  # bytes/s into broker 2: ~60 s of copying, so the kill lands mid-move
LEASE_S = 60.0  # the server's minimum lease; production uses tasks.locks.DEFAULT_LEASE_S (300 s)
RECLAIM_TIMEOUT_S = 180.0  # lease + the repossessor's 15 s loop, with room for a loaded machine


def child_env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_KEY"}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_LOGGING_TO_API_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def reassigning(sb: Sandbox, topic: str) -> set[int]:
    """Partitions of ``topic`` Kafka is moving right now."""
    with kip455.kafka_python_admin({"bootstrap_servers": sb.layout.bootstrap_servers.split(",")}) as admin:
        df = kip455.list_reassignments(admin)
    return {int(p) for t, p in zip(df["topic"], df["partition"], strict=True) if t == topic}


def our_throttles(sb: Sandbox) -> list[str]:
    """Every replication throttle in the cluster (none are set by anyone else in this test)."""
    from tests.flows.test_reassign import throttles_now

    rates, lists = throttles_now(sb)
    return [f"broker {b} {c}" for b, c in rates] + [f"topic {t} {c}" for t, c in lists]


async def test_orchestrator_killed_mid_reassignment_is_adopted_not_duplicated(
    healthy_sandbox: Sandbox, real_prefect: RealPrefect, tmp_path: Path
) -> None:
    sb = healthy_sandbox
    topic = create_topic(sb, ASSIGNMENT, prefix="kill")
    try:
        await scenario(sb, topic, real_prefect.api_url, tmp_path / "orchestrator.log")
    finally:
        drop_topics(sb, [topic])


async def scenario(sb: Sandbox, topic: str, api_url: str, log_path: Path) -> None:
    """Start the orchestrator, kill it mid-move, run again twice, check what is left; then report."""
    child: subprocess.Popen[bytes] | None = None
    load: AckedProducer | None = None
    try:
        fill(sb, topic, len(ASSIGNMENT), MB_PER_PARTITION)
        name = await save_cluster(sb)
        mutate_limit = mutate_limit_name(name)
        load = AckedProducer(sb.layout.bootstrap_servers, topic, rate=100).start()
        params = ReassignParams(
            kind="drain", brokers=[DRAINED], dry_run=False, throttle_bytes_per_sec=THROTTLE,
            max_moves_per_broker=100, timeout_s=900, actor="orchestrator-1", reason="scenario 5",
        )  # fmt: skip
        child_module = "tests.e2e.reliability.reassign_child"
        argv = [sys.executable, "-m", child_module, name, params.model_dump_json(), str(LEASE_S)]
        with open(log_path, "wb") as log:
            child = subprocess.Popen(
                argv,
                cwd=REPO, env=child_env(api_url), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

        # -- kill it while our topic's moves run, throttled, journaled, lock held
        async def mid_move() -> dict[str, Any] | None:
            if child is not None and child.poll() is not None:
                raise AssertionError(f"the orchestrator ended before the kill:\n{log_path.read_text()[-3000:]}")
            journal = await journal_value(name)
            if not journal or topic not in journal.get("m", {}) or not our_throttles(sb):
                return None
            return journal if reassigning(sb, topic) else None

        journal = await poll(mid_move, 150, "the orchestrator's moves of our topic in flight")
        dead_run = journal["run"]
        assert await active_slots(mutate_limit) == 1
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        t_kill = time.monotonic()
        in_flight = reassigning(sb, topic)
        throttles_at_kill = our_throttles(sb)
        assert in_flight, "killed in the middle of the moves"

        # -- 1. a new run right away: the dead holder's lease still holds the lock -> skipped, hands off
        skipped = await reassign(name, params.model_copy(update={"actor": "orchestrator-2"}))
        assert skipped.status == "busy" and "is busy" in skipped.summary, skipped.summary
        assert skipped.adoption is None and skipped.execution is None
        assert reassigning(sb, topic) <= in_flight, "no move submitted or changed by the skipped run"
        assert our_throttles(sb), "the dead run's throttles are left to its adopter, not removed mid-move"
        journal_now = await journal_value(name)
        assert journal_now is not None and journal_now["run"] == dead_run
        # What the adopter must wait for: the moves Kafka was running at the kill. A move is journaled
        # before it is submitted and moves go in batches, so the journal may also hold moves that
        # never started (CI: killed with 2 of our 3 running, and once with one journaled, not yet
        # submitted); those are reported as still on their original replicas and re-planned.
        running = {f"{topic}-{p}" for p in in_flight}
        journaled = {f"{m.topic}-{m.partition}" for m in decode(journal_now, name).moves}
        assert running <= journaled, (running, journaled)

        # -- 2. the lock is not held forever: the lease expires, the server frees the slot
        async def lock_free() -> bool:
            return await active_slots(mutate_limit) == 0

        await poll(lock_free, RECLAIM_TIMEOUT_S, "the dead orchestrator's lock to be reclaimed", interval_s=2)
        reclaimed_s = time.monotonic() - t_kill

        # -- 3. the next run adopts the journal and completes
        report = await reassign(name, params.model_copy(update={"actor": "orchestrator-3"}))
        healed_s = time.monotonic() - t_kill
        await asyncio.sleep(2)  # keep producing on the finished layout for a moment
    finally:
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        stats = load.stop() if load is not None else None

    assert report.status in ("completed", "nothing_to_do"), report.summary
    adoption = report.adoption
    assert adoption is not None and adoption["run_id"] == dead_run, adoption
    assert adoption["actor"] == "orchestrator-1" and not adoption["still_running"]
    assert running <= set(adoption["finished"]), adoption
    assert set(adoption["finished"]) | set(adoption["diverged"]) == journaled, adoption
    other = {k: why for k, why in adoption["diverged"].items() if "never submitted" not in why}
    assert not other, f"only moves that never started may differ from their target: {adoption}"
    layout = replica_map(sb)
    assert not [k for k, r in layout.items() if DRAINED in r], "everything moved off the drained broker"
    assert all(2 in layout[(topic, p)] for p in range(len(ASSIGNMENT))), "same-AZ replacement"
    assert our_throttles(sb) == [], "no throttle left behind"
    assert await journal_value(name) is None, "journal cleared"
    assert await active_slots(mutate_limit) == 0, "lock released"
    wait_until(lambda: full_isr(sb), timeout_s=60, what="full ISR after the adopted moves")

    records = audit_of(sb, name)
    by_actor: dict[str, list[str]] = {}
    for r in records:
        by_actor.setdefault(r["actor"], []).append(r["status"])
    # died before finishing: the adopting run wrote the end of its trail, under its run id
    assert by_actor.get("orchestrator-1") == ["planned", "started", "failed"], by_actor
    closing = [r for r in records if r["actor"] == "orchestrator-1"][-1]
    assert "ended without closing its trail" in closing["summary"] and "adopted its work" in closing["summary"]
    assert by_actor.get("orchestrator-2") == ["skipped"], by_actor
    assert by_actor.get("orchestrator-3", [])[-1] == "finished", by_actor

    assert stats is not None
    result = verify_acked(sb.layout.bootstrap_servers, topic, load.acked_keys if load else set(), timeout_s=60)
    scenarios.report(
        scenario_line("5 (orchestrator SIGKILLed mid-reassignment)", reclaimed_s, healed_s, stats, result)
        + f"; detected = dead holder's lock reclaimed (lease {LEASE_S:.0f}s), healed = adopting run done; "
        f"{len(in_flight)} of our moves in flight at the kill, throttles then: {len(throttles_at_kill)}, after: 0; "
        f"adopted {adoption['moves']} moves ({len(adoption['finished'])} finished), waited {adoption['waited_s']}s; "
        f"outcome {report.status}"
    )
    assert stats.acked > 0 and result.lost == 0, f"{result.lost} acknowledged messages lost ({stats})"
