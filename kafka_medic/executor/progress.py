"""How far a reassignment is: which moves finished, which diverged, how many bytes are left.

A move is *done* when Kafka no longer lists the partition as reassigning and its replica list is
exactly the target. If Kafka stopped reassigning it and the replicas are something else, someone
cancelled or overrode it (``diverged``): the executor then stops starting new moves rather than
fight whoever intervened.

Bytes: each added replica must copy the partition (its largest known replica size, from the
snapshot). Remaining bytes = what pending and running moves still have to copy; for running moves
the bytes already on the receiving broker (DescribeLogDirs, when measured) are subtracted.
Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from kafka_medic.planner import Move

PartitionKey = tuple[str, int]


class MoveState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    DIVERGED = "diverged"


#: How long a move that Kafka no longer lists may show replicas other than its target before it
#: counts as diverged: ListPartitionReassignments comes from the controller, Metadata from any
#: broker, which can lag it by a moment (the executor and the adopter both wait this long).
METADATA_SETTLE_S = 5.0


def classify(
    moves: Iterable[Move],
    reassigning: set[PartitionKey],
    current_replicas: Mapping[PartitionKey, tuple[int, ...]],
) -> dict[PartitionKey, MoveState]:
    out: dict[PartitionKey, MoveState] = {}
    for m in moves:
        key = (m.topic, m.partition)
        if key in reassigning:
            out[key] = MoveState.RUNNING
        elif tuple(current_replicas.get(key, ())) == tuple(m.new_replicas):
            out[key] = MoveState.DONE
        else:
            out[key] = MoveState.DIVERGED
    return out


def divergence_reason(move: Move, current: tuple[int, ...] | None) -> str:
    if current is None:
        return "the partition no longer exists (topic deleted?)"
    if set(current) == set(move.old_replicas):
        # A KIP-455 cancel restores the original replica *set*; KRaft may keep another order. A move is
        # journaled before it is submitted, so a run that died in between leaves one that never started.
        return (f"on the original replicas {list(current)}: never submitted before its run ended, "
                "or cancelled by someone")  # fmt: skip
    return f"replicas are {list(current)}, not the target {list(move.new_replicas)} (changed by someone else?)"


def copy_bytes(move: Move, sizes: Mapping[PartitionKey, float]) -> float:
    """Bytes the move copies: partition size x replicas added (0 when the size is unknown)."""
    s = sizes.get((move.topic, move.partition), math.nan)
    if s is None or math.isnan(s):
        return 0.0
    return float(s) * len(move.added)


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    failed: int
    running: int
    pending: int
    bytes_total: float
    bytes_remaining: float
    elapsed_s: float

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else self.finished / self.total

    def line(self) -> str:
        mb_left = self.bytes_remaining / 1e6
        return (
            f"{self.done}/{self.total} partitions moved ({self.failed} failed, {self.running} running, "
            f"{self.pending} waiting); {mb_left:.1f} MB of {self.bytes_total / 1e6:.1f} MB left; "
            f"{self.elapsed_s:.0f} s elapsed"
        )


def measure(
    *,
    total: int,
    done: int,
    failed: int,
    running: Iterable[Move],
    pending: Iterable[Move],
    all_moves: Iterable[Move],
    sizes: Mapping[PartitionKey, float],
    copied: Mapping[tuple[str, int, int], float] | None,
    elapsed_s: float,
) -> Progress:
    """Progress figures. ``copied``: bytes now on each (topic, partition, broker), when measured."""
    running = list(running)
    pending = list(pending)
    bytes_total = sum(copy_bytes(m, sizes) for m in all_moves)
    remaining = sum(copy_bytes(m, sizes) for m in pending)
    for m in running:
        size = sizes.get((m.topic, m.partition), math.nan)
        if size is None or math.isnan(size):
            continue
        for b in m.added:
            have = (copied or {}).get((m.topic, m.partition, b), 0.0)
            remaining += max(0.0, float(size) - float(have))
    return Progress(total, done, failed, len(running), len(pending), bytes_total, remaining, elapsed_s)
