"""Cancel running reassignments (KIP-455: submit ``None`` as the target), refusing unsafe reverts.

Cancelling puts a partition back on its original replicas and drops the replicas that were being
added. That is only safe while at least one original replica is in the ISR: otherwise the revert
would have to elect a leader that is not in sync (an unclean election, i.e. data loss). Kafka
refuses those itself; we refuse them first, by name, so nothing is half-cancelled by surprise.

Kafka (KRaft, measured on 4.1.1) restores the original replica *set* but keeps the order of its
working list, so the preferred leader can change. When the caller knows the exact original order
(kafka-medic's own moves, from the journal), a second, data-free reassignment puts it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka_medic.errors import SafetyError
from kafka_medic.executor.cluster_ops import ClusterOps, ClusterState
from kafka_medic.executor.isr import capped
from kafka_medic.executor.transient import call_with_retries

PartitionKey = tuple[str, int]


class UncleanRevertRefused(SafetyError):
    """Cancelling would need an unclean leader election for some partitions; nothing was cancelled."""

    def __init__(self, unsafe: dict[PartitionKey, str]) -> None:
        self.unsafe = unsafe
        names = [f"{t}-{p} ({why})" for (t, p), why in sorted(unsafe.items())]
        shown = capped(names, sep="; ")
        super().__init__(
            f"refusing to cancel: {len(unsafe)} partition(s) have no original replica in the ISR, so a revert "
            f"would need an unclean leader election: {shown}. Nothing was cancelled; let those moves finish."
        )


def revert_is_unclean(original: Iterable[int], isr: Iterable[int]) -> bool:
    """True when none of the original replicas is in sync: reverting would lose data."""
    return not (set(original) & set(isr))


@dataclass(frozen=True)
class CancelPlan:
    safe: list[PartitionKey]
    unsafe: dict[PartitionKey, str]
    not_in_progress: list[PartitionKey]


def plan_cancel(keys: Iterable[PartitionKey], state: ClusterState) -> CancelPlan:
    """Split the partitions to cancel into safe, unsafe (unclean revert) and not reassigning."""
    originals = state.original_replicas()
    isr = state.isr
    safe: list[PartitionKey] = []
    unsafe: dict[PartitionKey, str] = {}
    idle: list[PartitionKey] = []
    for key in sorted(set(keys)):
        if key not in originals:
            idle.append(key)
            continue
        original = originals[key]
        now_isr = isr.get(key, ())
        if revert_is_unclean(original, now_isr):
            unsafe[key] = f"original replicas {list(original)}, ISR {list(now_isr)}"
        else:
            safe.append(key)
    return CancelPlan(safe, unsafe, idle)


@dataclass
class CancelResult:
    requested: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # Kafka accepted the cancellation
    reverted: list[str] = field(default_factory=list)  # confirmed back on the original replicas
    still_reverting: list[str] = field(default_factory=list)
    not_in_progress: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)  # original order (preferred leader) put back
    order_changed: dict[str, str] = field(default_factory=dict)  # same replicas, another order
    refused_unclean: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": len(self.requested),
            "cancelled": self.cancelled,
            "reverted": self.reverted,
            "still_reverting": self.still_reverting,
            "not_in_progress": self.not_in_progress,
            "reordered": self.reordered,
            "order_changed": self.order_changed,
            "refused_unclean": self.refused_unclean,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
        }


def _name(key: PartitionKey) -> str:
    return f"{key[0]}-{key[1]}"


async def cancel_reassignments(
    ops: ClusterOps,
    keys: Iterable[PartitionKey],
    *,
    allow_partial: bool = False,
    timeout_s: float = 120.0,
    poll_s: float = 1.0,
    restore_order: Mapping[PartitionKey, Sequence[int]] | None = None,
) -> CancelResult:
    """Cancel the given partitions' reassignments and wait (bounded) until Kafka has reverted them.

    With ``allow_partial`` the safe ones are cancelled and the unsafe ones reported; without it,
    any unsafe partition refuses the whole request (:class:`UncleanRevertRefused`).
    ``restore_order``: the exact original replica lists the caller knows; reverted partitions that
    came back in another order are reordered to them (no data moves).
    """
    t0 = time.monotonic()
    wanted = sorted(set(keys))
    state = await call_with_retries(ops.state, what="reading the cluster state")
    plan = plan_cancel(wanted, state)
    result = CancelResult(requested=[_name(k) for k in wanted])
    result.not_in_progress = [_name(k) for k in plan.not_in_progress]
    if plan.unsafe and not allow_partial:
        raise UncleanRevertRefused(plan.unsafe)
    result.refused_unclean = {_name(k): why for k, why in plan.unsafe.items()}
    if not plan.safe:
        result.seconds = time.monotonic() - t0
        return result
    originals = state.original_replicas()
    errors = await call_with_retries(ops.alter_reassignments, dict.fromkeys(plan.safe), what="cancelling reassignments")
    result.errors = {_name(k): e for k, e in errors.items() if e != "NoReassignmentInProgressError"}
    accepted = [k for k in plan.safe if k not in errors]
    # Finished between our look and the cancel: nothing to revert any more.
    result.not_in_progress += [_name(k) for k, e in errors.items() if e == "NoReassignmentInProgressError"]
    result.cancelled = [_name(k) for k in accepted]
    deadline = t0 + timeout_s
    waiting = set(accepted)
    seen: dict[PartitionKey, tuple[int, ...]] = {}  # the replica list that confirmed each revert
    while waiting:
        state = await call_with_retries(ops.state, what="reading the cluster state")
        replicas = state.replicas
        for key in list(waiting):
            if key not in state.reassigning_keys and set(replicas.get(key, ())) == set(originals[key]):
                waiting.discard(key)
                seen[key] = replicas[key]
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(poll_s)
    result.still_reverting = sorted(_name(k) for k in waiting)
    result.reverted = sorted(_name(k) for k in seen)
    await _restore_order(ops, result, seen, restore_order or {}, deadline, poll_s)
    result.seconds = time.monotonic() - t0
    return result


async def _restore_order(
    ops: ClusterOps,
    result: CancelResult,
    reverted: Mapping[PartitionKey, tuple[int, ...]],
    wanted: Mapping[PartitionKey, Sequence[int]],
    deadline: float,
    poll_s: float,
) -> None:
    """Put reverted partitions back in the caller's exact original order (a data-free reassignment).

    Decided from the replica list that *confirmed* each revert, not from a new read: metadata comes
    from any broker, and a broker that has not applied the revert yet still shows the merged list
    (a new read from such a broker used to leave the order as Kafka's cancel had it: the likely
    cause of (2, 3, 4) for (4, 2, 3), seen once under CI load). The confirmation below waits for
    the exact order, so a stale read there costs one poll.
    """
    todo: dict[PartitionKey, list[int]] = {}
    for key, now in sorted(reverted.items()):
        order = tuple(int(b) for b in wanted.get(key, now))
        if order != now:
            if set(order) == set(now):
                todo[key] = list(order)
            else:  # the caller's idea of the original is not what Kafka restored: leave it
                result.order_changed[_name(key)] = f"replicas {list(now)}, expected {list(order)}"
    if not todo:
        return
    errors = await call_with_retries(ops.alter_reassignments, todo, what="restoring the replica order")
    for key, err in errors.items():
        result.order_changed[_name(key)] = f"could not restore the order {todo[key]}: {err}"
    waiting = {k for k in todo if k not in errors}
    while waiting:
        state = await call_with_retries(ops.state, what="reading the cluster state")
        for key in list(waiting):
            if key not in state.reassigning_keys and state.replicas.get(key) == tuple(todo[key]):
                waiting.discard(key)
                result.reordered.append(_name(key))
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(poll_s)
    for key in waiting:
        result.order_changed[_name(key)] = f"order {todo[key]} not confirmed in time"
    result.reordered.sort()
