"""A KafkaCluster block describing a running sandbox (for tests and the demo)."""

from __future__ import annotations

from typing import Any

from blocks.kafka_cluster import KafkaCluster
from kafka_medic.sandbox.cluster import Sandbox


def sandbox_cluster(sb: Sandbox, name: str = "sandbox", **overrides: Any) -> KafkaCluster:
    """Bootstrap servers, per-broker exporter URLs and the controller's exporter of ``sb``."""
    fields: dict[str, Any] = {
        "name": name,
        "bootstrap_servers": sb.layout.bootstrap_servers,
        "metrics_urls": {spec.node_id: spec.metrics_url for spec in sb.layout.broker_specs},
        "controller_metrics_urls": [sb.layout.controller.metrics_url],
        "expected_brokers": [spec.node_id for spec in sb.layout.broker_specs],
    }
    fields.update(overrides)
    return KafkaCluster(**fields)
