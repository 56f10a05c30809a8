"""One real health-check cycle on the sandbox: collection + evaluation + Prefect overhead.

    .venv/bin/python bench/bench_health_cycle.py [--cycles 20] [--port-base 23090]

Starts its own sandbox (6 brokers, 3 AZs) with a few topics and a Prefect test server, runs the
health_check flow ``--cycles`` times and prints the distribution of each part. Stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _fmt(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
    return f"median {statistics.median(xs) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   max {xs[-1] * 1000:7.1f} ms"


async def run(cycles: int, sb) -> None:  # type: ignore[no-untyped-def]
    from blocks.sandbox import sandbox_cluster
    from flows.health_check import health_check

    block = sandbox_cluster(sb, name="bench")
    await block.save("bench", overwrite=True)
    await health_check("bench", act=False)  # warm-up (imports, first scrape, block schema)
    total, collect, evaluate = [], [], []
    for _ in range(cycles):
        t0 = time.perf_counter()
        report = await health_check("bench", act=False)
        total.append(time.perf_counter() - t0)
        collect.append(report.collect_s)
        evaluate.append(report.evaluate_s)
    overhead = [t - c - e for t, c, e in zip(total, collect, evaluate, strict=True)]
    print(f"cycles: {cycles}   healthy: {report.healthy}")
    print(f"  whole flow run     {_fmt(total)}")
    print(f"  collection         {_fmt(collect)}")
    print(f"  rule evaluation    {_fmt(evaluate)}")
    print(f"  Prefect + publish  {_fmt(overhead)}  (flow run, task run, variables, artifacts)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--port-base", type=int, default=23090)
    ap.add_argument("--topics", type=int, default=10)
    args = ap.parse_args()

    from confluent_kafka.admin import NewTopic
    from prefect.testing.utilities import prefect_test_harness

    from kafka_medic.sandbox.cluster import Sandbox
    from kafka_medic.sandbox.layout import SandboxLayout

    with tempfile.TemporaryDirectory() as tmp:
        sb = Sandbox(SandboxLayout(state_dir=Path(tmp) / "sb", port_base=args.port_base))
        try:
            print(f"sandbox up in {sb.up():.1f} s")
            admin = sb.admin()
            futs = admin.create_topics([NewTopic(f"bench-{i}", 12, 3) for i in range(args.topics)])
            for f in futs.values():
                f.result(timeout=30)
            print(f"{args.topics} topics x 12 partitions, RF 3")
            with prefect_test_harness(server_startup_timeout=60):
                asyncio.run(run(args.cycles, sb))
        finally:
            sb.down()
    print(f"load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
