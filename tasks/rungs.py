"""The rungs of the healing ladder: each one audited, verified, and remembered.

* :func:`restart_rung` -- restart the broker keeping its disk (Orion's first step for a "maybe dead"
  broker); it healed the broker if it registers again, catches up and no liveness or disk finding
  about it remains;
* :func:`replace_rung` -- give it a fresh machine/disk (the same broker id) and wait until the new
  incarnation serves and its replicas are back in sync.

A rung runs inside a :class:`HealRun` (the caller holds the cluster's locks and has judged, on a
fresh look, that the step is safe); it checks before each mutating step that the locks are still
held, and records its success (cooldowns count from success, never from an attempt).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger

from blocks.kafka_cluster import KafkaCluster
from blocks.load import aload_replacer
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ConfigError, StoodDown
from kafka_medic.findings import Finding
from kafka_medic.heal import REPLACE_ACTION, RESTART_ACTION, restart_action, still_broken
from kafka_medic.planner import replacement_cost
from kafka_medic.replacers import Replacer, ReplacerError
from kafka_medic.reports.replace import ReplaceBrokerResult, ReplaceFailed, ReplaceStatus
from kafka_medic.snapshot import ClusterSnapshot
from tasks.audit import RunAudit
from tasks.collect import look_now
from tasks.leadership import give_back
from tasks.locks import LockHandle
from tasks.reassign import tidy_after_heal
from tasks.state import cluster_state
from tasks.verify import verify_after, wait_in_sync, wait_registered


@dataclass
class HealRun:
    """One healing run of one broker: what it acts on, its audit trail, the locks it holds, its timings.

    ``register_timeout_s``: how long a new incarnation may take to register; ``restart_check_s``: how
    long a restarted broker may take to look healthy; ``verify_s``: how long to wait for its replicas.
    """

    block: KafkaCluster
    broker_id: int
    audit: RunAudit
    replacer: Replacer
    verify_s: float
    register_timeout_s: float
    restart_check_s: float
    reason: str = ""
    handles: list[LockHandle] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # what the run learned on the way (on its result)
    snapshot: ClusterSnapshot | None = None  # the last look the run judged on (for the replacement's cost)
    timings: dict[str, float] = field(default_factory=dict)
    t_start: float = field(default_factory=time.monotonic)

    @classmethod
    async def open(cls, block: KafkaCluster, action: str, params: Any, *, register_timeout_s: float) -> HealRun:
        """The run a restart or replacement asked for: ``params`` carries ``broker_id``, ``actor``,
        ``reason``, ``verify_timeout_s`` and ``restart_check_s``. A missing or mistyped replacer
        fails here, before any lock is taken."""
        b = params.broker_id
        return cls(
            block, b, RunAudit(block, action, actor=params.actor, brokers=(b,)), await aload_replacer(block),
            verify_s=params.verify_timeout_s or block.policy.verify_timeout_s, register_timeout_s=register_timeout_s,
            restart_check_s=params.restart_check_s, reason=params.reason,
        )  # fmt: skip

    def held(self) -> None:
        """Before each mutating step: stop if a lock's lease could not be kept."""
        for h in self.handles:
            h.ensure_held()

    def result(self, status: ReplaceStatus, message: str, *, dry_run: bool, **extra: Any) -> ReplaceBrokerResult:
        self.timings["total_s"] = round(time.monotonic() - self.t_start, 3)
        get_run_logger().info("[%s] broker %s: %s: %s", self.block.name, self.broker_id, status.value, message)
        return ReplaceBrokerResult(
            cluster=self.block.name, broker_id=self.broker_id, status=status, message=message, dry_run=dry_run,
            timings=dict(self.timings), audit=self.audit.records, notes=dict(self.notes), **extra,
        )  # fmt: skip


async def started_or_stand_down(run: HealRun, summary: str, **details: Any) -> None:
    """Write the "started" record BEFORE a destructive step; raise :class:`StoodDown` if it could not
    be written. Why a gate: a wipe nobody can later find in the audit trail is worse than a wipe
    postponed (seen: the "started" record of a replacement lost to an audit topic timing out)."""
    record = await run.audit(AuditStatus.STARTED, summary, **details)
    written = next((r.get("written") for r in reversed(run.audit.records) if r.get("id") == record.id), False)
    if not written:
        raise StoodDown(
            f"stood down: the audit trail is unwritable (topic {run.block.audit_topic!r}), so broker "
            f"{run.broker_id} is not touched; nothing was changed"
        )


def replacement_cost_record(run: HealRun) -> dict[str, Any] | None:
    """What the replacement copies (``CostEstimate.record()``) on the run's last look; None without
    one. Why on the record: a replacement re-fetches every replica the broker held, for hours, across
    AZs; the trail should say so. An estimate that cannot be made says why instead of failing the run."""
    if run.snapshot is None:
        return None
    try:
        return replacement_cost(run.snapshot, run.broker_id, run.block.policy).record()
    except ConfigError as exc:
        return {"error": str(exc)[:500]}


async def replace_rung(run: HealRun, host: str) -> ReplaceBrokerResult:
    b, audit = run.broker_id, run.audit
    run.held()
    # The "started" record is a gate, written before the replacer touches anything, and it carries
    # what the replacement will copy (a pass over the partitions: milliseconds here, ~1 s at 1M).
    cost = await asyncio.to_thread(replacement_cost_record, run)
    if cost is not None:
        run.notes["cost"] = cost
    await started_or_stand_down(run, f"replacing broker {b} ({run.replacer.kind} replacer)", reason=run.reason,
                                host=host, cost=cost)  # fmt: skip
    t0 = time.monotonic()
    try:
        outcome = await asyncio.to_thread(run.replacer.replace, b, host)
    except ReplacerError as exc:
        changed = {True: "something was changed", False: "nothing was changed", None: "it may have changed things"}
        msg = f"replacer failed for broker {b} ({changed[exc.changed]}): {exc}"
        await audit(AuditStatus.FAILED, msg, changed=exc.changed, replacer=exc.details)
        raise ReplaceFailed(msg) from exc
    run.timings["replace_s"] = round(time.monotonic() - t0, 3)
    try:
        run.timings["register_s"] = round(await wait_registered(run.block, b, run.register_timeout_s), 3)
        run.held()
        checked = await verify_after(run.block, b, run.verify_s)
        verdict = str(checked.pop("isr_verdict", ""))
        run.notes["isr_verdict"] = verdict
        run.timings.update(checked)
    except TimeoutError as exc:
        msg = f"broker {b} was replaced ({outcome.summary}) but did not recover: {exc}"
        await audit(AuditStatus.FAILED, msg, outcome=outcome.to_record(), timings=run.timings)
        raise ReplaceFailed(msg) from exc
    await cluster_state(run.block.name).record_success(REPLACE_ACTION)
    leaders = await _end_clean(run)
    msg = f"broker {b} replaced and back in sync ({verdict}): {outcome.summary}; {_leaders_line(leaders)}"
    await audit(AuditStatus.FINISHED, msg, outcome=outcome.to_record(), timings=run.timings, leaders=leaders,
                leftovers=run.notes.get("leftovers"))  # fmt: skip
    return run.result(ReplaceStatus.REPLACED, msg, dry_run=False, outcome=outcome.to_record())


async def restart_rung(run: HealRun, host: str, *, why: str = "") -> str | None:
    """Restart the broker; return a message if that healed it, None if it still needs replacing.

    "Healed" means: registered again, its replicas back in sync, and no liveness or disk finding
    about it. Latency/idle outliers are NOT judged here: a JVM that just started is cold and slow
    for a while. If it stays degraded, a later health check decides again, and because this
    restart is remembered -- the ladder's restart rung, taken whether it healed the broker or not,
    and ``restart_action``'s cooldown when it did -- the next attempt replaces instead of restarting.
    """
    b, audit = run.broker_id, run.audit
    run.held()
    await started_or_stand_down(run, f"restarting broker {b} with its disk" + (f": {why}" if why else ""),
                                action=RESTART_ACTION)  # fmt: skip
    t0 = time.monotonic()
    try:
        await asyncio.to_thread(run.replacer.restart, b, host)
        await wait_registered(run.block, b, run.restart_check_s)
        run.timings["in_sync_s"] = round(await wait_in_sync(run.block, b, min(run.verify_s, run.restart_check_s)), 3)
    except (ReplacerError, TimeoutError) as exc:
        await audit(AuditStatus.FAILED, f"restart did not bring broker {b} back: {exc}", action=RESTART_ACTION)
        return None
    run.timings["restart_s"] = round(time.monotonic() - t0, 3)
    await cluster_state(run.block.name).record_success(restart_action(b))
    still = await _still_broken(run)
    if still:
        await audit(AuditStatus.FAILED, f"broker {b} is still unhealthy after a restart ({still[0].summary}); "
                    "replacing it", action=RESTART_ACTION)  # fmt: skip
        return None
    leaders = await _end_clean(run)
    msg = f"broker {b} restarted with its disk and back in sync; {_leaders_line(leaders)}"
    await audit(AuditStatus.FINISHED, msg, action=RESTART_ACTION, timings=run.timings, leaders=leaders,
                leftovers=run.notes.get("leftovers"))  # fmt: skip
    return msg


#: Looks, and seconds between them, before a restarted broker that Kafka calls registered and in sync
#: is judged still broken: one listener probe that timed out on a loaded machine must not wipe it.
STILL_BROKEN_LOOKS, STILL_BROKEN_EVERY_S = 3, 3.0


async def _still_broken(run: HealRun) -> list[Finding]:
    """The liveness/disk findings about the restarted broker if every one of a few looks has them."""
    still: list[Finding] = []
    for i in range(STILL_BROKEN_LOOKS):
        still = still_broken((await look_now(run.block)).evaluation, run.broker_id)
        if not still:
            return []
        if i + 1 < STILL_BROKEN_LOOKS:
            await asyncio.sleep(STILL_BROKEN_EVERY_S)
    return still


async def _end_clean(run: HealRun) -> dict[str, Any]:
    """A heal ends where it started: the healed broker leads its preferred partitions again, and
    what an interrupted reassignment could not tidy while it was down (its throttle rate) is gone."""
    t0 = time.monotonic()
    leaders = await give_back(run.block, run.broker_id, min(60.0, run.verify_s))
    run.timings["leaders_s"] = round(time.monotonic() - t0, 3)
    if not any(h.lost for h in run.handles):  # adopting needs the mutate lock; the heal itself is done
        tidied = await tidy_after_heal(run.block)
        if tidied is not None:
            run.notes["leftovers"] = tidied
    return leaders


def _leaders_line(leaders: dict[str, Any]) -> str:
    if leaders.get("requested") is None:
        return f"its leaderships could not be given back ({leaders.get('errors')})"
    if not leaders["requested"]:
        return "it already leads its preferred partitions"
    return f"{leaders['moved']} of {leaders['requested']} preferred leadership(s) given back"
