"""Keeps the journal, the cluster's throttles and our submitted moves in step.

Every change goes through here, in the order the journal protocol needs (see
:mod:`kafka_medic.executor.journal`): read what the cluster has, record intent, set throttles,
submit; and on the way back, remove only what no running move of ours needs, then forget it.
The executor, adoption and cancellation all use it, so the rules live in one place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka_medic.errors import MedicError
from kafka_medic.executor.cluster_ops import ClusterOps, ClusterState
from kafka_medic.executor.journal import Journal, JournalStore, check_fits
from kafka_medic.executor.throttles import (
    ConfigOp,
    ThrottleSet,
    needed_for,
    plan_additions,
    plan_removals,
)
from kafka_medic.executor.transient import TransientKafkaError, call_with_retries, is_transient
from kafka_medic.planner import Move

PartitionKey = tuple[str, int]


class ThrottleError(MedicError):
    """The cluster refused a throttle change (not a transient error)."""


class UnfinishedJournal(MedicError):
    """A previous run's moves are still recorded; adopt them before starting new ones."""


@dataclass
class LedgerNotes:
    """What the run should tell the operator about throttles it did not simply set and remove."""

    foreign: list[str] = field(default_factory=list)  # already there before us: left alone
    changed: list[str] = field(default_factory=list)  # ours, changed by someone since: left alone
    kept: list[str] = field(default_factory=list)  # ours, kept because a move or a dead broker needs it


class Ledger:
    """One run's bookkeeping. Only the holder of the cluster's mutate lock may use one."""

    def __init__(
        self,
        ops: ClusterOps,
        store: JournalStore,
        journal: Journal,
        *,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.ops = ops
        self.store = store
        self.journal = journal
        self.guard = guard
        self.notes = LedgerNotes()
        self.ever_set = ThrottleSet()  # everything this run set (for the report)
        self.ever_removed = ThrottleSet()
        self._submitted_at: dict[PartitionKey, float] = {}

    @classmethod
    async def open(
        cls,
        ops: ClusterOps,
        store: JournalStore,
        *,
        cluster: str,
        run_id: str,
        actor: str,
        rate: int,
        guard: Callable[[], None] | None = None,
    ) -> Ledger:
        """A ledger for a new run. Refuses while an earlier run's moves are recorded.

        Leftover throttles without moves (rates on a broker that was dead when they were to be
        removed) are inherited, so this run removes them once it can.
        """
        existing = await store.load(cluster)
        if existing is not None and existing.moves:
            raise UnfinishedJournal(
                f"cluster {cluster!r} has unfinished kafka-medic moves from {existing.summary()}; "
                "adopt them first (a reassign run does this on start)"
            )
        owned = existing.owned if existing is not None else ThrottleSet()
        journal = Journal(cluster, run_id, actor, datetime.now(UTC), int(rate), (), owned)
        return cls(ops, store, journal, guard=guard)

    # -- starting moves ---------------------------------------------------------------------------

    async def start(self, moves: Sequence[Move], state: ClusterState) -> dict[PartitionKey, str]:
        """Throttle, record and submit ``moves``. Returns {partition: Kafka error} for refused ones."""
        if not moves:
            return {}
        self._check_guard()
        needed = needed_for(moves, state.alive)
        current = await call_with_retries(
            self.ops.read_throttles, sorted(needed.brokers), sorted(needed.topics), what="reading throttle configs"
        )
        adds = plan_additions(needed, self.journal.owned, current, self.journal.rate)
        for (b, config), value in sorted(adds.foreign_rates.items()):
            note = (
                f"broker {b} already had {config}={value} (set by someone else); kept it, so it paces our moves "
                f"instead of {self.journal.rate}"
            )
            if note not in self.notes.foreign:
                self.notes.foreign.append(note)
        entries = adds.foreign.leader_replicas | adds.foreign.follower_replicas
        if entries:
            topics = sorted({t for t, _, _ in entries})
            self.notes.foreign.append(
                f"{len(entries)} throttled-replica entries on {', '.join(topics[:10])} were already set by "
                "someone else (or '*'); left as they are and not removed afterwards"
            )
        updated = self.journal.with_moves(moves).with_owned(self.journal.owned | adds.to_set)
        check_fits(updated)
        await self.store.save(updated)  # intent first
        self.journal = updated
        self.ever_set = self.ever_set | adds.to_set
        await self._apply(list(adds.ops), "setting replication throttles")
        self._check_guard()
        targets = {(m.topic, m.partition): list(m.new_replicas) for m in moves}
        now = time.monotonic()
        for key in targets:
            self._submitted_at[key] = now
        return await call_with_retries(self.ops.alter_reassignments, targets, what="submitting reassignments")

    # -- releasing throttles -----------------------------------------------------------------------

    def running(self, state: ClusterState) -> list[Move]:
        """Our moves that still run, as far as ``state`` can tell.

        A move submitted after ``state`` was read counts as running: the poll could not see it.
        """
        reassigning = state.reassigning_keys
        out = []
        for m in self.journal.moves:
            key = (m.topic, m.partition)
            if key in reassigning or self._submitted_at.get(key, -1.0) >= state.at:
                out.append(m)
        return out

    async def release(self, state: ClusterState) -> ThrottleSet:
        """Remove every throttle we own that no running move of ours needs; forget finished moves.

        Rates on brokers that are down cannot be changed now; they stay recorded (and reported) so
        a later run removes them.
        """
        running = self.running(state)
        keep = needed_for(running, state.alive)
        owned = self.journal.owned
        dead_rates = ThrottleSet(
            leader_rate=owned.leader_rate - state.alive, follower_rate=owned.follower_rate - state.alive
        )
        keep_all = keep | dead_rates
        to_release = owned - keep_all
        released = ThrottleSet()
        if to_release:
            current = await call_with_retries(
                self.ops.read_throttles,
                sorted(to_release.brokers),
                sorted(to_release.topics),
                what="reading throttle configs",
            )
            removal = plan_removals(owned, keep_all, current, self.journal.rate)
            await self._apply(list(removal.ops), "removing replication throttles")
            for note in removal.changed_by_others:
                if note not in self.notes.changed:
                    self.notes.changed.append(note)
            released = removal.released
            self.ever_removed = self.ever_removed | released
        running_keys = {(m.topic, m.partition) for m in running}
        finished = [k for k in self.journal.keys if k not in running_keys]
        updated = self.journal.without_moves(finished).with_owned(owned - released)
        if updated != self.journal:
            if updated.empty:
                await self.store.clear(self.journal.cluster)
            else:
                await self.store.save(updated)
            self.journal = updated
        if dead_rates:
            note = f"rates on down broker(s) {sorted(dead_rates.brokers)} kept; removed by a later run"
            if note not in self.notes.kept:
                self.notes.kept.append(note)
        return released

    # -- helpers ------------------------------------------------------------------------------------

    def _check_guard(self) -> None:
        if self.guard is not None:
            self.guard()

    async def _apply(self, ops: list[ConfigOp], what: str, attempts: int = 4) -> None:
        """Apply config ops; retry only the transiently failed ones (every op is idempotent)."""
        delay = 0.5
        todo = ops
        for attempt in range(1, attempts + 1):
            if not todo:
                return
            errors = await asyncio.to_thread(self.ops.apply, todo)
            if not errors:
                return
            hard = {o: e for o, e in errors.items() if not is_transient(e)}
            if hard:
                first = "; ".join(f"{o.describe()}: {e}" for o, e in list(hard.items())[:5])
                raise ThrottleError(f"{what} failed for {len(hard)} setting(s): {first}")
            if attempt == attempts:
                first_op, first_exc = next(iter(errors.items()))
                raise TransientKafkaError(f"{what} kept failing ({first_op.describe()}: {first_exc})")
            todo = list(errors)
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)
