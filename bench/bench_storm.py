"""Failover storm: how often does automation act on a healthy broker? (false positives of the judgment)

    .venv/bin/python bench/bench_storm.py [--kills 10] [--hangs 3] [--loads low,high] [--port-base 26090]

Starts its own sandbox (6 brokers, 3 AZs) and a Prefect test server; the cluster runs in ``auto``
mode with the DEFAULT degraded-broker policy (nothing muted) and the sandbox replacer. For each
load level (``low``: 20 msg/s of 200 B -- the worst case for p99 outliers, a handful of requests;
``high``: ``--high-rate`` msg/s of 1 KB):

1. warm-up: ``--warmup`` health checks, so every broker learns its own baseline;
2. ``--kills`` times: kill the broker leading the most partitions (its JVM; the disk stays), run
   health checks back to back until kafka-medic healed it (restart with its disk) and the ISR is
   full, then ``--settle`` more cycles; with ``--judged N``, then on until N cycles in which every
   alive broker was actually judged (past the settle window after the heal): the gates alone
   prove nothing about the score, so this is where a noisy score would show;
3. ``--hangs`` times: SIGSTOP the broker leading the most partitions for ``--hang-s`` s (inside its
   grace period ``--grace``), SIGCONT, and keep checking for ``--settle`` cycles.

It counts every action automation dispatched, split into: the heal of the killed broker (expected),
actions on any other broker (false positives), and actions on a hung broker inside its grace period
(must be none). It also counts what the degraded *rule* flagged on single samples -- what a tool
acting on one sample would have done -- and the largest survivor p99 / peer-median ratio seen after
each kill, the noise the judgment has to sit out. Everything started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

TOPIC = "storm-load"
LOADS = {"low": (20.0, 200), "high": (None, 1024)}  # (msg/s, value bytes); high's rate from --high-rate


@dataclass
class Tally:
    load: str
    cycles: int = 0
    kills: int = 0
    hangs: int = 0
    heals: Counter[str] = field(default_factory=Counter)  # status of the killed broker's heal
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    inside_grace: list[dict[str, Any]] = field(default_factory=list)
    single_sample_flags: int = 0  # cycles x brokers the degraded rule flagged (acting on one sample)
    flagged_brokers: Counter[int] = field(default_factory=Counter)
    max_due_score: int = 0
    judged: int = 0  # cycles in which every broker was judged (no gate, none catching up or idle)
    suspects: int = 0  # broker-cycles whose signals agreed (a +1 to the score)
    p99_ratios: list[float] = field(default_factory=list)
    heal_s: list[float] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)  # incident pages (the default pending window)
    notices: list[dict[str, Any]] = field(default_factory=list)


def _leader_counts(sb: Any) -> Counter[int]:
    from kafka_medic.monitor.cluster_reads import describe_partitions

    parts = describe_partitions(sb.admin(), timeout_s=10)
    return Counter(int(x) for x in parts["leader"] if int(x) >= 0)


def _full_isr(sb: Any) -> bool:
    from kafka_medic.monitor.cluster_reads import describe_partitions, not_fully_replicated

    try:
        return not_fully_replicated(describe_partitions(sb.admin(), timeout_s=5)).empty
    except Exception:
        return False


def _everyone_judged(report: Any) -> bool:
    """This health check judged every broker: no gate (disruption, settle window, replay) and none
    left out (too little traffic, catching up, metrics unreadable)."""
    j = report.judgment
    return bool(j) and j.get("gate") is None and not j.get("not_judged")


def _observe(t: Tally, report: Any, expected: set[int], grace_ends: float | None) -> None:
    """Count one health-check report: actions, single-sample flags, the judgment's scores."""
    t.cycles += 1
    for f in report.findings:
        if f["rule"] == "degraded_broker":
            t.single_sample_flags += 1
            t.flagged_brokers.update(f["brokers"])
    for i in report.incidents:
        (t.pages if i["page"] else t.notices).append({k: i[k] for k in ("transition", "key", "summary")})
    for v in report.judgment.get("verdicts", []):
        t.max_due_score = max(t.max_due_score, int(v.get("score", 0)))
        t.suspects += bool(v.get("counted") and v.get("suspect"))
    t.judged += _everyone_judged(report)
    for d in report.dispatched:
        b = d.get("broker_id")
        if b is None:
            continue
        if b not in expected:
            t.false_positives.append(d)
        elif grace_ends is not None and time.monotonic() < grace_ends:
            t.inside_grace.append(d)


def _p99_ratio(report: Any) -> float:
    """The largest alive broker's produce p99 (its own time, or the total where remote time is not
    scraped) over the peer median in this report's health table."""
    rows = [r for r in report.findings if r["rule"] == "degraded_broker"]
    names = ("produce_local_p99_ms", "produce_p99_ms")
    ratios = [float(s.get("value", 0)) / float(s.get("peer_median") or 1) for r in rows
              for s in r["evidence"].get("signals", []) if s.get("signal") in names]  # fmt: skip
    return max(ratios, default=0.0)


async def storm(sb: Any, args: argparse.Namespace, load: str) -> Tally:
    from flows.health_check import health_check
    from kafka_medic.loadgen import AckedProducer

    rate, size = LOADS[load]
    rate = rate if rate is not None else args.high_rate
    t = Tally(load)
    producer = AckedProducer(sb.layout.bootstrap_servers, TOPIC, rate=rate, value_bytes=size, record_keys=False)
    producer.start()
    try:
        for _ in range(args.warmup):
            _observe(t, await health_check("storm", act=True), set(), None)
            await asyncio.sleep(args.interval)
        for n in range(args.kills):
            victim = _leader_counts(sb).most_common(1)[0][0]
            sb.kill(victim)
            t.kills += 1
            t0 = time.monotonic()
            healed = None
            while time.monotonic() - t0 < 600 and healed is None:
                report = await health_check("storm", act=True)
                _observe(t, report, {victim}, t0 + args.grace)
                t.p99_ratios.append(_p99_ratio(report))
                done = [d for d in report.dispatched if d.get("broker_id") == victim]
                if done and d_ok(done[-1]):
                    healed = done[-1].get("status")
                    if healed != "restarted":  # say why the disk was not kept
                        notes = (done[-1].get("result") or {}).get("notes", {})
                        print(f"  [{load}] broker {victim} {healed}: {notes.get('restart_first')}; "
                              f"{str(done[-1].get('message'))[:300]}", flush=True)  # fmt: skip
                await asyncio.sleep(args.interval)
            t.heals[str(healed)] += 1
            t.heal_s.append(time.monotonic() - t0)
            deadline = time.monotonic() + 300
            while not _full_isr(sb) and time.monotonic() < deadline:
                _observe(t, await health_check("storm", act=True), {victim}, None)
                await asyncio.sleep(args.interval)
            for _ in range(args.settle):
                report = await health_check("storm", act=True)
                _observe(t, report, set(), None)
                t.p99_ratios.append(_p99_ratio(report))
                await asyncio.sleep(args.interval)
            judged, deadline = 0, time.monotonic() + args.judged_within
            while judged < args.judged and time.monotonic() < deadline:
                report = await health_check("storm", act=True)
                _observe(t, report, set(), None)
                judged += _everyone_judged(report)
                await asyncio.sleep(args.interval)
            print(f"  [{load}] kill {n + 1}/{args.kills}: broker {victim} {healed} in {t.heal_s[-1]:.1f} s; "
                  f"false positives so far {len(t.false_positives)}", flush=True)  # fmt: skip
        for n in range(args.hangs):
            victim = _leader_counts(sb).most_common(1)[0][0]
            sb.hang(victim)
            t.hangs += 1
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < args.hang_s:
                    _observe(t, await health_check("storm", act=True), set(), t0 + args.grace)
                    await asyncio.sleep(args.interval)
            finally:
                sb.resume(victim)
            for _ in range(args.settle):
                _observe(t, await health_check("storm", act=True), set(), None)
                await asyncio.sleep(args.interval)
            print(
                f"  [{load}] hang {n + 1}/{args.hangs}: broker {victim} for {args.hang_s:g} s (grace "
                f"{args.grace:g} s); actions so far {len(t.false_positives) + len(t.inside_grace)}",
                flush=True,
            )
    finally:
        stats = producer.stop()
    print(f"  [{load}] load: {stats.attempted} produced, {stats.acked} acked at {rate:g} msg/s of {size} B")
    return t


def d_ok(d: dict[str, Any]) -> bool:
    return d.get("status") in ("restarted", "replaced")


async def setup(sb: Any, args: argparse.Namespace) -> None:
    from confluent_kafka.admin import NewTopic

    from blocks.replacers import SandboxReplacer
    from blocks.sandbox import sandbox_cluster
    from kafka_medic.policy import HealthPolicy, Mode
    from tasks.locks import ensure_cluster_limits

    admin = sb.admin()
    admin.create_topics([NewTopic(TOPIC, 24, 3)])[TOPIC].result(timeout=30)
    await SandboxReplacer(state_dir=str(sb.layout.state_dir)).save("storm-sandbox", overwrite=True)
    policy = HealthPolicy(mode=Mode.AUTO, dead_broker_grace_s=args.grace, replacement_cooldown_s=0)
    block = sandbox_cluster(sb, name="storm", replacer="sandbox-replacer/storm-sandbox", policy=policy)
    await block.save("storm", overwrite=True)
    await ensure_cluster_limits("storm")


def summary(t: Tally) -> None:
    ratios = sorted(r for r in t.p99_ratios if r > 0)
    print(f"\n[{t.load}] {t.kills} kills + {t.hangs} hangs inside grace, {t.cycles} health checks (auto mode, "
          "default degraded policy)")  # fmt: skip
    print(f"  heals of the killed broker:                 {dict(t.heals)}; median {statistics.median(t.heal_s):.1f} s"
          if t.heal_s else "  heals: none")  # fmt: skip
    print(f"  FALSE POSITIVES (actions on other brokers): {len(t.false_positives)} {t.false_positives[:3]}")
    print(f"  actions inside a grace period:              {len(t.inside_grace)} {t.inside_grace[:3]}")
    shown = (t.pages + t.notices)[:3]
    print(f"  pages / notices sent (incidents):           {len(t.pages)} / {len(t.notices)} {shown}")
    print(f"  single-sample degraded flags (a one-sample tool would have acted): {t.single_sample_flags} "
          f"on brokers {dict(t.flagged_brokers)}")  # fmt: skip
    print(f"  highest judgment score seen:                {t.max_due_score} (demote at 5)")
    print(f"  health checks that judged every broker:     {t.judged}; broker-cycles suspect (+1): {t.suspects}")
    if ratios:
        print(f"  survivor produce p99 / peer median when flagged: median {statistics.median(ratios):.1f}x, "
              f"max {ratios[-1]:.1f}x")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--hangs", type=int, default=3)
    ap.add_argument("--loads", default="low,high")
    ap.add_argument("--high-rate", type=float, default=2000.0, help="msg/s of 1 KB at high load (default 2000)")
    ap.add_argument("--grace", type=float, default=20.0, help="dead_broker_grace_s (default 20)")
    ap.add_argument("--hang-s", type=float, default=8.0, help="how long a hang lasts (inside the grace)")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--settle", type=int, default=5, help="health checks after each heal or hang")
    ap.add_argument(
        "--judged",
        type=int,
        default=0,
        help="after each heal, health checks until this many judged every broker (default 0)",
    )
    ap.add_argument(
        "--judged-within",
        type=float,
        default=400.0,
        help="bound on that wait, seconds (the default policy settles 120 s after a heal)",
    )
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between health checks")
    ap.add_argument("--port-base", type=int, default=26090)
    args = ap.parse_args()
    if args.hang_s >= args.grace:
        ap.error("--hang-s must be shorter than --grace: the hangs are the inside-grace case")

    from prefect.testing.utilities import prefect_test_harness

    from kafka_medic.sandbox.cluster import Sandbox
    from kafka_medic.sandbox.layout import SandboxLayout

    tallies: list[Tally] = []
    with tempfile.TemporaryDirectory(prefix="kafka-medic-storm-") as tmp:
        sb = Sandbox(SandboxLayout(state_dir=Path(tmp) / "sb", port_base=args.port_base))
        try:
            print(f"sandbox up in {sb.up():.1f} s (6 brokers, 3 AZs)", flush=True)
            with prefect_test_harness(server_startup_timeout=120):
                asyncio.run(setup(sb, args))
                for load in [x.strip() for x in args.loads.split(",") if x.strip()]:
                    tallies.append(asyncio.run(storm(sb, args, load)))
        finally:
            sb.down()
    for t in tallies:
        summary(t)
    total_fp = sum(len(t.false_positives) + len(t.inside_grace) for t in tallies)
    pages = sum(len(t.pages) for t in tallies)
    print(f"\nTOTAL: {sum(t.kills for t in tallies)} kills, {sum(t.hangs for t in tallies)} hangs, "
          f"{total_fp} action(s) on healthy brokers or inside grace, {pages} page(s)")  # fmt: skip
    print(f"load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
