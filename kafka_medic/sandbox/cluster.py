"""A real Apache Kafka KRaft cluster on loopback: up, down, status, kill, hang, resume, restart,
and wipe-and-replace (a fresh empty disk with the same node.id and cluster id: exactly what a
replaced EC2 instance looks like to Kafka).

State lives in ``state_dir/sandbox.json`` (cluster id, layout, pids) so that one process can start
the sandbox and another (the CLI, a Prefect task, a test) can operate on it.

A layout with ``security="sasl_ssl"`` gets TLS + SCRAM-SHA-512 (:mod:`kafka_medic.sandbox.security`):
its CA, keystore and passwords are made once in ``state_dir/security`` and reused by every later
``up``/replace, and :meth:`Sandbox.admin` then connects as the SCRAM admin user.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from kafka_medic.errors import SandboxError
from kafka_medic.sandbox import processes, security
from kafka_medic.sandbox.exporter import JMX_EXPORTER_CONFIG
from kafka_medic.sandbox.jars import KafkaJars, ensure_jars, require_tool
from kafka_medic.sandbox.layout import LOG4J2_PROPERTIES, NodeSpec, SandboxLayout, render_properties
from kafka_medic.sandbox.security import ClientSecurity
from kafka_medic.waiting import NotYet, WaitTimeout, poll

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
FORMAT_TIMEOUT_S = 120.0
_quiet = logging.getLogger("kafka_medic.librdkafka")
_quiet.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    role: str
    rack: str | None
    port: int
    metrics_url: str
    pid: int | None
    process: str  # "running", "hung" (SIGSTOPped), "stopped"
    registered: bool | None  # brokers: listed (unfenced) by DescribeCluster; None if unknown


def _java() -> str:
    return require_tool("java", "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`)")


class Sandbox:
    """Operate a sandbox cluster whose files live in ``layout.state_dir``."""

    def __init__(self, layout: SandboxLayout, *, jars: KafkaJars | None = None, owned: bool = True) -> None:
        self.layout = layout
        self._jars = jars
        # owned: JVMs die with this process (tests, the demo). The CLI's `up` passes owned=False.
        self.owned = owned

    # ----------------------------------------------------------------- state
    @property
    def state_file(self) -> Path:
        return self.layout.state_dir / "sandbox.json"

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"cluster_id": None, "pids": {}}
        except (OSError, json.JSONDecodeError) as exc:
            raise SandboxError(f"sandbox state {self.state_file} is unreadable ({exc}); remove it and retry") from exc

    def _write_state(self, state: dict[str, Any]) -> None:
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        state["layout"] = {
            "brokers": self.layout.brokers,
            "racks": self.layout.racks,
            "port_base": self.layout.port_base,
            "security": self.layout.security,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def _set_pid(self, node: NodeSpec, pid: int | None) -> None:
        state = self._read_state()
        state.setdefault("pids", {})[str(node.node_id)] = pid
        self._write_state(state)

    def pid_of(self, node: NodeSpec) -> int | None:
        pid = self._read_state().get("pids", {}).get(str(node.node_id))
        return int(pid) if pid else None

    @property
    def cluster_id(self) -> str | None:
        return self._read_state().get("cluster_id")

    @property
    def jars(self) -> KafkaJars:
        if self._jars is None:
            self._jars = ensure_jars()
        return self._jars

    def _marker(self, node: NodeSpec) -> str:
        return str(self.layout.properties_path(node))

    def running_nodes(self) -> list[NodeSpec]:
        return [n for n in self.layout.nodes if processes.is_ours(self.pid_of(n), self._marker(n))]

    # ------------------------------------------------------------- lifecycle
    def up(self, *, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Start the controller and all brokers; return seconds until every broker is registered."""
        t0 = time.monotonic()
        java = _java()
        running = self.running_nodes()
        if running:
            names = ", ".join(f"{n.name} (pid {self.pid_of(n)})" for n in running)
            raise SandboxError(f"the sandbox in {self.layout.state_dir} is already running: {names}; run `down` first")
        self._check_ports(self.layout.nodes)
        jars = self.jars
        state = self._read_state()
        self._check_security_unchanged(state)
        if not state.get("cluster_id"):
            state["cluster_id"] = self._random_uuid(java, jars)
        state["pids"] = {}
        self._write_state(state)
        if self.layout.secure:
            security.ensure_material(self.layout)
        for node in self.layout.nodes:
            self._write_node_files(node)
        self._format([n for n in self.layout.nodes if not self._formatted(n)], java, jars)
        self._start(self.layout.controller, java, jars)
        for node in self.layout.broker_specs:
            self._start(node, java, jars)
        self.wait_registered([b.node_id for b in self.layout.broker_specs], timeout_s=timeout_s)
        self.wait_exporters(self.layout.nodes, timeout_s=max(5.0, timeout_s - (time.monotonic() - t0)))
        return time.monotonic() - t0

    def down(self, *, graceful_s: float = 0.0, wipe: bool = False) -> None:
        """Stop every node this sandbox started (brokers first), bounded; optionally delete all data."""
        for node in [*self.layout.broker_specs, self.layout.controller]:
            pid = self.pid_of(node)
            if pid:
                processes.stop(pid, self._marker(node), graceful_s=graceful_s)
        if self.state_file.exists():
            state = self._read_state()
            state["pids"] = {}
            self._write_state(state)
        if wipe and self.layout.state_dir.exists():
            shutil.rmtree(self.layout.state_dir)

    def kill(self, broker_id: int, *, lose_disk: bool = False) -> None:
        """SIGKILL one broker: a sudden crash, no controlled shutdown.

        ``lose_disk``: the machine is gone with it (its data dir is deleted): only a replacement on
        a fresh disk brings it back, where a plain crash is healed by a restart with its disk."""
        node = self.layout.node(broker_id)
        pid = self._require_running(node)
        processes.signal_node(pid, signal.SIGCONT)
        processes.stop(pid, self._marker(node), graceful_s=0)
        self._set_pid(node, None)
        if lose_disk:
            shutil.rmtree(self.layout.data_dir(node), ignore_errors=True)

    def hang(self, broker_id: int) -> None:
        """SIGSTOP one broker: half-alive hardware. Its sockets stay open but nothing answers."""
        node = self.layout.node(broker_id)
        pid = self._require_running(node)
        processes.signal_node(pid, signal.SIGSTOP)
        processes.wait_stopped(pid, True)  # hung when this returns, not a moment later

    def resume(self, broker_id: int) -> None:
        node = self.layout.node(broker_id)
        pid = self.pid_of(node)
        if not processes.is_ours(pid, self._marker(node)):
            raise SandboxError(f"broker {broker_id} is not running; nothing to resume")
        assert pid is not None
        processes.signal_node(pid, signal.SIGCONT)
        processes.wait_stopped(pid, False)

    def start_broker(self, broker_id: int, *, wait: bool = True, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start a stopped broker (or the controller, node 100) with its existing disk.

        The controller is ready when its exporter answers and every running broker is registered
        with it again (they re-register on their own once it is back)."""
        node = self.layout.node(broker_id)
        if processes.is_ours(self.pid_of(node), self._marker(node)):
            raise SandboxError(f"{node.role} {broker_id} is already running (pid {self.pid_of(node)})")
        self._check_ports([node], wait_s=15)
        self._start(node, _java(), self.jars)
        if not wait:
            return
        if node.role == "controller":
            self.wait_exporters([node], timeout_s=timeout_s)
            running = [n.node_id for n in self.running_nodes() if n.role == "broker"]
            if running:
                self.wait_registered(running, timeout_s=timeout_s)
        else:
            self.wait_registered([broker_id], timeout_s=timeout_s)

    def restart(self, broker_id: int, *, graceful_s: float = 30.0, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Controlled shutdown (SIGTERM), then start again with the same disk (any node, controller too)."""
        node = self.layout.node(broker_id)
        pid = self.pid_of(node)
        if pid:
            processes.stop(pid, self._marker(node), graceful_s=graceful_s)
            self._set_pid(node, None)
        self.start_broker(broker_id, timeout_s=timeout_s)

    def wipe_and_replace(self, broker_id: int, *, wait: bool = True, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Kill the broker, give it an empty formatted disk (same node.id, same cluster id), start it.

        Until its old session times out the controller answers DuplicateBrokerRegistration; the
        broker retries by itself, then re-fetches all its replicas from the leaders.
        """
        node = self.layout.broker(broker_id)
        pid = self.pid_of(node)
        if pid:
            processes.signal_node(pid, signal.SIGCONT)
            processes.stop(pid, self._marker(node), graceful_s=0)
            self._set_pid(node, None)
        data = self.layout.data_dir(node)
        if data.exists():
            shutil.rmtree(data)
        java, jars = _java(), self.jars
        self._format([node], java, jars)
        self._check_ports([node], wait_s=15)
        self._start(node, java, jars)
        if wait:
            self.wait_registered([broker_id], timeout_s=timeout_s)

    # --------------------------------------------------------------- status
    def status(self, *, timeout_s: float = 5.0) -> list[NodeStatus]:
        registered = self.registered_brokers(timeout_s=timeout_s) if self.running_nodes() else set()
        out = []
        for node in self.layout.nodes:
            pid = self.pid_of(node)
            if processes.is_ours(pid, self._marker(node)):
                process = "hung" if processes.proc_state(pid or 0) == "T" else "running"
            else:
                process, pid = "stopped", None
            reg = (node.node_id in registered) if node.role == "broker" else None
            out.append(NodeStatus(node.node_id, node.role, node.rack, node.port, node.metrics_url, pid, process, reg))
        return out

    def client_security(self) -> ClientSecurity | None:
        """CA file, SCRAM user and password a client needs for a secure sandbox; None if PLAINTEXT."""
        return security.client_security(self.layout) if self.layout.secure else None

    def client_config(self) -> dict[str, Any]:
        """confluent-kafka settings that reach this sandbox (secrets in clear when secure: never log)."""
        cs = self.client_security()
        return cs.confluent_config() if cs else {"bootstrap.servers": self.layout.bootstrap_servers}

    def admin(self, **extra: Any) -> AdminClient:
        conf = {**self.client_config(), "logger": _quiet, **extra}
        return AdminClient(conf)

    def registered_brokers(self, *, timeout_s: float = 5.0) -> set[int]:
        """Broker ids the cluster lists right now (registered and unfenced); empty if unreachable."""
        admin = self.admin()  # keep a reference: a destroyed client fails its pending futures
        try:
            desc = admin.describe_cluster(request_timeout=timeout_s).result(timeout=timeout_s + 1)
        except Exception:  # any failure to reach the cluster means "nobody we can see"
            return set()
        return {n.id for n in desc.nodes}

    def wait_registered(self, broker_ids: list[int], *, timeout_s: float = READY_TIMEOUT_S) -> None:
        want = set(broker_ids)

        def registered() -> None:
            self._check_alive([self.layout.controller, *(self.layout.broker(b) for b in broker_ids)])
            missing = sorted(want - self.registered_brokers(timeout_s=2))
            if missing:
                raise NotYet(f"brokers {missing} not registered")

        try:
            poll(registered, timeout_s=timeout_s, what=f"brokers {sorted(want)} registered")
        except WaitTimeout as exc:
            raise SandboxError(f"{exc.last} within {timeout_s:.0f} s; see {self.layout.state_dir}") from None

    def wait_exporters(self, nodes: list[NodeSpec], *, timeout_s: float = 60.0) -> None:
        """Wait until each node's JMX exporter answers (its first scrape is slow: warm it here)."""
        deadline = time.monotonic() + timeout_s
        pending = list(nodes)

        def answered() -> None:
            while pending:
                left = max(1.0, deadline - time.monotonic())
                try:
                    with urllib.request.urlopen(pending[0].metrics_url, timeout=left) as r:
                        r.read()
                except (OSError, ValueError) as exc:
                    raise NotYet(f"{pending[0].name}: {exc}") from None
                pending.pop(0)

        try:
            poll(answered, timeout_s=timeout_s, interval_s=0.2, what="JMX exporters answering")
        except WaitTimeout:
            names = ", ".join(n.name for n in pending)
            raise SandboxError(f"JMX exporter of {names} did not answer within {timeout_s:.0f} s") from None

    def wait_unregistered(self, broker_id: int, *, timeout_s: float = 30.0) -> float:
        """Wait until the cluster no longer lists ``broker_id`` (fenced); return seconds waited."""
        t0 = time.monotonic()

        def fenced() -> None:
            if broker_id in self.registered_brokers(timeout_s=2):
                raise NotYet(f"broker {broker_id} still registered")

        try:
            poll(fenced, timeout_s=timeout_s, interval_s=0.2, what=f"broker {broker_id} fenced")
        except WaitTimeout:
            raise SandboxError(f"broker {broker_id} still registered after {timeout_s:.0f} s") from None
        return time.monotonic() - t0

    # -------------------------------------------------------------- helpers
    def _require_running(self, node: NodeSpec) -> int:
        pid = self.pid_of(node)
        if not processes.is_ours(pid, self._marker(node)):
            raise SandboxError(f"{node.name} is not running (use `status` to see the sandbox)")
        assert pid is not None
        return pid

    def _check_alive(self, nodes: list[NodeSpec]) -> None:
        for node in nodes:
            pid = self.pid_of(node)
            if pid and not processes.is_ours(pid, self._marker(node)):
                tail = self._log_tail(node)
                raise SandboxError(f"{node.name} (pid {pid}) exited during start-up. Log tail:\n{tail}")

    def _check_ports(self, nodes: list[NodeSpec], wait_s: float = 0.0) -> None:
        for node in nodes:
            for port, what in ((node.port, "listener"), (node.metrics_port, "metrics exporter")):
                free = processes.wait_port_free(port, wait_s) if wait_s else processes.port_free(port)
                if not free:
                    raise SandboxError(
                        f"port {port} ({node.name} {what}) is already in use on 127.0.0.1; stop whatever "
                        "holds it or pick another --port-base"
                    )

    def _log_path(self, node: NodeSpec) -> Path:
        return self.layout.node_dir(node) / "node.log"

    def _log_tail(self, node: NodeSpec, lines: int = 20) -> str:
        try:
            return "\n".join(self._log_path(node).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _write_node_files(self, node: NodeSpec) -> None:
        d = self.layout.node_dir(node)
        d.mkdir(parents=True, exist_ok=True)
        if self.layout.secure:
            # A secure broker's file holds the inter-broker SCRAM password: owner-only, from creation.
            password = security.load_secrets(self.layout).broker.password.get_secret_value()
            text = render_properties(self.layout, node, inter_broker_password=password)
            security.write_private_text(self.layout.properties_path(node), text)
        else:
            self.layout.properties_path(node).write_text(render_properties(self.layout, node))
        (d / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        (d / "jmx-exporter.yaml").write_text(JMX_EXPORTER_CONFIG)

    def _check_security_unchanged(self, state: dict[str, Any]) -> None:
        """Refuse to flip an already formatted sandbox between plaintext and sasl_ssl.

        The SCRAM users are written into the metadata log only when the controller is formatted, so
        a plaintext sandbox restarted as secure would have brokers that cannot authenticate to each
        other (and fail to register after a long wait). Say so up front instead.
        """
        before = state.get("layout", {}).get("security", "plaintext")
        if before != self.layout.security and self._formatted(self.layout.controller):
            raise SandboxError(
                f"the sandbox in {self.layout.state_dir} was created with security={before!r}; "
                f"wipe it (`down --wipe`) to start it with security={self.layout.security!r}"
            )

    def _formatted(self, node: NodeSpec) -> bool:
        return (self.layout.data_dir(node) / "meta.properties").exists()

    def _jvm_args(self, node: NodeSpec, java: str, jars: KafkaJars) -> list[str]:
        """The node's JVM command line, sized for a 2-core machine running several sandboxes.

        ``-XX:TieredStopAtLevel=1`` (C1 only): the C2 compiler's work at every start dominated the
        sandbox's CPU -- a broker (re)start took 2.6 CPU-s to registered with C2, 1.5 s with C1,
        and ``tests/flows/test_remediate.py`` (nine kills, restarts and wipes) used 197 CPU-s with
        C2 against 137 with C1 (188 s -> 169 s wall). Sandbox loads are light; a production
        broker is never started from here.
        """
        heap = self.layout.controller_heap_mb if node.role == "controller" else self.layout.broker_heap_mb
        d = self.layout.node_dir(node)
        return [
            java,
            f"-Xms{min(heap, 256)}m",
            f"-Xmx{heap}m",
            "-XX:+UseG1GC",
            "-XX:ParallelGCThreads=1",
            "-XX:ConcGCThreads=1",
            "-XX:CICompilerCount=2",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={d / 'logs'}",
            f"-javaagent:{jars.jmx_agent}=127.0.0.1:{node.metrics_port}:{d / 'jmx-exporter.yaml'}",
            "-cp",
            jars.classpath,
        ]

    def _start(self, node: NodeSpec, java: str, jars: KafkaJars) -> None:
        argv = [*self._jvm_args(node, java, jars), "kafka.Kafka", str(self.layout.properties_path(node))]
        pid = processes.spawn(argv, self._log_path(node), die_with_parent=self.owned)
        self._set_pid(node, pid)

    def _random_uuid(self, java: str, jars: KafkaJars) -> str:
        out = self._run_tool([java, "-cp", jars.classpath, "kafka.tools.StorageTool", "random-uuid"], "random-uuid")
        return out.strip().splitlines()[-1].strip()

    def _format(self, nodes: list[NodeSpec], java: str, jars: KafkaJars) -> None:
        """Format log dirs in parallel (each StorageTool run is a JVM start of a few seconds)."""
        cid = self.cluster_id
        if not nodes:
            return
        if not cid:
            raise SandboxError("sandbox has no cluster id; run `up` first")
        procs = []
        hidden: list[str] = []  # SCRAM credentials on the controller's command line: never echo them
        for node in nodes:
            argv = [
                java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", jars.classpath,
                f"-Dlog4j2.configurationFile={self.layout.node_dir(node) / 'log4j2.properties'}",
                "kafka.tools.StorageTool", "format", "-t", cid, "-c", str(self.layout.properties_path(node)),
            ]  # fmt: skip
            if self.layout.secure and node.role == "controller":
                # SCRAM users are bootstrapped into the metadata log, which only the controller holds.
                scram = security.storage_format_args(self.layout)
                hidden += scram[1::2]
                argv += scram
            procs.append((node, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        errors = []
        for node, proc in procs:
            try:
                out, _ = proc.communicate(timeout=FORMAT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
                errors.append(f"{node.name}: format timed out after {FORMAT_TIMEOUT_S:.0f} s")
                continue
            if proc.returncode != 0:
                for value in hidden:
                    out = out.replace(value, "<scram credential>")
                errors.append(f"{node.name}: {out.strip()[-800:]}")
        if errors:
            raise SandboxError("formatting storage failed:\n" + "\n".join(errors))

    def _run_tool(self, argv: list[str], what: str) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise SandboxError(f"kafka {what} timed out") from exc
        if proc.returncode != 0:
            raise SandboxError(f"kafka {what} failed: {(proc.stdout + proc.stderr).strip()[-800:]}")
        return proc.stdout


def open_sandbox(state_dir: Path, **layout_overrides: Any) -> Sandbox:
    """Re-open a sandbox from its state file (layout as it was started), or a new default one."""
    state_file = state_dir / "sandbox.json"
    params: dict[str, Any] = {}
    if state_file.exists():
        with contextlib.suppress(OSError, json.JSONDecodeError):
            params = json.loads(state_file.read_text()).get("layout", {})
    params.update({k: v for k, v in layout_overrides.items() if v is not None})
    return Sandbox(SandboxLayout(state_dir=state_dir, **params), owned=False)


def status_table(statuses: list[NodeStatus]) -> str:
    rows = [("node", "role", "rack", "port", "pid", "process", "registered", "metrics")]
    for s in statuses:
        reg = "-" if s.registered is None else ("yes" if s.registered else "NO")
        rows.append(
            (
                str(s.node_id),
                s.role,
                s.rack or "-",
                str(s.port),
                str(s.pid or "-"),
                s.process,
                reg,
                s.metrics_url,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def status_dicts(statuses: list[NodeStatus]) -> list[dict[str, Any]]:
    return [asdict(s) for s in statuses]
