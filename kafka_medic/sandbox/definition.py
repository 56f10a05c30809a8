"""The cluster settings of a running sandbox (for tests and the demo), as plain fields.

``blocks.sandbox`` turns them into a ``KafkaCluster`` block; the core needs only the fields.
"""

from __future__ import annotations

from typing import Any

from kafka_medic.errors import SandboxError
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.settings.cluster import SaslMechanism, SecurityProtocol


def sandbox_cluster_fields(sb: Sandbox, name: str = "sandbox", **overrides: Any) -> dict[str, Any]:
    """Bootstrap servers, per-broker exporter URLs and the controller's exporter of ``sb``."""
    fields: dict[str, Any] = {
        "name": name,
        "bootstrap_servers": sb.layout.bootstrap_servers,
        "metrics_urls": {spec.node_id: spec.metrics_url for spec in sb.layout.broker_specs},
        "controller_metrics_urls": [sb.layout.controller.metrics_url],
        "expected_brokers": [spec.node_id for spec in sb.layout.broker_specs],
    }
    fields.update(overrides)
    return fields


def secure_cluster_fields(sb: Sandbox, name: str = "sandbox", **overrides: Any) -> dict[str, Any]:
    """The same for a secure sandbox: SASL_SSL, SCRAM-SHA-512, the sandbox CA, the admin user."""
    cs = sb.client_security()
    if cs is None:
        raise SandboxError(f"the sandbox in {sb.layout.state_dir} is PLAINTEXT; start it with security='sasl_ssl'")
    fields: dict[str, Any] = {
        "security_protocol": SecurityProtocol.SASL_SSL,
        "ssl_cafile": str(cs.ca_file),
        "sasl_mechanism": SaslMechanism(cs.mechanism),
        "sasl_username": cs.username,
        "sasl_password": cs.password,
    }
    fields.update(overrides)
    return sandbox_cluster_fields(sb, name=name, **fields)
