"""Snapshot build + drain plan at 2,000 brokers / 1,000,000 partitions (issue 14): time and peak RSS.

    python bench/bench_build_plan.py [--brokers 2000] [--partitions 1000000] [--repeat 3] [--drain 1]

Each repetition runs in a fresh Python process, so its peak RSS is that run's alone. A run:

1. builds the synthetic snapshot (``synthetic_snapshot``: RF 3 over 3 racks, lognormal sizes, one
   log dir per broker), including ``ClusterSnapshot``'s validation of every frame (timed apart);
2. plans a drain of ``--drain`` (``plan_moves``) and re-checks it with ``validate_plan``;
3. separately, the collectors' path: a ``ClusterSnapshot`` from the same partitions frame with the
   replicas frame built by ``explode_replicas`` from a (topic, partition, broker) -> size dict.

Prints wall and CPU seconds per step and peak RSS, then the best and median over the runs.
``PYTHONPATH=<older checkout>`` measures that checkout's code with the same steps.
Goal (issue 14): build + plan < 3 s and peak RSS < 1.5 GiB at 2,000 / 1M.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if "PYTHONPATH" not in os.environ:  # PYTHONPATH=<older checkout> measures that code instead
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kafka_medic.snapshot as snapshot_module
from kafka_medic.planner import DrainRequest, plan_moves
from kafka_medic.safety import validate_plan
from kafka_medic.snapshot import ClusterSnapshot, explode_replicas
from kafka_medic.synthetic import synthetic_snapshot


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def one_run(brokers: int, partitions: int, drain: int) -> dict[str, Any]:
    checked: list[float] = []
    original = getattr(snapshot_module, "check_frames", None)

    def timed_check(snap: ClusterSnapshot) -> Any:
        t = time.perf_counter()
        try:
            return original(snap)  # type: ignore[misc]
        finally:
            checked.append(time.perf_counter() - t)

    if hasattr(snapshot_module, "check_frames"):  # older code had no validation to time
        snapshot_module.check_frames = timed_check  # the constructor calls it through the module
    clock = Clock()
    snap = synthetic_snapshot(n_brokers=brokers, n_partitions=partitions)
    build = clock.lap()
    validation = sum(checked)
    plan = plan_moves(snap, DrainRequest(brokers=[drain]))
    planned = clock.lap()
    rss_build_plan = peak_rss_mib()
    violations = validate_plan(snap, plan.moves)
    validated = clock.lap()
    # The collectors' path: replicas frame exploded from the partitions frame with a sizes dict.
    r = snap.replicas
    sizes = dict(zip(zip(r["topic"], r["partition"], r["broker_id"], strict=True), r["size_bytes"], strict=True))
    parts, brokers_frame, log_dirs = snap.partitions, snap.brokers, snap.log_dirs
    del snap, r
    clock.lap()
    collected = ClusterSnapshot("c", brokers_frame, parts, replicas=explode_replicas(parts, sizes), log_dirs=log_dirs)
    collector = clock.lap()
    return {
        "build": build,
        "validation": validation,
        "plan": planned,
        "validate_plan": validated,
        "collector_path": collector,
        "replicas_moved": plan.cost.replicas_moved,
        "violations": len(violations),
        "replica_rows": len(collected.replicas),
        "rss_build_plan_mib": rss_build_plan,
        "rss_peak_mib": peak_rss_mib(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--drain", type=int, default=1)
    ap.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.once:
        print(json.dumps(one_run(args.brokers, args.partitions, args.drain)))
        return
    runs = []
    for i in range(args.repeat):
        argv = [sys.executable, __file__, "--once", f"--brokers={args.brokers}", f"--partitions={args.partitions}"]
        out = subprocess.run([*argv, f"--drain={args.drain}"], capture_output=True, text=True, check=True, timeout=600)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        (bw, bc), (pw, pc) = run["build"], run["plan"]
        print(
            f"run {i + 1}: build {bw:.2f} s (CPU {bc:.2f}; validation {run['validation']:.2f}) + plan {pw:.2f} s "
            f"(CPU {pc:.2f}) = {bw + pw:.2f} s; validate_plan {run['validate_plan'][0]:.2f} s, "
            f"{run['violations']} violations; {run['replicas_moved']} replicas moved; peak RSS build+plan "
            f"{run['rss_build_plan_mib']:.0f} MiB, whole run {run['rss_peak_mib']:.0f} MiB; collector path "
            f"(explode with a sizes dict + constructor) {run['collector_path'][0]:.2f} s"
        )

    def stat(name: str, pick: Any) -> str:
        values = [pick(r) for r in runs]
        return f"{name} best {min(values):.2f} / median {statistics.median(values):.2f}"

    print(
        f"\n{args.brokers} brokers / {args.partitions} partitions, {args.repeat} runs: "
        + "; ".join(
            [
                stat("build s", lambda r: r["build"][0]),
                stat("validation s", lambda r: r["validation"]),
                stat("plan s", lambda r: r["plan"][0]),
                stat("build+plan s", lambda r: r["build"][0] + r["plan"][0]),
                stat("build+plan CPU s", lambda r: r["build"][1] + r["plan"][1]),
                stat("peak RSS build+plan MiB", lambda r: r["rss_build_plan_mib"]),
                stat("collector path s", lambda r: r["collector_path"][0]),
            ]
        )
    )
    print("goal: build + plan < 3 s, peak RSS < 1536 MiB")


if __name__ == "__main__":
    main()
