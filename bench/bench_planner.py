"""Benchmark the placement planner on a synthetic cluster.

    python bench/bench_planner.py [--brokers 200] [--partitions 100000] [--repeat 5]
                                  [--kafka-inputs DIR] [--kafka-proposal FILE]

Prints, for a one-broker drain and two three-broker drains (one broker per AZ, and three
brokers in one AZ): plan time (best and median of ``--repeat``; snapshot generation not timed),
replicas and bytes moved, cross-AZ bytes, violations found by ``validate_plan``, the
per-rack spread of replicas received among eligible receivers, and peak RSS.

``--kafka-inputs DIR`` writes what Kafka's own ``kafka-reassign-partitions --generate`` needs for
the one-broker drain (``topics-to-move.json``, ``broker-list.txt``) and our plan
(``medic-reassignment.json``), so the two tools can be compared on the same input.
``--kafka-proposal FILE`` reads Kafka's proposed reassignment JSON back and prints its cost and
violations next to ours. (The synthetic snapshot is deterministic for the same arguments, so run
Kafka against the same ``--brokers/--partitions``.)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_medic.planner import (
    DrainRequest,
    Plan,
    PlanCost,
    kafka_generate_inputs,
    moves_from_kafka_json,
    plan_cost,
    plan_moves,
)
from kafka_medic.safety import racks_of, validate_plan
from kafka_medic.snapshot import ClusterSnapshot
from kafka_medic.synthetic import synthetic_snapshot


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def receiver_spread(snapshot: ClusterSnapshot, cost: PlanCost, drained: set[int]) -> dict[str, tuple[int, int, int]]:
    """Per rack: (min, max, max - min) of replicas received by each eligible receiver (0 included)."""
    rack = racks_of(snapshot)
    by_rack: dict[str, list[int]] = defaultdict(list)
    for b in sorted(snapshot.alive_broker_ids - drained):
        by_rack[str(rack.get(b))].append(cost.per_broker_in.get(b, 0))
    return {r: (min(v), max(v), max(v) - min(v)) for r, v in sorted(by_rack.items())}


def run_case(snapshot: ClusterSnapshot, label: str, brokers: list[int], repeat: int) -> Plan:
    request = DrainRequest(brokers=brokers)
    times = []
    plan = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan = plan_moves(snapshot, request)
        times.append(time.perf_counter() - t0)
    assert plan is not None
    t0 = time.perf_counter()
    violations = validate_plan(snapshot, plan.moves)
    t_validate = time.perf_counter() - t0
    expected = int(snapshot.replicas["broker_id"].isin(brokers).sum())
    c = plan.cost
    print(f"\n== {label}: drain {brokers} ==")
    print(f"plan time            best {min(times) * 1000:8.1f} ms   median {statistics.median(times) * 1000:8.1f} ms")
    print(f"validate_plan time   {t_validate * 1000:8.1f} ms   violations: {len(violations)}")
    print(
        f"replicas moved       {c.replicas_moved} (replicas on the drained brokers: {expected}); "
        f"partitions {c.partitions}"
    )
    print(
        f"bytes moved          {c.bytes_moved / 1e12:.3f} TB   cross-AZ {c.cross_az_bytes / 1e12:.3f} TB "
        f"({100 * c.cross_az_bytes / max(c.bytes_moved, 1):.1f}%)   unknown-size replicas {c.unknown_size_replicas}"
    )
    print(f"preferred-leader changes {c.preferred_leader_changes}   receivers {len(c.per_broker_in)}")
    spread = receiver_spread(snapshot, c, set(brokers))
    for rack, (lo, hi, d) in spread.items():
        if hi:
            b_in = [v for b, v in c.per_broker_bytes_in.items() if str(racks_of(snapshot).get(b)) == rack]
            print(
                f"  rack {rack}: received replicas per eligible broker {lo}..{hi} (spread {d}); "
                f"bytes in per receiver {min(b_in) / 1e9:.1f}..{max(b_in) / 1e9:.1f} GB"
            )
    print(f"max per-rack receiver spread: {max(d for _, _, d in spread.values())}")
    print(f"peak RSS so far      {peak_rss_mib():.0f} MiB")
    return plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--kafka-inputs", type=Path, help="write Kafka --generate inputs and our plan here")
    ap.add_argument("--kafka-proposal", type=Path, help="Kafka's proposed reassignment JSON to compare")
    args = ap.parse_args()

    t0 = time.perf_counter()
    snapshot = synthetic_snapshot(n_brokers=args.brokers, n_partitions=args.partitions)
    print(
        f"synthetic snapshot: {args.brokers} brokers, {args.partitions} partitions, RF3, 3 racks "
        f"({len(snapshot.replicas)} replicas) built in {time.perf_counter() - t0:.2f} s (not timed below); "
        f"RSS {peak_rss_mib():.0f} MiB"
    )
    rack = racks_of(snapshot)
    one = run_case(snapshot, "one broker", [1], args.repeat)
    three_azs = [1, 2, 3]  # one per AZ (brokers are assigned to racks round-robin)
    run_case(snapshot, "three brokers, one per AZ", three_azs, args.repeat)
    same_az = sorted(b for b in rack if rack[b] == rack[1])[:3]
    run_case(snapshot, "three brokers in one AZ", same_az, args.repeat)

    if args.kafka_inputs:
        out = args.kafka_inputs
        out.mkdir(parents=True, exist_ok=True)
        topics, broker_list = kafka_generate_inputs(snapshot, DrainRequest(brokers=[1]))
        (out / "topics-to-move.json").write_text(json.dumps(topics, indent=1))
        (out / "broker-list.txt").write_text(broker_list + "\n")
        (out / "medic-reassignment.json").write_text(json.dumps(one.to_kafka_json()))
        print(
            f"\nwrote Kafka --generate inputs ({len(topics['topics'])} topics, "
            f"{len(broker_list.split(','))} brokers) and our plan to {out}"
        )
    if args.kafka_proposal:
        doc = json.loads(args.kafka_proposal.read_text())
        moves = moves_from_kafka_json(snapshot, doc)
        cost = plan_cost(snapshot, moves)
        violations = validate_plan(snapshot, moves)
        print(f"\n== Kafka proposal {args.kafka_proposal} ==")
        print(
            f"replicas moved {cost.replicas_moved} (ours {one.cost.replicas_moved}); bytes "
            f"{cost.bytes_moved / 1e12:.3f} TB (ours {one.cost.bytes_moved / 1e12:.3f}); cross-AZ "
            f"{cost.cross_az_bytes / 1e12:.3f} TB (ours {one.cost.cross_az_bytes / 1e12:.3f}); "
            f"violations {len(violations)}"
        )
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
