"""Benchmark the health rules on synthetic clusters.

    python bench/bench_rules.py [--brokers 200] [--partitions 100000] [--fleet 10] [--repeat 5]

Prints: time to evaluate one healthy snapshot (best and median of ``--repeat``), the same for an
unhealthy variant (2 dead brokers — one past grace, one within — leadership moved off them, extra
under-replicated partitions on alive brokers, a degraded broker, a full disk), the time to
evaluate a fleet of ``--fleet`` healthy snapshots with different seeds, peak RSS and finding counts.
Snapshot generation is not timed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import Evaluation, evaluate
from kafka_medic.snapshot import ClusterSnapshot, explode_replicas
from kafka_medic.synthetic import synthetic_snapshot


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(
    snapshot: ClusterSnapshot, policy: HealthPolicy, repeat: int, **kwargs: object
) -> tuple[list[float], list[float], Evaluation]:
    """Wall and CPU times of ``repeat`` evaluations (after one untimed warm-up), and the last result.

    CPU time is reported beside wall time because benchmark hosts are often shared: wall time then
    includes waiting for a core, CPU time does not (the rules are single-threaded).
    """
    ev = evaluate(snapshot, policy, **kwargs)  # type: ignore[arg-type]
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        ev = evaluate(snapshot, policy, **kwargs)  # type: ignore[arg-type]
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu, ev


def fmt(label: str, wall: list[float], cpu: list[float]) -> str:
    return (
        f"{label:<20} wall best {min(wall) * 1e3:7.1f} ms  median {statistics.median(wall) * 1e3:7.1f} ms"
        f"   | cpu best {min(cpu) * 1e3:7.1f} ms  median {statistics.median(cpu) * 1e3:7.1f} ms"
    )


def unhealthy(snapshot: ClusterSnapshot, dead: tuple[int, ...], extra_urp: int, seed: int) -> ClusterSnapshot:
    """A copy of ``snapshot`` the way Kafka would look after ``dead`` brokers died, plus noise."""
    rng = np.random.default_rng(seed)
    dead_set = set(dead)
    brokers = snapshot.brokers.copy()
    gone = brokers["broker_id"].isin(dead_set)
    brokers.loc[gone, "alive"] = False
    brokers.loc[gone, "metrics_ok"] = False
    # one alive broker with a slow produce path, one with a nearly full disk
    slow = int(brokers.loc[~gone, "broker_id"].iloc[10])
    brokers.loc[brokers["broker_id"] == slow, "produce_p99_ms"] = 2000.0

    partitions = snapshot.partitions.copy()
    isr = [tuple(b for b in i if b not in dead_set) for i in partitions["isr"]]
    # extra under-replicated partitions: a random follower drops out of the ISR
    for p in rng.choice(len(isr), size=extra_urp, replace=False):
        if len(isr[p]) > 1:
            isr[p] = isr[p][:-1]
    partitions["isr"] = isr
    partitions["leader"] = [
        (ld if ld not in dead_set else (i[0] if i else -1)) for ld, i in zip(partitions["leader"], isr, strict=True)
    ]
    replicas = explode_replicas(partitions)
    replicas["size_bytes"] = snapshot.replicas["size_bytes"].to_numpy()  # same row order

    log_dirs = snapshot.log_dirs.copy()
    full = log_dirs["broker_id"] == int(brokers.loc[~gone, "broker_id"].iloc[20])
    log_dirs.loc[full, "usable_bytes"] = log_dirs.loc[full, "total_bytes"] * 0.05
    return ClusterSnapshot(
        cluster=snapshot.cluster + "-unhealthy",
        brokers=brokers,
        partitions=partitions,
        replicas=replicas,
        log_dirs=log_dirs,
        taken_at=snapshot.taken_at,
    )


def describe(ev: Evaluation) -> str:
    by_sev = Counter(f.severity.value for f in ev.findings)
    rules = ", ".join(f"{r}={n}" for r, n in sorted(Counter(str(f.rule) for f in ev.findings).items()))
    return f"{len(ev.findings)} findings ({dict(by_sev)}), automation_allowed={ev.automation_allowed}" + (
        f"\n      rules: {rules}" if rules else ""
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--fleet", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    policy = HealthPolicy()
    print(f"health rules benchmark: {args.brokers} brokers, {args.partitions:,} partitions, RF3, 3 racks")

    t = time.perf_counter()
    snap = synthetic_snapshot(n_brokers=args.brokers, n_partitions=args.partitions, seed=0)
    print(f"  (snapshot generation {time.perf_counter() - t:.2f} s, not counted; replicas rows {len(snap.replicas):,})")

    rss_before = peak_rss_mib()
    wall, cpu, ev = timed(snap, policy, args.repeat)
    print(fmt("healthy snapshot:", wall, cpu))
    print(f"      peak RSS {rss_before:.0f} MiB after generating, {peak_rss_mib():.0f} MiB after evaluating")
    print(f"      {describe(ev)}")

    dead = (int(snap.brokers["broker_id"].iloc[6]), int(snap.brokers["broker_id"].iloc[7]))
    sick = unhealthy(snap, dead, extra_urp=500, seed=1)
    down_since = {dead[0]: sick.taken_at - timedelta(seconds=policy.dead_broker_grace_s + 60)}
    wall, cpu, ev = timed(sick, policy, args.repeat, down_since=down_since)
    print(fmt("unhealthy snapshot:", wall, cpu))
    print(f"      (brokers {dead} dead, one past grace; 500 extra under-replicated; 1 slow; 1 full disk)")
    print(f"      {describe(ev)}")

    fleet = [
        synthetic_snapshot(n_brokers=args.brokers, n_partitions=args.partitions, seed=s) for s in range(args.fleet)
    ]
    evaluate(fleet[0], policy)
    t, c = time.perf_counter(), time.process_time()
    results = [evaluate(s, policy) for s in fleet]
    fleet_s, fleet_cpu = time.perf_counter() - t, time.process_time() - c
    n_findings = sum(len(r.findings) for r in results)
    print(
        f"{'fleet of ' + str(args.fleet) + ':':<20} wall total {fleet_s:6.2f} s"
        f" ({fleet_s / args.fleet * 1e3:.1f} ms/cluster) | cpu total {fleet_cpu:6.2f} s"
        f" ({fleet_cpu / args.fleet * 1e3:.1f} ms/cluster)   findings {n_findings}"
    )
    print(f"host load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (includes {args.fleet + 2} snapshots held in memory)")


if __name__ == "__main__":
    main()
