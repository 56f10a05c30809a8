"""Bytes received per receiver vs the best possible, for drains (issue 14, defect 4).

    python bench/bench_balance.py [--big]

For each case and each rack that receives replicas, with ``n`` receivers, ``B`` bytes sent to
the rack and ``s_max`` the largest replica placed there, prints: the heaviest and lightest
receiver (bytes received), ``LB = max(B / n, s_max)`` -- no plan sending those replicas to that
rack can have a lighter heaviest receiver -- the ratio heaviest / LB, the planner's stated
bound ``LB + s_max``, and the spread of replicas received (min..max). The ETA of a drain at a
throttle is set by the heaviest receiver, so heaviest / LB is how much longer than the best
possible the copy takes.

Cases: one 500 GB partition among 999 x 1 GB on 5 receivers (the issue's example); the synthetic
200-broker / 100k-partition cluster of bench_planner.py (lognormal sizes) draining broker 1,
brokers 1,2,3 (one per AZ) and 1,4,7 (one AZ); the same cluster with heavy-tailed sizes (Pareto,
alpha 1.2, x 1 GB) draining broker 1; with ``--big``, the 2,000-broker / 1M-partition cluster
draining broker 1. Runs against whatever ``kafka_medic`` is first on ``sys.path``, so the same
file measures an older checkout (``PYTHONPATH=<old checkout> python bench/bench_balance.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_medic.planner import DrainRequest, plan_moves
from kafka_medic.safety import racks_of
from kafka_medic.snapshot import ClusterSnapshot, explode_replicas
from kafka_medic.synthetic import synthetic_snapshot


def one_big_partition() -> ClusterSnapshot:
    racks = {1: "a", 2: "a", 3: "a", 4: "a", 5: "a", 6: "a", 7: "b", 8: "c"}
    rows = [("t", p, 7, (1, 7, 8), (1, 7, 8), 2) for p in range(1000)]
    parts = pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])
    sizes = {("t", p, b): (500e9 if p == 0 else 1e9) for p in range(1000) for b in (1, 7, 8)}
    brokers = pd.DataFrame({"broker_id": list(racks), "rack": list(racks.values()), "alive": True})
    return ClusterSnapshot("one-big", brokers, parts, replicas=explode_replicas(parts, sizes))


def heavy_tailed(snap: ClusterSnapshot, seed: int = 7) -> ClusterSnapshot:
    """The same cluster, one Pareto(1.2) x 1 GB size per partition, log dirs left out (not binding)."""
    replicas = snap.replicas.copy()
    keys = pd.MultiIndex.from_arrays([replicas["topic"], replicas["partition"]])
    codes, uniques = pd.factorize(keys)
    per_partition = (np.random.default_rng(seed).pareto(1.2, len(uniques)) + 1.0) * 1e9
    replicas["size_bytes"] = per_partition[codes].round()
    return ClusterSnapshot(snap.cluster, snap.brokers, snap.partitions, replicas=replicas)


def report(label: str, snap: ClusterSnapshot, drained: list[int]) -> None:
    t = time.perf_counter()
    plan = plan_moves(snap, DrainRequest(brokers=drained, max_disk_usage=1.0))
    elapsed = time.perf_counter() - t
    rack = racks_of(snap)
    sizes = snap.replicas.groupby(["topic", "partition"])["size_bytes"].max().fillna(0.0)
    placed: dict[str | None, list[float]] = defaultdict(list)
    for m in plan.moves:
        for b in m.added:
            placed[rack.get(b)].append(float(sizes[(m.topic, m.partition)]))
    receivers: dict[str | None, list[int]] = defaultdict(list)
    for b in sorted(snap.alive_broker_ids - set(drained)):
        receivers[rack.get(b)].append(b)
    print(f"\n== {label}: drain {drained} ({plan.cost.replicas_moved} replicas, plan {elapsed:.2f} s) ==")
    print("rack   n    B (GB)    s_max   LB (GB)  heaviest  lightest  heaviest/LB  LB+s_max  replicas/receiver")
    for r, bs in sorted(receivers.items(), key=lambda kv: str(kv[0])):
        if not placed[r]:
            continue
        loads = [plan.cost.per_broker_bytes_in.get(b, 0.0) / 1e9 for b in bs]
        counts = [plan.cost.per_broker_in.get(b, 0) for b in bs]
        total, n, s_max = sum(loads), len(bs), max(placed[r]) / 1e9
        lb = max(total / n, s_max)
        print(
            f"{r!s:6} {n:<4} {total:9.1f} {s_max:8.1f} {lb:9.2f} {max(loads):9.2f} {min(loads):9.2f} "
            f"{max(loads) / lb:11.4f} {lb + s_max:9.2f}  {min(counts)}..{max(counts)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", action="store_true", help="also the 2,000-broker / 1M-partition cluster")
    args = ap.parse_args()
    report("one 500 GB partition among 999 x 1 GB, 5 receivers", one_big_partition(), [1])
    snap = synthetic_snapshot()
    rack = racks_of(snap)
    report("synthetic 200 / 100k, lognormal sizes", snap, [1])
    report("synthetic 200 / 100k, lognormal sizes", snap, [1, 2, 3])
    report("synthetic 200 / 100k, lognormal sizes", snap, sorted(b for b in rack if rack[b] == rack[1])[:3])
    report("synthetic 200 / 100k, heavy-tailed sizes (Pareto 1.2)", heavy_tailed(snap), [1])
    if args.big:
        report("synthetic 2,000 / 1M, lognormal sizes", synthetic_snapshot(n_brokers=2000, n_partitions=1_000_000), [1])


if __name__ == "__main__":
    main()
