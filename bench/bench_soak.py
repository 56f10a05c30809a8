"""Memory soak: the health check every ``--interval`` s for ``--minutes``, RSS sampled every cycle.

    .venv/bin/python bench/bench_soak.py --minutes 30 --interval 10 [--port-base 17090]

Runs the health_check flow in THIS process (as the served deployment does in the service) against
its own sandbox (6 brokers) under a light acks=all load, with a Prefect server from
``prefect_test_harness`` (a real server on loopback, SQLite). Prints RSS over time and the slope of a
least-squares line over the second half of the run (after warm-up): no growth trend means the slope
is within noise (|slope| well under 1 MiB/min).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope_mib_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(r for _, r in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    cov = sum((t - mx) * (r - my) for t, r in samples)
    return (cov / var) * 60 if var else 0.0


async def soak(sb, minutes: float, interval: float) -> None:  # type: ignore[no-untyped-def]
    from flows.health_check import health_check
    from kafka_medic.sandbox.definition import sandbox_cluster

    await sandbox_cluster(sb, name="soak").save("soak", overwrite=True)
    t0 = time.monotonic()
    samples: list[tuple[float, float]] = []
    cycles = failures = 0
    next_at = t0
    while time.monotonic() - t0 < minutes * 60:
        try:
            await health_check("soak", act=False)
        except Exception as exc:  # report, keep soaking
            failures += 1
            print(f"cycle failed: {exc}", flush=True)
        cycles += 1
        elapsed = time.monotonic() - t0
        samples.append((elapsed, rss_mib()))
        if cycles % 18 == 1:
            print(f"t={elapsed / 60:5.1f} min  cycles={cycles:4d}  rss={samples[-1][1]:7.1f} MiB", flush=True)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    rss = [r for _, r in samples]
    print(f"cycles {cycles} (failed {failures}) over {samples[-1][0] / 60:.1f} min, interval {interval:.0f} s")
    print(f"RSS first {rss[0]:.1f} MiB, min {min(rss):.1f}, max {max(rss):.1f}, last {rss[-1]:.1f} MiB")
    print(f"slope over the whole run: {slope_mib_per_min(samples):+.3f} MiB/min")
    print(f"slope over the second half: {slope_mib_per_min(half):+.3f} MiB/min")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--port-base", type=int, default=17090)
    args = ap.parse_args()

    from confluent_kafka.admin import NewTopic
    from prefect.testing.utilities import prefect_test_harness

    from kafka_medic.loadgen import AckedProducer
    from kafka_medic.sandbox.cluster import Sandbox
    from kafka_medic.sandbox.layout import SandboxLayout

    with tempfile.TemporaryDirectory() as tmp:
        sb = Sandbox(SandboxLayout(state_dir=Path(tmp) / "sb", port_base=args.port_base))
        try:
            print(f"sandbox up in {sb.up():.1f} s", flush=True)
            admin = sb.admin()
            admin.create_topics([NewTopic("soak-load", 12, 3)])["soak-load"].result(timeout=30)
            load = AckedProducer(sb.layout.bootstrap_servers, "soak-load", rate=50).start()
            try:
                with prefect_test_harness(server_startup_timeout=90):
                    asyncio.run(soak(sb, args.minutes, args.interval))
            finally:
                stats = load.stop()
                print(f"load: {stats.acked} acked, {stats.failed} failed")
        finally:
            sb.down()


if __name__ == "__main__":
    main()
