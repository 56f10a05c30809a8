"""Preferred leader election: which partitions to elect, which cannot be elected, which moved."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from kafka_medic.errors import ConfigError
from kafka_medic.settings.validators import TOPIC_NAME_RE

PartitionKey = tuple[str, int]


def parse_partition(spec: str) -> PartitionKey:
    """``"orders-3"`` -> ``("orders", 3)``; topic names may contain dashes, the number is after the last."""
    topic, sep, number = spec.rpartition("-")
    if not sep or not topic or not number.isdigit() or not TOPIC_NAME_RE.match(topic):
        raise ValueError(f'partition {spec!r} must be written "topic-partition", e.g. "orders-3"')
    return topic, int(number)


def replica_ids(cell: Any) -> tuple[int, ...]:
    return tuple(int(b) for b in cell) if cell is not None else ()


def election_scope(parts: pd.DataFrame, topics: Sequence[str] | None, partitions: Sequence[str] | None) -> pd.DataFrame:
    """The rows of ``parts`` the operator asked about; unknown topics or partitions are an error.

    An unknown name must not read as "nothing to do": a typo would otherwise report success.
    """
    if not topics and not partitions:
        return parts
    known_topics = set(parts["topic"]) if not parts.empty else set()
    missing_topics = sorted(set(topics or ()) - known_topics)
    keys = {parse_partition(s) for s in partitions or ()}
    known_keys = set(zip(parts["topic"], parts["partition"].astype(int), strict=True)) if not parts.empty else set()
    missing_parts = sorted(f"{t}-{p}" for t, p in keys - known_keys)
    if missing_topics or missing_parts:
        what = [f"unknown topic(s) {missing_topics}"] if missing_topics else []
        what += [f"unknown partition(s) {missing_parts}"] if missing_parts else []
        raise ConfigError("; ".join(what) + "; nothing was changed")
    mask = pd.Series(False, index=parts.index)
    if topics:
        mask |= parts["topic"].isin(set(topics))
    if keys:
        mask |= pd.Series(
            [(t, int(p)) in keys for t, p in zip(parts["topic"], parts["partition"], strict=True)], index=parts.index
        )
    return parts[mask]


def election_candidates(parts: pd.DataFrame) -> tuple[list[PartitionKey], list[dict[str, Any]]]:
    """Partitions a preferred election would move, and those it cannot (with the reason).

    Eligible: the leader is not the preferred replica (first in the list) and the preferred replica
    is in the ISR (Kafka only elects an in-sync preferred replica). A partition whose preferred
    replica is out of sync is reported, not retried: it first has to catch up.
    """
    eligible: list[PartitionKey] = []
    blocked: list[dict[str, Any]] = []
    for t, p, leader, reps, isr in zip(
        parts["topic"], parts["partition"], parts["leader"], parts["replicas"], parts["isr"], strict=True
    ):
        replicas = replica_ids(reps)
        if not replicas or int(leader) == replicas[0]:
            continue
        key = (str(t), int(p))
        if replicas[0] in replica_ids(isr):
            eligible.append(key)
        else:
            blocked.append(
                {"partition": f"{t}-{int(p)}", "preferred": replicas[0], "leader": int(leader),
                 "reason": f"preferred replica {replicas[0]} is not in the ISR {list(replica_ids(isr))}"}
            )  # fmt: skip
    return sorted(eligible), blocked


def leaders_on_preferred(parts: pd.DataFrame, keys: Iterable[PartitionKey]) -> set[PartitionKey]:
    """Which of ``keys`` are now led by their preferred replica."""
    want = set(keys)
    out: set[PartitionKey] = set()
    for t, p, leader, reps in zip(parts["topic"], parts["partition"], parts["leader"], parts["replicas"], strict=True):
        key = (str(t), int(p))
        replicas = replica_ids(reps)
        if key in want and replicas and int(leader) == replicas[0]:
            out.add(key)
    return out


def partition_names(keys: Iterable[PartitionKey], limit: int = 20) -> str:
    """``t-0, t-1, ... and N more``: partitions named in one line of bounded length."""
    names = [f"{t}-{p}" for t, p in keys]
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
