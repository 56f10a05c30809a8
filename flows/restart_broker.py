"""``restart-broker``: the ladder's middle rung -- restart one broker keeping its disk, safely.

A slow or half-alive broker is often fixed by a restart (a leaking JVM, a wedged request
handler), and a restart keeps its data: it catches up on what it missed instead of re-fetching
everything, as a wipe would. The same guarantees as ``replace-broker``: the cluster's *replace* and
*mutate* locks (one disruptive action per cluster at a time, shared with humans), a fresh look that
refuses when taking the broker offline for a moment would take a partition offline or below min
ISR, then restart -> registered -> back in sync -> its preferred leaderships given back, every
step audited. Automation sets ``automation``: the fresh judgment must still say the restart is due.
Busy, skipped and refused complete with that status; a restart that did not bring the broker back
fails the run (and counts as a failed attempt: automation backs off, then pages). For automation
that failed restart is still the restart *rung taken*: the ladder's next rung for the broker is a
replacement (a host that cannot run the broker is replaced, not restarted again and again).
"""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ActionFailed, ClusterBusy, StoodDown
from kafka_medic.heal import RESTART_ACTION, broker_row, refusal_reasons, row_host, stand_down_reasons
from kafka_medic.judgment import Rung
from kafka_medic.reports.replace import ReplaceBrokerResult, ReplaceStatus
from kafka_medic.state import maintenance_hold
from tasks.collect import look_now
from tasks.ladder import record_attempt
from tasks.locks import cluster_lock
from tasks.rungs import HealRun, restart_rung


class RestartBrokerParams(BaseModel):
    """Restart one broker with its disk (a nested form in the Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    broker_id: int = Field(..., ge=0, description="The broker to restart.")
    dry_run: bool = Field(True, description="Run every check and say what would happen; change nothing.")
    automation: bool = Field(False, description="Act only if a fresh judgment still says the restart is due.")
    restart_check_s: float = Field(
        180.0, gt=0, le=3600, description="How long the broker may take to register and catch up after the restart."
    )
    verify_timeout_s: float | None = Field(
        None, gt=0, le=86_400, description="How long to wait for its replicas (default: the policy's)."
    )
    actor: str = Field("", max_length=200, description="Who asked (default: $KAFKA_MEDIC_ACTOR or user@host).")
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")


@flow(name="restart-broker", timeout_seconds=3 * 3600, retries=0)
async def restart_broker(cluster: str, params: RestartBrokerParams) -> ReplaceBrokerResult:
    """Restart ``params.broker_id`` keeping its disk (see the module docstring for the guarantees)."""
    block = await load_cluster(cluster)
    b = params.broker_id
    run = await HealRun.open(block, RESTART_ACTION, params, register_timeout_s=params.restart_check_s)
    result = functools.partial(run.result, dry_run=params.dry_run)
    audit = run.audit

    async def refuse(msg: str, **details: object) -> ReplaceBrokerResult:
        await audit(AuditStatus.REFUSED, msg, dry_run=params.dry_run, **details)
        if not params.dry_run:
            await record_attempt(block, b, RESTART_ACTION, False)
        return result(ReplaceStatus.REFUSED, msg)

    if not run.replacer.supports_restart:
        return await refuse(f"cannot restart broker {b}: the {run.replacer.kind} replacer has no restart "
                            "(a script replacer needs restart_argv)")  # fmt: skip
    async with AsyncExitStack() as stack:
        if not params.dry_run:
            try:
                for kind in ("replace", "mutate"):
                    run.handles.append(await stack.enter_async_context(cluster_lock(cluster, kind=kind)))
            except ClusterBusy as exc:
                await audit(AuditStatus.SKIPPED, f"broker {b} not restarted: {exc}", why="busy")
                return result(ReplaceStatus.BUSY, str(exc))
        look = await look_now(block)
        if hold := maintenance_hold(look.maintenance, automated=params.automation):
            msg = f"broker {b} not restarted: {hold}"
            await audit(AuditStatus.SKIPPED, msg, why="maintenance", dry_run=params.dry_run)
            return result(ReplaceStatus.SKIPPED, msg)
        if params.automation:
            v = look.judgment.verdicts.get(b)
            if not look.evaluation.automation_allowed or v is None or v.due is not Rung.RESTART:
                why = "automation stands down" if not look.evaluation.automation_allowed else (
                    (v.not_judged if v is not None else None) or "a fresh judgment no longer calls for it")  # fmt: skip
                msg = f"broker {b} not restarted: {why}"
                await audit(AuditStatus.SKIPPED, msg, why="not needed", dry_run=params.dry_run)
                return result(ReplaceStatus.SKIPPED, msg)
        stand_down = stand_down_reasons(look.evaluation, b, wipe=False)
        if stand_down:  # no controller: a restarted broker could not register; nothing is touched
            msg = "stood down: " + "; ".join(stand_down) + f"; broker {b} was not touched, nothing was changed"
            await audit(AuditStatus.REFUSED, msg, why="stood_down", dry_run=params.dry_run)
            return result(ReplaceStatus.STOOD_DOWN, msg)
        reasons, partitions = refusal_reasons(look.snapshot, look.evaluation, b)
        if reasons:
            return await refuse(f"refusing to restart broker {b}: " + "; ".join(reasons), partitions=partitions[:200])
        host = row_host(broker_row(look.snapshot, b))
        if params.dry_run:
            msg = f"dry run: would restart broker {b} with its disk ({run.replacer.kind} replacer)"
            await audit(AuditStatus.PLANNED, msg, reason=params.reason, dry_run=True)
            return result(ReplaceStatus.PLANNED, msg)
        try:
            fixed = await restart_rung(run, host, why=params.reason or "asked to")
        except StoodDown as exc:  # the "started" record could not be written: nothing was touched
            await audit(AuditStatus.REFUSED, str(exc), why="stood_down")
            return result(ReplaceStatus.STOOD_DOWN, str(exc))
        except Exception as exc:  # anything unexpected after the restart may have begun
            await audit(AuditStatus.FAILED, f"restart of broker {b} failed: {type(exc).__name__}: {exc}")
            fixed = None
        # The rung was tried once the restart began (its "started" record): healed or not, it is taken.
        began = any(r.get("status") == AuditStatus.STARTED.value for r in audit.records)
        await record_attempt(block, b, RESTART_ACTION, fixed is not None,
                             rung=Rung.RESTART if params.automation and began else None)  # fmt: skip
        if fixed is None:
            raise ActionFailed(
                f"restarting broker {b} did not bring it back healthy within {params.restart_check_s:.0f}s"
            )
        return result(ReplaceStatus.RESTARTED, fixed)
