"""Replace in the same AZ vs drain, for the same failed broker: bytes, cross-AZ bytes, dollars, ETA.

    python bench/bench_cost.py [--brokers 200] [--partitions 100000] [--broker 1] [--layout synthetic|spread]

Builds the synthetic cluster (``synthetic_snapshot``), takes ``--broker`` as failed, and prints
``compare_replace_vs_drain`` (policy defaults: $0.02/GB inter-AZ, 50 MB/s throttle per broker)
with the time each estimate took. ``--layout spread`` gives every partition's followers a fresh
random pick in their racks (seeded), since the synthetic rotation makes all partitions a broker
leads share one follower, who then leads them all after the failure and sends all their bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_medic.planner import compare_replace_vs_drain
from kafka_medic.safety import racks_of
from kafka_medic.snapshot import ClusterSnapshot, explode_replicas
from kafka_medic.synthetic import synthetic_snapshot


def spread_followers(snap: ClusterSnapshot, seed: int = 11) -> ClusterSnapshot:
    """Same leaders, racks and sizes; each follower re-drawn uniformly from its rack (seeded)."""
    rng = np.random.default_rng(seed)
    rack = racks_of(snap)
    members: dict[str | None, np.ndarray] = {}
    for b, r in sorted(rack.items()):
        members.setdefault(r, np.array([], dtype=np.int64))
        members[r] = np.append(members[r], b)
    new = []
    for reps in snap.partitions["replicas"]:
        out = [int(reps[0])]
        for b in reps[1:]:
            pool = members[rack[int(b)]]
            pick = int(pool[rng.integers(len(pool))])
            while pick in out:
                pick = int(pool[rng.integers(len(pool))])
            out.append(pick)
        new.append(tuple(out))
    p = snap.partitions.copy()
    p["replicas"] = new
    p["isr"] = new
    size = snap.replicas.groupby(["topic", "partition"])["size_bytes"].max()
    replicas = explode_replicas(p)
    replicas["size_bytes"] = size.reindex(list(zip(replicas["topic"], replicas["partition"], strict=True))).to_numpy()
    return dataclasses.replace(snap, partitions=p, replicas=replicas, log_dirs=snap.log_dirs.iloc[0:0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--broker", type=int, default=1)
    ap.add_argument("--layout", choices=["synthetic", "spread"], default="synthetic")
    args = ap.parse_args()
    snap = synthetic_snapshot(n_brokers=args.brokers, n_partitions=args.partitions)
    if args.layout == "spread":
        snap = spread_followers(snap)
    t = time.perf_counter()
    r = compare_replace_vs_drain(snap, args.broker)
    elapsed = time.perf_counter() - t
    print(f"{args.brokers} brokers / {args.partitions} partitions ({args.layout} layout), broker {args.broker} failed")
    print(f"replace: {r.replace.summary()}")
    print(f"drain:   {r.drain.summary()}")
    print(f"verdict: {r.verdict}")
    print(f"compare_replace_vs_drain took {elapsed:.2f} s (replacement cost + failed-broker copy + drain plan)")


if __name__ == "__main__":
    main()
