"""Memory soak: the health check every ``--interval`` s for ``--minutes``, RSS sampled every cycle.

    .venv/bin/python bench/bench_soak.py --minutes 30 --interval 10 [--port-base 17090]
    .venv/bin/python bench/bench_soak.py --minutes 15 --interval 10 --tracemalloc [--tracemalloc-at 0.33]

Three kinds of process, so that the measured RSS is the kafka-medic service side and nothing else:

* this process, the orchestrator (not measured): owns the sandbox (6 brokers, JVMs), the steady
  acks=all load (``AckedProducer``, which remembers every acknowledged key and so grows by design),
  and the Prefect server;
* the Prefect server: a real ``prefect server start`` (``deployments.local_server``), SQLite in a
  temp dir, 127.0.0.1. Its RSS (whole process group) is sampled and reported separately;
* the measured process: a fresh interpreter started with ``PREFECT_API_URL`` pointing at that
  server *before* it imports Prefect. It saves the cluster block, then runs the ``health_check``
  flow in-process every ``--interval`` s (``act=False``), sampling its own RSS after each cycle.

Running the flow in the long-lived process is the stricter test: a served deployment runs each
flow run in a short-lived child process, so per-run leftovers in the flow code would not even
accumulate there. No growth trend here therefore bounds the service too.

``--tracemalloc`` traces Python allocations in the measured process, snapshots at ``--tracemalloc-at``
of the run and at the end, and prints the top allocation-growth sites (``filename:lineno``, size
and count difference), plus the call stacks of the biggest ones. Tracing costs memory and time:
RSS from such a run is not comparable with an untraced one. Native memory (librdkafka, thread
stacks) is invisible to tracemalloc; the thread and file-descriptor counts reported per sample
cover the usual native leaks (clients that are never closed).

Verdict rule: the run is "flat" when the least-squares slope over the second half (after warm-up)
is within ``--flat-threshold`` MiB/min (default 0.05, i.e. < 1.5 MiB per 30 min, the size of RSS
noise from allocator arenas and page granularity here).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Environment of the measured process (the caller's environment wins); as in the previous soak runs.
MEASURED_ENV_DEFAULTS = {
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}
LOAD_TOPIC = "soak-load"
CLUSTER = "soak"
_PR_SET_PDEATHSIG = 1


# --------------------------------------------------------------------------------------- sampling
def _status_kib(pid: int | str, key: str) -> int | None:
    """A ``/proc/<pid>/status`` field in KiB (or a count), None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mib(pid: int | str = "self") -> float:
    kib = _status_kib(pid, "VmRSS")
    return kib / 1024 if kib is not None else float("nan")


def group_rss_mib(pgid: int) -> float:
    """RSS summed over every process in process group ``pgid`` (the server and what it started)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # field 5 of /proc/PID/stat is the pgrp; the command name (field 2) may hold spaces
            stat = (entry / "stat").read_text()
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if pgrp == pgid:
            total += _status_kib(entry.name, "VmRSS") or 0
    return total / 1024


def slope_mib_per_min(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (seconds, MiB) in MiB/min and its standard error (0 when undefined)."""
    n = len(samples)
    if n < 3:
        return 0.0, 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(r for _, r in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if not var:
        return 0.0, 0.0
    b = sum((t - mx) * (r - my) for t, r in samples) / var
    a = my - b * mx
    resid = sum((r - (a + b * t)) ** 2 for t, r in samples)
    se = math.sqrt(resid / (n - 2) / var)
    return b * 60, se * 60


@dataclass
class Sample:
    t_s: float
    rss_mib: float
    server_rss_mib: float
    threads: int
    fds: int
    traced_mib: float | None = None


@dataclass
class SoakResult:
    cycles: int = 0
    failed: int = 0
    interval_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    tracemalloc: dict[str, Any] | None = None
    mode: str = "inprocess"
    runs_by_state: dict[str, int] | None = None


# ------------------------------------------------------------------------------ measured process
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """SIGKILL the measured process if the orchestrator dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _take_snapshot() -> Any:
    import tracemalloc

    return tracemalloc.take_snapshot().filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
            tracemalloc.Filter(False, "<unknown>"),
            tracemalloc.Filter(False, __file__),  # this script's own sample list
        )
    )


def _growth_report(first: Any, last: Any, top: int, stacks: int) -> dict[str, Any]:
    """Top growth sites between two snapshots, by line and (for the biggest) by call stack."""

    def short(filename: str) -> str:
        for marker in ("site-packages/", str(ROOT) + "/", "lib/python3"):
            if marker in filename:
                return filename.split(marker, 1)[1]
        return filename

    by_line = last.compare_to(first, "lineno")
    sites = [
        {
            "site": f"{short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "size_diff_kib": round(s.size_diff / 1024, 1),
            "count_diff": s.count_diff,
            "size_kib": round(s.size / 1024, 1),
        }
        for s in by_line[:top]
    ]
    by_stack = last.compare_to(first, "traceback")
    traces = [
        {
            "size_diff_kib": round(s.size_diff / 1024, 1),
            "count_diff": s.count_diff,
            "stack": [f"{short(fr.filename)}:{fr.lineno}" for fr in s.traceback],
        }
        for s in by_stack[:stacks]
    ]
    total = sum(s.size_diff for s in by_line) / 1024
    return {"sites": sites, "stacks": traces, "total_diff_kib": round(total, 1)}


async def _save_block(args: argparse.Namespace) -> None:
    """The ``soak`` KafkaCluster block (policy default: observe mode, so nothing can act)."""
    from blocks.sandbox import sandbox_cluster
    from kafka_medic.sandbox.cluster import Sandbox
    from kafka_medic.sandbox.layout import SandboxLayout

    layout = SandboxLayout(state_dir=Path(args.state_dir), port_base=args.port_base)
    await sandbox_cluster(Sandbox(layout), name=CLUSTER).save(CLUSTER, overwrite=True)


class _Sampler:
    """RSS, threads and fds of this process plus the server's RSS; tracemalloc snapshots on cue."""

    def __init__(self, args: argparse.Namespace, result: SoakResult) -> None:
        import tracemalloc

        self.args = args
        self.result = result
        self.duration = args.minutes * 60
        self.first_snapshot: Any = None
        result.interval_s = args.interval
        result.mode = args.mode
        if args.tracemalloc:
            tracemalloc.start(args.tracemalloc_frames)
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def sample(self, progress_every: int = 18) -> None:
        import tracemalloc

        args = self.args
        elapsed = self.elapsed()
        s = Sample(
            t_s=elapsed,
            rss_mib=rss_mib(),
            server_rss_mib=group_rss_mib(args.server_pgid),
            threads=_status_kib("self", "Threads") or 0,
            fds=len(os.listdir("/proc/self/fd")),
            traced_mib=tracemalloc.get_traced_memory()[0] / 2**20 if args.tracemalloc else None,
        )
        self.result.samples.append(s)
        if args.tracemalloc and self.first_snapshot is None and elapsed >= self.duration * args.tracemalloc_at:
            self.first_snapshot = _take_snapshot()
            print(f"t={elapsed / 60:5.1f} min  tracemalloc: first snapshot taken", flush=True)
        if len(self.result.samples) % progress_every == 1:
            traced = f"  traced={s.traced_mib:6.1f} MiB" if s.traced_mib is not None else ""
            print(
                f"t={elapsed / 60:5.1f} min  cycles={self.result.cycles:4d}  rss={s.rss_mib:7.1f} MiB  "
                f"server={s.server_rss_mib:7.1f} MiB  threads={s.threads}  fds={s.fds}{traced}",
                flush=True,
            )

    def finish(self) -> None:
        if self.args.tracemalloc and self.first_snapshot is not None:
            tm = _growth_report(self.first_snapshot, _take_snapshot(), self.args.tracemalloc_top, 5)
            tm["first_at_min"] = round(self.duration * self.args.tracemalloc_at / 60, 1)
            self.result.tracemalloc = tm


async def _soak_inprocess(args: argparse.Namespace, result: SoakResult) -> None:
    """``--mode inprocess``: the flow runs in this long-lived process, cycle after cycle."""
    import asyncio

    from flows.health_check import health_check

    await _save_block(args)
    sampler = _Sampler(args, result)
    next_at = sampler.t0
    while sampler.elapsed() < sampler.duration:
        try:
            await asyncio.wait_for(health_check(CLUSTER, act=False), timeout=max(60.0, 6 * args.interval))
        except Exception as exc:  # report, keep soaking
            result.failed += 1
            if len(result.failures) < 20:
                result.failures.append(f"{type(exc).__name__}: {exc}"[:300])
            print(f"cycle failed: {type(exc).__name__}: {exc}", flush=True)
        result.cycles += 1
        sampler.sample()
        next_at += args.interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    sampler.finish()


async def _count_health_runs() -> dict[str, int]:
    """Health-check flow runs on the server by state type (bounded paging)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    counts: dict[str, int] = {}
    async with get_client() as client:
        for page in range(100):
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["health-check"])), limit=200, offset=page * 200
            )
            for r in runs:
                key = r.state_type.value if r.state_type else "NONE"
                counts[key] = counts.get(key, 0) + 1
            if len(runs) < 200:
                break
    return counts


async def _soak_serve(args: argparse.Namespace, result: SoakResult, deployments: list[Any]) -> None:
    """``--mode serve``: this process serves the deployments as ``./medic start`` does; the server
    schedules ``health-check/soak`` every interval and the runner runs each in a child process."""
    import asyncio

    from deployments.serve import aserve_until

    stop = asyncio.Event()
    serving = asyncio.create_task(aserve_until(deployments, stop))
    sampler = _Sampler(args, result)
    next_at = sampler.t0
    try:
        while sampler.elapsed() < sampler.duration and not serving.done():
            next_at += args.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            sampler.sample()
        sampler.finish()
    finally:
        stop.set()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=60)
    if serving.done() and not serving.cancelled() and serving.exception() is not None:
        result.failures.append(f"runner ended: {serving.exception()!r}"[:300])
    result.runs_by_state = await asyncio.wait_for(_count_health_runs(), timeout=60)
    result.cycles = result.runs_by_state.get("COMPLETED", 0)
    result.failed = sum(result.runs_by_state.get(k, 0) for k in ("FAILED", "CRASHED"))


def measured_main(args: argparse.Namespace) -> int:
    """Entry point of the measured process (``--role measured``); writes ``--result`` as JSON."""
    import asyncio

    if "PREFECT_API_URL" not in os.environ:
        print("bench_soak: the measured process needs PREFECT_API_URL (started by the orchestrator)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    result = SoakResult()
    try:
        if args.mode == "serve":
            from deployments.serve import build_deployments

            asyncio.run(_save_block(args))
            # built outside any event loop: Prefect's to_deployment turns async inside one
            deployments = build_deployments([CLUSTER], interval_s=args.interval)
            asyncio.run(_soak_serve(args, result, deployments))
        else:
            asyncio.run(_soak_inprocess(args, result))
    except KeyboardInterrupt:
        print("measured process: stopped early", flush=True)
    finally:  # also after Ctrl-C / SIGTERM: whatever was measured is kept
        Path(args.result).write_text(json.dumps(asdict(result)))
    return 0


# ----------------------------------------------------------------------------------- orchestrator
def _terminate(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; bounded."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM behaves like Ctrl-C, so every ``finally`` below stops what it started."""
    raise KeyboardInterrupt


def _fmt_slope(samples: list[tuple[float, float]]) -> str:
    b, se = slope_mib_per_min(samples)
    return f"{b:+.3f} MiB/min (±{1.96 * se:.3f} at 95%)"


def report(result: SoakResult, threshold: float) -> str:
    """The figures printed at the end (and pasted into bench/RESULTS.md)."""
    if not result.samples:
        return "no samples (the measured process ended before its first cycle)"
    ss = result.samples
    end = ss[-1].t_s
    whole = [(s.t_s, s.rss_mib) for s in ss]
    half = [(s.t_s, s.rss_mib) for s in ss if s.t_s >= end / 2]
    srv = [(s.t_s, s.server_rss_mib) for s in ss]
    srv_half = [(s.t_s, s.server_rss_mib) for s in ss if s.t_s >= end / 2]
    rss = [r for _, r in whole]
    srss = [r for _, r in srv]
    step = max(1, len(ss) // 10)
    marks = ss[::step][:10]
    runs = f"; health-check runs by state {result.runs_by_state}" if result.runs_by_state is not None else ""
    lines = [
        f"mode {result.mode}: cycles {result.cycles} (failed {result.failed}) over {end / 60:.1f} min, "
        f"interval {result.interval_s:.0f} s{runs}",
        f"measured process RSS first {rss[0]:.1f} MiB, min {min(rss):.1f}, max {max(rss):.1f}, last {rss[-1]:.1f} MiB",
        "RSS samples (t min: MiB): " + ", ".join(f"{s.t_s / 60:.0f}: {s.rss_mib:.1f}" for s in marks),
        f"slope over the whole run: {_fmt_slope(whole)}",
        f"slope over the second half: {_fmt_slope(half)}",
        f"threads first/last {ss[0].threads}/{ss[-1].threads}, open fds first/last {ss[0].fds}/{ss[-1].fds}",
        f"server RSS (process group) first {srss[0]:.1f} MiB, min {min(srss):.1f}, max {max(srss):.1f}, "
        f"last {srss[-1]:.1f} MiB; slope whole {_fmt_slope(srv)}, second half {_fmt_slope(srv_half)}",
    ]
    if ss[0].traced_mib is not None:
        lines.append(f"tracemalloc traced memory first {ss[0].traced_mib:.1f} MiB, last {ss[-1].traced_mib:.1f} MiB")
    b, _ = slope_mib_per_min(half)
    verdict = "FLAT" if abs(b) <= threshold else "NOT FLAT"
    lines.append(f"verdict: {verdict} (second-half slope {b:+.3f} vs threshold ±{threshold} MiB/min)")
    for f in result.failures[:5]:
        lines.append(f"failure: {f}")
    tm = result.tracemalloc
    if tm:
        lines.append(
            f"tracemalloc growth from t={tm['first_at_min']} min to the end: "
            f"{tm['total_diff_kib']:+.1f} KiB in total; top sites:"
        )
        lines.append(f"  {'size diff':>12} {'count diff':>10}  site")
        for s in tm["sites"]:
            lines.append(f"  {s['size_diff_kib']:+9.1f} KiB {s['count_diff']:+10d}  {s['site']}")
        lines.append("biggest growth by call stack (innermost last):")
        for st in tm["stacks"]:
            lines.append(f"  {st['size_diff_kib']:+.1f} KiB, {st['count_diff']:+d} blocks:")
            lines.extend(f"      {fr}" for fr in st["stack"])
    return "\n".join(lines)


def orchestrate(args: argparse.Namespace) -> int:
    """Sandbox + load + Prefect server here; the measured process as a child; everything stopped after."""
    from confluent_kafka.admin import NewTopic

    from deployments.local_server import LocalPrefectServer
    from kafka_medic.errors import MedicError
    from kafka_medic.loadgen import AckedProducer
    from kafka_medic.sandbox.cluster import Sandbox
    from kafka_medic.sandbox.layout import SandboxLayout

    signal.signal(signal.SIGTERM, _raise_interrupt)
    result = SoakResult()
    load_line = "load: not started"
    with tempfile.TemporaryDirectory(prefix="medic-soak-") as tmp, contextlib.ExitStack() as stack:
        try:
            layout = SandboxLayout(state_dir=Path(tmp) / "sb", port_base=args.port_base)
            sb = Sandbox(layout, owned=True)
            stack.callback(sb.down)
            secs = sb.up(timeout_s=args.sandbox_timeout)
            print(f"sandbox up in {secs:.1f} s (port base {args.port_base})", flush=True)
            admin = sb.admin()
            admin.create_topics([NewTopic(LOAD_TOPIC, 12, 3)])[LOAD_TOPIC].result(timeout=30)
            load = AckedProducer(layout.bootstrap_servers, LOAD_TOPIC, rate=args.load_rate).start()

            def stop_load() -> None:
                nonlocal load_line
                stats = load.stop()
                load_line = f"load: {stats.acked} acked, {stats.failed} failed ({args.load_rate:g} msg/s acks=all)"

            stack.callback(stop_load)

            server = LocalPrefectServer(Path(tmp) / "prefect")
            stack.callback(server.stop)
            t = time.monotonic()
            server.start(timeout_s=args.server_timeout)
            assert server.pid is not None
            print(f"Prefect server {server.api_url} up in {time.monotonic() - t:.1f} s (pid {server.pid})", flush=True)

            result_path = Path(tmp) / "result.json"
            env = {**MEASURED_ENV_DEFAULTS, **server.child_env()}
            argv = [
                sys.executable, str(Path(__file__).resolve()), "--role", "measured",
                "--minutes", str(args.minutes), "--interval", str(args.interval),
                "--port-base", str(args.port_base), "--state-dir", str(layout.state_dir),
                "--server-pgid", str(server.pid), "--result", str(result_path), "--mode", args.mode,
            ]  # fmt: skip
            if args.tracemalloc:
                argv += [
                    "--tracemalloc", "--tracemalloc-at", str(args.tracemalloc_at),
                    "--tracemalloc-top", str(args.tracemalloc_top),
                    "--tracemalloc-frames", str(args.tracemalloc_frames),
                ]  # fmt: skip
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the orchestrator only; it stops the child
                preexec_fn=_die_with_parent,
            )  # fmt: skip
            stack.callback(_terminate, proc)
            print(f"measured process pid {proc.pid} (PREFECT_API_URL={server.api_url})", flush=True)
            # bounded: the run itself, plus start-up (imports, block save) and one last slow cycle
            rc = proc.wait(timeout=args.minutes * 60 + 600)
            if rc != 0:
                print(f"the measured process exited with code {rc}", file=sys.stderr)
            if result_path.exists():
                result = SoakResult(**json.loads(result_path.read_text()))
                result.samples = [Sample(**s) for s in result.samples]  # type: ignore[arg-type]
        except KeyboardInterrupt:
            print("interrupted: stopping the measured process, load, server and sandbox ...", flush=True)
        except subprocess.TimeoutExpired:
            print("the measured process overran its time bound; stopping it", file=sys.stderr)
        except MedicError as exc:  # sandbox or server start-up: one line, then the same clean-up
            print(f"bench_soak: error: {exc}", file=sys.stderr)
            return 2
        finally:
            stack.close()
    print(load_line)
    print(report(result, args.flat_threshold))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=1))
    return 0 if result.samples and result.failed == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--minutes", type=float, default=30, help="soak duration (default 30)")
    ap.add_argument("--interval", type=float, default=10, help="seconds between health checks (default 10)")
    ap.add_argument("--port-base", type=int, default=17090, help="sandbox first port (default 17090)")
    ap.add_argument("--load-rate", type=float, default=50, help="acks=all messages/s on the sandbox (default 50)")
    ap.add_argument("--sandbox-timeout", type=float, default=300, help="sandbox start-up bound, s (default 300)")
    ap.add_argument("--server-timeout", type=float, default=180, help="Prefect server start-up bound, s")
    ap.add_argument("--flat-threshold", type=float, default=0.05, help="|second-half slope| for 'flat', MiB/min")
    ap.add_argument("--json", default=None, help="also write every sample and the tracemalloc report here")
    ap.add_argument(
        "--mode",
        choices=("inprocess", "serve"),
        default="inprocess",
        help="inprocess (default): the flow runs in the measured process every interval; serve: the measured "
        "process serves the deployments like ./medic start (each run in its own child process)",
    )
    ap.add_argument("--tracemalloc", action="store_true", help="attribute growth with tracemalloc snapshots")
    ap.add_argument("--tracemalloc-at", type=float, default=1 / 3, help="first snapshot, share of the run (1/3)")
    ap.add_argument("--tracemalloc-top", type=int, default=15, help="growth sites to print (default 15)")
    ap.add_argument("--tracemalloc-frames", type=int, default=12, help="frames kept per allocation (default 12)")
    # internal: how the orchestrator starts the measured process
    ap.add_argument("--role", choices=("orchestrator", "measured"), default="orchestrator", help=argparse.SUPPRESS)
    ap.add_argument("--state-dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--server-pgid", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    return ap


def main() -> int:
    args = build_parser().parse_args()
    if not 0 < args.tracemalloc_at < 1:
        raise SystemExit("--tracemalloc-at must be between 0 and 1")
    if args.role == "measured":
        return measured_main(args)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
