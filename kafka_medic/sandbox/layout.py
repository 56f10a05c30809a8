"""The sandbox layout: which nodes exist, their ports, racks and config files.

One dedicated KRaft controller plus N brokers on loopback, so killing or wiping a broker never
touches the Raft quorum. Every port stays below 32768 so that a client's ephemeral port can never
take a dead broker's port. Failure-detection settings are fast (session timeout 3 s) so tests that
kill brokers run in seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kafka_medic.errors import SandboxError

CONTROLLER_ID = 100
MAX_PORT = 32_767


@dataclass(frozen=True)
class NodeSpec:
    node_id: int
    role: str  # "broker" or "controller"
    port: int  # Kafka listener
    metrics_port: int  # Prometheus JMX exporter
    rack: str | None

    @property
    def name(self) -> str:
        return f"{self.role}-{self.node_id}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


@dataclass(frozen=True)
class SandboxLayout:
    """Shape of a sandbox cluster. Defaults: 6 brokers over 3 racks (two per AZ)."""

    state_dir: Path
    brokers: int = 6
    racks: int = 3
    port_base: int = 19_090
    broker_heap_mb: int = 512
    controller_heap_mb: int = 320

    def __post_init__(self) -> None:
        if not 1 <= self.brokers <= 50:
            raise SandboxError(f"brokers must be between 1 and 50, got {self.brokers}")
        if not 1 <= self.racks <= self.brokers:
            raise SandboxError(f"racks must be between 1 and the broker count ({self.brokers}), got {self.racks}")
        top = self.port_base + 1100 + CONTROLLER_ID
        if self.port_base < 1024 or top > MAX_PORT:
            raise SandboxError(
                f"port_base {self.port_base} puts ports outside 1024..{MAX_PORT}; choose 1024..{MAX_PORT - 1200}"
            )

    @property
    def controller(self) -> NodeSpec:
        return NodeSpec(
            CONTROLLER_ID,
            "controller",
            self.port_base + CONTROLLER_ID,
            self.port_base + 1000 + CONTROLLER_ID,
            None,
        )

    @property
    def broker_specs(self) -> list[NodeSpec]:
        return [
            NodeSpec(b, "broker", self.port_base + b, self.port_base + 1000 + b, rack_name(b, self.racks))
            for b in range(1, self.brokers + 1)
        ]

    @property
    def nodes(self) -> list[NodeSpec]:
        return [self.controller, *self.broker_specs]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.bootstrap for n in self.broker_specs)

    def broker(self, broker_id: int) -> NodeSpec:
        for spec in self.broker_specs:
            if spec.node_id == broker_id:
                return spec
        valid = ", ".join(str(s.node_id) for s in self.broker_specs)
        raise SandboxError(f"unknown broker id {broker_id}; this sandbox has brokers {valid}")

    def node_dir(self, node: NodeSpec) -> Path:
        return self.state_dir / node.name

    def data_dir(self, node: NodeSpec) -> Path:
        return self.node_dir(node) / "data"

    def properties_path(self, node: NodeSpec) -> Path:
        return self.node_dir(node) / "server.properties"


def rack_name(broker_id: int, racks: int) -> str:
    """Brokers 1..N round-robin over az-a, az-b, ... (so with 6 brokers/3 racks: 1,4 in az-a)."""
    return f"az-{chr(ord('a') + (broker_id - 1) % racks)}"


_COMMON = {
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    "default.replication.factor": "3",
    "num.partitions": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "auto.leader.rebalance.enable": "false",
    "auto.create.topics.enable": "false",
}

_BROKER = {
    "inter.broker.listener.name": "PLAINTEXT",
    "replica.lag.time.max.ms": "5000",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.replica.fetchers": "1",
    "num.recovery.threads.per.data.dir": "1",
    "background.threads": "2",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": "8388608",
    "log.segment.bytes": "67108864",
}


def render_properties(layout: SandboxLayout, node: NodeSpec) -> str:
    """server.properties for one node. The controller reads the cluster-wide defaults from ITS file."""
    voters = f"{CONTROLLER_ID}@127.0.0.1:{layout.controller.port}"
    props: dict[str, str] = {
        "process.roles": node.role,
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "log.dirs": str(layout.data_dir(node)),
        **_COMMON,
    }
    if node.role == "controller":
        props["listeners"] = f"CONTROLLER://127.0.0.1:{node.port}"
    else:
        props["listeners"] = f"PLAINTEXT://127.0.0.1:{node.port}"
        props["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{node.port}"
        props["broker.rack"] = node.rack or ""
        props.update(_BROKER)
    return "".join(f"{k}={v}\n" for k, v in props.items())


LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
"""
