"""The replace-broker flow on the real sandbox, through a real Prefect server (test harness).

Each test saves its own cluster block (unique name, own audit topic) and replacer block pointing
at the session's sandbox; ``healthy_sandbox`` repairs the cluster before each test. The helpers
here are shared with ``test_remediate.py``.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic
from prefect.client.orchestration import get_client

from blocks.kafka_cluster import KafkaCluster
from blocks.replacers import SandboxReplacer, ScriptReplacer
from blocks.sandbox import sandbox_cluster
from flows.health_check import health_check
from flows.replace_broker import ReplaceBrokerParams, replace_broker
from kafka_medic.audit import read_audit
from kafka_medic.monitor.cluster_reads import describe_partitions
from kafka_medic.naming import limit_name, replace_limit_name
from kafka_medic.policy import HealthPolicy, Mode
from kafka_medic.reports.replace import ReplaceFailed, ReplaceStatus
from kafka_medic.sandbox.cluster import Sandbox
from tasks.locks import cluster_lock, ensure_cluster_limits
from tasks.state import cluster_state
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

#: The audit topic lives on brokers the tests never kill (racks a, c, b), so audit writes always
#: succeed even with two brokers down (acks=all, min ISR 2).
AUDIT_BROKERS = [1, 3, 5]


# -- helpers (also used by test_remediate.py) ------------------------------------------------------------


def directory_id(sb: Sandbox, broker_id: int) -> str | None:
    """The log dir's ``directory.id``: a new one proves the broker got an empty, freshly formatted disk."""
    path = sb.layout.data_dir(sb.layout.broker(broker_id)) / "meta.properties"
    try:
        for line in path.read_text().splitlines():
            if line.startswith("directory.id="):
                return line.split("=", 1)[1].strip()
    except OSError:
        return None
    return None


def create_audit_topic(sb: Sandbox, topic: str) -> None:
    admin = sb.admin()
    fut = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replica_assignment=[AUDIT_BROKERS], config={"min.insync.replicas": "2"})],
        request_timeout=15,
    )
    fut[topic].result(timeout=20)
    wait_until(lambda: len(describe_partitions(admin, [topic])) == 1, timeout_s=20, what=f"{topic} visible")


async def save_cluster(sb: Sandbox, *, replacer_block: Any = None, prefix: str = "rb", **policy: Any) -> KafkaCluster:
    """A cluster block for the sandbox with its own replacer block, audit topic and limits."""
    suffix = uuid.uuid4().hex[:8]
    name = f"{prefix}-{suffix}"
    replacer_block = replacer_block or SandboxReplacer(state_dir=str(sb.layout.state_dir))
    await replacer_block.save(f"r-{suffix}", overwrite=True)
    ref = f"{type(replacer_block).get_block_type_slug()}/r-{suffix}"
    defaults: dict[str, Any] = {
        "mode": Mode.AUTO,
        "dead_broker_grace_s": 2,
        "replacement_cooldown_s": 5,
        "verify_timeout_s": 180,
        "approval_timeout_s": 60,
    }
    topic = f"audit-{name}"
    create_audit_topic(sb, topic)
    block = sandbox_cluster(
        sb, name=name, replacer=ref, audit_topic=topic, policy=HealthPolicy(**{**defaults, **policy})
    )
    await block.save(name, overwrite=True)
    await ensure_cluster_limits(name)
    return block


def audit_of(block: KafkaCluster) -> list[dict[str, Any]]:
    return read_audit(block.confluent_config(), block.audit_topic)


def statuses(records: list[dict[str, Any]], action: str | None = None) -> list[str]:
    return [r["status"] for r in records if action is None or r["action"] == action]


async def active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


async def poll(fn: Any, timeout_s: float, what: str, interval_s: float = 1.0) -> Any:
    """Call async ``fn`` until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r})")


async def remember_brokers(name: str, cycles: int = 1) -> None:
    """One observe-only cycle so the health check remembers every broker (host, rack)."""
    for _ in range(cycles):
        await health_check(name, act=False)


# -- tests -------------------------------------------------------------------------------------------------


async def test_dry_run_checks_everything_and_changes_nothing(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb)
    await remember_brokers(block.name)
    before = directory_id(sb, 3)
    pid = sb.pid_of(sb.layout.broker(3))

    res = await replace_broker(block.name, ReplaceBrokerParams(broker_id=3, reason="test dry run"))

    assert res.status is ReplaceStatus.PLANNED and res.dry_run, res
    assert "would" in res.message and "broker 3" in res.message
    assert res.outcome and res.outcome["action"] == "plan"
    assert directory_id(sb, 3) == before and sb.pid_of(sb.layout.broker(3)) == pid
    assert statuses(audit_of(block)) == ["planned"]
    assert await cluster_state(block.name).last_success("replace_broker") is None


async def test_refuses_a_wipe_that_would_drop_partitions_below_min_isr(healthy_sandbox: Sandbox, topic_factory) -> None:
    sb = healthy_sandbox
    # Explicit placement, so the outcome never depends on where Kafka happened to put replicas:
    # with broker 2 dead, wiping broker 4 leaves p0 and p1 ({2,4,x}) one in-sync replica (min ISR 2);
    # p2 and p3 do not involve broker 4, and p4 keeps two in-sync replicas without it.
    placement = [[2, 4, 3], [4, 2, 6], [1, 3, 5], [5, 6, 1], [4, 3, 5]]  # one replica per AZ (a: 1 4, b: 2 5, c: 3 6)
    topic = topic_factory(replicas=placement, config={"min.insync.replicas": "2"})
    block = await save_cluster(sb)
    await remember_brokers(block.name)
    sb.kill(2)
    sb.wait_unregistered(2, timeout_s=20)
    # the ISR shrinks a few seconds after the kill (replica.lag.time.max.ms)
    wait_until(
        lambda: all(2 not in isr for isr in describe_partitions(sb.admin())["isr"]), timeout_s=30, what="ISR shrink"
    )
    before, pid = directory_id(sb, 4), sb.pid_of(sb.layout.broker(4))

    # broker 4 is healthy, but with broker 2 gone, wiping it leaves partitions on {2,4,x} with one replica
    res = await replace_broker(block.name, ReplaceBrokerParams(broker_id=4, dry_run=False, cooldown_s=0))

    assert res.status is ReplaceStatus.REFUSED, res
    assert "below min.insync.replicas" in res.message
    mine = sorted(p for p in res.partitions if p.startswith(f"{topic}-"))
    assert mine == [f"{topic}-0", f"{topic}-1"], res.partitions  # exactly the {2,4,x} partitions of the placement
    assert any(p in res.message for p in res.partitions), "the refusal names the partitions"
    assert directory_id(sb, 4) == before and sb.pid_of(sb.layout.broker(4)) == pid
    records = audit_of(block)
    assert statuses(records) == ["refused"]
    assert records[0]["details"]["partitions"]
    for kind in ("mutate", "replace"):
        assert await active_slots(limit_name(block.name, kind)) == 0
    assert res.partitions[0] in await outcome_artifact(block.name, "REFUSED"), "the refusal is on the run's page"


async def outcome_artifact(cluster: str, status: str) -> str:
    """The latest replace-broker outcome artifact of ``cluster``; asserts its heading names ``status``."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async with get_client() as client:
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"replace-broker-{cluster}"])),
            sort=ArtifactSort.CREATED_DESC, limit=1,
        )  # fmt: skip
    assert arts, f"no replace-broker artifact for {cluster}"
    text = str(arts[0].data)
    assert text.startswith("# Broker ") and f": {status}" in text.splitlines()[0], text[:300]
    return text


async def test_busy_cluster_and_cooldown_are_skips_not_failures(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb, replacement_cooldown_s=3600)
    before = directory_id(sb, 5)

    # 1) a manual drain (stand-in: the mutate lock held by another task) -> busy, nothing touched
    held, release = asyncio.Event(), asyncio.Event()

    async def manual_drain() -> None:
        async with cluster_lock(block.name, kind="mutate"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(manual_drain())
    try:
        await asyncio.wait_for(held.wait(), 30)
        res = await replace_broker(block.name, ReplaceBrokerParams(broker_id=5, dry_run=False))
    finally:
        release.set()
        await asyncio.wait_for(holder, 30)
    assert res.status is ReplaceStatus.BUSY and "busy" in res.message, res
    # the replace lock it took first was released again
    assert await active_slots(replace_limit_name(block.name)) == 0

    # 2) inside the cooldown window -> skipped with the seconds left
    await cluster_state(block.name).record_success("replace_broker")
    res = await replace_broker(block.name, ReplaceBrokerParams(broker_id=5, dry_run=False))
    assert res.status is ReplaceStatus.SKIPPED and "cooling down" in res.message, res
    assert res.remaining_cooldown_s is not None and 3500 < res.remaining_cooldown_s <= 3600

    assert directory_id(sb, 5) == before
    records = audit_of(block)
    assert statuses(records) == ["skipped", "skipped"]
    assert records[0]["details"]["why"] == "busy"
    assert records[1]["details"]["why"] == "cooldown" and records[1]["details"]["remaining_s"] > 3500


async def test_replacer_failure_is_audited_clearly_and_releases_the_locks(
    healthy_sandbox: Sandbox, tmp_path: Path
) -> None:
    sb = healthy_sandbox
    script = tmp_path / "replace.py"
    script.write_text(
        "import sys\nprint('terminating', sys.argv[1])\nprint('no capacity', file=sys.stderr)\nsys.exit(7)\n"
    )
    block = await save_cluster(sb, replacer_block=ScriptReplacer(argv=[sys.executable, str(script), "{host}"]))
    await remember_brokers(block.name)

    with pytest.raises(ReplaceFailed, match="exited with code 7") as info:
        await replace_broker(block.name, ReplaceBrokerParams(broker_id=6, dry_run=False, cooldown_s=0))
    assert "no capacity" in str(info.value) and "127.0.0.1" in str(info.value)  # host was passed and echoed
    records = audit_of(block)
    assert statuses(records) == ["started", "failed"]
    assert records[1]["details"]["replacer"]["exit_code"] == 7
    for kind in ("mutate", "replace"):
        assert await active_slots(limit_name(block.name, kind)) == 0
    assert await cluster_state(block.name).last_success("replace_broker") is None, "no cooldown after a failure"
    assert "exited with code 7" in await outcome_artifact(block.name, "FAILED")


async def test_a_dead_broker_holding_the_only_copy_of_offline_partitions_is_restarted_with_its_disk(
    healthy_sandbox: Sandbox, topic_factory
) -> None:
    sb = healthy_sandbox
    # Explicit placement: one partition whose only replica is broker 4 (RF 1, min ISR 1), so killing
    # broker 4 leaves it offline with its only copy on broker 4's disk -- a wipe would lose it, a
    # restart with the disk is what brings it back.
    topic = topic_factory(replicas=[[4]], config={"min.insync.replicas": "1"})
    block = await save_cluster(sb)
    await remember_brokers(block.name)
    before = directory_id(sb, 4)
    sb.kill(4)  # the JVM crashed; the machine and its disk are fine
    sb.wait_unregistered(4, timeout_s=20)
    wait_until(lambda: int(describe_partitions(sb.admin(), [topic])["leader"].iloc[0]) < 0, timeout_s=30,
               what=f"{topic}-0 offline")  # fmt: skip

    res = await replace_broker(
        block.name, ReplaceBrokerParams(broker_id=4, dry_run=False, try_restart_first=True, cooldown_s=0)
    )

    assert res.status is ReplaceStatus.RESTARTED, res
    assert directory_id(sb, 4) == before, "restarted with its disk, never wiped"
    wait_until(lambda: int(describe_partitions(sb.admin(), [topic])["leader"].iloc[0]) == 4, timeout_s=30,
               what=f"{topic}-0 back online, led by broker 4")  # fmt: skip
    assert statuses(audit_of(block), "restart_broker") == ["started", "finished"]
    assert statuses(audit_of(block), "replace_broker") == []


async def test_restart_first_keeps_the_disk_when_a_restart_is_enough(healthy_sandbox: Sandbox) -> None:
    sb = healthy_sandbox
    block = await save_cluster(sb)
    await remember_brokers(block.name)
    before = directory_id(sb, 1)
    old_pid = sb.pid_of(sb.layout.broker(1))

    # broker 1 is registered and its JVM answers: "maybe dead" in Orion's words -> restart first
    res = await replace_broker(
        block.name, ReplaceBrokerParams(broker_id=1, dry_run=False, try_restart_first=True, cooldown_s=0)
    )

    assert res.status is ReplaceStatus.RESTARTED, res
    assert sb.pid_of(sb.layout.broker(1)) != old_pid, "the broker process was restarted"
    assert directory_id(sb, 1) == before, "a restart keeps the disk"
    assert statuses(audit_of(block), "restart_broker") == ["started", "finished"]
    assert await cluster_state(block.name).last_success("replace_broker") is None
