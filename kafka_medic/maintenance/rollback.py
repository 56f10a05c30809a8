"""The exact undo of a drain, computed from the cluster before and after (stored by :mod:`kafka_medic.state`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from kafka_medic.maintenance.election import PartitionKey, replica_ids

Rollback = list[tuple[str, int, tuple[int, ...], tuple[int, ...]]]


def replica_map(parts: pd.DataFrame) -> dict[PartitionKey, tuple[int, ...]]:
    return {
        (str(t), int(p)): replica_ids(r)
        for t, p, r in zip(parts["topic"], parts["partition"], parts["replicas"], strict=True)
    }


def rollback_entries(
    before: dict[PartitionKey, tuple[int, ...]], after: dict[PartitionKey, tuple[int, ...]], broker_id: int
) -> Rollback:
    """(topic, partition, replicas before, replicas after) of every partition the drain took off ``broker_id``.

    Computed from the cluster itself (before/after), not from the plan, so it is exact however
    much of the drain completed. Equal to the plan's ``Plan.rollback_kafka_json()`` for a drain
    that ran to the end.
    """
    out: Rollback = []
    for key, old in sorted(before.items()):
        new = after.get(key)
        if new is not None and broker_id in old and broker_id not in new and new != old:
            out.append((key[0], key[1], old, new))
    return out


def undrain_moves(
    entries: Rollback, current: dict[PartitionKey, tuple[int, ...]], broker_id: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Moves that put ``broker_id`` back exactly where it was, for partitions nobody touched since.

    A partition whose replicas changed after the drain (another reassignment, a replacement plan)
    is skipped with its reason rather than overwritten: undoing must never undo someone else's work.
    """
    from kafka_medic.planner import Move

    moves: list[Any] = []
    skipped: list[dict[str, Any]] = []
    for topic, partition, old, new in entries:
        key = (topic, partition)
        now = current.get(key)
        name = f"{topic}-{partition}"
        if now is None:
            skipped.append({"partition": name, "reason": "partition no longer exists"})
        elif now == old:
            skipped.append({"partition": name, "reason": "already back where it was"})
        elif now != new:
            skipped.append(
                {"partition": name, "reason": f"replicas changed since the drain: {list(new)} -> {list(now)}"}
            )
        else:
            moves.append(Move(topic, partition, now, old))
    return moves, skipped


def planned_rollback(moves: Iterable[Any], broker_id: int) -> Rollback:
    """The undo of a drain as planned, saved *before* the first move: (topic, partition, replicas
    now, planned target) of each move that takes a replica off ``broker_id``.

    Why before: an interrupted drain (Ctrl-C, a killed process, a broker dying mid-move) must not
    lose the way back. A move that never ran or was reverted reads "already back where it was" in
    :func:`undrain_moves`; the drain narrows the record to what really moved when it ends.
    """
    out: Rollback = []
    for m in moves:
        old, new = tuple(int(b) for b in m.old_replicas), tuple(int(b) for b in m.new_replicas)
        if broker_id in old and broker_id not in new:
            out.append((str(m.topic), int(m.partition), old, new))
    return sorted(out)


def merge_rollback(earlier: Rollback, later: Rollback) -> Rollback:
    """One undo from two records for the same broker (an interrupted drain, then the drain again).

    A partition in both keeps the replicas from before the *first* drain when the second one
    started where the first left it (or where it began): undrain then puts it back where it was
    before any drain. Otherwise someone else moved it in between, and the later record wins, so
    an undo never overwrites that other change.
    """
    by_key = {(t, p): (t, p, old, new) for t, p, old, new in earlier}
    for t, p, old, new in later:
        prev = by_key.get((t, p))
        first_old = prev[2] if prev is not None and old in (prev[2], prev[3]) else old
        by_key[(t, p)] = (t, p, first_old, new)
    return [by_key[k] for k in sorted(by_key)]


def moved_only(entries: Rollback, current: dict[PartitionKey, tuple[int, ...]]) -> Rollback:
    """The entries whose partition is not where the undo would put it (the rest have nothing to undo)."""
    return [e for e in entries if (e[0], e[1]) in current and current[(e[0], e[1])] != e[2]]
