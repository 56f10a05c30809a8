"""Our planner vs Kafka's own ``kafka-reassign-partitions --generate``, on a real sandbox with data.

    python bench/bench_generate_compare.py [--port-base 24150] [--mb 150] [--drain 4]

Starts a sandbox (6 brokers, 3 racks), creates topics and fills them with ``--mb`` MB (fast
acks=1 producer), takes a snapshot, then for a one-broker drain compares:

* our plan (``plan_moves``), and
* Kafka 4.1.1's ``ReassignPartitionsCommand --generate`` (org.apache.kafka:kafka-tools, fetched
  once with Maven into ``~/.cache/kafka-medic/kafka-tools-4.1.1``), fed with the planner's
  ``kafka_generate_inputs()`` (the topics that have a replica on the drained broker, and the
  brokers our planner may use). Only ``--generate`` runs: Kafka's plan is never executed.

Figures: partitions and replicas moved, bytes moved, cross-AZ bytes (both from ``plan_cost`` on
the same snapshot), rack violations (partitions whose rack spread drops or a rack gains a second
replica) and every ``validate_plan`` violation. The sandbox is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from blocks.sandbox import sandbox_cluster
from kafka_medic.monitor.collector import collect_snapshot
from kafka_medic.planner import DrainRequest, Move, PlanCost, kafka_generate_inputs, moves_from_kafka_json, plan_cost
from kafka_medic.planner import plan_moves as plan_moves_fn
from kafka_medic.safety import rack_concentration_increase, rack_spread, racks_of, validate_plan
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.jars import kafka_tools_libs, require_tool
from kafka_medic.sandbox.layout import SandboxLayout
from kafka_medic.snapshot import ClusterSnapshot

TOOL_TIMEOUT_S = 180


def ensure_tools() -> Path:
    """kafka-tools and its dependencies, downloaded once (next to the broker jars)."""
    return kafka_tools_libs()


def kafka_generate(libs: Path, bootstrap: str, topics_json: dict[str, Any], broker_list: str) -> dict[str, Any]:
    """Run ``--generate`` (rack-aware, Kafka's default) and return its proposed reassignment."""
    java = require_tool("java", "install a Java 17+ runtime")
    with tempfile.TemporaryDirectory() as tmp:
        topics_file = Path(tmp) / "topics-to-move.json"
        topics_file.write_text(json.dumps(topics_json))
        argv = [
            java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", str(libs / "*"),
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            "--bootstrap-server", bootstrap, "--generate",
            "--topics-to-move-json-file", str(topics_file), "--broker-list", broker_list,
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"--generate failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    marker = "Proposed partition reassignment configuration"
    text = proc.stdout
    if marker not in text:
        raise SystemExit(f"unexpected --generate output:\n{text[-2000:]}")
    proposed = text.split(marker, 1)[1].strip().splitlines()[0]
    return json.loads(proposed)


def fill_topics(sb: Sandbox, topics: int, partitions: int, total_mb: float) -> list[str]:
    admin = sb.admin()
    names = [f"bench-{i:02d}-{uuid.uuid4().hex[:4]}" for i in range(topics)]
    futures = admin.create_topics([NewTopic(n, partitions, 3) for n in names], request_timeout=30)
    for f in futures.values():
        f.result(timeout=60)
    time.sleep(1.0)
    producer = Producer(
        {"bootstrap.servers": sb.layout.bootstrap_servers, "acks": "1", "linger.ms": 50, "batch.size": 1_000_000}
    )
    value = os.urandom(16 * 1024)
    per_partition = int(total_mb * 1e6 / (topics * partitions) / len(value)) + 1
    for n in names:
        for p in range(partitions):
            for _ in range(per_partition):
                while True:
                    try:
                        producer.produce(n, value=value, partition=p)
                        break
                    except BufferError:
                        producer.poll(0.1)
            producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("producer did not flush within 120 s")
    return names


def rack_violations(snapshot: ClusterSnapshot, moves: list[Move]) -> int:
    rack = racks_of(snapshot)
    bad = 0
    for m in moves:
        if rack_spread(m.new_replicas, rack) < rack_spread(m.old_replicas, rack) or rack_concentration_increase(
            m.old_replicas, m.new_replicas, rack
        ):
            bad += 1
    return bad


def row(label: str, cost: PlanCost, moves: list[Move], snapshot: ClusterSnapshot, seconds: float) -> dict[str, Any]:
    return {
        "plan": label,
        "partitions": cost.partitions,
        "replicas": cost.replicas_moved,
        "MB moved": round(cost.bytes_moved / 1e6, 1),
        "cross-AZ MB": round(cost.cross_az_bytes / 1e6, 1),
        "rack violations": rack_violations(snapshot, moves),
        "validate_plan": len(validate_plan(snapshot, moves)),
        "plan s": round(seconds, 3),
    }


def violation_kinds(violations: list[str]) -> dict[str, int]:
    """Group "topic-p: message" violations by message shape (numbers and names dropped)."""
    import re

    kinds: dict[str, int] = {}
    for v in violations:
        text = re.sub(r"\[[^\]]*\]|'[^']*'|\d+", "#", v.split(": ", 1)[-1])
        kinds[text] = kinds.get(text, 0) + 1
    return kinds


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print(" | ".join(c.ljust(widths[c]) for c in cols))
    print("-+-".join("-" * widths[c] for c in cols))
    for r in rows:
        print(" | ".join(str(r[c]).ljust(widths[c]) for c in cols))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-base", type=int, default=24150, help="sandbox port base (ports up to base + 1100)")
    ap.add_argument("--mb", type=float, default=150.0, help="total MB of data to write")
    ap.add_argument("--topics", type=int, default=8)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--drain", type=int, default=4, help="broker to drain")
    args = ap.parse_args()

    libs = ensure_tools()
    with tempfile.TemporaryDirectory(prefix="kafka-medic-bench-") as state:
        sb = Sandbox(SandboxLayout(state_dir=Path(state), port_base=args.port_base))
        try:
            print(f"sandbox up in {sb.up():.1f} s")
            t0 = time.monotonic()
            fill_topics(sb, args.topics, args.partitions, args.mb)
            took = time.monotonic() - t0
            print(f"wrote {args.mb:.0f} MB into {args.topics}x{args.partitions} partitions in {took:.1f} s")
            block = sandbox_cluster(sb, name="bench")
            snapshot = collect_snapshot(block).snapshot
            request = DrainRequest(brokers=[args.drain])

            t0 = time.perf_counter()
            plan = plan_moves_fn(snapshot, request)
            ours_s = time.perf_counter() - t0

            topics_json, broker_list = kafka_generate_inputs(snapshot, request)
            t0 = time.perf_counter()
            proposed = kafka_generate(libs, sb.layout.bootstrap_servers, topics_json, broker_list)
            kafka_s = time.perf_counter() - t0
            kafka_moves = moves_from_kafka_json(snapshot, proposed)

            rows = [
                row("kafka-medic planner", plan.cost, plan.moves, snapshot, ours_s),
                row("kafka --generate", plan_cost(snapshot, kafka_moves), kafka_moves, snapshot, kafka_s),
            ]
            total_mb = sum(snapshot.replicas["size_bytes"].fillna(0)) / 1e6
            print(
                f"\ndrain of broker {args.drain}: {len(topics_json['topics'])} topic(s) to move, broker list "
                f"{broker_list}, {total_mb:.0f} MB of replicas in the cluster "
                "('plan s' for kafka includes a JVM start)\n"
            )
            print_table(rows)
            for label, moves in (("kafka-medic planner", plan.moves), ("kafka --generate", kafka_moves)):
                kinds = violation_kinds(validate_plan(snapshot, moves))
                if kinds:
                    print(f"\n{label} validate_plan violations by kind: {kinds}")
        finally:
            sb.down(wipe=True)


if __name__ == "__main__":
    main()
