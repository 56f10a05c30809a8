"""Block registration, save/load round trips and secret masking against a real Prefect server."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from blocks import (
    BLOCK_CLASSES,
    Ec2Replacer,
    KafkaCluster,
    SandboxReplacer,
    ScriptReplacer,
    register_block_types,
)
from deployments.bootstrap import save_clusters_as_blocks
from kafka_medic.errors import ConfigError, CoordinationError
from kafka_medic.policy import HealthPolicy, Mode
from kafka_medic.settings import AwsSettings

PASSWORD = "pa55-w0rd-never-shown"
KEY_PASSWORD = "key-pa55-never-shown"


def secret_cluster(name: str) -> KafkaCluster:
    return KafkaCluster(
        name=name,
        bootstrap_servers="b1:9093,b2:9093",
        security_protocol="SASL_SSL",
        ssl_cafile="/etc/ca.pem",
        ssl_certfile="/etc/client.pem",
        ssl_keyfile="/etc/client.key",
        ssl_key_password=KEY_PASSWORD,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="medic",
        sasl_password=PASSWORD,
        metrics_urls={1: "http://b1:7071/metrics"},
        metrics_url_template="http://{host}:7071/metrics",
        aws=AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:5000"),
        policy=HealthPolicy(mode=Mode.APPROVE, dead_broker_grace_s=120),
        replacer="ec2-replacer/prod",
        expected_brokers=[1, 2],
    )


def test_register_is_idempotent() -> None:
    slugs = register_block_types()
    assert register_block_types() == slugs
    assert slugs == ["kafka-cluster", "sandbox-replacer", "script-replacer", "ec2-replacer"]
    with get_client(sync_client=True) as client:
        for cls in BLOCK_CLASSES:
            assert client.read_block_type_by_slug(cls.get_block_type_slug()).name == cls.get_block_type_name()


def test_secrets_never_shown() -> None:
    block = secret_cluster("masked")
    shown = [str(block), repr(block), block.model_dump_json(), block.describe(), str(block.model_dump())]
    for text in shown:
        assert PASSWORD not in text
        assert KEY_PASSWORD not in text
    assert "password=set" in block.describe()
    # ... but the client configs carry them, since Kafka clients need them.
    assert block.confluent_config()["sasl.password"] == PASSWORD
    assert block.kafka_python_config()["ssl_password"] == KEY_PASSWORD

    script = ScriptReplacer(argv=["/bin/replace", "{broker_id}"], secret_env={"API_TOKEN": PASSWORD})
    for text in (str(script), repr(script), script.model_dump_json()):
        assert PASSWORD not in text


def test_cluster_round_trip_keeps_secrets_masked(cluster_name: str) -> None:
    register_block_types()
    block = secret_cluster(cluster_name)
    block.save(cluster_name, overwrite=True)

    loaded = KafkaCluster.load(cluster_name)
    assert loaded.model_dump(exclude={"sasl_password", "ssl_key_password"}) == block.model_dump(
        exclude={"sasl_password", "ssl_key_password"}
    )
    assert loaded.sasl_password is not None and loaded.sasl_password.get_secret_value() == PASSWORD
    assert loaded.ssl_key_password is not None and loaded.ssl_key_password.get_secret_value() == KEY_PASSWORD
    assert loaded.metrics_urls == {1: "http://b1:7071/metrics"}  # int keys survive JSON
    assert loaded.policy.mode is Mode.APPROVE and loaded.policy.dead_broker_grace_s == 120
    assert PASSWORD not in repr(loaded)

    # Loading through the generic "slug/name" reference gives the same class.
    generic = Block.load(f"kafka-cluster/{cluster_name}")
    assert isinstance(generic, KafkaCluster) and generic.name == cluster_name

    # What the API (and so the UI) shows without include_secrets is masked.
    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(cluster_name, "kafka-cluster", include_secrets=False)
    assert PASSWORD not in str(doc.data) and KEY_PASSWORD not in str(doc.data)
    assert doc.data["sasl_username"] == "medic"


def test_replacer_round_trips(cluster_name: str) -> None:
    register_block_types()
    blocks: list[Block] = [
        SandboxReplacer(state_dir="/tmp/sandbox"),
        ScriptReplacer(argv=["/bin/replace", "--id={broker_id}", "{host}"], timeout_s=60, secret_env={"T": PASSWORD}),
        Ec2Replacer(
            region="us-east-1",
            instance_type_fallbacks=["m5.large"],
            hosted_zone_id="Z0123ABC",
            record_name_template="b{broker_id}.{cluster}.example.com",
        ),
    ]
    for block in blocks:
        block.save(cluster_name, overwrite=True)
        loaded = type(block).load(cluster_name)
        assert loaded.model_dump(exclude={"secret_env"}) == block.model_dump(exclude={"secret_env"})
    script = ScriptReplacer.load(cluster_name)
    assert script.secret_env["T"].get_secret_value() == PASSWORD
    assert script.render_argv(2, "h2") == ["/bin/replace", "--id=2", "h2"]


def test_save_clusters_from_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster_name: str) -> None:
    monkeypatch.setenv("MEDIC_TEST_PW", PASSWORD)
    path = tmp_path / "clusters.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            clusters:
              - name: {cluster_name}-a
                bootstrap_servers: k1:9092
                security_protocol: SASL_PLAINTEXT
                sasl_mechanism: PLAIN
                sasl_username: medic
                sasl_password: ${{MEDIC_TEST_PW}}
              - name: {cluster_name}-b
                bootstrap_servers: k2:9092
                policy: {{mode: auto}}
            """
        )
    )
    names = save_clusters_as_blocks(path)
    assert names == [f"{cluster_name}-a", f"{cluster_name}-b"]
    with get_client(sync_client=True) as client:  # the clusters' locks exist too
        for name in names:
            assert client.read_global_concurrency_limit_by_name(f"kafka-medic-mutate-{name}").limit == 1
    a = KafkaCluster.load(f"{cluster_name}-a")
    assert a.sasl_password is not None and a.sasl_password.get_secret_value() == PASSWORD
    assert KafkaCluster.load(f"{cluster_name}-b").policy.mode is Mode.AUTO

    assert save_clusters_as_blocks(path, overwrite=True) == names  # re-running is fine
    with pytest.raises(ConfigError, match=f"named '{cluster_name}-a' already exists"):
        save_clusters_as_blocks(path, overwrite=False)


def test_invalid_yaml_saves_nothing(tmp_path: Path, cluster_name: str) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text(f"clusters:\n  - name: {cluster_name}\n    bootstrap_servers: k:1\n  - name: BAD\n")
    with pytest.raises(ConfigError, match=r"clusters\.yaml:4"):
        save_clusters_as_blocks(path)
    with get_client(sync_client=True) as client:
        names = {doc.name for doc in client.read_block_documents()}
    assert cluster_name not in names


def test_save_with_unreachable_api(tmp_path: Path, cluster_name: str) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text(f"clusters:\n  - name: {cluster_name}\n    bootstrap_servers: k:1\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}),
        pytest.raises(CoordinationError, match="is unreachable while saving cluster blocks"),
    ):
        save_clusters_as_blocks(path)
