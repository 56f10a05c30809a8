"""Our planner vs Kafka's own ``--generate`` algorithm at 200 brokers / 100k partitions (issue #7).

    python bench/bench_generate_at_scale.py [--brokers 200] [--partitions 100000] [--seed 0]
                                            [--cases 1 3az 1az] [--repeat 5] [--kafka-runs 3]
                                            [--layout synthetic|kafka] [--markdown FILE]

Why offline: a 200-broker cluster cannot run here, and ``bench_generate_compare.py`` only covers
the 6-broker sandbox. ``kafka-reassign-partitions --generate`` reads exactly two things from the
cluster (``Admin.describeTopics`` for the current replica lists, ``Admin.describeCluster`` for
broker ids and racks) and computes the rest in-process, so ``bench/KafkaGenerateOffline.java``
(compiled here with ``javac`` against kafka-tools 4.1.1 and its dependencies) calls Kafka's public
``ReassignPartitionsCommand.generateAssignment`` -- the method ``--generate`` calls -- with an
in-memory Admin answering those two reads from a file and refusing any other call. Its printed
output is the same text ``--generate`` prints; we read the proposal back from it.

Input: the synthetic cluster ``bench_planner.py`` uses (``synthetic_snapshot`` with the same
brokers / partitions / seed; RF 3, 3 racks), drains of broker 1, of brokers 1,2,3 (one per AZ)
and of three brokers in broker 1's AZ. Kafka gets what an operator would give it for a drain
(``kafka_generate_inputs``): every topic with a replica on a drained broker, and the broker list
without the drained brokers; rack awareness on (the CLI default). Both plans are then measured
with the project's own code: ``plan_cost`` (replicas/bytes/cross-AZ), ``validate_plan``, the rack
rule, and the replica/leader balance the plan leaves behind.

Kafka's placer draws from an unseeded ``java.util.Random``; ``--kafka-runs`` proposals are taken
(run 1 in a cold JVM, as a CLI run would be) and each is reported. ``--layout kafka`` first lays
every topic out with Kafka's own placer (seeded) to show how much the findings depend on the
synthetic layout.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generate_compare import ensure_tools  # the kafka-tools 4.1.1 jars, resolved once via Maven

from kafka_medic.planner import DrainRequest, Move, kafka_generate_inputs, moves_from_kafka_json, plan_cost, plan_moves
from kafka_medic.safety import PartitionTable, rack_concentration_increase, rack_spread, racks_of, validate_plan
from kafka_medic.sandbox.jars import require_tool
from kafka_medic.snapshot import ClusterSnapshot, explode_replicas
from kafka_medic.synthetic import synthetic_snapshot

JAVA_SOURCE = Path(__file__).with_name("KafkaGenerateOffline.java")
JAVA_CLASS = "KafkaGenerateOffline"
JAVAC_TIMEOUT_S = 300
CURRENT_MARKER = "Current partition replica assignment"
PROPOSED_MARKER = "Proposed partition reassignment configuration"


# ----------------------------------------------------------------------------------------------
# Kafka side
# ----------------------------------------------------------------------------------------------


def compile_offline_generate(libs: Path, out_dir: Path) -> Path:
    """Compile the Java driver against the kafka-tools classpath; bounded like every other wait."""
    javac = require_tool("javac", "install a JDK 17+ (javac) to compile bench/KafkaGenerateOffline.java")
    classes = out_dir / "classes"
    classes.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [javac, "-Xlint:all", "-cp", str(libs / "*"), "-d", str(classes), str(JAVA_SOURCE)],
        capture_output=True, text=True, timeout=JAVAC_TIMEOUT_S, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"javac failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return classes


def write_cluster_file(snapshot: ClusterSnapshot, path: Path) -> None:
    """The cluster as describeCluster (every registered broker, with its rack) and describeTopics
    (every partition's replica list) would return it, in the driver's line format."""
    rack = racks_of(snapshot)
    lines = [f"broker {b} {rack[b]}" if rack.get(b) else f"broker {b}" for b in sorted(snapshot.alive_broker_ids)]
    table = PartitionTable.from_snapshot(snapshot)
    for i in range(len(table)):
        t, p = table.key(i)
        lines.append(f"partition {t} {p} {','.join(str(b) for b in table.replicas(i))}")
    path.write_text("\n".join(lines) + "\n")


def write_kafka_inputs(snapshot: ClusterSnapshot, drained: list[int], work: Path) -> tuple[list[str], str]:
    """The two --generate arguments for a drain, plus the cluster file.

    describeCluster lists every registered broker, the drained one included (a drain is planned
    while it is still up or just fenced; ``--generate`` filters by ``--broker-list`` itself).
    """
    topics_json, broker_list = kafka_generate_inputs(snapshot, DrainRequest(brokers=drained))
    work.mkdir(parents=True, exist_ok=True)
    (work / "topics-to-move.json").write_text(json.dumps(topics_json))
    (work / "broker-list.txt").write_text(broker_list + "\n")
    write_cluster_file(snapshot, work / "cluster.txt")
    return [t["topic"] for t in topics_json["topics"]], broker_list


def kafka_created_snapshot(
    snapshot: ClusterSnapshot, libs: Path, classes: Path, work: Path, *, seed: int, timeout_s: float
) -> ClusterSnapshot:
    """The same brokers, topics and partition sizes, but every topic laid out by Kafka's own placer.

    Why: the synthetic layout is a deterministic rotation in which each 100-partition topic covers
    a contiguous window of brokers per rack, so the topics that do not touch a drained broker sit
    together on the brokers farthest from it. ``--generate`` re-spreads only the topics it is
    given, so its "balance after" depends on where the untouched topics are; a cluster whose
    topics were all created by Kafka and never reassigned shows how much.
    """
    java = require_tool("java", "install a Java 17+ runtime")
    work.mkdir(parents=True, exist_ok=True)
    write_cluster_file(snapshot, work / "cluster.txt")
    argv = [java, "-Xmx1g", "-cp", f"{libs / '*'}:{classes}", JAVA_CLASS, "--layout", str(work), str(seed)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"Kafka layout did not finish within {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise SystemExit(f"Kafka layout failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    layout: dict[tuple[str, int], tuple[int, ...]] = {}
    for line in (work / "layout.txt").read_text().splitlines():
        topic, part, reps = line.split(" ")
        layout[(topic, int(part))] = tuple(int(b) for b in reps.split(","))
    p = snapshot.partitions.copy()
    new = [layout[(str(t), int(q))] for t, q in zip(p["topic"], p["partition"], strict=True)]
    p["replicas"] = new
    p["isr"] = new
    p["leader"] = [r[0] for r in new]
    size = snapshot.replicas.groupby(["topic", "partition"])["size_bytes"].max()
    replicas = explode_replicas(p)
    keys = pd.MultiIndex.from_arrays([replicas["topic"], replicas["partition"]])
    replicas["size_bytes"] = size.reindex(keys).to_numpy()
    log_dirs = snapshot.log_dirs.copy()
    used = replicas.groupby("broker_id")["size_bytes"].sum().reindex(log_dirs["broker_id"], fill_value=0)
    log_dirs["usable_bytes"] = log_dirs["total_bytes"].to_numpy() - used.to_numpy()
    return replace(snapshot, partitions=p, replicas=replicas, log_dirs=log_dirs)


@dataclass(frozen=True)
class KafkaRun:
    """What one JVM produced: timings reported from inside it, and its proposals."""

    timings: dict[str, Any]
    proposals: list[dict[str, Any]]
    currents: list[dict[str, Any]]
    process_wall_s: float


def _split_generate_output(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(current, proposed) JSON from --generate's printed text (same parsing as bench_generate_compare)."""
    if PROPOSED_MARKER not in text or CURRENT_MARKER not in text:
        raise SystemExit(f"unexpected --generate output:\n{text[:2000]}")
    current = text.split(CURRENT_MARKER, 1)[1].strip().splitlines()[0]
    proposed = text.split(PROPOSED_MARKER, 1)[1].strip().splitlines()[0]
    return json.loads(current), json.loads(proposed)


def run_kafka_generate(
    libs: Path, classes: Path, work: Path, *, runs: int, warm: int, heap: str, timeout_s: float
) -> KafkaRun:
    """One JVM: ``runs`` full generateAssignment calls, then ``warm`` timed placement-only calls."""
    java = require_tool("java", "install a Java 17+ runtime")
    argv = [
        java, f"-Xms{heap}", f"-Xmx{heap}", "-cp", f"{libs / '*'}:{classes}", JAVA_CLASS,
        str(work), str(runs), str(warm),
    ]  # fmt: skip
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"Kafka --generate (offline) did not finish within {timeout_s:.0f} s") from exc
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"Kafka --generate (offline) failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    timings = json.loads(proc.stdout.strip().splitlines()[-1])
    currents, proposals = [], []
    for n in range(1, runs + 1):
        cur, prop = _split_generate_output((work / f"generate-output-{n}.txt").read_text())
        currents.append(cur)
        proposals.append(prop)
    return KafkaRun(timings=timings, proposals=proposals, currents=currents, process_wall_s=wall)


def check_same_input(snapshot: ClusterSnapshot, current: dict[str, Any], topics: Sequence[str]) -> int:
    """Partitions of the moved topics whose "current assignment" Kafka printed differs from ours.

    Proves Kafka planned from the same replica lists we did (must be 0); also checks it covered
    every partition of those topics.
    """
    table = PartitionTable.from_snapshot(snapshot)
    wanted = set(topics)
    ours = {table.key(i): table.replicas(i) for i in range(len(table)) if table.key(i)[0] in wanted}
    theirs = {
        (str(e["topic"]), int(e["partition"])): tuple(int(b) for b in e["replicas"]) for e in current["partitions"]
    }
    return sum(1 for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))


# ----------------------------------------------------------------------------------------------
# Measures (the project's own code)
# ----------------------------------------------------------------------------------------------


def rack_violations(rack: dict[int, str | None], moves: Sequence[Move]) -> int:
    """Partitions whose rack spread drops or where a rack gains a second replica."""
    return sum(
        1
        for m in moves
        if rack_spread(m.new_replicas, rack) < rack_spread(m.old_replicas, rack)
        or rack_concentration_increase(m.old_replicas, m.new_replicas, rack)
    )


def violation_kinds(violations: Sequence[str]) -> Counter[str]:
    """Group "topic-p: message" violations by message shape (numbers, lists and names dropped)."""
    return Counter(re.sub(r"\[[^\]]*\]|'[^']*'|\d+", "#", v.split(": ", 1)[-1]) for v in violations)


@dataclass(frozen=True)
class Spread:
    """min / max / population stdev of a per-broker count over the eligible brokers (zeros included)."""

    lo: int
    hi: int
    stdev: float

    def __str__(self) -> str:
        return f"{self.lo}..{self.hi} (sd {self.stdev:.1f})"


def _spread(counts: Counter[int], brokers: Sequence[int]) -> Spread:
    values = [counts.get(b, 0) for b in brokers]
    return Spread(min(values), max(values), statistics.pstdev(values))


def untouched_load(snapshot: ClusterSnapshot, moved_topics: Sequence[str], drained: Sequence[int]) -> Spread:
    """Replicas per remaining broker of the topics ``--generate`` was not given (it never sees them).

    ``--generate`` balances only the topics it re-places, so where these replicas sit bounds the
    balance it can reach; printed next to each case to explain the "after" figures.
    """
    moved = set(moved_topics)
    table = PartitionTable.from_snapshot(snapshot)
    counts: Counter[int] = Counter()
    for i in range(len(table)):
        if table.key(i)[0] not in moved:
            counts.update(table.replicas(i))
    return _spread(counts, sorted(snapshot.alive_broker_ids - set(drained)))


@dataclass(frozen=True)
class Balance:
    """What a plan leaves behind on the brokers that remain (the drained ones excluded)."""

    replicas: Spread
    leaders: Spread
    within_rack: int
    left_on_drained: int


def balance(snapshot: ClusterSnapshot, moves: Sequence[Move], drained: Sequence[int]) -> Balance:
    """Replicas and preferred leaders (first in the list) per remaining broker once ``moves`` apply.

    ``within_rack`` is the largest max - min replica count among the brokers of one rack: with RF 3
    over 3 racks every rack holds exactly one replica of each partition, so a drained rack's
    brokers must absorb its share whatever the planner does, and cluster-wide min..max mostly shows
    that; the within-rack spread is what a planner can actually get wrong.
    """
    table = PartitionTable.from_snapshot(snapshot)
    after = {(m.topic, m.partition): m.new_replicas for m in moves}
    replicas: Counter[int] = Counter()
    leaders: Counter[int] = Counter()
    for i in range(len(table)):
        reps = after.get(table.key(i)) or table.replicas(i)
        replicas.update(reps)
        if reps:
            leaders[reps[0]] += 1
    gone = set(drained)
    eligible = sorted(snapshot.alive_broker_ids - gone)
    rack = racks_of(snapshot)
    by_rack: dict[str | None, list[int]] = {}
    for b in eligible:
        by_rack.setdefault(rack.get(b), []).append(replicas.get(b, 0))
    return Balance(
        replicas=_spread(replicas, eligible),
        leaders=_spread(leaders, eligible),
        within_rack=max(max(v) - min(v) for v in by_rack.values()),
        left_on_drained=sum(replicas.get(b, 0) for b in gone),
    )


@dataclass(frozen=True)
class Row:
    """One plan's figures, all computed by the project's cost/validation code."""

    case: str
    plan: str
    partitions: int
    replicas_moved: int
    bytes_moved: float
    cross_az_bytes: float
    rack_violations: int
    unsafe_partitions: int
    no_isr_kept: int
    violation_kinds: Counter[str]
    after: Balance
    leader_changes: int


def measure(snapshot: ClusterSnapshot, case: str, plan: str, moves: Sequence[Move], drained: Sequence[int]) -> Row:
    cost = plan_cost(snapshot, moves)
    violations = validate_plan(snapshot, moves)
    unsafe = {v.split(": ", 1)[0] for v in violations}
    no_isr = {v.split(": ", 1)[0] for v in violations if "no current in-sync replica remains" in v}
    return Row(
        case=case,
        plan=plan,
        partitions=cost.partitions,
        replicas_moved=cost.replicas_moved,
        bytes_moved=cost.bytes_moved,
        cross_az_bytes=cost.cross_az_bytes,
        rack_violations=rack_violations(racks_of(snapshot), moves),
        unsafe_partitions=len(unsafe),
        no_isr_kept=len(no_isr),
        violation_kinds=violation_kinds(violations),
        after=balance(snapshot, moves, drained),
        leader_changes=cost.preferred_leader_changes,
    )


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def plan_rows_md(rows: Sequence[Row]) -> str:
    header = [
        "drain", "plan", "partitions changed", "replicas moved", "TB moved", "cross-AZ TB",
        "rack violations", "unsafe (validate_plan)", "of which no in-sync replica kept",
        "replicas / broker after", "max spread within a rack", "preferred leaders / broker after",
        "pref.-leader changes", "left on drained",
    ]  # fmt: skip
    body = [
        [
            r.case,
            r.plan,
            r.partitions,
            r.replicas_moved,
            f"{r.bytes_moved / 1e12:.3f}",
            f"{r.cross_az_bytes / 1e12:.3f} ({100 * r.cross_az_bytes / max(r.bytes_moved, 1):.0f} %)",
            r.rack_violations,
            r.unsafe_partitions,
            r.no_isr_kept,
            r.after.replicas,
            r.after.within_rack,
            r.after.leaders,
            r.leader_changes,
            r.after.left_on_drained,
        ]
        for r in rows
    ]
    return md_table(header, body)


def _ms(values: Sequence[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f}"


def timing_row(case: str, walls: Sequence[float], cpus: Sequence[float], kafka: KafkaRun) -> list[str]:
    """One line of the timing table. Warm figures skip the first call (class loading, JIT)."""
    t = kafka.timings
    calc, calc_cpu = t["calculate_ms"][1:] or t["calculate_ms"], t["calculate_cpu_ms"][1:] or t["calculate_cpu_ms"]
    gen, gen_cpu = t["generate_ms"], t["generate_cpu_ms"]
    later = f"{_ms(gen[1:])} ms (CPU {_ms(gen_cpu[1:])})" if len(gen) > 1 else "-"
    return [
        case,
        f"{_ms(walls)} ms (CPU {_ms(cpus)})",
        f"{_ms(calc)} ms (CPU {_ms(calc_cpu)})",
        f"{gen[0]:.0f} ms (CPU {gen_cpu[0]:.0f})",
        later,
        f"{t['jvm_uptime_after_run_ms'][0] / 1000:.2f} s",
        f"{kafka.process_wall_s:.1f} s",
    ]


def peak_rss_mib() -> float:
    """Peak RSS of this Python process (Linux reports KiB); the JVM is a separate process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0, help="synthetic_snapshot seed (bench_planner.py uses 0)")
    ap.add_argument("--cases", nargs="+", choices=["1", "3az", "1az"], default=["1", "3az", "1az"])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of our planner per case")
    ap.add_argument("--kafka-runs", type=int, default=3, help="--generate proposals per case (one JVM)")
    ap.add_argument("--kafka-warm", type=int, default=5, help="timed placement-only calls after those")
    ap.add_argument("--heap", default="2g", help="JVM -Xms/-Xmx")
    ap.add_argument("--kafka-timeout", type=float, default=900.0, help="seconds per JVM before giving up")
    ap.add_argument(
        "--layout",
        choices=["synthetic", "kafka"],
        default="synthetic",
        help="synthetic: bench_planner.py's cluster as is; kafka: same brokers/topics/sizes, every topic laid "
        "out by Kafka's StripedReplicaPlacer (seeded with --seed) before the drain",
    )
    ap.add_argument("--markdown", type=Path, help="also write the tables (markdown) to this file")
    args = ap.parse_args()

    t0 = time.perf_counter()
    snapshot = synthetic_snapshot(n_brokers=args.brokers, n_partitions=args.partitions, seed=args.seed)
    rack = racks_of(snapshot)
    print(
        f"synthetic snapshot: {args.brokers} brokers, {args.partitions} partitions, RF 3, 3 racks, seed {args.seed} "
        f"({len(snapshot.replicas)} replicas), built in {time.perf_counter() - t0:.1f} s"
    )
    same_az = sorted(b for b in rack if rack[b] == rack[1])[:3]
    all_cases = {"1": [1], "3az": [1, 2, 3], "1az": same_az}

    libs = ensure_tools()
    rows: list[Row] = []
    timing_rows: list[list[Any]] = []
    inputs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kafka-medic-generate-") as tmp:
        classes = compile_offline_generate(libs, Path(tmp))
        if args.layout == "kafka":
            snapshot = kafka_created_snapshot(
                snapshot, libs, classes, Path(tmp) / "layout", seed=args.seed, timeout_s=args.kafka_timeout
            )
            inputs.append(
                f"layout: every topic re-laid out by Kafka's StripedReplicaPlacer (Random seed {args.seed}) over all "
                f"{len(snapshot.alive_broker_ids)} brokers, partition sizes unchanged"
            )
        rows.append(measure(snapshot, "-", "current assignment (before)", [], []))
        for name in args.cases:
            drained = all_cases[name]
            case = ",".join(str(b) for b in drained)
            request = DrainRequest(brokers=drained)

            walls: list[float] = []
            cpus: list[float] = []
            plan = None
            for _ in range(args.repeat):
                w0, c0 = time.perf_counter(), time.process_time()
                plan = plan_moves(snapshot, request)
                walls.append((time.perf_counter() - w0) * 1000)
                cpus.append((time.process_time() - c0) * 1000)
            assert plan is not None
            rows.append(measure(snapshot, case, "kafka-medic planner", plan.moves, drained))

            work = Path(tmp) / f"case-{name}"
            topics, broker_list = write_kafka_inputs(snapshot, drained, work)
            kafka = run_kafka_generate(
                libs, classes, work, runs=args.kafka_runs, warm=args.kafka_warm, heap=args.heap,
                timeout_s=args.kafka_timeout,
            )  # fmt: skip
            t = kafka.timings
            mismatched = [check_same_input(snapshot, cur, topics) for cur in kafka.currents]
            if any(mismatched):
                raise SystemExit(f"Kafka saw a different current assignment than ours: {mismatched} partitions differ")
            n_parts = sum(1 for tp in snapshot.partitions["topic"] if tp in set(topics))
            inputs.append(
                f"drain {case}: {len(topics)} topics to move ({n_parts} partitions), broker list of "
                f"{len(broker_list.split(','))} brokers; replicas of the other topics (not given to --generate) "
                f"per remaining broker: {untouched_load(snapshot, topics, drained)}; Kafka's printed current "
                f"assignment matches the snapshot on every partition; Admin calls made: {t['admin_calls']}"
            )
            for n, proposal in enumerate(kafka.proposals, start=1):
                moves = moves_from_kafka_json(snapshot, proposal)
                label = f"kafka --generate run {n}" + (" (cold JVM)" if n == 1 else "")
                rows.append(measure(snapshot, case, label, moves, drained))
            timing_rows.append(timing_row(case, walls, cpus, kafka))
            print(f"[{case}] done: ours {min(walls):.0f} ms best; Kafka JVM {kafka.process_wall_s:.1f} s", flush=True)

    timing_md = md_table(
        [
            "drain", "kafka-medic plan_moves best / median",
            "Kafka placement only (calculateAssignment), warm best / median",
            "Kafka generateAssignment, run 1 (cold JVM)", "generateAssignment, later runs best / median",
            "Kafka JVM start -> first proposal",
            f"Kafka JVM process wall ({args.kafka_runs} runs + {args.kafka_warm} placements)",
        ],
        timing_rows,
    )  # fmt: skip
    kinds: list[str] = []
    for r in rows:
        if r.violation_kinds:
            top = "; ".join(f"{n} x '{k}'" for k, n in r.violation_kinds.most_common())
            kinds.append(f"- drain {r.case}, {r.plan}: {top}")
    text = "\n\n".join(
        [
            "Inputs:\n" + "\n".join(f"- {line}" for line in inputs),
            "Plan time (wall; CPU of the planning thread in brackets):\n\n" + timing_md,
            "Plans (all figures from plan_cost / validate_plan / the rack rule on the same snapshot; "
            "'after' = over the brokers left once the drained ones are empty, min..max and population sd):\n\n"
            + plan_rows_md(rows),
            "validate_plan violations by kind:\n" + ("\n".join(kinds) if kinds else "- none"),
            f"Python peak RSS {peak_rss_mib():.0f} MiB; Kafka JVM heap {json.dumps(args.heap)}, Java "
            f"{kafka.timings['java']} (max heap {kafka.timings['max_heap_mib']} MiB).",
        ]
    )
    print()
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    # Guard against silently reporting a plan that did not drain: both tools must empty the brokers.
    bad = [r for r in rows if r.after.left_on_drained]
    if bad:
        print(f"\nWARNING: {len(bad)} plan(s) leave replicas on drained brokers", file=sys.stderr)


if __name__ == "__main__":
    main()
