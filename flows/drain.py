"""``drain-broker`` / ``undrain-broker``: move every replica off a broker, and undo that later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from flows.maintenance_common import LOCK_WAIT, Audit, cluster_lock, load_block, read_partitions
from kafka_medic import coordination
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.maintenance.election import PartitionKey
from kafka_medic.maintenance.rollback import Rollback, pack_json, replica_map, rollback_entries, undrain_moves

#: Longest JSON kept in a Prefect Variable (the server refuses values over 5000 characters).
VARIABLE_MAX_CHARS = 4500


class DrainParams(BaseModel):
    """Move every replica off one broker (decommission, hardware work)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_id: int = Field(..., ge=0, description="The broker to empty.")
    dry_run: bool = Field(True, description="Only plan and show the moves and their cost; move nothing.")
    exclude: list[int] = Field(
        default_factory=list, description="Brokers that must not receive replicas (e.g. next to be drained)."
    )
    timeout_s: float = Field(
        6 * 3600.0, ge=5, le=7 * 86_400, description="How long the moves may take before the run stops waiting."
    )
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")
    lock_wait_s: float = LOCK_WAIT


class UndrainParams(BaseModel):
    """Put back the replicas a drain moved off a broker (after the hardware work is done)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_id: int = Field(..., ge=0, description="The drained broker to fill again.")
    dry_run: bool = Field(True, description="Only show which partitions would move back; move nothing.")
    timeout_s: float = Field(
        6 * 3600.0, ge=5, le=7 * 86_400, description="How long the moves may take before the run stops waiting."
    )
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")
    lock_wait_s: float = LOCK_WAIT


class DrainReport(BaseModel):
    action: str = Field(description='"drain" or "undrain"')
    cluster: str
    broker_id: int
    dry_run: bool
    moves: int = Field(description="partitions moved (or to move, in a dry run)")
    summary: str
    plan: dict[str, Any] | None = Field(None, description="planner output (moves, cost, unplaceable)")
    rollback_stored_in: str | None = Field(None, description="Prefect Variable(s) holding the undo")
    remaining_on_broker: int | None = Field(None, description="replicas still on the broker afterwards")
    reassign: dict[str, Any] | None = Field(None, description="the reassign flow's report (drain)")
    execution: dict[str, Any] | None = Field(None, description="the executor's result (undrain)")
    skipped: list[dict[str, Any]] = Field(default_factory=list, description="undrain: partitions not moved back")
    audit: list[dict[str, Any]] = Field(default_factory=list)


def _rollback_var(cluster: str, broker_id: int) -> str:
    return coordination.variable_name(cluster, "drain_rollback", str(broker_id))


def _chunk_var(cluster: str, broker_id: int, i: int) -> str:
    return coordination.variable_name(cluster, "drain_rollback", str(broker_id), f"part{i}")


async def store_rollback(cluster: str, broker_id: int, entries: Rollback, run_id: str | None) -> str:
    """Keep the undo of a drain in Prefect Variables; returns where it went.

    One Variable when it fits (the server refuses values whose JSON is over 5000 characters), else
    the moves split over numbered part Variables with the main one saying how many: a drain of a
    broker with thousands of partitions must not lose its undo.
    """
    import json

    from prefect.variables import Variable

    moves = [[t, p, list(old), list(new)] for t, p, old, new in entries]
    head = {
        "version": 1, "broker_id": broker_id, "at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_id": run_id,
    }  # fmt: skip
    name = _rollback_var(cluster, broker_id)
    tags = ["kafka-medic", f"cluster:{cluster}"]
    if len(json.dumps({**head, "moves": moves})) <= VARIABLE_MAX_CHARS:
        await Variable.aset(name, {**head, "moves": moves}, tags=tags, overwrite=True)
        return f"variable {name}"
    parts = pack_json(moves, VARIABLE_MAX_CHARS)
    for i, part in enumerate(parts):
        await Variable.aset(_chunk_var(cluster, broker_id, i), part, tags=tags, overwrite=True)
    await Variable.aset(name, {**head, "parts": len(parts)}, tags=tags, overwrite=True)
    return f"variable {name} (+{len(parts)} parts)"


async def load_rollback(cluster: str, broker_id: int) -> Rollback | None:
    """The stored undo of the drain of ``broker_id``, or None when no drain is recorded."""

    from prefect.variables import Variable

    raw = await Variable.aget(_rollback_var(cluster, broker_id), default=None)
    if raw is None:
        return None
    try:
        if "parts" in raw:
            moves = []
            for i in range(int(raw["parts"])):
                moves += await Variable.aget(_chunk_var(cluster, broker_id, i))
        else:
            moves = raw["moves"]
        return [(str(t), int(p), tuple(map(int, old)), tuple(map(int, new))) for t, p, old, new in moves]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the stored undo of the drain of broker {broker_id} is unreadable ({exc})") from None


async def clear_rollback(cluster: str, broker_id: int) -> None:
    from prefect.variables import Variable

    raw = await Variable.aget(_rollback_var(cluster, broker_id), default=None)
    if isinstance(raw, dict) and isinstance(raw.get("parts"), int):
        for i in range(raw["parts"]):
            await Variable.aunset(_chunk_var(cluster, broker_id, i))
    await Variable.aunset(_rollback_var(cluster, broker_id))


async def _record_drain(
    block: KafkaCluster, before: dict[PartitionKey, tuple[int, ...]], b: int, run_id: str | None, report: DrainReport
) -> None:
    """Store the undo of whatever the drain moved (all, part or nothing); never masks the drain's error."""
    try:
        after = replica_map(await read_partitions(block))
        entries = rollback_entries(before, after, b)
        if entries:
            report.rollback_stored_in = await store_rollback(block.name, b, entries, run_id)
        report.moves = len(entries)
        report.remaining_on_broker = sum(b in reps for reps in after.values())
    except Exception as exc:
        get_run_logger().error("could not record the undo of the drain of broker %s: %s", b, exc)


def _dump(result: Any) -> dict[str, Any]:
    return result.model_dump(mode="json") if isinstance(result, BaseModel) else dict(result)


@flow(name="drain-broker", timeout_seconds=7 * 86_400, retries=0)
async def drain_broker(cluster: str, params: DrainParams) -> DrainReport:
    """Move every replica off ``params.broker_id``; the exact undo is stored for ``undrain-broker``.

    Planning and execution are the ``reassign`` flow's (rack-aware minimal plan, safety check,
    cluster lock, throttles, journal, ISR verification); this flow adds what an operator expects of
    a drain: the undo (each moved partition's previous replica list, taken from the cluster before
    and after, so it is exact even for a drain that stopped halfway) kept in a Prefect Variable.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: The broker to empty, dry run or not, brokers to avoid, time limits.
    """
    from flows.reassign import ReassignmentIncomplete, ReassignParams, reassign

    block = await load_block(cluster)
    b = params.broker_id
    audit = Audit(block, "drain_broker")
    request = ReassignParams(
        kind="drain", brokers=[b], exclude=params.exclude, dry_run=params.dry_run, timeout_s=params.timeout_s,
        lock_wait_s=params.lock_wait_s, actor=audit.actor[:200], reason=params.reason,
    )  # fmt: skip
    report = DrainReport(action="drain", cluster=cluster, broker_id=b, dry_run=params.dry_run, moves=0, summary="")
    if params.dry_run:
        result = await reassign(cluster, request)
        report.reassign, report.plan, report.moves = _dump(result), result.plan, result.moves
        report.summary = result.summary
        await audit(AuditStatus.PLANNED, f"drain of broker {b}: {result.summary}", [b])
        report.audit = audit.records
        await acreate_markdown_artifact(key=f"drain-{cluster}-{b}", markdown=_drain_markdown(report))
        return report

    before = replica_map(await read_partitions(block))
    await audit(AuditStatus.STARTED, f"draining broker {b}" + (f": {params.reason}" if params.reason else ""), [b])
    failure: BaseException | None = None
    try:
        result = await reassign(cluster, request)
    except ReassignmentIncomplete as exc:
        result, failure = exc.report, exc
    except Exception as exc:
        await _record_drain(block, before, b, audit.run_id, report)
        await audit(AuditStatus.FAILED, f"drain of broker {b} failed: {exc}", [b])
        raise
    report.reassign, report.plan = _dump(result), result.plan
    if result.status == "skipped":
        await audit(AuditStatus.SKIPPED, result.summary, [b])
        raise coordination.ClusterBusy(result.summary)
    await _record_drain(block, before, b, audit.run_id, report)
    left = report.remaining_on_broker
    report.summary = f"broker {b} drained: {report.moves} partition(s) moved, {left} replica(s) left on it"
    if report.rollback_stored_in:
        report.summary += f"; undo stored in {report.rollback_stored_in}"
    ok = failure is None and left == 0
    await audit(AuditStatus.FINISHED if ok else AuditStatus.FAILED, report.summary, [b])
    report.audit = audit.records
    await acreate_markdown_artifact(key=f"drain-{cluster}-{b}", markdown=_drain_markdown(report))
    get_run_logger().info("[%s] %s", cluster, report.summary)
    if failure is not None:
        raise SafetyError(f"{failure}; {report.summary}") from failure
    if left is None:
        raise SafetyError(f"broker {b}: the drain ran ({result.summary}) but its undo could not be recorded")
    if left:
        raise SafetyError(f"{report.summary}: {result.summary}")
    return report


@flow(name="undrain-broker", timeout_seconds=7 * 86_400, retries=0)
async def undrain_broker(cluster: str, params: UndrainParams) -> DrainReport:
    """Undo a drain: move each partition the drain took off the broker back to its old replica list.

    Uses the undo stored by ``drain-broker`` (exact previous replica lists, preferred leader
    included) and the same executor as ``reassign`` (safety check on a fresh snapshot, throttles,
    journal), under the cluster lock; then verifies the moved partitions' ISR. Partitions changed
    since the drain are skipped and listed, never overwritten. The broker must be alive.

    Args:
        cluster: Name of the cluster (its KafkaCluster block), e.g. "sandbox".
        params: The drained broker, dry run or not, time limits.
    """
    from flows.verify_isr import wait_isr_full as verify_full
    from kafka_medic.executor import ClusterOps, ExecutionOptions, PrefectJournalStore, execute_plan

    block = await load_block(cluster)
    b = params.broker_id
    audit = Audit(block, "undrain_broker")
    entries = await load_rollback(cluster, b)
    if entries is None:
        raise ConfigError(f"no drain of broker {b} is recorded for cluster {cluster!r}; nothing to undo")
    moves, skipped = undrain_moves(entries, replica_map(await read_partitions(block)), b)
    report = DrainReport(
        action="undrain", cluster=cluster, broker_id=b, dry_run=params.dry_run, moves=len(moves), skipped=skipped,
        summary=f"{len(moves)} partition(s) to move back onto broker {b}, {len(skipped)} skipped",
        plan={"moves": [m.to_dict() for m in moves], "unplaceable": []},
    )  # fmt: skip
    if params.dry_run:
        await audit(AuditStatus.PLANNED, f"dry run: {report.summary}", [b], details={"skipped": skipped[:200]})
    elif moves:
        options = ExecutionOptions(
            throttle_bytes_per_sec=int(block.policy.throttle_bytes_per_sec), timeout_s=params.timeout_s
        )
        try:
            async with cluster_lock(cluster, params.lock_wait_s) as lock:
                await audit(AuditStatus.STARTED, report.summary, [b], details={"reason": params.reason})
                with ClusterOps(block) as ops:
                    result = await execute_plan(
                        ops, PrefectJournalStore(), moves, cluster=cluster, run_id=audit.run_id or "local",
                        actor=audit.actor, options=options, guard=lock.ensure_held,
                    )  # fmt: skip
                report.execution = result.to_dict()
                if not result.ok:
                    raise SafetyError(f"moving replicas back onto broker {b}: {result.summary()}")
                await verify_full(
                    block, partitions=[(m.topic, m.partition) for m in moves], timeout_s=block.policy.verify_timeout_s
                )
        except coordination.ClusterBusy as exc:
            await audit(AuditStatus.SKIPPED, str(exc), [b])
            raise
        except Exception as exc:
            await audit(AuditStatus.FAILED, f"undrain of broker {b} failed: {exc}", [b])
            raise
        await clear_rollback(cluster, b)
        report.summary = f"{len(moves)} partition(s) moved back onto broker {b}, {len(skipped)} skipped"
        await audit(AuditStatus.FINISHED, report.summary, [b], details={"skipped": skipped[:200]})
    else:
        await clear_rollback(cluster, b)
        await audit(AuditStatus.SKIPPED, f"nothing to move back onto broker {b}", [b], details={"skipped": skipped})
    report.audit = audit.records
    await acreate_markdown_artifact(key=f"undrain-{cluster}-{b}", markdown=_drain_markdown(report))
    return report


def _drain_markdown(r: DrainReport) -> str:
    lines = [
        f"# {r.action.capitalize()} of broker {r.broker_id} on `{r.cluster}`" + (" (dry run)" if r.dry_run else "")
    ]
    lines += ["", f"**{r.summary}**"]
    if r.rollback_stored_in:
        lines += ["", f"Undo stored in {r.rollback_stored_in}: run `undrain-broker` to put the replicas back."]
    moves = (r.plan or {}).get("moves") or []
    if moves:
        lines += ["", "| partition | from | to |", "|---|---|---|"]
        lines += [f"| {m['topic']}-{m['partition']} | {m['old_replicas']} | {m['new_replicas']} |" for m in moves[:500]]
    if r.skipped:
        lines += ["", "| partition | skipped because |", "|---|---|"]
        lines += [f"| {s['partition']} | {s['reason']} |" for s in r.skipped[:500]]
    return "\n".join(lines)
