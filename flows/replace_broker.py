"""The ``replace-broker`` flow: give one broker a fresh machine/disk, safely, one at a time.

Order of operations, and why:

1. Take the cluster's *replace* lock and its *mutate* lock, both fail-fast. The replace lock makes
   replacements strictly one at a time; the mutate lock makes a manual drain/reassignment and a
   replacement mutually exclusive (the seed's users suffered exactly that collision). Busy ->
   ``busy``, not a failure: somebody else is already acting on the cluster.
2. While holding them, check the cooldown (``policy.replacement_cooldown_s``, persisted in a Prefect
   Variable, so every process sees it). Cooling down -> ``skipped`` with the seconds left.
3. On a FRESH look (:func:`tasks.collect.look_now`; never a replayed sample): refuse if automation
   stands down (mass failure or any other paging finding), if the cluster state cannot be read, or
   if wiping this broker would take a partition offline or below min ISR
   (``safety.removal_impact``) -- naming the partitions.
4. Optionally restart first (Orion's "maybe dead": the broker is registered but unhealthy, or
   fenced while its JVM still answers), then re-check health; replace only if that did not help.
5. Replace; wait (bounded) until the broker registers and is unfenced; verify its replicas are
   back in sync (bounded); only then record success -- the cooldown starts from success, not from
   the attempt, so a half-done replacement never silences the next one.

Every outcome is audited (planned / skipped / refused / started / finished / failed). Busy, skipped
and refused complete the run with that status (nothing changed); a failure after something was
attempted raises :class:`ReplaceFailed` (the run is Failed in Prefect with one clear line). The
locks are released on every path. The judgments themselves are pure (:mod:`kafka_medic.heal`).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.kafka_cluster import KafkaCluster
from blocks.load import aload_replacer, load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ClusterBusy
from kafka_medic.heal import (
    REPLACE_ACTION,
    RESTART_ACTION,
    broker_row,
    heal_findings,
    maybe_dead,
    refusal_reasons,
    restart_action,
    row_host,
    still_broken,
)
from kafka_medic.replacers import Replacer, ReplacerError
from kafka_medic.reports.replace import ReplaceBrokerResult, ReplaceFailed, ReplaceStatus, outcome_markdown
from tasks.audit import RunAudit
from tasks.collect import look_now
from tasks.locks import LockHandle, cluster_lock
from tasks.state import cluster_state
from tasks.verify import verify_after, wait_in_sync, wait_registered


class ReplaceBrokerParams(BaseModel):
    """Parameters of one replacement (a nested form in the Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    broker_id: int = Field(..., ge=0, description="The broker to replace.")
    dry_run: bool = Field(True, description="Run every check and show the plan, change nothing.")
    try_restart_first: bool = Field(
        False,
        description="If the broker is registered but unhealthy, or fenced while its JVM still answers, "
        "restart it first and replace only if that does not help.",
    )
    cooldown_s: float | None = Field(
        None, ge=0, le=7 * 86_400, description="Override the policy's replacement cooldown for this run (seconds)."
    )
    verify_timeout_s: float | None = Field(
        None, gt=0, le=86_400, description="How long to wait for the broker's replicas to be back in sync "
        "(default: the policy's verify_timeout_s).",
    )  # fmt: skip
    register_timeout_s: float = Field(
        600.0, gt=0, le=7200, description="How long to wait for the new broker to register and be unfenced."
    )
    restart_check_s: float = Field(
        120.0, gt=0, le=3600, description="After a restart, how long to wait for the broker to look healthy."
    )
    require_finding: bool = Field(
        False,
        description="Act only if a fresh health evaluation still calls for healing this broker "
        "(automation sets this; a manual run may replace a broker that looks fine).",
    )
    actor: str = Field("", max_length=200, description="Who asked (default: $KAFKA_MEDIC_ACTOR or user@host).")
    reason: str = Field("", max_length=1000, description="Why (goes to the audit trail).")


@dataclass
class _Run:
    """One replacement run: what it acts on, its audit trail, the locks it holds, its timings."""

    block: KafkaCluster
    params: ReplaceBrokerParams
    audit: RunAudit
    replacer: Replacer
    verify_s: float
    handles: list[LockHandle] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    t_start: float = field(default_factory=time.monotonic)

    def held(self) -> None:
        """Before each mutating step: stop if a lock's lease could not be kept."""
        for h in self.handles:
            h.ensure_held()

    def result(self, status: ReplaceStatus, message: str, **extra: Any) -> ReplaceBrokerResult:
        self.timings["total_s"] = round(time.monotonic() - self.t_start, 3)
        get_run_logger().info("[%s] broker %s: %s: %s", self.block.name, self.params.broker_id, status.value, message)
        return ReplaceBrokerResult(
            cluster=self.block.name, broker_id=self.params.broker_id, status=status, message=message,
            dry_run=self.params.dry_run, timings=dict(self.timings), audit=self.audit.records, **extra,
        )  # fmt: skip


@flow(name="replace-broker", retries=0)
async def replace_broker(cluster: str, params: ReplaceBrokerParams) -> ReplaceBrokerResult:
    """Replace one broker of ``cluster`` (see the module docstring for the guarantees)."""
    b = params.broker_id
    try:
        res = await _replace_broker(cluster, params)
    except ReplaceFailed as exc:
        await _outcome_artifact(cluster, b, "FAILED", str(exc), {})
        raise
    await _outcome_artifact(cluster, b, res.status.value.upper(), res.message, res.timings)
    return res


async def _outcome_artifact(cluster: str, b: int, status: str, message: str, timings: dict[str, float]) -> None:
    try:
        await acreate_markdown_artifact(
            key=f"replace-broker-{cluster}", markdown=outcome_markdown(cluster, b, status, message, timings),
            description=f"Broker {b} replacement: {status.lower()}",
        )  # fmt: skip
    except Exception as exc:  # a report, never the outcome itself
        get_run_logger().warning("could not write the outcome artifact: %s", exc)


async def _replace_broker(cluster: str, params: ReplaceBrokerParams) -> ReplaceBrokerResult:
    block = await load_cluster(cluster)
    b = params.broker_id
    # A missing or mistyped replacer fails here, before any lock is taken.
    run = _Run(block, params, RunAudit(block, REPLACE_ACTION, actor=params.actor, brokers=(b,)),
               await aload_replacer(block), params.verify_timeout_s or block.policy.verify_timeout_s)  # fmt: skip
    audit, state = run.audit, cluster_state(cluster)
    cooldown_s = params.cooldown_s if params.cooldown_s is not None else block.policy.replacement_cooldown_s

    async with AsyncExitStack() as stack:
        if not params.dry_run:  # a dry run changes nothing, so it never blocks a real action
            audit.start_warming()
            try:
                for kind in ("replace", "mutate"):
                    run.handles.append(await stack.enter_async_context(cluster_lock(cluster, kind=kind)))
            except ClusterBusy as exc:
                await audit(AuditStatus.SKIPPED, f"broker {b} not replaced: {exc}", reason=params.reason, why="busy")
                return run.result(ReplaceStatus.BUSY, str(exc))

        remaining = await state.cooldown_remaining(REPLACE_ACTION, cooldown_s)
        run.timings["prepare_s"] = round(time.monotonic() - run.t_start, 3)  # block, replacer, locks, cooldown
        if remaining > 0:
            msg = (
                f"broker {b} not replaced: cooling down, {remaining:.0f}s left of the {cooldown_s:.0f}s "
                "replacement cooldown (counted from the last successful replacement)"
            )
            await audit(AuditStatus.SKIPPED, msg, why="cooldown", remaining_s=round(remaining, 1),
                        dry_run=params.dry_run)  # fmt: skip
            return run.result(ReplaceStatus.SKIPPED, msg, remaining_cooldown_s=round(remaining, 1))

        t0 = time.monotonic()
        look = await look_now(block)
        run.timings["check_s"] = round(time.monotonic() - t0, 3)
        row = broker_row(look.snapshot, b)
        if params.require_finding and not heal_findings(look.evaluation, b):
            msg = f"broker {b} no longer needs healing (a fresh health check finds nothing to act on)"
            await audit(AuditStatus.SKIPPED, msg, why="not needed", dry_run=params.dry_run)
            return run.result(ReplaceStatus.SKIPPED, msg)
        reasons, partitions = refusal_reasons(look.snapshot, look.evaluation, b)
        if reasons:
            msg = f"refusing to replace broker {b}: " + "; ".join(reasons)
            await audit(AuditStatus.REFUSED, msg, partitions=partitions[:200], dry_run=params.dry_run)
            return run.result(ReplaceStatus.REFUSED, msg, partitions=partitions)

        host = row_host(row)
        restart = params.try_restart_first and run.replacer.supports_restart and maybe_dead(row)
        if restart and await state.cooldown_remaining(restart_action(b), cooldown_s) > 0:
            restart = False  # restarted recently and still needs healing: a restart does not help
        if params.dry_run:
            plan = await asyncio.to_thread(run.replacer.plan, b, host)
            first = "restart it first (it may only be hung), then " if restart else ""
            msg = f"dry run: would {first}replace broker {b}: {plan.summary}"
            await audit(AuditStatus.PLANNED, msg, plan=plan.to_record(), reason=params.reason, dry_run=True)
            return run.result(ReplaceStatus.PLANNED, msg, outcome=plan.to_record())

        try:
            if restart:
                fixed = await _restart_first(run, host)
                if fixed is not None:
                    return run.result(ReplaceStatus.RESTARTED, fixed)
                # the restart did not help: judge safety again on the state it left
                look = await look_now(block)
                reasons, partitions = refusal_reasons(look.snapshot, look.evaluation, b)
                if reasons:
                    msg = f"refusing to replace broker {b} after its restart: " + "; ".join(reasons)
                    await audit(AuditStatus.REFUSED, msg, partitions=partitions[:200])
                    return run.result(ReplaceStatus.REFUSED, msg, partitions=partitions)
                host = row_host(broker_row(look.snapshot, b)) or host
            return await _replace(run, host)
        except ReplaceFailed:
            raise
        except Exception as exc:  # anything unexpected after a change may have been made
            msg = f"replacement of broker {b} failed: {type(exc).__name__}: {exc}"
            await audit(AuditStatus.FAILED, msg)
            raise ReplaceFailed(msg) from exc


async def _replace(run: _Run, host: str) -> ReplaceBrokerResult:
    b, audit = run.params.broker_id, run.audit
    run.held()
    # The audit is a trail, not a gate (a failed write never stopped an action): the "started"
    # record is stamped now and written while the replacer starts, instead of before it.
    what = f"replacing broker {b} ({run.replacer.kind} replacer)"
    started = asyncio.create_task(audit(AuditStatus.STARTED, what, reason=run.params.reason, host=host))
    t0 = time.monotonic()
    try:
        try:
            outcome = await asyncio.to_thread(run.replacer.replace, b, host)
        finally:
            await started  # "started" lands before any "failed"/"finished" record
    except ReplacerError as exc:
        changed = {True: "something was changed", False: "nothing was changed", None: "it may have changed things"}
        msg = f"replacer failed for broker {b} ({changed[exc.changed]}): {exc}"
        await audit(AuditStatus.FAILED, msg, changed=exc.changed, replacer=exc.details)
        raise ReplaceFailed(msg) from exc
    run.timings["replace_s"] = round(time.monotonic() - t0, 3)
    try:
        run.timings["register_s"] = round(await wait_registered(run.block, b, run.params.register_timeout_s), 3)
        run.held()
        run.timings.update(await verify_after(run.block, b, run.verify_s))
    except TimeoutError as exc:
        msg = f"broker {b} was replaced ({outcome.summary}) but did not recover: {exc}"
        await audit(AuditStatus.FAILED, msg, outcome=outcome.to_record(), timings=run.timings)
        raise ReplaceFailed(msg) from exc
    await cluster_state(run.block.name).record_success(REPLACE_ACTION)
    msg = f"broker {b} replaced and back in sync: {outcome.summary}"
    await audit(AuditStatus.FINISHED, msg, outcome=outcome.to_record(), timings=run.timings)
    return run.result(ReplaceStatus.REPLACED, msg, outcome=outcome.to_record())


async def _restart_first(run: _Run, host: str) -> str | None:
    """Restart the broker; return a message if that healed it, None if it still needs replacing.

    "Healed" means: registered again, its replicas back in sync, and no liveness or disk finding
    about it. Latency/idle outliers are NOT judged here: a JVM that just started is cold and slow
    for a while. If it stays degraded, a later health check decides again, and because this
    restart is remembered (``restart_action``) the next attempt replaces instead of restarting.
    """
    b, audit, params = run.params.broker_id, run.audit, run.params
    run.held()
    await audit(AuditStatus.STARTED, f"restarting broker {b} before replacing it", action=RESTART_ACTION)
    t0 = time.monotonic()
    try:
        await asyncio.to_thread(run.replacer.restart, b, host)
        await wait_registered(run.block, b, params.restart_check_s)
        run.timings["in_sync_s"] = round(await wait_in_sync(run.block, b, min(run.verify_s, params.restart_check_s)), 3)
    except (ReplacerError, TimeoutError) as exc:
        await audit(AuditStatus.FAILED, f"restart did not bring broker {b} back: {exc}", action=RESTART_ACTION)
        return None
    run.timings["restart_s"] = round(time.monotonic() - t0, 3)
    await cluster_state(run.block.name).record_success(restart_action(b))
    still = still_broken((await look_now(run.block)).evaluation, b)
    if still:
        await audit(AuditStatus.FAILED, f"broker {b} is still unhealthy after a restart ({still[0].summary}); "
                    "replacing it", action=RESTART_ACTION)  # fmt: skip
        return None
    msg = f"broker {b} restarted and back in sync; no replacement needed"
    await audit(AuditStatus.FINISHED, msg, action=RESTART_ACTION, timings=run.timings)
    return msg
