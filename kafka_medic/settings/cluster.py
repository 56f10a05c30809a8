"""The settings of one Kafka cluster: how to connect, where its metrics are, its AWS home, its policy.

One class is the single source of truth for a cluster definition: the same pydantic validation
runs when the cluster is loaded from a YAML file (:mod:`kafka_medic.settings.clusters_file`),
edited in the Prefect UI or saved from Python (the ``KafkaCluster`` block of :mod:`blocks` is this
model plus a block type), so the field list and its rules are never duplicated. The core takes
``ClusterSettings``; it never needs to know that a Prefect block is behind it.

Secrets are ``SecretStr``: they are masked in ``repr``/``str``/``model_dump_json`` and in the
Prefect UI, and only :meth:`ClusterSettings.confluent_config` / :meth:`ClusterSettings.kafka_python_config`
reveal them, because a Kafka client needs the real value. Never log those two dicts; log
:meth:`ClusterSettings.describe` instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from kafka_medic.policy import HealthPolicy
from kafka_medic.settings.replacers import REPLACER_SLUGS
from kafka_medic.settings.validators import (
    BLOCK_NAME_RE,
    TOPIC_NAME_RE,
    check_aws_region,
    check_block_name,
    check_cluster_name,
    check_host_port,
    check_http_url,
    check_record_name_template,
    check_template,
    template_fields,
)


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class AwsSettings(BaseModel):
    """Where the cluster's brokers live in AWS, for EC2 health checks and replacement."""

    model_config = ConfigDict(extra="forbid")

    RECORD_PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"broker_id", "cluster"})

    region: str = Field(..., description="AWS region of the brokers, e.g. us-east-1.")
    aws_credentials: str | None = Field(
        None, description="Name of an AwsCredentials block; unset = the default boto3 credential chain."
    )
    endpoint_url: str | None = Field(None, description="Override the AWS endpoint (tests, moto).")
    broker_id_tag: str = Field(
        "kafka-broker-id", min_length=1, max_length=128, description="EC2 tag holding each broker's id."
    )
    cluster_tag_key: str | None = Field(
        None, min_length=1, max_length=128, description="EC2 tag that marks this cluster's instances (key)."
    )
    cluster_tag_value: str | None = Field(
        None, max_length=256, description="EC2 tag that marks this cluster's instances (value)."
    )
    route53_hosted_zone_id: str | None = Field(None, description="Route 53 zone holding per-broker records.")
    route53_record_name_template: str | None = Field(
        None, description='Per-broker DNS record, e.g. "b{broker_id}.{cluster}.example.com".'
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_aws_region(value)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value, "endpoint_url")

    @field_validator("aws_credentials")
    @classmethod
    def _credentials_name(cls, value: str | None) -> str | None:
        return check_block_name(value, "aws_credentials", "AwsCredentials")

    @field_validator("route53_record_name_template")
    @classmethod
    def _record_template(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value, cls.RECORD_PLACEHOLDERS, required={"broker_id"})
        return value

    @model_validator(mode="after")
    def _pairs(self) -> AwsSettings:
        if (self.cluster_tag_key is None) != (self.cluster_tag_value is None):
            raise ValueError("cluster_tag_key and cluster_tag_value must be set together (or both left unset)")
        check_record_name_template(self.route53_record_name_template, self.route53_hosted_zone_id)
        return self


class ClusterSettings(BaseModel):
    """One Kafka cluster: how to connect, where its metrics are, its AWS home and its health policy."""

    model_config = ConfigDict(extra="forbid")  # a typo must never silently fall back to a default

    METRICS_PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"host", "broker_id"})

    name: str = Field(..., description="Cluster name: lowercase letters, digits, '-' (1-63).")
    bootstrap_servers: str = Field(..., description="Comma-separated host:port list.")

    # Security
    security_protocol: SecurityProtocol = Field(SecurityProtocol.PLAINTEXT, description="Kafka security protocol.")
    ssl_cafile: str | None = Field(None, description="CA certificate file (PEM) on the worker.")
    ssl_certfile: str | None = Field(None, description="Client certificate file (PEM), for mutual TLS.")
    ssl_keyfile: str | None = Field(None, description="Client private key file (PEM), for mutual TLS.")
    ssl_key_password: SecretStr | None = Field(None, description="Password of the client private key.")
    sasl_mechanism: SaslMechanism | None = Field(None, description="SASL mechanism (SASL protocols only).")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")

    # Metrics
    metrics_urls: dict[int, str] = Field(
        default_factory=dict, description="Explicit JMX-exporter URL per broker id (wins over the template)."
    )
    metrics_url_template: str | None = Field(
        None, description='Per-broker metrics URL, e.g. "http://{host}:7071/metrics"; {host} and {broker_id}.'
    )
    controller_metrics_urls: list[str] = Field(default_factory=list, description="Metrics URLs of KRaft controllers.")

    aws: AwsSettings | None = Field(None, description="AWS settings; unset when brokers are not on EC2.")
    policy: HealthPolicy = Field(default_factory=HealthPolicy, description="Health thresholds and mode.")
    replacer: str | None = Field(
        None, description='Replacer block as "<block-type-slug>/<name>", e.g. "ec2-replacer/prod".'
    )
    audit_topic: str = Field("__kafka_medic_audit", description="Topic that receives the audit trail.")
    expected_brokers: list[int] = Field(
        default_factory=list,
        description=(
            "Broker ids that should exist; one missing from the cluster and every replica list is still down."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_cluster_name(value)

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _bootstrap(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if not all(isinstance(v, str) for v in value):
                raise ValueError("bootstrap_servers must be a string or a list of strings")
            value = ",".join(value)
        if not isinstance(value, str):
            return value  # pydantic reports the type error
        entries = [e.strip() for e in value.split(",")]
        if not any(entries):
            raise ValueError("bootstrap_servers must list at least one host:port")
        if not all(entries):
            raise ValueError(f"bootstrap_servers has an empty entry: {value!r}")
        return ",".join(check_host_port(e) for e in entries)

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_username")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (leave it out instead)")
        return value

    @field_validator("metrics_urls")
    @classmethod
    def _metrics_urls(cls, value: dict[int, str]) -> dict[int, str]:
        for broker_id, url in value.items():
            if broker_id < 0:
                raise ValueError(f"broker id {broker_id} must be >= 0")
            check_http_url(url, f"metrics URL of broker {broker_id}")
        return value

    @field_validator("metrics_url_template")
    @classmethod
    def _metrics_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        check_template(value, cls.METRICS_PLACEHOLDERS)
        if not template_fields(value):
            raise ValueError(
                f"metrics_url_template {value!r} has no {{host}} or {{broker_id}}: every broker would "
                "get the same URL; use metrics_urls for explicit per-broker URLs"
            )
        check_http_url(value.replace("{", "").replace("}", ""), "metrics_url_template")
        return value

    @field_validator("controller_metrics_urls")
    @classmethod
    def _controller_urls(cls, value: list[str]) -> list[str]:
        return [check_http_url(url, "controller metrics URL") for url in value]

    @field_validator("replacer")
    @classmethod
    def _replacer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        slug, sep, name = value.partition("/")
        if not sep or slug not in REPLACER_SLUGS or not BLOCK_NAME_RE.match(name):
            raise ValueError(
                f"replacer must be '<block-type-slug>/<block-name>' with slug one of "
                f"{sorted(REPLACER_SLUGS)}, got {value!r}"
            )
        return value

    @field_validator("audit_topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not TOPIC_NAME_RE.match(value) or value in (".", ".."):
            raise ValueError(f"not a valid Kafka topic name: {value!r}")
        return value

    @field_validator("expected_brokers")
    @classmethod
    def _expected(cls, value: list[int]) -> list[int]:
        if any(b < 0 for b in value):
            raise ValueError("broker ids must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("expected_brokers lists a broker id twice")
        return sorted(value)

    @model_validator(mode="after")
    def _security_consistency(self) -> ClusterSettings:
        # Settings that the chosen protocol would silently ignore are refused: someone who set a
        # CA file believes traffic is encrypted, so PLAINTEXT + ssl_cafile must not pass.
        proto = self.security_protocol
        tls_fields = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")
        sasl_fields = ("sasl_mechanism", "sasl_username", "sasl_password")
        if not proto.uses_tls:
            set_tls = [f for f in tls_fields if getattr(self, f) is not None]
            if set_tls:
                raise ValueError(f"{', '.join(set_tls)} set but security_protocol is {proto}; use SSL or SASL_SSL")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile must be set together (mutual TLS)")
        if self.ssl_key_password is not None and self.ssl_keyfile is None:
            raise ValueError("ssl_key_password is set but ssl_keyfile is not")
        if proto.uses_sasl:
            missing = [f for f in sasl_fields if getattr(self, f) is None]
            if missing:
                raise ValueError(f"security_protocol {proto} needs {', '.join(missing)}")
        else:
            set_sasl = [f for f in sasl_fields if getattr(self, f) is not None]
            if set_sasl:
                raise ValueError(
                    f"{', '.join(set_sasl)} set but security_protocol is {proto}; use SASL_PLAINTEXT or SASL_SSL"
                )
        return self

    # -- client configuration ----------------------------------------------------------------

    def bootstrap_list(self) -> list[str]:
        """The bootstrap servers as a list of ``host:port`` strings."""
        return self.bootstrap_servers.split(",")

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka / confluent-kafka settings. Contains secrets in clear: never log it."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.value,
        }
        optional = {
            "ssl.ca.location": self.ssl_cafile,
            "ssl.certificate.location": self.ssl_certfile,
            "ssl.key.location": self.ssl_keyfile,
            "ssl.key.password": _reveal(self.ssl_key_password),
            "sasl.mechanisms": self.sasl_mechanism.value if self.sasl_mechanism else None,
            "sasl.username": self.sasl_username,
            "sasl.password": _reveal(self.sasl_password),
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        return conf

    def kafka_python_config(self) -> dict[str, Any]:
        """kafka-python ``KafkaAdminClient`` keyword arguments. Contains secrets: never log it."""
        conf: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list(),
            "security_protocol": self.security_protocol.value,
        }
        optional = {
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_password": _reveal(self.ssl_key_password),
            "sasl_mechanism": self.sasl_mechanism.value if self.sasl_mechanism else None,
            # kafka-python uses the sasl_plain_* names for SCRAM too.
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": _reveal(self.sasl_password),
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        return conf

    def metrics_url_for(self, broker_id: int, host: str | None = None) -> str | None:
        """A broker's metrics URL: the explicit entry, else the template, else None (no metrics).

        Returns None when the template needs ``{host}`` and the host is unknown, rather than
        building a URL that points nowhere.
        """
        if broker_id in self.metrics_urls:
            return self.metrics_urls[broker_id]
        if self.metrics_url_template is None:
            return None
        if host is None and "host" in template_fields(self.metrics_url_template):
            return None
        return self.metrics_url_template.format(host=host, broker_id=broker_id)

    # -- safe display ------------------------------------------------------------------------

    def describe(self) -> str:
        """A one-line, secret-free summary for logs and reports."""
        parts = [
            f"cluster {self.name!r}",
            f"bootstrap={self.bootstrap_servers}",
            f"security={self.security_protocol}",
        ]
        if self.security_protocol.uses_sasl:
            password = "set" if self.sasl_password is not None else "unset"
            parts.append(f"sasl={self.sasl_mechanism} user={self.sasl_username!r} password={password}")
        if self.security_protocol.uses_tls:
            parts.append(f"ca={self.ssl_cafile or 'system'}")
            if self.ssl_certfile:
                parts.append("mutual-tls=yes")
        if self.metrics_urls or self.metrics_url_template:
            parts.append(
                f"metrics={len(self.metrics_urls)} explicit"
                + (f" + template {self.metrics_url_template}" if self.metrics_url_template else "")
            )
        else:
            parts.append("metrics=none")
        if self.aws is not None:
            parts.append(f"aws={self.aws.region}")
        parts.append(f"mode={self.policy.mode}")
        parts.append(f"replacer={self.replacer or 'none'}")
        if self.expected_brokers:
            parts.append(f"expected_brokers={self.expected_brokers}")
        return ", ".join(parts)


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
