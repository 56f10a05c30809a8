"""KafkaCluster and replacer blocks describing a running sandbox (tests, the demo, benchmarks)."""

from __future__ import annotations

from typing import Any

from blocks.kafka_cluster import KafkaCluster
from blocks.replacers import SandboxReplacer
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.definition import sandbox_cluster_fields, secure_cluster_fields


def sandbox_cluster(sb: Sandbox, name: str = "sandbox", **overrides: Any) -> KafkaCluster:
    """A KafkaCluster block for ``sb`` (PLAINTEXT): bootstrap servers, exporter URLs, expected brokers."""
    return KafkaCluster(**sandbox_cluster_fields(sb, name, **overrides))


def secure_cluster_block(sb: Sandbox, name: str = "sandbox", **overrides: Any) -> KafkaCluster:
    """A KafkaCluster block for a secure sandbox: SASL_SSL, SCRAM-SHA-512, the sandbox CA, the admin user."""
    return KafkaCluster(**secure_cluster_fields(sb, name, **overrides))


def sandbox_replacer(sb: Sandbox) -> SandboxReplacer:
    """A SandboxReplacer block that wipes and restarts brokers of ``sb``."""
    return SandboxReplacer(state_dir=str(sb.layout.state_dir))
