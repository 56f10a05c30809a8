"""Cluster YAML loading and block-class validation (no Prefect server needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from blocks import Ec2Replacer, KafkaCluster, SandboxReplacer, ScriptReplacer
from kafka_medic.errors import ConfigError
from kafka_medic.policy import Mode
from kafka_medic.settings import AwsSettings
from kafka_medic.settings.clusters_file import ClusterConfigError, load_clusters, parse_clusters


def write(tmp_path: Path, text: str, name: str = "clusters.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ClusterConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ClusterConfigError) as info:
        if env is None:
            load_clusters(path)
        else:
            parse_clusters(path.read_text(), file=str(path), environ=env)
    return info.value


GOOD = """
x-defaults: &defaults
  security_protocol: SASL_SSL
  sasl_mechanism: SCRAM-SHA-512
  ssl_cafile: /etc/kafka/ca.pem

clusters:
  - name: prod-a
    <<: *defaults
    bootstrap_servers: b1.example.com:9092, b2.example.com:9092
    sasl_username: medic
    sasl_password: ${PROD_A_PASSWORD}
    metrics_url_template: "http://{host}:7071/metrics"
    metrics_urls: {3: "http://10.0.0.3:7071/metrics"}
    policy:
      mode: approve
      dead_broker_grace_s: 600
    replacer: ec2-replacer/prod
    expected_brokers: [3, 1, 2]
    aws:
      region: us-east-1
      cluster_tag_key: kafka-cluster
      cluster_tag_value: prod-a
  - name: dev
    bootstrap_servers: [localhost:9092]
    audit_topic: medic.audit
"""


def test_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_A_PASSWORD", "s3cr3t-pw")
    prod, dev = load_clusters(write(tmp_path, GOOD))
    assert prod.name == "prod-a"
    assert prod.bootstrap_servers == "b1.example.com:9092,b2.example.com:9092"
    assert prod.sasl_password is not None and prod.sasl_password.get_secret_value() == "s3cr3t-pw"
    assert prod.policy.mode is Mode.APPROVE and prod.policy.dead_broker_grace_s == 600
    assert prod.metrics_url_for(3, "ignored") == "http://10.0.0.3:7071/metrics"
    assert prod.metrics_url_for(1, "b1.example.com") == "http://b1.example.com:7071/metrics"
    assert prod.expected_brokers == [1, 2, 3]
    assert prod.aws is not None and prod.aws.region == "us-east-1"
    assert prod.ssl_cafile == "/etc/kafka/ca.pem"  # merged from the x-defaults anchor
    assert dev.bootstrap_servers == "localhost:9092" and dev.audit_topic == "medic.audit"
    assert dev.policy.mode is Mode.OBSERVE


def test_merge_keys_inside_clusters(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        clusters:
          - &base
            name: a
            bootstrap_servers: h:1
            policy: {dead_broker_grace_s: 60}
          - <<: *base
            name: b
        """,
    )
    a, b = load_clusters(path)
    assert (a.name, b.name) == ("a", "b")
    assert b.policy.dead_broker_grace_s == 60


def test_error_names_file_line_and_field_path(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: a
            bootstrap_servers: h:1
          - name: b
            bootstrap_servers: h:2
            policy:
              mode: auto
              dead_broker_grace_s: -5
        """,
    )
    assert str(err) == (
        f"{tmp_path / 'clusters.yaml'}:8: clusters[1].policy.dead_broker_grace_s: "
        "Input should be greater than or equal to 0"
    )
    assert isinstance(err, ConfigError)
    (issue,) = err.issues
    assert issue.line == 8 and issue.path == "clusters[1].policy.dead_broker_grace_s"


def test_unknown_field_is_named_with_a_hint(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: a
            bootstrap_server: h:1
            policy:
              grace: 3
        """,
    )
    text = str(err)
    assert "clusters.yaml:3: clusters[0].bootstrap_server: unknown field 'bootstrap_server'" in text
    assert "(did you mean 'bootstrap_servers'?)" in text
    assert "clusters.yaml:5: clusters[0].policy.grace: unknown field 'grace'" in text
    # the required field that the typo left out is reported too, at the cluster's line
    assert "clusters.yaml:2: clusters[0].bootstrap_servers: required field is missing" in text


def test_missing_required_field_points_at_the_cluster(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - bootstrap_servers: h:1
        """,
    )
    assert "clusters.yaml:2: clusters[0].name: required field is missing" in str(err)


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: a
            bootstrap_servers: [h:1
          - name: b
        """,
    )
    (issue,) = err.issues
    assert issue.line is not None and issue.column is not None
    assert str(err).startswith(f"{tmp_path / 'clusters.yaml'}:{issue.line}:{issue.column}: YAML syntax error")


def test_duplicate_cluster_names(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: a
            bootstrap_servers: h:1
          - name: a
            bootstrap_servers: h:2
        """,
    )
    assert "clusters.yaml:4: clusters[1].name: duplicate cluster name 'a' (first on line 2)" in str(err)


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: a
            bootstrap_servers: h:1
            bootstrap_servers: h:2
        """,
    )
    assert "clusters.yaml:4: clusters[0].bootstrap_servers: duplicate key (first defined on line 3)" in str(err)


def test_env_references(tmp_path: Path) -> None:
    text = """
        clusters:
          - name: a
            bootstrap_servers: ${BOOT}
            security_protocol: SASL_PLAINTEXT
            sasl_mechanism: PLAIN
            sasl_username: u
            sasl_password: "pre-${PW}-$${LITERAL}"
        """
    (cluster,) = parse_clusters(textwrap.dedent(text), "c.yaml", environ={"BOOT": "k1:9092", "PW": "x"})
    assert cluster.bootstrap_servers == "k1:9092"
    assert cluster.sasl_password is not None
    assert cluster.sasl_password.get_secret_value() == "pre-x-${LITERAL}"

    err = load_error(tmp_path, text, env={"BOOT": "k1:9092"})
    assert "clusters.yaml:7: clusters[0].sasl_password: environment variable 'PW' is not set" in str(err)

    err = load_error(tmp_path, text.replace("${PW}", "${PW"), env={"BOOT": "k1:9092"})
    assert "malformed environment reference" in str(err)


def test_model_level_error_points_at_the_cluster(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: ok
            bootstrap_servers: h:1
          - name: sasl
            bootstrap_servers: h:1
            security_protocol: SASL_SSL
            sasl_username: u
        """,
    )
    assert "clusters.yaml:4: clusters[1]: security_protocol SASL_SSL needs sasl_mechanism, sasl_password" in str(err)


def test_all_errors_are_reported_and_secrets_are_not(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        clusters:
          - name: Bad_Name
            bootstrap_servers: h:99999
            security_protocol: SASL_SSL
            sasl_mechanism: PLAIN
            sasl_username: u
            sasl_password: [do-not-print-me]
          - name: ok
            bootstrap_servers: h:1
            metrics_url_template: "http://{hostname}/metrics"
        """,
    )
    lines = str(err).splitlines()
    assert len(lines) == 4, lines
    assert any(":2: clusters[0].name: cluster name 'Bad_Name' must be" in line for line in lines)
    assert any(":3: clusters[0].bootstrap_servers:" in line and "port must be" in line for line in lines)
    assert any(":7: clusters[0].sasl_password: Input should be a valid string" in line for line in lines)
    assert any(":10: clusters[1].metrics_url_template: unknown placeholder {hostname}" in line for line in lines)
    assert "do-not-print-me" not in str(err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "file is empty"),
        ("clusters: []\n", "clusters: not a non-empty list"),
        ("clusters: {name: a}\n", "clusters: not a non-empty list"),
        ("- a\n", "the top level must be a mapping"),
        ("clusterz:\n  - name: a\n", "unknown top-level key 'clusterz'"),
        ("clusters:\n  - just-a-string\n", "clusters[0]: each cluster must be a mapping"),
        ("clusters:\n  - name: a\n    bootstrap_servers: h:1\n    yes: 1\n", "keys must be strings"),
        ("clusters: !!python/object:os.system x\n", "YAML error"),
    ],
)
def test_structural_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ClusterConfigError) as info:
        load_clusters(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cluster file not found"):
        load_clusters(tmp_path / "nope.yaml")


# -- block validation -------------------------------------------------------------------------------


def cluster(**kwargs: object) -> KafkaCluster:
    base: dict[str, object] = {"name": "c", "bootstrap_servers": "h:9092"}
    base.update(kwargs)
    return KafkaCluster.model_validate(base)


@pytest.mark.parametrize("name", ["a", "prod-eu-1", "x" * 63, "0abc"])
def test_cluster_name_ok(name: str) -> None:
    assert cluster(name=name).name == name


@pytest.mark.parametrize("name", ["", "Prod", "a_b", "-a", "a-", "x" * 64, "a.b", "a b"])
def test_cluster_name_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="cluster name"):
        cluster(name=name)


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("h:9092", "h:9092"),
        (" a:1 , b.example.com:65535 ", "a:1,b.example.com:65535"),
        (["10.0.0.1:9092", "[::1]:9093"], "10.0.0.1:9092,[::1]:9093"),
    ],
)
def test_bootstrap_ok(value: object, normalized: str) -> None:
    assert cluster(bootstrap_servers=value).bootstrap_servers == normalized


@pytest.mark.parametrize("value", ["", "h", "h:0", "h:70000", "h:x", ":9092", "a:1,,b:2", "::1:9092", "bad host:1"])
def test_bootstrap_rejected(value: str) -> None:
    with pytest.raises(ValidationError, match=r"bootstrap_servers|host|port|IPv6"):
        cluster(bootstrap_servers=value)


def test_security_consistency() -> None:
    with pytest.raises(ValidationError, match="ssl_cafile set but security_protocol is PLAINTEXT"):
        cluster(ssl_cafile="/ca.pem")
    with pytest.raises(ValidationError, match="sasl_username set but security_protocol is SSL"):
        cluster(security_protocol="SSL", sasl_username="u")
    with pytest.raises(ValidationError, match="ssl_certfile and ssl_keyfile must be set together"):
        cluster(security_protocol="SSL", ssl_certfile="/c.pem")
    with pytest.raises(ValidationError, match="needs sasl_password"):
        cluster(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u")
    with pytest.raises(ValidationError, match="sasl_mechanism"):
        cluster(security_protocol="SASL_SSL", sasl_mechanism="GSSAPI", sasl_username="u", sasl_password="p")


def test_client_configs() -> None:
    tls = cluster(
        security_protocol="SSL",
        ssl_cafile="/ca.pem",
        ssl_certfile="/c.pem",
        ssl_keyfile="/k.pem",
        ssl_key_password="kpw",
    )
    assert tls.confluent_config() == {
        "bootstrap.servers": "h:9092",
        "security.protocol": "SSL",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/c.pem",
        "ssl.key.location": "/k.pem",
        "ssl.key.password": "kpw",
    }
    assert tls.kafka_python_config() == {
        "bootstrap_servers": ["h:9092"],
        "security_protocol": "SSL",
        "ssl_cafile": "/ca.pem",
        "ssl_certfile": "/c.pem",
        "ssl_keyfile": "/k.pem",
        "ssl_password": "kpw",
    }
    sasl = cluster(
        bootstrap_servers="a:1,b:2",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="u",
        sasl_password="pw",
    )
    assert sasl.confluent_config() == {
        "bootstrap.servers": "a:1,b:2",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "u",
        "sasl.password": "pw",
    }
    assert sasl.kafka_python_config() == {
        "bootstrap_servers": ["a:1", "b:2"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": "pw",
    }
    assert cluster().confluent_config() == {"bootstrap.servers": "h:9092", "security.protocol": "PLAINTEXT"}


def test_metrics_urls() -> None:
    c = cluster(metrics_urls={1: "http://one/m"}, metrics_url_template="http://{host}:7071/m?b={broker_id}")
    assert c.metrics_url_for(1, "x") == "http://one/m"
    assert c.metrics_url_for(2, "h2") == "http://h2:7071/m?b=2"
    assert c.metrics_url_for(2) is None  # template needs the host
    by_id = cluster(metrics_url_template="http://metrics-{broker_id}.svc/m")
    assert by_id.metrics_url_for(7) == "http://metrics-7.svc/m"
    assert cluster().metrics_url_for(1, "h") is None
    for bad, match in [
        ("http://{hostname}/m", "unknown placeholder"),
        ("http://static/m", "every broker would get the same URL"),
        ("{host}:7071/metrics", "must start with http"),
        ("http://{host/m", "malformed template"),
    ]:
        with pytest.raises(ValidationError, match=match):
            cluster(metrics_url_template=bad)
    with pytest.raises(ValidationError, match="metrics URL of broker 1"):
        cluster(metrics_urls={1: "one:7071"})
    with pytest.raises(ValidationError, match="controller metrics URL"):
        cluster(controller_metrics_urls=["ctl:7071"])


def test_other_fields() -> None:
    assert cluster(replacer="script-replacer/my-script").replacer == "script-replacer/my-script"
    with pytest.raises(ValidationError, match="replacer must be"):
        cluster(replacer="my-script")
    with pytest.raises(ValidationError, match="replacer must be"):
        cluster(replacer="kafka-cluster/x")
    with pytest.raises(ValidationError, match="not a valid Kafka topic name"):
        cluster(audit_topic="bad topic")
    with pytest.raises(ValidationError, match="twice"):
        cluster(expected_brokers=[1, 1])
    with pytest.raises(ValidationError, match=">= 0"):
        cluster(expected_brokers=[-1])


def test_aws_settings() -> None:
    aws = AwsSettings(region="eu-west-1", route53_hosted_zone_id="Z1", route53_record_name_template="b{broker_id}.x")
    assert aws.broker_id_tag == "kafka-broker-id"
    with pytest.raises(ValidationError, match="not a valid AWS region"):
        AwsSettings(region="useast1")
    with pytest.raises(ValidationError, match="cluster_tag_key and cluster_tag_value"):
        AwsSettings(region="us-east-1", cluster_tag_key="k")
    with pytest.raises(ValidationError, match="must be set together"):
        AwsSettings(region="us-east-1", route53_hosted_zone_id="Z1")
    with pytest.raises(ValidationError, match="must contain"):
        AwsSettings(region="us-east-1", route53_hosted_zone_id="Z1", route53_record_name_template="kafka.x")
    with pytest.raises(ValidationError, match="must start with http"):
        AwsSettings(region="us-east-1", endpoint_url="localhost:5000")


def test_dump_validates_back() -> None:
    c = cluster(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="pw")
    assert KafkaCluster.model_validate(c.model_dump()).name == "c"
    with pytest.raises(ValidationError, match="block_type_slug"):
        KafkaCluster.model_validate({**c.model_dump(), "block_type_slug": "ec2-replacer"})


def test_script_replacer() -> None:
    r = ScriptReplacer(argv=["/opt/replace.sh", "--broker={broker_id}", "{host}"], env={"A": "1"})
    # per-element substitution: a host with spaces or shell syntax stays one argument
    assert r.render_argv(4, "h; rm -rf / #") == ["/opt/replace.sh", "--broker=4", "h; rm -rf / #"]
    with pytest.raises(ValidationError, match=r"split '/opt/replace.sh --broker 3'.*\['/opt/replace.sh'"):
        ScriptReplacer(argv="/opt/replace.sh --broker 3")
    with pytest.raises(ValidationError, match="must be a list of arguments"):
        ScriptReplacer(argv="/opt/replace.sh")
    with pytest.raises(ValidationError, match="at least 1 item"):
        ScriptReplacer(argv=[])
    with pytest.raises(ValidationError, match=r"argv\[0\] '/opt/replace.sh \{host\}' contains whitespace"):
        ScriptReplacer(argv=["/opt/replace.sh {host}"])
    with pytest.raises(ValidationError, match=r"argv\[1\]: unknown placeholder \{cluster\}"):
        ScriptReplacer(argv=["x", "{cluster}"])
    with pytest.raises(ValidationError, match="less than or equal"):
        ScriptReplacer(argv=["x"], timeout_s=10**9)
    with pytest.raises(ValidationError, match="invalid environment variable name"):
        ScriptReplacer(argv=["x"], env={"A-B": "1"})
    with pytest.raises(ValidationError, match="both env and secret_env"):
        ScriptReplacer(argv=["x"], env={"A": "1"}, secret_env={"A": "2"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ScriptReplacer(argv=["x"], shell=True)


def test_ec2_replacer_data_volume_device_is_checked_at_the_edge() -> None:
    r = Ec2Replacer(region="us-east-1")
    assert r.data_volume_device is None and r.reuse_data_volume is True
    assert Ec2Replacer(region="us-east-1", data_volume_device="/dev/sdf").data_volume_device == "/dev/sdf"
    assert Ec2Replacer(region="us-east-1", data_volume_device=" /dev/xvdz ").data_volume_device == "/dev/xvdz"
    off = Ec2Replacer(region="us-east-1", data_volume_device="/dev/sdg", reuse_data_volume=False)
    assert off.reuse_data_volume is False
    refused = {
        "/dev/sda1": "that is the root device",
        "/dev/xvda": "that is the root device",
        "/dev/nvme1n1": "EC2's API needs the block device mapping name",
        "sdf": "write the full device path",
        "/dev/sdb": "instance-store range",
        "/dev/sdf1": r"/dev/sd\[f-z\] or /dev/xvd\[f-z\], got '/dev/sdf1'",
        "": "got ''",
    }
    for device, why in refused.items():
        with pytest.raises(ValidationError, match=why):
            Ec2Replacer(region="us-east-1", data_volume_device=device)


def test_ec2_and_sandbox_replacers() -> None:
    r = Ec2Replacer(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:5000",
        instance_type_fallbacks=["m5.large", "m6i.large"],
        hosted_zone_id="Z0123ABC",
        record_name_template="b{broker_id}.{cluster}.example.com",
    )
    assert r.keep_private_ip and r.wait_timeout_s == 900
    with pytest.raises(ValidationError, match="not an EC2 instance type"):
        Ec2Replacer(region="us-east-1", instance_type_fallbacks=["large"])
    with pytest.raises(ValidationError, match="must be set together"):
        Ec2Replacer(region="us-east-1", record_name_template="b{broker_id}.x")
    with pytest.raises(ValidationError, match="must contain"):
        Ec2Replacer(region="us-east-1", hosted_zone_id="Z1", record_name_template="{cluster}.x")
    with pytest.raises(ValidationError, match="AwsCredentials block name"):
        Ec2Replacer(region="us-east-1", aws_credentials="My Creds")
    with pytest.raises(ValidationError, match="greater than 0"):
        Ec2Replacer(region="us-east-1", wait_timeout_s=0)
    assert SandboxReplacer(state_dir="/tmp/sandbox").state_dir == "/tmp/sandbox"
    with pytest.raises(ValidationError, match="state_dir must not be empty"):
        SandboxReplacer(state_dir=" ")
