"""The sandbox layout: which nodes exist, their ports, racks and config files.

One dedicated KRaft controller plus N brokers on loopback, so killing or wiping a broker never
touches the Raft quorum. Every port stays below 32768 so that a client's ephemeral port can never
take a dead broker's port. Failure-detection settings are fast (session timeout 3 s) so tests that
kill brokers run in seconds, not minutes.

``security="sasl_ssl"`` turns each broker's single listener into ``SASL_SSL`` (SCRAM-SHA-512) for
clients AND inter-broker traffic, with PEM key/trust stores made by
:mod:`kafka_medic.sandbox.security`; ports stay where they are. The controller listener and the JMX
exporters stay plain (loopback only). The default stays ``plaintext``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from kafka_medic.errors import SandboxError

CONTROLLER_ID = 100
MAX_PORT = 32_767

#: "plaintext": no TLS, no auth (the default). "sasl_ssl": TLS + SCRAM-SHA-512 on every broker listener.
SecurityMode = Literal["plaintext", "sasl_ssl"]
SECURITY_MODES: tuple[str, ...] = get_args(SecurityMode)
SCRAM_MECHANISM = "SCRAM-SHA-512"
SECURE_LISTENER = "SASL_SSL"
#: SCRAM users of a secure sandbox: clients (kafka-medic, tests) and inter-broker traffic.
ADMIN_USER = "admin"
BROKER_USER = "broker"


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
    security: SecurityMode = "plaintext"
    #: How long the controller keeps a silent broker registered (unfenced). 3 s keeps kill tests
    #: fast; Kafka's own default, the window a production cluster has, is 9 s.
    broker_session_timeout_ms: int = 3000

    def __post_init__(self) -> None:
        if not 1000 <= self.broker_session_timeout_ms <= 60_000:
            raise SandboxError(
                f"broker_session_timeout_ms must be between 1000 and 60000, got {self.broker_session_timeout_ms}"
            )
        if self.security not in SECURITY_MODES:
            raise SandboxError(f"security must be one of {', '.join(SECURITY_MODES)}, got {self.security!r}")
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

    def node(self, node_id: int) -> NodeSpec:
        """A broker or the controller (node 100) by node id: the CLI kills, hangs and restarts any node."""
        if node_id == CONTROLLER_ID:
            return self.controller
        for spec in self.broker_specs:
            if spec.node_id == node_id:
                return spec
        valid = ", ".join(str(i) for i in sorted(s.node_id for s in self.nodes))
        raise SandboxError(
            f"unknown node id {node_id}; this sandbox has nodes {valid} ({CONTROLLER_ID}: the controller)"
        )

    def node_dir(self, node: NodeSpec) -> Path:
        return self.state_dir / node.name

    def data_dir(self, node: NodeSpec) -> Path:
        return self.node_dir(node) / "data"

    def properties_path(self, node: NodeSpec) -> Path:
        return self.node_dir(node) / "server.properties"

    @property
    def secure(self) -> bool:
        return self.security != "plaintext"

    @property
    def listener_name(self) -> str:
        """The brokers' (only) listener: clients and inter-broker traffic share it."""
        return SECURE_LISTENER if self.secure else "PLAINTEXT"

    @property
    def security_dir(self) -> Path:
        """CA, broker keystore and SCRAM credentials (mode 0700; secrets in 0600 files)."""
        return self.state_dir / "security"

    @property
    def ca_file(self) -> Path:
        return self.security_dir / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        """Broker private key (unencrypted PKCS#8) followed by its certificate chain, PEM."""
        return self.security_dir / "broker-keystore.pem"

    @property
    def credentials_file(self) -> Path:
        return self.security_dir / "credentials.json"


def rack_name(broker_id: int, racks: int) -> str:
    """Brokers 1..N round-robin over az-a, az-b, ... (so with 6 brokers/3 racks: 1,4 in az-a)."""
    return f"az-{chr(ord('a') + (broker_id - 1) % racks)}"


_COMMON = {
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "broker.heartbeat.interval.ms": "500",
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


def render_properties(layout: SandboxLayout, node: NodeSpec, *, inter_broker_password: str | None = None) -> str:
    """server.properties for one node. The controller reads the cluster-wide defaults from ITS file.

    A secure broker's file holds the inter-broker SCRAM password (``inter_broker_password``), so
    the caller writes it with mode 0600.
    """
    voters = f"{CONTROLLER_ID}@127.0.0.1:{layout.controller.port}"
    props: dict[str, str] = {
        "process.roles": node.role,
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "log.dirs": str(layout.data_dir(node)),
        **_COMMON,
        "broker.session.timeout.ms": str(layout.broker_session_timeout_ms),
    }
    if node.role == "controller":
        props["listeners"] = f"CONTROLLER://127.0.0.1:{node.port}"
    else:
        listener = layout.listener_name
        props["listeners"] = f"{listener}://127.0.0.1:{node.port}"
        props["advertised.listeners"] = f"{listener}://127.0.0.1:{node.port}"
        props["broker.rack"] = node.rack or ""
        props.update(_BROKER)
        if layout.secure:
            props.update(_secure_broker_props(layout, inter_broker_password))
    if layout.secure:
        props["listener.security.protocol.map"] = f"{SECURE_LISTENER}:SASL_SSL,CONTROLLER:PLAINTEXT"
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _secure_broker_props(layout: SandboxLayout, inter_broker_password: str | None) -> dict[str, str]:
    """TLS from PEM files (Kafka 4.1 reads them as-is) and SCRAM-SHA-512 for clients and peers.

    No ``ssl.key.password``: the PEM key is unencrypted PKCS#8 in a 0600 file; a password stored
    next to it in the (also 0600) properties file would protect nothing. Hostname verification
    (``https``, the default) stays on between brokers: the certificate names IP 127.0.0.1.
    """
    if not inter_broker_password:
        raise SandboxError("a secure sandbox broker needs the inter-broker SCRAM password")
    if not inter_broker_password.isascii() or any(c in inter_broker_password for c in '"\\;\n '):
        raise SandboxError("the inter-broker password must be plain ASCII without quotes, spaces or ';'")
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{BROKER_USER}" password="{inter_broker_password}";'
    )
    prefix = f"listener.name.{SECURE_LISTENER.lower()}.{SCRAM_MECHANISM.lower()}"
    return {
        "inter.broker.listener.name": SECURE_LISTENER,
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        f"{prefix}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(layout.keystore_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(layout.ca_file),
        "ssl.client.auth": "none",
        "ssl.endpoint.identification.algorithm": "https",
        "super.users": f"User:{ADMIN_USER};User:{BROKER_USER}",
    }


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
