"""`kafka-medic clusters load FILE`: one command from YAML to blocks; bad input changes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from blocks.kafka_cluster import KafkaCluster
from deployments.cli import main

pytestmark = pytest.mark.usefixtures("prefect_server")  # the session's Prefect test server


@pytest.fixture
def cluster_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def test_clusters_load_saves_blocks(tmp_path: Path, cluster_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "clusters.yaml"
    f.write_text(f"clusters:\n  - name: {cluster_name}\n    bootstrap_servers: k1:9092,k2:9092\n")
    assert main(["clusters", "load", str(f)]) == 0
    assert cluster_name in capsys.readouterr().out
    assert KafkaCluster.load(cluster_name).bootstrap_servers == "k1:9092,k2:9092"


def test_bad_yaml_is_one_line_error_and_saves_nothing(
    tmp_path: Path, cluster_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(f"clusters:\n  - name: {cluster_name}\n    bootstrap_servers: k1:9092\n    bogus: 1\n")
    assert main(["clusters", "load", str(f)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4" in err and "bogus" in err
    with pytest.raises(ValueError):
        KafkaCluster.load(cluster_name)
