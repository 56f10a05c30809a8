"""The main job: kafka-medic on the embedded default (``./medic start``).

Starts, in order, and stops in reverse on Ctrl-C / SIGTERM / ``--exit-after`` (every step bounded):

1. the sandbox cluster (6 brokers in 3 AZs; owned, so its JVMs die with this process);
2. steady load: an acks=all producer at a low rate and a consumer group on ``medic-load``;
3. a local Prefect server (``prefect server start`` on 127.0.0.1, SQLite under ``.medic/prefect``);
4. the bootstrap: block types, a ``sandbox`` KafkaCluster block (policy ``auto``, 30 s grace,
   60 s replacement cooldown) with a SandboxReplacer block, and the cluster's concurrency limits;
5. every deployment, served from this process, with the sandbox health check every 10 s.

``--inject-failure`` kills a broker ~60 s after start-up so a newcomer can watch, in the UI, the
health check find it, the grace period run out, ``remediate`` start ``replace-broker``, and the
replacement's ISR verification finish.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from deployments.cli import SERVICE_FILE, medic_home
from kafka_medic.errors import MedicError
from kafka_medic.sandbox.cluster import Sandbox, status_table
from kafka_medic.sandbox.layout import SandboxLayout

CLUSTER = "sandbox"
LOAD_TOPIC = "medic-load"
LOAD_GROUP = "medic-load-consumers"

#: Client noise while brokers die and come back is expected here; the health check reports what matters.
_quiet = logging.getLogger("kafka_medic.service.clients")
_quiet.setLevel(logging.CRITICAL)


def log(msg: str) -> None:
    print(f"kafka-medic: {msg}", flush=True)


class SteadyLoad:
    """An acks=all producer at ``rate`` msg/s and one consumer in a group: traffic the healing must not break."""

    def __init__(self, sb: Sandbox, *, rate: float) -> None:
        self.sb = sb
        self.rate = rate
        self.consumed = 0
        self._stop = threading.Event()
        self._producer: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from confluent_kafka.admin import NewTopic

        from kafka_medic.loadgen import AckedProducer

        admin = self.sb.admin()
        if LOAD_TOPIC not in admin.list_topics(timeout=15).topics:
            fut = admin.create_topics([NewTopic(LOAD_TOPIC, 6, 3)], request_timeout=15)[LOAD_TOPIC]
            with contextlib.suppress(Exception):  # already exists (a concurrent or earlier start)
                fut.result(timeout=20)
        conf = self.sb.client_config() if hasattr(self.sb, "client_config") else {}
        extra = {**{k: v for k, v in conf.items() if k != "bootstrap.servers"}, "logger": _quiet}
        # Nobody verifies this load, and it runs as long as the service: counts only, no key set.
        self._producer = AckedProducer(
            self.sb.layout.bootstrap_servers, LOAD_TOPIC, rate=self.rate, extra_conf=extra, record_keys=False
        )
        self._producer.start()
        self._thread = threading.Thread(target=self._consume, args=(conf,), name="load-consumer", daemon=True)
        self._thread.start()

    def _consume(self, conf: dict[str, Any]) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.sb.layout.bootstrap_servers,
                **conf,
                "logger": _quiet,
                "group.id": LOAD_GROUP,
                "auto.offset.reset": "latest",
                "client.id": f"medic-load-{uuid.uuid4().hex[:6]}",
            }
        )
        try:
            consumer.subscribe([LOAD_TOPIC])
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None:
                    self.consumed += 1
        finally:
            consumer.close()

    def line(self) -> str:
        if self._producer is None:
            return "load: not started"
        s = self._producer.stats
        errors = f", errors {s.errors}" if s.errors else ""
        return f"load: produced {s.attempted}, acked {s.acked}, failed {s.failed}{errors}; consumed {self.consumed}"

    def stop(self) -> None:
        self._stop.set()
        if self._producer is not None:
            self._producer.stop(flush_timeout_s=10)
        if self._thread is not None:
            self._thread.join(timeout=15)


def sandbox_blocks(sb: Sandbox, *, grace_s: float, cooldown_s: float) -> list[tuple[str, Any]]:
    """The ``sandbox`` cluster (auto mode, short grace and cooldown for a demo) and its replacer."""
    from blocks.replacers import SandboxReplacer
    from blocks.sandbox import sandbox_cluster
    from kafka_medic.policy import HealthPolicy, Mode

    policy = HealthPolicy(
        mode=Mode.AUTO, dead_broker_grace_s=grace_s, replacement_cooldown_s=cooldown_s, verify_timeout_s=600
    )
    replacer = SandboxReplacer(state_dir=str(sb.layout.state_dir))
    cluster = sandbox_cluster(sb, name=CLUSTER, policy=policy, replacer=f"sandbox-replacer/{CLUSTER}")
    return [(CLUSTER, replacer), (CLUSTER, cluster)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medic start", description=__doc__.split("\n", 1)[0])
    p.add_argument("--brokers", type=int, default=6, help="sandbox brokers (default 6)")
    p.add_argument("--port-base", type=int, default=19_090, help="sandbox first port (default 19090)")
    p.add_argument(
        "--prefect-port", type=int, default=None, help="Prefect server port (default 4200 if free; 0: any free port)"
    )
    p.add_argument("--health-interval", type=float, default=10.0, help="seconds between health checks (default 10)")
    p.add_argument("--grace", type=float, default=30.0, help="dead-broker grace period in seconds (default 30)")
    p.add_argument("--cooldown", type=float, default=60.0, help="replacement cooldown in seconds (default 60)")
    p.add_argument("--load-rate", type=float, default=20.0, help="produced messages per second (default 20; 0: none)")
    p.add_argument("--inject-failure", action="store_true", help="kill a broker after --inject-after seconds")
    p.add_argument("--inject-after", type=float, default=60.0, help="seconds after start-up (default 60)")
    p.add_argument("--inject-broker", type=int, default=3, help="broker to kill (default 3)")
    p.add_argument("--exit-after", type=float, default=None, help="stop this many seconds after start-up (smoke runs)")
    return p


class Shutdown:
    """SIGINT / SIGTERM set a flag (a second Ctrl-C interrupts at once); bounded waits check it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set(signal.Signals(signum).name)

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


def _prefect_port(requested: int | None) -> int:
    from deployments.local_server import free_port, port_free

    if requested:
        return requested
    if requested == 0:
        return free_port()
    return 4200 if port_free(4200) else free_port()


def _write_service_file(home: Path, api_url: str, ui_url: str) -> Path:
    path = home / SERVICE_FILE
    path.write_text(json.dumps({"pid": os.getpid(), "api_url": api_url, "ui_url": ui_url}))
    return path


async def _serve(
    args: argparse.Namespace, deployments: list[Any], sb: Sandbox, load: SteadyLoad, shutdown: Shutdown
) -> None:
    """Serve the deployments until shutdown; inject the failure and print progress meanwhile."""
    import asyncio

    from deployments.serve import aserve_until

    stop = asyncio.Event()
    started = time.monotonic()
    injected = not args.inject_failure

    async def watch() -> None:
        nonlocal injected
        last_status = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.5)
            elapsed = time.monotonic() - started
            if shutdown.event.is_set():
                stop.set()
            elif args.exit_after is not None and elapsed >= args.exit_after:
                shutdown.set(f"--exit-after {args.exit_after:g}")
                stop.set()
            if not injected and elapsed >= args.inject_after:
                injected = True
                try:
                    await asyncio.to_thread(sb.kill, args.inject_broker)
                    log(
                        f"INJECTED FAILURE: broker {args.inject_broker} killed. Watch the health-check/{CLUSTER} "
                        f"runs find it, the {args.grace:g} s grace run out, then remediate -> replace-broker."
                    )
                except MedicError as exc:
                    log(f"could not inject the failure: {exc}")
            if time.monotonic() - last_status >= 30:
                last_status = time.monotonic()
                log(load.line())

    watcher = asyncio.create_task(watch())
    try:
        await aserve_until(deployments, stop)
    finally:
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shutdown = Shutdown()
    shutdown.install()
    home = medic_home()
    cleanups: list[tuple[str, Callable[[], None]]] = []
    try:
        sb = Sandbox(
            SandboxLayout(state_dir=home / "sandbox", brokers=args.brokers, port_base=args.port_base), owned=True
        )
        cleanups.append(("sandbox", lambda: sb.down(graceful_s=5)))
        secs = sb.up()
        log(f"sandbox cluster up in {secs:.1f} s (bootstrap {sb.layout.bootstrap_servers})")
        print(status_table(sb.status()), flush=True)
        if shutdown.event.is_set():
            return 0

        load = SteadyLoad(sb, rate=args.load_rate)
        if args.load_rate > 0:
            cleanups.append(("load", load.stop))
            load.start()
            log(f"steady load: {args.load_rate:g} msg/s acks=all to {LOAD_TOPIC!r}, consumer group {LOAD_GROUP!r}")

        from deployments.local_server import LocalPrefectServer

        server = LocalPrefectServer(home / "prefect", port=_prefect_port(args.prefect_port))
        cleanups.append(("Prefect server", server.stop))
        log(f"starting the Prefect server on {server.url} (state in {server.home}) ...")
        server.start(timeout_s=180)
        # Before Prefect is imported here: its settings are read from the environment then.
        os.environ["PREFECT_API_URL"] = server.api_url
        os.environ["PREFECT_HOME"] = str(server.home)
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        service_file = _write_service_file(home, server.api_url, server.url)
        cleanups.append(("service file", lambda: service_file.unlink(missing_ok=True)))

        from deployments.bootstrap import bootstrap, ensure_audit_topic

        result = bootstrap(blocks=sandbox_blocks(sb, grace_s=args.grace, cooldown_s=args.cooldown))
        log(ensure_audit_topic(CLUSTER))  # now, while every broker is up: not at the first write
        for line in result.lines():
            log(line)
        log(f"Prefect UI: {server.url}  (deployments: {server.url}/deployments, runs: {server.url}/runs)")
        log(f"CLI against it: ./medic health {CLUSTER}; ./medic what-if -c {CLUSTER} --broker 1 --broker 2")
        if args.inject_failure:
            log(f"broker {args.inject_broker} will be killed in {args.inject_after:g} s (--inject-failure)")
        log("running; press Ctrl-C to stop.")
        if not shutdown.event.is_set():
            import asyncio

            from deployments.serve import build_deployments, deployment_names

            # Built outside the event loop: Prefect's to_deployment turns async inside one.
            deployments = build_deployments([CLUSTER], interval_s=args.health_interval)
            log(f"serving {len(deployments)} deployments: {', '.join(deployment_names(deployments))}")
            asyncio.run(_serve(args, deployments, sb, load, shutdown))
    except MedicError as exc:
        print(f"kafka-medic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        log(f"stopping ({shutdown.reason or 'done'}) ...")
        for name, fn in reversed(cleanups):
            try:
                fn()
            except Exception as exc:  # keep stopping the rest
                print(f"kafka-medic: error stopping {name}: {exc}", file=sys.stderr)
        log("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
