"""Partition-state rules: under-replicated, under min ISR, offline, min.insync headroom, reassignments.

One aggregated finding per rule (a dead broker makes thousands of partitions under-replicated; the
UI wants one line with counts, not thousands). The healthy path is vectorised over the frames;
Python loops only run over the unhealthy rows.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import (
    MAX_LISTED_ITEMS,
    MAX_LISTED_PARTITIONS,
    RuleContext,
    as_ids,
    count_map,
    partition_labels,
)
from kafka_medic.rules.names import RuleName


def adding_replicas(ctx: RuleContext) -> set[tuple[str, int, int]]:
    """(topic, partition, broker) of replicas being added by an in-flight reassignment.

    Kafka itself does not count those as missing from the ISR (its replication factor during a
    reassignment excludes adding replicas), so neither do we.
    """
    ra = ctx.snapshot.reassignments
    out: set[tuple[str, int, int]] = set()
    if ra.empty or "adding" not in ra:
        return out
    for r in ra.itertuples(index=False):
        for b in as_ids(r.adding):
            out.add((str(r.topic), int(r.partition), b))
    return out


def under_replicated(ctx: RuleContext) -> list[Finding]:
    """Partitions whose ISR is smaller than their replica set (a follower is not caught up)."""
    missing = np.flatnonzero(~ctx.rep_in_isr)
    if not len(missing):
        return []
    r = ctx.snapshot.replicas
    topics = r["topic"].to_numpy()
    parts = r["partition"].to_numpy()
    rb = ctx.rep_broker
    adding = ctx.memo(adding_replicas)
    if adding:
        keep = np.fromiter(
            ((str(topics[i]), int(parts[i]), int(rb[i])) not in adding for i in missing),
            dtype=bool,
            count=len(missing),
        )
        missing = missing[keep]
        if not len(missing):
            return []
    codes = ctx.rep_partition_code[0][missing]
    _, first, short_by = np.unique(codes, return_index=True, return_counts=True)
    first_rows = missing[np.sort(first)]
    n_parts = len(first)
    broker_of_missing = rb[missing]
    down = np.isin(broker_of_missing, np.asarray(ctx.down_ids, dtype=np.int64))
    per_broker = pd.Series(broker_of_missing).value_counts()
    brokers = tuple(sorted(int(b) for b in per_broker.index if b >= 0))
    return [
        Finding(
            rule=RuleName.UNDER_REPLICATED,
            severity=Severity.WARNING,
            summary=f"{n_parts} under-replicated partition(s); replicas missing from ISR on {len(brokers)} broker(s)",
            brokers=brokers,
            partitions=partition_labels(topics[first_rows], parts[first_rows]),
            evidence={
                "partitions_total": n_parts,
                "replicas_out_of_isr": len(missing),
                "out_of_isr_on_down_brokers": int(down.sum()),
                "out_of_isr_on_alive_brokers": int((~down).sum()),
                "missing_from_isr_per_broker": count_map(per_broker),
                "partitions_by_replicas_missing": {
                    str(k): int(v) for k, v in sorted(Counter(short_by.tolist()).items())
                },
            },
            action=Action.NONE,
        )
    ]


def _missing_per_broker(rows: pd.DataFrame) -> Counter[int]:
    """Broker id -> how many of these partitions it is assigned to but missing from the ISR."""
    c: Counter[int] = Counter()
    for reps, isr in zip(rows["replicas"], rows["isr"], strict=True):
        in_isr = set(as_ids(isr))
        c.update(b for b in as_ids(reps) if b not in in_isr)
    return c


def _holders(rows: pd.DataFrame) -> Counter[int]:
    c: Counter[int] = Counter()
    for reps in rows["replicas"]:
        c.update(as_ids(reps))
    return c


def under_min_isr(ctx: RuleContext) -> list[Finding]:
    """ISR smaller than min.insync.replicas: acks=all producers get NotEnoughReplicas. CRITICAL."""
    p = ctx.snapshot.partitions
    if p.empty:
        return []
    mask = ctx.part_isr_len < ctx.part_min_isr
    if not mask.any():
        return []
    rows = p.loc[mask]
    n = len(rows)
    offline = int((ctx.part_leader[mask] < 0).sum())
    per_broker = pd.Series(_missing_per_broker(rows), dtype="int64")
    return [
        Finding(
            rule=RuleName.UNDER_MIN_ISR,
            severity=Severity.CRITICAL,
            summary=f"{n} partition(s) below min.insync.replicas: acks=all writes to them fail",
            brokers=tuple(sorted(int(b) for b in per_broker.index)),
            partitions=partition_labels(rows["topic"], rows["partition"]),
            evidence={
                "partitions_total": n,
                "of_which_offline": offline,
                "topics_total": int(rows["topic"].nunique()),
                "missing_from_isr_per_broker": count_map(per_broker),
            },
            action=Action.NONE,
        )
    ]


def offline(ctx: RuleContext) -> list[Finding]:
    """Partitions with no leader (or whose leader is a broker known to be down). CRITICAL.

    Not actionable by itself: bringing the dead broker back (the broker_down heal) is what restores
    them, and an unclean leader election trades data for availability — a human's call.
    """
    p = ctx.snapshot.partitions
    if p.empty:
        return []
    leader = ctx.part_leader
    no_leader = leader < 0
    stale = np.isin(leader, np.asarray(ctx.down_ids, dtype=np.int64)) & ~no_leader
    mask = no_leader | stale
    if not mask.any():
        return []
    rows = p.loc[mask]
    holders = pd.Series(_holders(rows), dtype="int64")
    down_set = set(ctx.down_ids)
    topics = rows["topic"].value_counts()
    return [
        Finding(
            rule=RuleName.OFFLINE,
            severity=Severity.CRITICAL,
            summary=f"{int(mask.sum())} offline partition(s) in {len(topics)} topic(s): no leader, "
            "reads and writes fail",
            brokers=tuple(sorted(int(b) for b in holders.index)),
            partitions=partition_labels(rows["topic"], rows["partition"]),
            evidence={
                "partitions_total": int(mask.sum()),
                "no_leader": int(no_leader.sum()),
                "leader_on_down_broker": int(stale.sum()),
                "topics_total": len(topics),
                "topics": count_map(topics),
                "replicas_per_broker": count_map(holders),
                "replica_holders_down": sorted(int(b) for b in holders.index if int(b) in down_set),
            },
            action=Action.NONE,
        )
    ]


def min_isr_no_headroom(ctx: RuleContext) -> list[Finding]:
    """min.insync.replicas >= replication factor: one broker restart blocks acks=all writes.

    ``min_isr > rf`` can never be satisfied at all. Partitions with min_isr 1 are left to
    ``rf_below_default`` (they only lose availability when their last replica goes).
    """
    p = ctx.snapshot.partitions
    if p.empty:
        return []
    rf = ctx.part_rf
    mi = ctx.part_min_isr
    mask = (rf > 0) & (mi >= rf) & (mi > 1)
    if not mask.any():
        return []
    rows = p.loc[mask]
    unsatisfiable = int((mi[mask] > rf[mask]).sum())
    topics = rows["topic"].value_counts()
    return [
        Finding(
            rule=RuleName.MIN_ISR_NO_HEADROOM,
            severity=Severity.WARNING,
            summary=f"{int(mask.sum())} partition(s) in {len(topics)} topic(s) have min.insync.replicas >= "
            "replication factor: losing one replica blocks acks=all writes",
            partitions=partition_labels(rows["topic"], rows["partition"]),
            evidence={
                "partitions_total": int(mask.sum()),
                "unsatisfiable": unsatisfiable,
                "zero_headroom": int(mask.sum()) - unsatisfiable,
                "topics_total": len(topics),
                "topics": count_map(topics),
            },
            action=Action.NONE,
        )
    ]


def reassignment_in_progress(ctx: RuleContext) -> list[Finding]:
    """In-flight reassignments (INFO): the UI shows them; the decision engine avoids overlapping."""
    ra = ctx.snapshot.reassignments
    if ra.empty:
        return []
    adding: Counter[int] = Counter()
    removing: Counter[int] = Counter()
    for r in ra.itertuples(index=False):
        adding.update(as_ids(getattr(r, "adding", ())))
        removing.update(as_ids(getattr(r, "removing", ())))
    evidence: dict[str, Any] = {
        "partitions_total": len(ra),
        "topics_total": int(ra["topic"].nunique()),
        "adding_per_broker": count_map(pd.Series(adding, dtype="int64")),
        "removing_per_broker": count_map(pd.Series(removing, dtype="int64")),
    }
    sample = [
        {
            "partition": f"{r.topic}-{int(r.partition)}",
            "replicas": list(as_ids(getattr(r, "replicas", ()))),
            "adding": list(as_ids(getattr(r, "adding", ()))),
            "removing": list(as_ids(getattr(r, "removing", ()))),
        }
        for r in ra.head(min(MAX_LISTED_ITEMS, MAX_LISTED_PARTITIONS)).itertuples(index=False)
    ]
    evidence["sample"] = sample
    return [
        Finding(
            rule=RuleName.REASSIGNMENT_IN_PROGRESS,
            severity=Severity.INFO,
            summary=f"{len(ra)} partition reassignment(s) in progress",
            brokers=tuple(sorted(set(adding) | set(removing))),
            partitions=partition_labels(ra["topic"], ra["partition"]),
            evidence=evidence,
            action=Action.NONE,
        )
    ]
