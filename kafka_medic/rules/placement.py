"""Placement rules: rack (AZ) spread, missing rack labels, replication factor below the default.

Rack spread is what makes an AZ outage survivable: two replicas of a partition in one AZ means
losing that AZ can take the partition below min.insync.replicas (or offline). The check is
vectorised over the replicas frame with per-partition integer codes — no loop over partitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import (
    MAX_LISTED_ITEMS,
    RuleContext,
    count_map,
    partition_labels,
)
from kafka_medic.rules.names import RuleName


def _replica_rack_codes(ctx: RuleContext) -> tuple[np.ndarray, list[str]]:
    """Rack code per replica row (-1 = broker unknown or without a rack) and the rack names."""
    racks = ctx.brokers["rack"]
    rack_codes, rack_names = pd.factorize(racks, use_na_sentinel=True)  # None -> -1
    idx = ctx.rep_broker_index
    rep_rack = np.where(idx >= 0, rack_codes[np.maximum(idx, 0)], -1).astype(np.int64)
    return rep_rack, [str(r) for r in rack_names]


#: Above this many (partition x rack) cells, count distinct racks by dedup instead of a dense table.
_DENSE_CELLS_MAX = 20_000_000


def _distinct_racks_per_partition(codes: np.ndarray, rep_rack: np.ndarray, n_parts: int, n_racks: int) -> np.ndarray:
    """Number of distinct known racks per partition code.

    A dense (partition x rack) occupancy table via one ``bincount`` is ~1 ms for 100k partitions x
    a handful of racks; a sort/hash-based ``unique`` over 300k pairs costs 100x that.
    """
    known = rep_rack >= 0
    cells = codes[known] * n_racks + rep_rack[known]
    if n_parts * n_racks <= _DENSE_CELLS_MAX:
        occupied = np.bincount(cells, minlength=n_parts * n_racks).reshape(n_parts, n_racks) > 0
        return occupied.sum(axis=1)
    pairs = pd.unique(cells)
    return np.bincount(pairs // n_racks, minlength=n_parts)


def rack_violation(ctx: RuleContext) -> list[Finding]:
    """Partitions whose replicas span fewer racks than min(replication factor, alive racks).

    Partitions with a replica on a broker of unknown rack are skipped (``rack_missing`` reports
    that); a rack counts for a replica even if the rack is currently down — placement is about
    where the replicas are assigned, not where they are alive.
    """
    alive_racks = {r for r, a in zip(ctx.brokers["rack"], ctx.alive_mask, strict=True) if a and r is not None}
    n_alive_racks = len(alive_racks)
    if n_alive_racks < 2 or not len(ctx.rep_broker):
        return []
    codes, n_parts = ctx.rep_partition_code
    rep_rack, rack_names = _replica_rack_codes(ctx)
    n_codes = max(len(rack_names), 1)
    n_rep = np.bincount(codes, minlength=n_parts)
    unknown = np.bincount(codes, weights=(rep_rack < 0), minlength=n_parts) > 0
    distinct = _distinct_racks_per_partition(codes, rep_rack, n_parts, n_codes)
    required = np.minimum(n_rep, n_alive_racks)
    violating = ~unknown & (distinct < required)
    if not violating.any():
        return []
    rows = np.flatnonzero(violating[codes])
    _, first = np.unique(codes[rows], return_index=True)
    first_rows = rows[np.sort(first)]
    r = ctx.snapshot.replicas
    topics = r["topic"].to_numpy()
    parts = r["partition"].to_numpy()
    n_viol = int(violating.sum())
    sample = []
    for i in first_rows[:10]:
        members = rows[codes[rows] == codes[i]]
        sample.append(
            {
                "partition": f"{topics[i]}-{int(parts[i])}",
                "replicas": [int(b) for b in ctx.rep_broker[members]],
                "racks": [rack_names[c] for c in rep_rack[members]],
            }
        )
    return [
        Finding(
            rule=RuleName.RACK_VIOLATION,
            severity=Severity.WARNING,
            summary=f"{n_viol} partition(s) have replicas sharing a rack (fewer racks than "
            f"min(replication factor, {n_alive_racks} alive racks)): one rack outage can cost them",
            partitions=partition_labels(topics[first_rows], parts[first_rows]),
            evidence={
                "partitions_total": n_viol,
                "alive_racks": n_alive_racks,
                "topics": count_map(pd.Series(topics[first_rows]).value_counts()),
                "sample": sample,
            },
            action=Action.NONE,
        )
    ]


def rack_missing(ctx: RuleContext) -> list[Finding]:
    """Some brokers have a rack and others do not: rack-aware placement silently degrades."""
    racks = ctx.brokers["rack"]
    missing = racks.isna().to_numpy()
    if not missing.any() or missing.all():
        return []
    ids = tuple(int(b) for b in ctx.broker_ids[missing])
    return [
        Finding(
            rule=RuleName.RACK_MISSING,
            severity=Severity.WARNING,
            summary=f"{len(ids)} of {ctx.n_brokers} brokers have no broker.rack set while others do",
            brokers=ids,
            evidence={
                "brokers_without_rack": len(ids),
                "total_brokers": ctx.n_brokers,
                "racks": sorted({str(r) for r in racks.dropna()}),
            },
            action=Action.NONE,
        )
    ]


def rf_below_default(ctx: RuleContext) -> list[Finding]:
    """Partitions with fewer replicas than default.replication.factor.

    Internal topics (``__consumer_offsets``, ``__transaction_state``) are included and named:
    an under-replicated offsets topic stalls every consumer group on one broker loss.
    """
    p = ctx.snapshot.partitions
    default = int(ctx.snapshot.default_replication_factor)
    if p.empty:
        return []
    mask = ctx.part_rf < default
    if not mask.any():
        return []
    rows = p.loc[mask]
    topics = rows["topic"].astype(str)
    per_topic = topics.value_counts()
    internal = sorted(t for t in per_topic.index if t.startswith("__"))
    min_rf = pd.Series(ctx.part_rf[mask]).groupby(topics.to_numpy()).min()
    summary = (
        f"{int(mask.sum())} partition(s) in {len(per_topic)} topic(s) have replication factor below the "
        f"cluster default {default}"
    )
    if internal:
        summary += f" (internal: {', '.join(internal)})"
    return [
        Finding(
            rule=RuleName.RF_BELOW_DEFAULT,
            severity=Severity.WARNING,
            summary=summary,
            partitions=partition_labels(rows["topic"], rows["partition"]),
            evidence={
                "partitions_total": int(mask.sum()),
                "default_replication_factor": default,
                "topics_total": len(per_topic),
                "internal_topics": internal,
                "topic_min_rf": {str(t): int(v) for t, v in min_rf.head(MAX_LISTED_ITEMS).items()},
                "min_rf": int(ctx.part_rf[mask].min()),
            },
            action=Action.NONE,
        )
    ]
