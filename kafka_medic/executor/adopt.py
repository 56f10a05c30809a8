"""Adopt what an earlier, dead orchestrator left behind: wait for its moves, remove its throttles.

The journal says which moves kafka-medic started and which throttles it set. On the start of any
reassign run (under the cluster's mutate lock, so the journal's writer is known to be gone):

* moves still in progress are waited for (bounded); their throttles stay until each one finishes,
  then go, one by one, exactly as the original run would have done;
* throttles whose moves are gone are removed at once;
* if the moves do not finish in time, nothing new is started and the run reports which moves
  still run (:class:`AdoptionTimeout`); the journal keeps them for the next attempt.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kafka_medic.errors import MedicError
from kafka_medic.executor.cluster_ops import ClusterOps, ClusterState
from kafka_medic.executor.isr import capped
from kafka_medic.executor.journal import Journal, JournalStore
from kafka_medic.executor.ledger import Ledger
from kafka_medic.executor.progress import METADATA_SETTLE_S, divergence_reason
from kafka_medic.executor.throttles import ThrottleSet
from kafka_medic.executor.transient import call_with_retries
from kafka_medic.waiting import NotYet, WaitTimeout, apoll


@dataclass
class AdoptionResult:
    run_id: str
    actor: str
    started_at: str
    moves: int
    finished: list[str] = field(default_factory=list)
    diverged: dict[str, str] = field(default_factory=dict)
    still_running: list[str] = field(default_factory=list)
    throttles_removed: ThrottleSet = field(default_factory=ThrottleSet)
    throttles_kept: ThrottleSet = field(default_factory=ThrottleSet)
    waited_s: float = 0.0

    def summary(self) -> str:
        text = (
            f"adopted run {self.run_id} ({self.actor}, started {self.started_at}): {len(self.finished)} of "
            f"{self.moves} recorded move(s) finished"
        )
        if self.diverged:
            text += f", {len(self.diverged)} ended elsewhere"
        if self.still_running:
            text += f", {len(self.still_running)} still running"
        if self.throttles_removed:
            text += f"; removed its throttles ({self.throttles_removed.summary()})"
        return text + f"; waited {self.waited_s:.0f} s"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "actor": self.actor,
            "started_at": self.started_at,
            "moves": self.moves,
            "finished": self.finished,
            "diverged": self.diverged,
            "still_running": self.still_running,
            "throttles_removed": self.throttles_removed.to_dict(),
            "throttles_kept": self.throttles_kept.to_dict(),
            "waited_s": round(self.waited_s, 2),
        }


class AdoptionTimeout(MedicError):
    """An earlier run's moves are still running after the wait; nothing new was started."""

    def __init__(self, result: AdoptionResult) -> None:
        self.result = result
        names = result.still_running
        shown = capped(names)
        super().__init__(
            f"{len(names)} move(s) started by kafka-medic run {result.run_id} are still running after "
            f"{result.waited_s:.0f} s: {shown}. Their throttles stay in place; nothing new was started. "
            "Run again later (it will adopt them) or cancel them with the cancel-reassignment flow."
        )


ProgressHook = Callable[[str], Awaitable[None]]


async def adopt(
    ops: ClusterOps,
    store: JournalStore,
    cluster: str,
    *,
    timeout_s: float,
    poll_s: float = 1.5,
    on_progress: ProgressHook | None = None,
) -> AdoptionResult | None:
    """Finish an earlier run's bookkeeping; None when the journal is empty (the usual case)."""
    journal = await store.load(cluster)
    if journal is None or journal.empty:
        return None
    t0 = time.monotonic()
    original: Journal = journal
    ledger = Ledger(ops, store, journal)
    result = AdoptionResult(
        run_id=journal.run_id,
        actor=journal.actor,
        started_at=journal.started_at.isoformat(timespec="seconds"),
        moves=len(journal.moves),
    )
    seen: dict[str, Any] = {}

    async def moves_done() -> None:
        seen["state"] = state = await call_with_retries(ops.state, what="reading the cluster state")
        await ledger.release(state)
        seen["running"] = running = ledger.running(state)
        if running:
            if on_progress is not None:
                await on_progress(f"waiting for {len(running)} move(s) of run {journal.run_id}")
            raise NotYet(f"{len(running)} move(s) of run {journal.run_id} still running")

    try:
        await apoll(moves_done, timeout_s=timeout_s, interval_s=poll_s, what="adopted moves finished")
    except WaitTimeout:
        result.still_running = sorted(f"{m.topic}-{m.partition}" for m in seen["running"])
    running_names = set(result.still_running)
    ended = [m for m in original.moves if f"{m.topic}-{m.partition}" not in running_names]

    async def metadata_caught_up() -> None:
        # Kafka (the controller) no longer lists these moves, but the Metadata answer comes from any
        # broker, and one that has not applied a move's end yet still shows its old or in-progress
        # replicas (CI: a finished move read as "ended elsewhere"). A move that really ended
        # elsewhere never reads as its target: that costs this bounded wait, and only then.
        state = seen["state"]
        if any(state.replicas.get((m.topic, m.partition)) != tuple(m.new_replicas) for m in ended):
            seen["state"] = await call_with_retries(ops.state, what="reading the cluster state")
            raise NotYet("the Metadata answer does not show every ended move at its target yet")

    with contextlib.suppress(WaitTimeout):
        await apoll(metadata_caught_up, timeout_s=METADATA_SETTLE_S, interval_s=0.5, what="metadata caught up")
    state: ClusterState = seen["state"]
    replicas = state.replicas
    for m in original.moves:
        name = f"{m.topic}-{m.partition}"
        if name in running_names:
            continue
        current = replicas.get((m.topic, m.partition))
        if current == tuple(m.new_replicas):
            result.finished.append(name)
        else:
            result.diverged[name] = divergence_reason(m, current)
    result.throttles_removed = ledger.ever_removed
    result.throttles_kept = ledger.journal.owned
    result.waited_s = time.monotonic() - t0
    if result.still_running:
        raise AdoptionTimeout(result)
    return result


async def inspect(ops: ClusterOps, store: JournalStore, cluster: str) -> dict[str, Any] | None:
    """Read-only view of the journal for dry runs: what would be adopted, nothing changed."""
    journal = await store.load(cluster)
    if journal is None or journal.empty:
        return None
    state = await call_with_retries(ops.state, what="reading the cluster state")
    running = sorted(f"{t}-{p}" for t, p in journal.keys & state.reassigning_keys)
    return {
        "journal": journal.summary(),
        "still_running": running,
        "throttles_owned": journal.owned.to_dict(),
    }
