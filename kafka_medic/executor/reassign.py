"""Execute a plan: throttled moves, started as slots free up, watched until done, cleaned up always.

The life of a run (the cluster's mutate lock must be held by the caller):

1. adopt whatever an earlier, dead run left in the journal (:mod:`.adopt`);
2. read a *fresh* full snapshot and re-check the plan against it: moves already in place are
   counted as done, a reassignment we did not start on any of the partitions refuses the run
   (:class:`ForeignReassignment`, naming them), and ``safety.validate_plan`` must pass. A plan
   computed minutes ago may no longer fit the cluster;
3. start moves within the per-broker and per-cluster caps (:mod:`.batching`), each batch re-checked
   on the latest poll just before it is submitted, throttled (:mod:`.throttles`) and journaled
   (:mod:`.journal`) first;
4. poll every ``poll_s``: finished moves release their throttles at once; a move that Kafka stopped
   without reaching its target (someone cancelled or overrode it) stops the run from starting
   anything new;
5. on the deadline: leave the running moves running and report them (default: the safest, since
   a half-copied replica costs nothing while it runs) or cancel them (``cancel_on_timeout``);
6. a broker that was alive during the run and is gone on two polls in a row makes the run *hand
   the cluster back* (``handed_back``): the moves that involve that broker are cancelled at once
   (a dead target never joins the ISR, so they would wait until the timeout -- six hours by
   default -- while the run holds the lock that the broker's replacement needs), nothing new is
   started, the other running moves get ``hand_back_s`` to finish and are then cancelled too. The
   lock is thus released well within the dead-broker grace period: healing a dead broker outranks a
   maintenance move. Re-planning happens where it belongs, in the next run on the healed cluster
   (a drain's undo is kept, so running it again moves only what is left);
7. interrupted (Ctrl-C, SIGTERM through the CLI, a cancelled flow run): the running moves are
   cancelled and the throttles removed, shielded from the cancellation and bounded in time
   (``interrupt_cleanup_s``); whatever that could not finish stays in the journal for the next run;
8. finally, whatever happened (error, cancellation of the flow, timeout): remove every throttle we
   own that no still-running move of ours needs, and keep the journal for exactly the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka_medic.errors import SafetyError
from kafka_medic.executor.adopt import AdoptionResult, adopt
from kafka_medic.executor.batching import order_for_execution, select_next
from kafka_medic.executor.cancel import CancelResult, cancel_reassignments
from kafka_medic.executor.cluster_ops import ClusterOps, ClusterState
from kafka_medic.executor.isr import capped
from kafka_medic.executor.journal import JOURNAL_MAX_CHARS, JournalStore, JournalTooLarge, SizeBudget
from kafka_medic.executor.ledger import Ledger
from kafka_medic.executor.progress import (
    METADATA_SETTLE_S,
    MoveState,
    Progress,
    classify,
    divergence_reason,
    measure,
)
from kafka_medic.executor.transient import call_with_retries, is_transient
from kafka_medic.planner import Move, partition_sizes
from kafka_medic.safety import validate_plan
from kafka_medic.snapshot import ClusterSnapshot
from kafka_medic.waiting import finish_shielded

PartitionKey = tuple[str, int]
Status = Literal["completed", "partial", "timed_out", "cancelled", "stopped", "failed", "handed_back", "interrupted"]
ProgressHook = Callable[[Progress], Awaitable[None]]

#: Polls in a row a broker must be missing before it counts as down: one Metadata answer from a
#: broker that has not yet seen a re-registration must not cancel anything.
DOWN_POLLS = 2


class ForeignReassignment(SafetyError):
    """A reassignment that kafka-medic did not start runs on partitions of the plan."""

    def __init__(self, keys: Sequence[PartitionKey]) -> None:
        self.partitions = [f"{t}-{p}" for t, p in sorted(keys)]
        super().__init__(
            f"refusing the reassignment: {len(self.partitions)} partition(s) of the plan are already being "
            f"reassigned by someone else: {capped(self.partitions)}. Nothing was changed; wait for that reassignment "
            "(or cancel it) and plan again."
        )


@dataclass(frozen=True)
class ExecutionOptions:
    throttle_bytes_per_sec: int
    max_moves_per_broker: int = 5
    max_moves_per_cluster: int = 1250
    timeout_s: float = 6 * 3600.0
    poll_s: float = 1.5
    cancel_on_timeout: bool = False
    revert_timeout_s: float = 300.0
    #: How often to measure copied bytes with DescribeLogDirs (0 = never).
    measure_every_s: float = 5.0
    #: A broker went down during the run: hand the cluster back to healing (see the module docstring).
    hand_back_on_broker_failure: bool = True
    #: How long moves that do not involve the dead broker may still run before they are cancelled.
    #: Short enough to end well within a dead-broker grace period (default 300 s, sandbox 30 s).
    hand_back_s: float = 15.0
    #: After an interruption: how long cancelling the running moves and removing throttles may take.
    interrupt_cleanup_s: float = 60.0

    def __post_init__(self) -> None:
        if self.throttle_bytes_per_sec <= 0:
            raise ValueError("throttle_bytes_per_sec must be > 0")
        if self.max_moves_per_broker < 1 or self.max_moves_per_cluster < 1:
            raise ValueError("move caps must be >= 1")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError("timeout_s must be a finite number > 0")
        if not (0 < self.poll_s <= 60):
            raise ValueError("poll_s must be in (0, 60]")


@dataclass
class ExecutionResult:
    status: Status
    total: int
    done: list[str] = field(default_factory=list)
    already_in_place: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)
    cancel: CancelResult | None = None
    #: Brokers that went down during the run (the run then handed the cluster back).
    brokers_down: list[int] = field(default_factory=list)
    adoption: AdoptionResult | None = None
    throttles_set: dict[str, Any] = field(default_factory=dict)
    throttles_removed: dict[str, Any] = field(default_factory=dict)
    throttles_kept: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    moves_s: float | None = None  # first submission -> last move done
    cleanup_s: float | None = None  # last move done -> its throttles removed
    bytes_copied: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def summary(self) -> str:
        parts = [f"{self.status}: {len(self.done)}/{self.total} moved"]
        if self.already_in_place:
            parts.append(f"{len(self.already_in_place)} already in place")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.still_running:
            parts.append(f"{len(self.still_running)} still running")
        if self.not_started:
            parts.append(f"{len(self.not_started)} not started")
        if self.cancel is not None:
            parts.append(f"{len(self.cancel.reverted)} cancelled and reverted")
        if self.brokers_down:
            parts.append(f"broker(s) {self.brokers_down} went down: handed back to healing")
        parts.append(f"{self.elapsed_s:.1f} s")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "total": self.total,
            "done": self.done,
            "already_in_place": self.already_in_place,
            "failed": self.failed,
            "not_started": self.not_started,
            "still_running": self.still_running,
            "cancel": self.cancel.to_dict() if self.cancel else None,
            "brokers_down": self.brokers_down,
            "adoption": self.adoption.to_dict() if self.adoption else None,
            "throttles_set": self.throttles_set,
            "throttles_removed": self.throttles_removed,
            "throttles_kept": self.throttles_kept,
            "notes": self.notes,
            "elapsed_s": round(self.elapsed_s, 2),
            "moves_s": None if self.moves_s is None else round(self.moves_s, 2),
            "cleanup_s": None if self.cleanup_s is None else round(self.cleanup_s, 3),
            "bytes_copied": self.bytes_copied,
            "error": self.error,
        }


def _name(key: PartitionKey) -> str:
    return f"{key[0]}-{key[1]}"


def _key(m: Move) -> PartitionKey:
    return (m.topic, m.partition)


def precheck(
    snapshot: ClusterSnapshot, moves: Sequence[Move], ours: set[PartitionKey]
) -> tuple[list[Move], list[Move]]:
    """Check a plan against a fresh snapshot: (moves still to do, moves already in place).

    Raises :class:`ForeignReassignment` for partitions someone else is reassigning, and
    ``SafetyError`` (from ``safety.assert_plan_safe``'s wording) for any other violation.
    """
    state_replicas: dict[PartitionKey, tuple[int, ...]] = {}
    p = snapshot.partitions
    if not p.empty:
        for t, n, r in zip(p["topic"], p["partition"], p["replicas"], strict=True):
            state_replicas[(str(t), int(n))] = tuple(int(b) for b in r)
    real = [m for m in moves if tuple(m.new_replicas) != tuple(m.old_replicas)]
    in_place = [m for m in real if state_replicas.get(_key(m)) == tuple(m.new_replicas)]
    todo = [m for m in real if state_replicas.get(_key(m)) != tuple(m.new_replicas)]
    r = snapshot.reassignments
    reassigning = set() if r.empty else {(str(t), int(n)) for t, n in zip(r["topic"], r["partition"], strict=True)}
    foreign = sorted(k for k in ({_key(m) for m in todo} & reassigning) if k not in ours)
    if foreign:
        raise ForeignReassignment(foreign)
    violations = validate_plan(snapshot, todo)
    if violations:
        raise SafetyError(
            f"Refusing the reassignment: {len(violations)} safety violation(s) on the current cluster state: "
            f"{capped(violations, sep='; ')}. Nothing was changed; plan again."
        )
    return todo, in_place


class _Run:
    def __init__(
        self,
        ops: ClusterOps,
        ledger: Ledger,
        moves: Sequence[Move],
        sizes: Mapping[PartitionKey, float],
        options: ExecutionOptions,
        on_progress: ProgressHook | None,
        result: ExecutionResult,
        alive_at_start: frozenset[int] = frozenset(),
    ) -> None:
        self.ops = ops
        self.ledger = ledger
        self.moves = list(moves)
        self.sizes = sizes
        self.opt = options
        self.on_progress = on_progress
        self.result = result
        self.pending: list[Move] = order_for_execution(moves, sizes)
        self.in_flight: dict[PartitionKey, Move] = {}
        self.settling_since: dict[PartitionKey, float] = {}
        self.stop_new = False
        self.release_due = False  # moves refused at submission left throttles to give back
        self.copied: dict[tuple[str, int, int], float] | None = None
        self.last_measure = 0.0
        self.t0 = time.monotonic()
        self.first_submit: float | None = None
        self.last_done: float | None = None
        self.seen_alive: set[int] = set(alive_at_start)  # brokers seen alive during the run
        self.missing: dict[int, int] = {}  # broker -> polls in a row it was missing
        self.hand_back_since: float | None = None

    # -- a broker going down during the run ------------------------------------------------------

    def _brokers_down(self, state: ClusterState) -> list[int]:
        """Brokers seen alive during the run that are missing from ``DOWN_POLLS`` polls in a row.

        Each poll is a fresh Metadata request, so this is a fresh look at the cluster, not a replay.
        """
        self.seen_alive |= state.alive
        gone = self.seen_alive - state.alive
        self.missing = {b: self.missing.get(b, 0) + 1 for b in gone}
        return sorted(b for b, n in self.missing.items() if n >= DOWN_POLLS)

    async def _begin_hand_back(self, down: list[int]) -> None:
        """Stop starting moves, cancel the running ones that involve ``down`` now (see module docstring)."""
        self.hand_back_since = time.monotonic()
        self.stop_new = True
        self.result.brokers_down = down
        dead = set(down)
        involved = sorted(k for k, m in self.in_flight.items() if dead & (set(m.old_replicas) | set(m.new_replicas)))
        self.result.notes.append(
            f"broker(s) {down} went down during the run: healing comes first, so no new move is started, "
            f"{len(involved)} running move(s) involving them are cancelled, the others get "
            f"{self.opt.hand_back_s:g} s to finish, then the lock is released"
        )
        # The dead broker may be the one both clients send "controller" requests to: start afresh.
        await asyncio.to_thread(self.ops.renew_clients)
        if involved:
            try:
                await self.cancel(involved, f"cancelled: broker(s) {down} went down during the move")
            except Exception as exc:  # tried again, for every move still running, when the run ends
                self.result.notes.append(f"cancelling the moves involving {down} failed ({exc}); retried at the end")

    async def cancel(self, keys: Sequence[PartitionKey], reason: str) -> None:
        """Cancel (revert) these moves of ours; the reverted ones count as failed with ``reason``."""
        if not keys:
            return
        restore = {k: m.old_replicas for m in self.ledger.journal.moves if (k := _key(m)) in set(keys)}
        res = await cancel_reassignments(
            self.ops, list(keys), allow_partial=True, timeout_s=self.opt.revert_timeout_s,
            poll_s=min(self.opt.poll_s, 1.0), restore_order=restore,
        )  # fmt: skip
        self.result.cancel = res if self.result.cancel is None else _merged(self.result.cancel, res)
        for name in res.reverted:
            self.result.failed[name] = reason
        for name, why in res.refused_unclean.items():
            self.result.notes.append(f"{name} not cancelled: a revert would need an unclean election ({why})")
        reverted = set(res.reverted)
        for key in list(self.in_flight):
            if _name(key) in reverted:
                del self.in_flight[key]
                self.settling_since.pop(key, None)
        self.release_due = True  # the reverted moves' throttles go on the next poll

    # -- one poll -------------------------------------------------------------------------------

    def _settle(self, states: dict[PartitionKey, MoveState]) -> dict[PartitionKey, MoveState]:
        """Give stale metadata a moment before calling a move diverged.

        ListPartitionReassignments comes from the controller, Metadata from any broker, which may
        lag by a moment: a finished move can briefly show its old or its combined replica list.
        A move counts as diverged only once that has lasted ``METADATA_SETTLE_S``.
        """
        now = time.monotonic()
        for key, st in list(states.items()):
            if st is not MoveState.DIVERGED:
                self.settling_since.pop(key, None)
                continue
            since = self.settling_since.setdefault(key, now)
            if now - since < METADATA_SETTLE_S:
                states[key] = MoveState.RUNNING
        return states

    async def _collect_finished(self, state: ClusterState) -> None:
        states = self._settle(classify(self.in_flight.values(), state.reassigning_keys, state.replicas))
        finished = False
        replicas = state.replicas
        for key, st in states.items():
            if st is MoveState.RUNNING:
                continue
            move = self.in_flight.pop(key)
            self.settling_since.pop(key, None)
            finished = True
            if st is MoveState.DONE:
                self.result.done.append(_name(key))
                self.result.bytes_copied += _copy_bytes(move, self.sizes)
            else:
                self.result.failed[_name(key)] = divergence_reason(move, replicas.get(key))
                if not self.stop_new:
                    self.stop_new = True
                    self.result.notes.append(
                        f"{_name(key)} did not reach its target ({self.result.failed[_name(key)]}); "
                        "stopped starting new moves"
                    )
        if finished:
            self.last_done = time.monotonic()
        if finished or self.release_due:
            self.release_due = False
            await self.ledger.release(state)

    def _prevalidate(self, batch: list[Move], state: ClusterState) -> list[Move]:
        """Drop (as failed) moves that no longer fit the cluster as this poll saw it."""
        if not batch:
            return batch
        ok: list[Move] = []
        current = state.replicas
        reassigning = state.reassigning_keys
        for m in batch:
            key = _key(m)
            if key in reassigning:
                self.result.failed[_name(key)] = "another reassignment started on this partition meanwhile"
            elif current.get(key) != tuple(m.old_replicas):
                self.result.failed[_name(key)] = (
                    f"replicas changed meanwhile to {list(current.get(key, ()))} (plan expected {list(m.old_replicas)})"
                )
            else:
                ok.append(m)
        if not ok:
            return ok
        light = self.ops.light_snapshot(state)
        by_name: dict[str, list[str]] = {}
        for v in validate_plan(light, ok):
            by_name.setdefault(v.split(":", 1)[0], []).append(v.split(":", 1)[1].strip())
        out = []
        for m in ok:
            reasons = by_name.get(m.name)
            if reasons:
                self.result.failed[m.name] = "; ".join(reasons)
            else:
                out.append(m)
        return out

    async def _start_more(self, state: ClusterState) -> None:
        if self.stop_new or not self.pending:
            return
        alive = state.alive
        leaders = state.leaders
        budget = SizeBudget(self.ledger.journal, alive)

        def journal_fits(selected: list[Move]) -> bool:
            return budget.try_add(selected[-1])  # select_next offers one more move per call

        batch = select_next(
            self.pending,
            list(self.in_flight.values()),
            leaders=leaders,
            alive=alive,
            max_per_broker=self.opt.max_moves_per_broker,
            max_per_cluster=self.opt.max_moves_per_cluster,
            fits=journal_fits,
        )
        if not batch and not self.in_flight:
            first = self.pending[0]
            if not SizeBudget(self.ledger.journal, alive).try_add(first):
                raise JournalTooLarge(
                    f"a single move ({first.name}) does not fit in the {JOURNAL_MAX_CHARS}-character journal"
                )
        if not batch:
            return
        chosen = {_key(m) for m in batch}
        self.pending = [m for m in self.pending if _key(m) not in chosen]
        batch = await asyncio.to_thread(self._prevalidate, batch, state)
        if not batch:
            return
        refused = await self.ledger.start(batch, state)
        if self.first_submit is None:
            self.first_submit = time.monotonic()
        for m in batch:
            key = _key(m)
            if key in refused:
                self.result.failed[m.name] = f"Kafka refused the reassignment: {refused[key]}"
                self.release_due = True
            else:
                self.in_flight[key] = m

    async def _report(self, state: ClusterState | None) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if (
            self.opt.measure_every_s > 0
            and self.in_flight
            and state is not None
            and now - self.last_measure >= (self.opt.measure_every_s)
        ):
            self.last_measure = now
            receivers = sorted({b for m in self.in_flight.values() for b in m.added if b in state.alive})
            try:
                self.copied = await asyncio.to_thread(self.ops.replica_bytes, receivers)
            except Exception:  # a progress figure is not worth failing a move for
                self.copied = None
        progress = measure(
            total=self.result.total,
            done=len(self.result.done) + len(self.result.already_in_place),
            failed=len(self.result.failed),
            running=self.in_flight.values(),
            pending=self.pending,
            all_moves=self.moves,
            sizes=self.sizes,
            copied=self.copied,
            elapsed_s=now - self.t0,
        )
        with contextlib.suppress(Exception):  # progress reporting must never break a run
            await self.on_progress(progress)

    async def loop(self) -> Status:
        deadline = self.t0 + self.opt.timeout_s
        failures = 0
        while True:
            try:
                state = await asyncio.to_thread(self.ops.state)
                failures = 0
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                if failures in (1, 10) or failures % 60 == 0:
                    self.result.notes.append(f"polling the cluster failed ({failures}x, retrying): {exc}")
                if time.monotonic() >= deadline:
                    return "timed_out"
                await asyncio.sleep(min(self.opt.poll_s * failures, 10.0))
                continue
            await self._collect_finished(state)
            if self.opt.hand_back_on_broker_failure and self.hand_back_since is None:
                down = self._brokers_down(state)
                if down:
                    await self._begin_hand_back(down)
            if self.hand_back_since is not None:
                await self._report(state)
                if not self.in_flight or time.monotonic() - self.hand_back_since >= self.opt.hand_back_s:
                    return "handed_back"
                await asyncio.sleep(self.opt.poll_s)
                continue
            if not self.in_flight and (not self.pending or self.stop_new):
                await self._report(state)
                if self.stop_new:
                    return "stopped"
                return "partial" if self.result.failed else "completed"
            if time.monotonic() >= deadline:
                return "timed_out"
            await self._start_more(state)
            await self._report(state)
            if not self.in_flight and (not self.pending or self.stop_new):
                continue  # everything was refused or dropped: settle on the next pass at once
            await asyncio.sleep(self.opt.poll_s)


def _merged(a: CancelResult, b: CancelResult) -> CancelResult:
    """Two cancellations of one run as one result (for the report)."""
    out = CancelResult()
    for f in ("requested", "cancelled", "reverted", "still_reverting", "not_in_progress", "reordered"):
        setattr(out, f, sorted(set(getattr(a, f)) | set(getattr(b, f))))
    for f in ("order_changed", "refused_unclean", "errors"):
        setattr(out, f, {**getattr(a, f), **getattr(b, f)})
    out.seconds = a.seconds + b.seconds
    return out


def _copy_bytes(move: Move, sizes: Mapping[PartitionKey, float]) -> float:
    s = sizes.get(_key(move), math.nan)
    return 0.0 if s is None or math.isnan(s) else float(s) * len(move.added)


async def execute_plan(
    ops: ClusterOps,
    store: JournalStore,
    moves: Sequence[Move],
    *,
    cluster: str,
    run_id: str,
    actor: str,
    options: ExecutionOptions,
    on_progress: ProgressHook | None = None,
    guard: Callable[[], None] | None = None,
    adopt_timeout_s: float | None = None,
) -> ExecutionResult:
    """Run ``moves`` to completion (see the module docstring). The caller holds the mutate lock.

    Raises before changing anything for: unfinished moves of an earlier run that do not finish in
    ``adopt_timeout_s`` (``AdoptionTimeout``), a foreign reassignment on the plan's partitions
    (:class:`ForeignReassignment`), a plan that fails ``safety.validate_plan`` on a fresh snapshot
    (``SafetyError``). Once moves run, the outcome is in the returned result, never an exception,
    except for errors that stop the run itself (the result then reached the ``finally`` cleanup).
    """
    t0 = time.monotonic()
    adoption = await adopt(ops, store, cluster, timeout_s=adopt_timeout_s or options.timeout_s, poll_s=options.poll_s)
    ledger = await Ledger.open(
        ops, store, cluster=cluster, run_id=run_id, actor=actor, rate=options.throttle_bytes_per_sec, guard=guard
    )
    snapshot = await call_with_retries(ops.snapshot, what="collecting a fresh snapshot", attempts=3)
    todo, in_place = precheck(snapshot, moves, ours=set())
    sizes = partition_sizes(snapshot, [_key(m) for m in moves])
    result = ExecutionResult(status="completed", total=len(todo) + len(in_place), adoption=adoption)
    result.already_in_place = [m.name for m in in_place]
    run = _Run(ops, ledger, todo, sizes, options, on_progress, result, frozenset(snapshot.alive_broker_ids))
    status: Status = "failed"
    try:
        status = await run.loop()
    except BaseException as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt, a termination signal
            status = "interrupted"
        raise
    finally:
        result.status = status
        if status == "interrupted":
            try:
                await finish_shielded(_finish(run, status), timeout_s=options.interrupt_cleanup_s)
            except TimeoutError:
                result.notes.append(
                    f"cleaning up after the interruption took over {options.interrupt_cleanup_s:g} s; what is "
                    "left is in the journal and the next reassign run adopts it"
                )
        else:
            await _finish(run, status)
        result.elapsed_s = time.monotonic() - t0
    return result


async def _finish(run: _Run, status: Status) -> None:
    """Cleanup that always runs: cancel on timeout if asked, then release every unneeded throttle."""
    result = run.result
    ledger = run.ledger
    if status in ("handed_back", "interrupted"):
        # Every move of ours that may run: those we watch, and any submitted just as we stopped.
        keys = sorted(set(run.in_flight) | ledger.journal.keys)
        why = "handed back to healing" if status == "handed_back" else "the run was interrupted"
        try:
            await run.cancel(keys, f"cancelled: {why} (reverted to the original replicas)")
        except Exception as exc:
            result.notes.append(f"cancelling the running moves failed ({type(exc).__name__}: {exc}); "
                                "they stay in the journal for the next run")  # fmt: skip
        if status == "interrupted":
            result.notes.append("interrupted: cancelled the running moves (see `cancel`), then released throttles")
    if status == "timed_out" and run.opt.cancel_on_timeout and run.in_flight:
        try:
            result.cancel = await cancel_reassignments(
                run.ops,
                list(run.in_flight),
                allow_partial=True,
                timeout_s=run.opt.revert_timeout_s,
                poll_s=min(run.opt.poll_s, 2.0),
                restore_order={k: m.old_replicas for k, m in run.in_flight.items()},
            )
            result.status = "cancelled"
            for name in result.cancel.reverted:
                result.failed[name] = "cancelled on timeout (reverted to the original replicas)"
            for name, why in result.cancel.refused_unclean.items():
                result.notes.append(f"{name} not cancelled: a revert would need an unclean election ({why})")
        except Exception as exc:
            result.notes.append(f"cancelling on timeout failed: {type(exc).__name__}: {exc}")
    state: ClusterState | None = None
    try:
        state = await call_with_retries(run.ops.state, what="reading the cluster state", attempts=3)
        await ledger.release(state)
        result.cleanup_s = None if run.last_done is None else time.monotonic() - run.last_done
    except Exception as exc:  # could not confirm what still runs: keep everything recorded
        result.notes.append(
            f"could not remove throttles ({type(exc).__name__}: {exc}); they stay recorded in the journal "
            "and the next reassign run removes them"
        )
    if run.first_submit is not None and run.last_done is not None:
        result.moves_s = run.last_done - run.first_submit
    if state is not None and status in ("handed_back", "interrupted"):
        reassigning = state.reassigning_keys
        for key, m in list(run.in_flight.items()):  # finished just before the cancel reached them
            if key not in reassigning and state.replicas.get(key) == tuple(m.new_replicas):
                del run.in_flight[key]
                result.done.append(_name(key))
    still = ledger.running(state) if state is not None else [m for m in ledger.journal.moves]
    result.still_running = sorted(m.name for m in still)
    result.not_started = sorted(m.name for m in run.pending)
    if result.still_running and status == "timed_out":
        result.notes.append(
            f"{len(result.still_running)} move(s) left running after the timeout, with their throttles; "
            "the next reassign run adopts them, or cancel them with the cancel-reassignment flow"
        )
    result.throttles_set = ledger.ever_set.to_dict()
    result.throttles_removed = ledger.ever_removed.to_dict()
    result.throttles_kept = ledger.journal.owned.to_dict() if ledger.journal.owned else {}
    result.notes.extend(ledger.notes.foreign + ledger.notes.changed + ledger.notes.kept)
