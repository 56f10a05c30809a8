"""A hand-made cluster for planner and guard tests: racks, down brokers, sizes, several log dirs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from kafka_medic.snapshot import ClusterSnapshot, explode_replicas

PartSpec = tuple[Any, ...]  # (topic, partition, replicas[, isr[, leader]])
LOG_DIR_COLUMNS = ["broker_id", "path", "error", "total_bytes", "usable_bytes"]


def cluster(
    racks: Mapping[int, str | None],
    parts: Iterable[PartSpec],
    *,
    down: Iterable[int] = (),
    sizes: Mapping[tuple[str, int], float] | None = None,
    dirs: Mapping[int, Sequence[tuple[float, float]]] | None = None,
    min_isr: int = 1,
) -> ClusterSnapshot:
    """Brokers ``racks`` (id -> rack), ``down`` ones with alive=False. ISR defaults to every replica
    (a down broker's stale ISR entry stays, as metadata shows it before fencing), leader to the first
    ISR member. ``dirs``: broker -> [(total_bytes, usable_bytes), ...], one row per log dir."""
    rows = []
    for spec in parts:
        topic, partition, replicas = spec[0], spec[1], tuple(spec[2])
        isr = tuple(spec[3]) if len(spec) > 3 else replicas
        leader = spec[4] if len(spec) > 4 else (isr[0] if isr else -1)
        rows.append((topic, partition, leader, replicas, isr, min_isr))
    partitions = pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])
    down_set = set(down)
    ids = sorted(racks)
    brokers = pd.DataFrame(
        {"broker_id": ids, "rack": [racks[b] for b in ids], "alive": [b not in down_set for b in ids]}
    )
    size_map = {(t, p, b): sizes[(t, p)] for t, p, _l, reps, _i, _m in rows if sizes and (t, p) in sizes for b in reps}
    log_rows = [
        (b, f"/d{i}", None, total, usable)
        for b, ds in sorted((dirs or {}).items())
        for i, (total, usable) in enumerate(ds)
    ]
    return ClusterSnapshot(
        cluster="t",
        brokers=brokers,
        partitions=partitions,
        replicas=explode_replicas(partitions, size_map),
        log_dirs=pd.DataFrame(log_rows, columns=LOG_DIR_COLUMNS),
    )
