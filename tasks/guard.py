"""The replacement guard, as the flow calls it: look, judge, look again, and stop when told to.

The judgments are pure (:mod:`kafka_medic.heal`: ``stand_down_reasons``, ``refusal_reasons``,
``two_looks``); this module adds the I/O (a fresh look plus the controller's registration list)
and the audited stop. Used by ``replace-broker`` before its first destructive step and again
before a wipe that follows a restart that did not help.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from blocks.kafka_cluster import KafkaCluster
from kafka_medic.audit import AuditStatus
from kafka_medic.heal import (
    REPLACE_ACTION,
    controller_view_missing,
    heal_findings,
    refusal_reasons,
    stand_down_reasons,
    two_looks,
)
from kafka_medic.reports.replace import ReplaceBrokerResult, ReplaceStatus
from kafka_medic.state import maintenance_hold
from tasks.collect import Look, look_now
from tasks.kafka import registered_brokers
from tasks.ladder import record_attempt
from tasks.rungs import HealRun


@dataclass(frozen=True)
class Verdict:
    """One guard look: why to stand down, why to refuse (with the partitions), whether still needed."""

    look: Look
    stand_down: list[str]  # whatever the step (no controller)
    wipe_stand_down: list[str]  # for a wipe only (the only copy of offline partitions: restart it instead)
    reasons: list[str]
    partitions: list[str]
    needed: bool
    hold: str | None = None  # automation's run while the cluster is in maintenance: do nothing
    controller_view: bool = False  # this look read the controller's registered brokers


#: Seconds between the guard's two looks: long enough for a frozen broker's Metadata answer and
#: the controller's registration list to disagree, short next to any replacement.
SECOND_LOOK_GAP_S = 2.0


async def guard(block: KafkaCluster, b: int, require_finding: bool, earlier: Verdict | None = None) -> Verdict:
    """A fresh look (metadata + listener probe + quorum) and the controller's registered brokers
    (DescribeCluster), judged; with ``earlier``, a second look ``SECOND_LOOK_GAP_S`` later whose
    verdict stands only if both looks agree (:func:`kafka_medic.heal.two_looks`)."""
    if earlier is not None:
        await asyncio.sleep(SECOND_LOOK_GAP_S)
    # DescribeCluster may be sent to a broker that just died (librdkafka's pick): a short bound, and
    # an unreadable list only means this look lacks that view (the Metadata + probe view remains).
    look, registered = await asyncio.gather(look_now(block), registered_brokers(block, timeout_s=4.0))
    reasons, partitions = refusal_reasons(look.snapshot, look.evaluation, b, registered=registered)
    any_step = stand_down_reasons(look.evaluation, b, wipe=False)
    wipe_only = [r for r in stand_down_reasons(look.evaluation, b) if r not in any_step]
    verdict = Verdict(
        look, any_step, wipe_only, reasons, partitions,
        needed=not require_finding or bool(heal_findings(look.evaluation, b, withheld=True)),
        hold=maintenance_hold(look.maintenance, automated=require_finding), controller_view=registered is not None,
    )  # fmt: skip
    if earlier is None:
        return verdict
    reasons, partitions = two_looks((earlier.reasons, earlier.partitions), (reasons, partitions))
    reasons += controller_view_missing(earlier.controller_view, verdict.controller_view)
    stand_down = list(dict.fromkeys([*verdict.stand_down, *earlier.stand_down]))
    wipe_only = list(dict.fromkeys([*verdict.wipe_stand_down, *earlier.wipe_stand_down]))
    return Verdict(look, stand_down, wipe_only, reasons, partitions, needed=verdict.needed and earlier.needed,
                   hold=verdict.hold or earlier.hold,
                   controller_view=verdict.controller_view or earlier.controller_view)  # fmt: skip


async def stop_if_needed(
    run: HealRun, v: Verdict, *, dry_run: bool, record: bool, after: str = "", wipe: bool = True
) -> ReplaceBrokerResult | None:
    """The run's result when the guard says stop (audited), None when it may go on; ``wipe``: the
    next step wipes the broker (not a restart with its disk)."""
    b, audit, dry = run.broker_id, run.audit, dry_run
    when = f" after {after}" if after else ""
    stand_down = [*v.stand_down, *(v.wipe_stand_down if wipe else [])]
    if stand_down:  # first: a broker that still needs healing is withheld, not "no longer needed"
        msg = f"stood down{when}: " + "; ".join(stand_down) + f"; broker {b} was not touched, nothing was changed"
        await audit(AuditStatus.REFUSED, msg, why="stood_down", dry_run=dry)
        return run.result(ReplaceStatus.STOOD_DOWN, msg, dry_run=dry)
    if v.hold:  # the maintenance switch needs no lock: it may have been thrown while this run waited
        msg = f"broker {b} not replaced{when}: {v.hold}"
        await audit(AuditStatus.SKIPPED, msg, why="maintenance", dry_run=dry)
        return run.result(ReplaceStatus.SKIPPED, msg, dry_run=dry)
    if not v.needed:
        msg = f"broker {b} no longer needs healing (a fresh health check finds nothing to act on)"
        await audit(AuditStatus.SKIPPED, msg, why="not needed", dry_run=dry)
        return run.result(ReplaceStatus.SKIPPED, msg, dry_run=dry)
    if v.reasons:
        msg = f"refusing to replace broker {b}{when}: " + "; ".join(v.reasons)
        await audit(AuditStatus.REFUSED, msg, partitions=v.partitions[:200], dry_run=dry)
        if record:
            await record_attempt(run.block, b, REPLACE_ACTION, False)
        return run.result(ReplaceStatus.REFUSED, msg, dry_run=dry, partitions=v.partitions)
    return None
