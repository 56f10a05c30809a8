"""Is every replica back in sync? The check every remediation ends with (pure part).

A partition is healthy here when it has a leader, its ISR is its whole replica list, and the ISR
is at least ``min.insync.replicas``. A reassignment still running shows up naturally: Kafka lists
the adding replicas among the replicas before they are in the ISR.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

PartitionKey = tuple[str, int]
#: How many partitions an error message names before it says "... and N more".
MAX_LISTED = 20


@dataclass(frozen=True)
class Shortfall:
    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    min_isr: int
    problems: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    @property
    def missing(self) -> tuple[int, ...]:
        isr = set(self.isr)
        return tuple(b for b in self.replicas if b not in isr)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.name,
            "replicas": list(self.replicas),
            "isr": list(self.isr),
            "missing": list(self.missing),
            "leader": self.leader,
            "min_isr": self.min_isr,
            "problems": ", ".join(self.problems),
        }


def select(
    partitions: pd.DataFrame,
    *,
    brokers: Iterable[int] = (),
    topics: Iterable[str] = (),
    keys: Iterable[PartitionKey] = (),
) -> pd.DataFrame:
    """Rows matching every given filter (a partition with a replica on one of ``brokers``, in one
    of ``topics``, or one of ``keys``); no filter selects everything."""
    if partitions.empty:
        return partitions
    mask = pd.Series(True, index=partitions.index)
    broker_set = {int(b) for b in brokers}
    if broker_set:
        mask &= partitions["replicas"].map(lambda r: not broker_set.isdisjoint(int(b) for b in r))
    topic_set = set(topics)
    if topic_set:
        mask &= partitions["topic"].isin(topic_set)
    key_set = {(str(t), int(p)) for t, p in keys}
    if key_set:
        mask &= pd.Series(
            [(t, int(p)) in key_set for t, p in zip(partitions["topic"], partitions["partition"], strict=True)],
            index=partitions.index,
        )
    return partitions[mask]


def _min_isr(value: Any, default: int) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return int(value)


def shortfalls(partitions: pd.DataFrame, default_min_isr: int = 1) -> list[Shortfall]:
    """Partitions that are leaderless, not fully in sync, or below their min ISR."""
    out: list[Shortfall] = []
    if partitions.empty:
        return out
    has_min = "min_isr" in partitions.columns
    for row in partitions.itertuples(index=False):
        replicas = tuple(int(b) for b in row.replicas)
        isr = tuple(int(b) for b in row.isr)
        leader = int(row.leader)
        min_isr = _min_isr(row.min_isr if has_min else None, default_min_isr)
        problems = []
        if leader < 0:
            problems.append("no leader")
        if set(isr) != set(replicas):
            problems.append("ISR short")
        if len(isr) < min_isr:
            problems.append(f"under min ISR ({len(isr)} < {min_isr})")
        if problems:
            out.append(Shortfall(str(row.topic), int(row.partition), replicas, isr, leader, min_isr, tuple(problems)))
    return sorted(out, key=lambda s: (s.topic, s.partition))


def capped(names: list[str], limit: int = MAX_LISTED, sep: str = ", ") -> str:
    """Up to ``limit`` names, then "... and N more": error messages stay readable on big clusters."""
    text = sep.join(names[:limit])
    return text + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def describe_shortfalls(items: list[Shortfall], limit: int = MAX_LISTED) -> str:
    """ "3 partition(s) ...: t-0 (missing [4], ISR short), ..." capped at ``limit`` names."""
    shown = [f"{s.name} (missing {list(s.missing)}; {', '.join(s.problems)})" for s in items[:limit]]
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} partition(s): " + "; ".join(shown) + more
