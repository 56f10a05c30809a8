"""The ``replace-broker`` flow: give one broker a fresh machine/disk, safely, one at a time.

Order of operations, and why:

1. Take the cluster's *replace* lock and its *mutate* lock, both fail-fast. The replace lock makes
   replacements strictly one at a time; the mutate lock makes a manual drain/reassignment and a
   replacement mutually exclusive (the seed's users suffered exactly that collision). Busy ->
   ``busy``, not a failure: somebody else is already acting on the cluster.
2. While holding them, check the cooldown (``policy.replacement_cooldown_s``, persisted in a Prefect
   Variable, so every process sees it). Cooling down -> ``skipped`` with the seconds left.
3. On a FRESH look (:func:`tasks.collect.look_now`; never a replayed sample) plus the controller's
   registration list (DescribeCluster): stand down (``stood_down``, nothing changed) when acting
   cannot help -- no active controller (a new broker could not register), or the broker holds the
   only in-sync copy of offline partitions (:func:`kafka_medic.heal.stand_down_reasons`); refuse if
   automation stands down (mass failure or any other paging finding), if the cluster state or its
   min ISR cannot be read (never assumed), or if wiping this broker would take a partition offline
   or below min ISR (``safety.removal_impact``; a broker listed but no longer registered does not
   count as in sync) -- naming the partitions. Right before the first destructive step the same
   judgment is taken again on a second look (``tasks.guard.SECOND_LOOK_GAP_S``) later; both must clear it
   (:func:`kafka_medic.heal.two_looks`), and the "started" audit record must be written first (an
   unwritable trail stands down). The one exception: a restart with its disk of a broker the fresh
   look found dead (not registered, not answering) takes no copy away, so it goes after the first
   look (kill -> restart started 1.0 s instead of 3.5 s, bench/RESULTS.md); a broker that may only
   be hung still gets both looks. A restart is judged as a restart: holding the only in-sync copy
   of offline partitions stands a wipe down, never the restart that brings them back.
4. Optionally restart first, keeping its disk (:func:`kafka_medic.heal.restart_first`) -- never for
   the ladder's replacement of a degraded broker whose episode already took the restart rung --: when the
   replacer's view of the host (:meth:`Replacer.host_state`) says machine and disk are still there
   (or cannot tell), or the broker still answers (Orion's "maybe dead"); then re-check health and
   replace only if that did not help -- the failed restart is the second signal before a wipe.
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
import functools
import time
from contextlib import AsyncExitStack
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from blocks.load import load_cluster
from kafka_medic.audit import AuditStatus
from kafka_medic.errors import ClusterBusy, StoodDown
from kafka_medic.findings import Action
from kafka_medic.heal import (
    REPLACE_ACTION,
    RESTART_ACTION,
    broker_row,
    heal_findings,
    restart_action,
    restart_first,
    row_host,
    second_look_needed,
)
from kafka_medic.judgment import Rung
from kafka_medic.reports.replace import ReplaceBrokerResult, ReplaceFailed, ReplaceStatus, outcome_markdown
from kafka_medic.rules import Evaluation
from kafka_medic.state import now_utc
from tasks.guard import guard, stop_if_needed
from tasks.ladder import record_attempt
from tasks.locks import cluster_lock
from tasks.rungs import HealRun, replace_rung, replacement_cost_record, restart_rung
from tasks.state import cluster_state


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


@flow(name="replace-broker", retries=0)
async def replace_broker(cluster: str, params: ReplaceBrokerParams) -> ReplaceBrokerResult:
    """Replace one broker of ``cluster`` (see the module docstring for the guarantees)."""
    b = params.broker_id
    try:
        res = await _replace_broker(cluster, params)
    except ReplaceFailed as exc:
        await _outcome_artifact(cluster, b, "FAILED", str(exc), {})
        raise
    await _outcome_artifact(cluster, b, res.status.value.upper(), res.message, res.timings, res.notes.get("cost"))
    return res


async def _outcome_artifact(
    cluster: str, b: int, status: str, message: str, timings: dict[str, float], cost: dict[str, Any] | None = None
) -> None:
    try:
        await acreate_markdown_artifact(
            key=f"replace-broker-{cluster}", markdown=outcome_markdown(cluster, b, status, message, timings, cost),
            description=f"Broker {b} replacement: {status.lower()}",
        )  # fmt: skip
    except Exception as exc:  # a report, never the outcome itself
        get_run_logger().warning("could not write the outcome artifact: %s", exc)


async def _replace_broker(cluster: str, params: ReplaceBrokerParams) -> ReplaceBrokerResult:
    block = await load_cluster(cluster)
    b = params.broker_id
    # A missing or mistyped replacer fails here, before any lock is taken.
    run = await HealRun.open(block, REPLACE_ACTION, params, register_timeout_s=params.register_timeout_s)
    result = functools.partial(run.result, dry_run=params.dry_run)
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
                return result(ReplaceStatus.BUSY, str(exc))

        remaining = await state.cooldown_remaining(REPLACE_ACTION, cooldown_s)
        run.timings["prepare_s"] = round(time.monotonic() - run.t_start, 3)  # block, replacer, locks, cooldown
        if remaining > 0:
            msg = (
                f"broker {b} not replaced: cooling down, {remaining:.0f}s left of the {cooldown_s:.0f}s "
                "replacement cooldown (counted from the last successful replacement)"
            )
            await audit(AuditStatus.SKIPPED, msg, why="cooldown", remaining_s=round(remaining, 1),
                        dry_run=params.dry_run)  # fmt: skip
            return result(ReplaceStatus.SKIPPED, msg, remaining_cooldown_s=round(remaining, 1))

        t0 = time.monotonic()
        first = await guard(block, b, params.require_finding)
        run.timings["check_s"] = round(time.monotonic() - t0, 3)
        look = first.look
        run.snapshot = look.snapshot
        row = broker_row(look.snapshot, b)
        rung = params.require_finding and _degraded(look.evaluation, b)  # a rung of the ladder, not a dead broker

        host = row_host(row)
        restart, why_restart = False, "not asked to restart first"
        if params.try_restart_first:
            host_state = await asyncio.to_thread(run.replacer.host_state, b, host)
            recently = await state.cooldown_remaining(restart_action(b), cooldown_s) > 0
            restart, why_restart = restart_first(
                row, host_state, supports_restart=run.replacer.supports_restart, restarted_recently=recently
            )
            # The ladder's replacement comes after its restart rung (or the restart failed): restarting
            # first once more would be that rung again, whatever the cooldown says (it may be 0).
            if restart and rung and (await state.ladder()).of(b).current(block.policy, now_utc()).restarted():
                restart, why_restart = False, "the ladder already restarted it in this episode and it still degrades"
            run.notes.update(host=host_state.to_record(), restart_first=why_restart)
        # A restart keeps the disk: the stand-downs that only guard a wipe (the broker holds the only
        # in-sync copy of offline partitions) are exactly what a restart brings back.
        stop = await stop_if_needed(run, first, dry_run=params.dry_run, record=not params.dry_run, wipe=not restart)
        if stop is not None:
            return stop
        if params.dry_run:
            plan = await asyncio.to_thread(run.replacer.plan, b, host)
            first_step = f"restart it first ({why_restart}), then if that does not help " if restart else ""
            msg = f"dry run: would {first_step}replace broker {b}: {plan.summary}"
            cost = await asyncio.to_thread(replacement_cost_record, run)
            if cost is not None:
                run.notes["cost"] = cost
            await audit(AuditStatus.PLANNED, msg, plan=plan.to_record(), reason=params.reason, dry_run=True,
                        cost=cost)  # fmt: skip
            return result(ReplaceStatus.PLANNED, msg, outcome=plan.to_record())

        try:
            # The second look, right before the first destructive step: both looks must clear it
            # (a dead broker's restart with its disk needs only the first; a wipe after it looks twice).
            if second_look_needed(row, restart=restart):
                second = await guard(block, b, params.require_finding, first)
                stop = await stop_if_needed(run, second, dry_run=False, record=True, wipe=not restart)
                if stop is not None:
                    return stop
            if restart:
                fixed = await restart_rung(run, host, why=why_restart)
                if fixed is not None:
                    await record_attempt(block, b, RESTART_ACTION, True, rung=Rung.RESTART if rung else None)
                    return result(ReplaceStatus.RESTARTED, fixed)
                # the restart did not help: judge again, twice, on the state it left, before the wipe
                # (automation's run: still needed, and not in maintenance, on both looks)
                again = await guard(block, b, params.require_finding)
                stop = await stop_if_needed(run, await guard(block, b, params.require_finding, again), dry_run=False,
                                            record=True, after="its restart")  # fmt: skip
                if stop is not None:  # the restart was tried and did not bring it back in its bound:
                    if stop.status is not ReplaceStatus.REFUSED:  # (a refusal was recorded already)
                        await record_attempt(block, b, RESTART_ACTION, False)  # the next try backs off
                    return stop
                host = row_host(broker_row(again.look.snapshot, b)) or host
                run.snapshot = again.look.snapshot
            done = await replace_rung(run, host)
        except StoodDown as exc:  # the "started" record could not be written: nothing was touched
            await audit(AuditStatus.REFUSED, str(exc), why="stood_down")
            return result(ReplaceStatus.STOOD_DOWN, str(exc))
        except ReplaceFailed:
            await record_attempt(block, b, REPLACE_ACTION, False)
            raise
        except Exception as exc:  # anything unexpected after a change may have been made
            msg = f"replacement of broker {b} failed: {type(exc).__name__}: {exc}"
            await audit(AuditStatus.FAILED, msg)
            await record_attempt(block, b, REPLACE_ACTION, False)
            raise ReplaceFailed(msg) from exc
        await record_attempt(block, b, REPLACE_ACTION, True, rung=Rung.REPLACE if rung else None)
        return done


def _degraded(ev: Evaluation, broker_id: int) -> bool:
    """The fresh look calls for this replacement through the ladder (degraded), not a dead broker."""
    return any(f.action is Action.REPLACE_DEGRADED_BROKER for f in heal_findings(ev, broker_id))
