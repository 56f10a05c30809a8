"""The example configuration in the README stays valid."""

from __future__ import annotations

from pathlib import Path

from kafka_medic.policy import Mode
from kafka_medic.settings.clusters_file import parse_clusters

ROOT = Path(__file__).resolve().parents[2]


def test_example_clusters_yaml_loads() -> None:
    path = ROOT / "examples" / "clusters.yaml"
    clusters = parse_clusters(path.read_text(), file=str(path), environ={"PROD_EVENTS_SASL_PASSWORD": "s3cret"})
    [c] = clusters
    assert c.name == "prod-events" and c.policy.mode is Mode.APPROVE
    assert c.sasl_password is not None and c.sasl_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(c) and "s3cret" not in c.describe()
