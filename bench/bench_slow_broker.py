"""Slow broker: how long until automation demotes it, restarts it, replaces it -- and does it act on
anyone else?

    .venv/bin/python bench/bench_slow_broker.py [--cpu-share 0.04] [--rate 600] [--port-base 26090]
        [--fault process|host] [--interval 1]

Starts its own sandbox (6 brokers, 3 AZs) and a Prefect test server; the cluster runs in ``auto``
mode with the sandbox replacer and the DEFAULT degraded-broker policy except ``--settle`` (the
settle window) -- scores 5/15/30, 100 kB/s traffic floor, 5 clean samples for a baseline. Load:
``--rate`` msg/s of 1 KB with acks=all, over a 24-partition topic on every broker.

The slow broker (3) is starved of CPU by a cgroup (:class:`kafka_medic.sandbox.faults.CpuStarvedBroker`):

* ``--fault process``: the fault lives in the JVM (a leak, a wedged thread): a restart clears it,
  so the climb ends at the restart rung;
* ``--fault host``: the machine is slow: the fault follows the broker through restarts (re-applied
  to each new process while its disk is the same) and only a replacement -- a fresh machine and
  disk in real life, a new ``directory.id`` here -- ends it, so the climb goes to the top.

Prints the time from the fault to each rung (demote, restart, replace) -- first tried and first
done: a restart of a host-bound fault is tried and fails --, every action on the slow broker as it
happens, the ladder's record of it when that changes, and every action on another broker.
``--watch-after S`` keeps the health checks running S seconds after the last rung expected (restart
for ``process``, replace for ``host``) and reports any further rung on the slow broker (``process``:
none should follow the restart). Everything started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

TOPIC = "slow-load"
SLOW = 3


def directory_id(sb: Any, broker_id: int) -> str | None:
    path = sb.layout.data_dir(sb.layout.broker(broker_id)) / "meta.properties"
    try:
        return next((x.split("=", 1)[1] for x in path.read_text().splitlines() if x.startswith("directory.id=")), None)
    except OSError:
        return None


class HostFault:
    """Keep ``broker_id`` starved of CPU across restarts, until its disk is replaced (a slow machine)."""

    def __init__(self, sb: Any, broker_id: int, share: float) -> None:
        from kafka_medic.sandbox.faults import CpuStarvedBroker

        self.sb, self.broker_id, self.share, self.cls = sb, broker_id, share, CpuStarvedBroker
        self.disk = directory_id(sb, broker_id)
        self.current: Any = None
        self.pid: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HostFault:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(0.5):
            if directory_id(self.sb, self.broker_id) not in (None, self.disk):
                self._release()  # replaced: a new machine
                return
            pid = self.sb.pid_of(self.sb.layout.broker(self.broker_id))
            if pid and pid != self.pid:
                self._release()
                try:
                    self.current = self.cls(pid, cpu_share=self.share).start()
                    self.pid = pid
                except Exception:
                    self.pid = None

    def _release(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None

    def stop(self) -> None:
        self._done.set()
        self._thread.join(5)
        self._release()


async def run(sb: Any, args: argparse.Namespace) -> None:
    from confluent_kafka.admin import NewTopic

    from blocks.replacers import SandboxReplacer
    from blocks.sandbox import sandbox_cluster
    from flows.health_check import health_check
    from kafka_medic.loadgen import AckedProducer, verify_acked
    from kafka_medic.policy import HealthPolicy, Mode
    from kafka_medic.sandbox.faults import CpuStarvedBroker
    from tasks.locks import ensure_cluster_limits
    from tasks.state import cluster_state

    assignment = [[(p + j) % 6 + 1 for j in range(3)] for p in range(24)]
    admin = sb.admin()  # kept in a name: a client collected mid-call fails its futures ("handle destroyed")
    admin.create_topics([NewTopic(TOPIC, num_partitions=24, replica_assignment=assignment)])[TOPIC].result(30)
    await SandboxReplacer(state_dir=str(sb.layout.state_dir)).save("slow-sandbox", overwrite=True)
    policy = HealthPolicy(mode=Mode.AUTO, degraded_settle_s=args.settle, replacement_cooldown_s=0,
                          dead_broker_grace_s=120)  # fmt: skip
    block = sandbox_cluster(sb, name="slow", replacer="sandbox-replacer/slow-sandbox", policy=policy)
    await block.save("slow", overwrite=True)
    await ensure_cluster_limits("slow")
    producer = AckedProducer(sb.layout.bootstrap_servers, TOPIC, rate=args.rate, value_bytes=1024).start()
    rungs: dict[str, float] = {}  # remedy -> first done
    tried: dict[str, float] = {}  # remedy -> first started (done or failed)
    after: list[str] = []  # rungs on the slow broker after the last one expected (the --watch-after window)
    others: list[dict[str, Any]] = []
    fault: Any = None
    t0 = time.monotonic()
    try:
        while True:  # learn the baselines under load
            await health_check("slow", act=True)
            s = (await cluster_state("slow").scores()).brokers.get(SLOW)
            if s is not None and s.samples >= policy.degraded_baseline_min_samples:
                break
            await asyncio.sleep(args.interval)
        print(f"baselines learnt after {time.monotonic() - t0:.0f} s; starving broker {SLOW} of CPU "
              f"({args.cpu_share:.0%}, fault bound to the {args.fault})", flush=True)  # fmt: skip
        t0 = time.monotonic()
        pid = sb.pid_of(sb.layout.broker(SLOW))
        fault = (HostFault(sb, SLOW, args.cpu_share) if args.fault == "host"
                 else CpuStarvedBroker(pid, cpu_share=args.cpu_share)).start()  # fmt: skip
        last, last_step = "", ""
        done_at: float | None = None
        held = ("skipped", "backing off", "gave up", "cooling down", "busy", "already running")
        while time.monotonic() - t0 < args.max_minutes * 60:
            report = await health_check("slow", act=True)
            now = time.monotonic() - t0
            for d in report.dispatched:
                b, remedy, status = d.get("broker_id"), d.get("remedy"), d.get("status")
                if b is None:
                    continue
                if b != SLOW:
                    others.append(d)
                    continue
                if status not in held:
                    tried.setdefault(remedy, now)
                    if done_at is not None and remedy != "restore_broker":
                        after.append(f"{now:.0f} s {remedy} -> {status}")
                    error = f" ({str(d.get('error'))[:160]})" if d.get("error") else ""
                    print(f"  {now:6.1f} s: {remedy} -> {status}{error}", flush=True)
                if status in ("completed", "restarted", "replaced") and remedy not in rungs:
                    rungs[remedy] = now
            v = next((v for v in report.judgment.get("verdicts", []) if v["broker_id"] == SLOW), None)
            line = f"score {v['score']} {v.get('not_judged') or ''}" if v else "not shown"
            if v and v.get("next_at"):
                line += f" (next: {v['next_at']})"
            if line != last:
                print(f"  {now:6.1f} s: broker {SLOW} {line}", flush=True)
                last = line
            step = (await cluster_state("slow").ladder()).of(SLOW)
            step_line = f"rung {step.rung.value if step.rung else None}{' (failed)' if step.failed else ''}" + (
                " on probation" if step.restored_at else "")  # fmt: skip
            if step_line != last_step:
                print(f"  {now:6.1f} s: ladder: broker {SLOW} {step_line}", flush=True)
                last_step = step_line
            final = "replace_broker" if args.fault == "host" else "restart_broker"
            if done_at is None and final in rungs:
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at >= args.watch_after:
                break
            await asyncio.sleep(args.interval)
    finally:
        if fault is not None:
            fault.stop()
        stats = producer.stop()
    result = verify_acked(sb.layout.bootstrap_servers, TOPIC, producer.acked_keys, timeout_s=120)
    every = f"a health check every {args.interval:g} s + cycle"
    print(f"\nslow broker (CPU {args.cpu_share:.0%}, fault bound to the {args.fault}), {args.rate:g} msg/s of 1 KB, "
          f"default scores 5/15/30, settle {args.settle:g} s, {every}:")  # fmt: skip
    for rung in ("demote_broker", "restart_broker", "replace_broker"):
        shown = f"{rungs[rung]:.1f} s" if rung in rungs else "-"
        first = f"{tried[rung]:.1f} s" if rung in tried else "-"
        print(f"  time to {rung.split('_')[0]:<8} {shown:>9} done, first tried at {first}")
    if args.watch_after:
        print(f"  rungs on broker {SLOW} in the {args.watch_after:g} s after the last one expected: {after or 'none'}")
    print(f"  actions on other brokers: {len(others)} {others[:3]}")
    print(f"  messages: {stats.attempted} produced, {stats.acked} acked, {result.lost} acked lost")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-share", type=float, default=0.04)
    ap.add_argument("--rate", type=float, default=600.0)
    ap.add_argument("--fault", choices=("process", "host"), default="host")
    ap.add_argument("--settle", type=float, default=120.0, help="degraded_settle_s (default: the policy's 120)")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--watch-after", type=float, default=0.0,
                    help="keep watching this many seconds after the last rung expected (default 0)")  # fmt: skip
    ap.add_argument("--port-base", type=int, default=26090)
    args = ap.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from kafka_medic.sandbox.cluster import Sandbox
    from kafka_medic.sandbox.layout import SandboxLayout

    with tempfile.TemporaryDirectory(prefix="kafka-medic-slow-") as tmp:
        sb = Sandbox(SandboxLayout(state_dir=Path(tmp) / "sb", port_base=args.port_base))
        try:
            print(f"sandbox up in {sb.up():.1f} s (6 brokers, 3 AZs)", flush=True)
            with prefect_test_harness(server_startup_timeout=120):
                asyncio.run(run(sb, args))
        finally:
            sb.down()
    print(f"load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
