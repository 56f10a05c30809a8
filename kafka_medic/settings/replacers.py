"""Settings of the three ways to replace (or restart) a broker: the sandbox, a script, EC2.

Plain pydantic models, validated strictly: a replacer runs with the power to stop machines, so a
typo must fail when the settings are saved, not in the middle of an incident. The Prefect blocks
(:mod:`blocks.replacers`) are these models plus a block type; the engines that act on them are in
:mod:`kafka_medic.replacers`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from kafka_medic.settings.validators import (
    EC2_INSTANCE_TYPE_RE,
    ENV_NAME_RE,
    ROUTE53_ZONE_ID_RE,
    check_aws_region,
    check_block_name,
    check_ebs_data_device,
    check_http_url,
    check_record_name_template,
    check_template,
)


class SandboxReplacerSettings(BaseModel):
    """Replaces a broker of the local sandbox cluster (tests, demos): wipes and restarts it."""

    model_config = ConfigDict(extra="forbid")

    KIND: ClassVar[str] = "sandbox"

    state_dir: str = Field(..., description="Directory holding the sandbox cluster's state.")

    @field_validator("state_dir")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("state_dir must not be empty")
        return value


class ScriptReplacerSettings(BaseModel):
    """Replaces a broker by running an operator-provided program.

    The command is an argv list, never a shell string: placeholders are substituted inside each
    element, so a hostile or odd host name can never inject extra arguments or shell syntax.
    """

    model_config = ConfigDict(extra="forbid")

    KIND: ClassVar[str] = "script"

    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"broker_id", "host"})

    argv: list[str] = Field(
        ...,
        min_length=1,
        description='Program and arguments, one per element; "{broker_id}" and "{host}" are substituted.',
    )
    restart_argv: list[str] | None = Field(
        None,
        description="Optional: a program that restarts the broker keeping its disk (same placeholders). "
        "Without it kafka-medic can only demote or replace a broker through this replacer, never restart it.",
    )
    timeout_s: float = Field(
        1800.0, gt=0, le=24 * 3600, description="Kill the program if it runs longer than this (seconds)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    secret_env: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra environment variables holding secrets (masked everywhere)."
    )

    @field_validator("argv", "restart_argv", mode="before")
    @classmethod
    def _argv_is_a_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            if any(ch.isspace() for ch in value):
                raise ValueError(
                    "argv must be a list of separate arguments, not a shell command line: split "
                    f"{value!r} into one element per argument, e.g. {value.split()!r}"
                )
            raise ValueError(f"argv must be a list of arguments, e.g. [{value!r}]")
        return value

    @field_validator("argv", "restart_argv")
    @classmethod
    def _check_argv(cls, argv: list[str] | None) -> list[str] | None:
        if argv is None:
            return None
        if not argv:
            raise ValueError("must list at least the program (or be left unset)")
        if not argv[0].strip():
            raise ValueError("argv[0] (the program) must not be empty")
        if any(ch.isspace() for ch in argv[0]):
            raise ValueError(
                f"argv[0] {argv[0]!r} contains whitespace: argv is not a shell command line; put the "
                f"program and each argument in separate elements, e.g. {argv[0].split() + argv[1:]!r}"
            )
        for i, arg in enumerate(argv):
            try:
                check_template(arg, cls.PLACEHOLDERS)
            except ValueError as exc:
                raise ValueError(f"argv[{i}]: {exc}") from None
        return argv

    @field_validator("env", "secret_env")
    @classmethod
    def _check_env_names(cls, env: dict[str, Any]) -> dict[str, Any]:
        for key in env:
            if not ENV_NAME_RE.match(key):
                raise ValueError(f"invalid environment variable name {key!r}")
        return env

    @model_validator(mode="after")
    def _no_env_overlap(self) -> ScriptReplacerSettings:
        both = set(self.env) & set(self.secret_env)
        if both:
            raise ValueError(f"variables set in both env and secret_env: {sorted(both)}")
        return self

    def render_argv(self, broker_id: int, host: str, *, restart: bool = False) -> list[str]:
        """The argv for one broker: placeholders substituted per element, never re-split."""
        argv = self.restart_argv if restart else self.argv
        if argv is None:
            raise ValueError("no restart_argv is configured")
        return [arg.format(broker_id=broker_id, host=host) for arg in argv]


class Ec2ReplacerSettings(BaseModel):
    """Replaces a broker's EC2 instance with a new one of the same launch configuration."""

    model_config = ConfigDict(extra="forbid")

    KIND: ClassVar[str] = "ec2"

    RECORD_PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"broker_id", "cluster"})

    region: str = Field(..., description="AWS region of the brokers, e.g. us-east-1.")
    endpoint_url: str | None = Field(None, description="Override the EC2/Route 53 endpoint (tests, moto).")
    aws_credentials: str | None = Field(
        None, description="Name of an AwsCredentials block; unset = the default boto3 credential chain."
    )
    keep_private_ip: bool = Field(
        True, description="Give the new instance the old private IP, so clients' broker addresses stay valid."
    )
    instance_type_fallbacks: list[str] = Field(
        default_factory=list,
        description="Instance types to try, in order, if the original type has no capacity.",
    )
    hosted_zone_id: str | None = Field(None, description="Route 53 zone whose broker record is updated.")
    record_name_template: str | None = Field(
        None, description='DNS record per broker, e.g. "b{broker_id}.{cluster}.example.com".'
    )
    wait_timeout_s: float = Field(
        900.0, gt=0, le=4 * 3600, description="How long to wait for the new instance to be running (seconds)."
    )
    data_volume_device: str | None = Field(
        None,
        description='Device name of the broker\'s EBS data volume as EC2 lists it, e.g. "/dev/sdf". Set: that '
        "volume is never deleted with the old instance, and is read as the broker's disk before a restart or "
        "a replacement. Unset: the data lives on the root or instance-store disk and dies with the instance.",
    )
    reuse_data_volume: bool = Field(
        True,
        description="With data_volume_device: attach the old data volume to the new instance at the same device "
        "(new host, same disk: the broker only catches up). Off: the new instance gets a fresh, empty volume "
        "and the old one is kept, detached, for a human to reclaim.",
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

    @field_validator("instance_type_fallbacks")
    @classmethod
    def _instance_types(cls, value: list[str]) -> list[str]:
        for item in value:
            if not EC2_INSTANCE_TYPE_RE.match(item):
                raise ValueError(f"not an EC2 instance type: {item!r} (expected e.g. 'm5.large')")
        if len(set(value)) != len(value):
            raise ValueError("instance_type_fallbacks lists a type twice")
        return value

    @field_validator("data_volume_device")
    @classmethod
    def _data_device(cls, value: str | None) -> str | None:
        return None if value is None else check_ebs_data_device(value)

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and not ROUTE53_ZONE_ID_RE.match(value):
            raise ValueError(f"not a Route 53 hosted zone id: {value!r} (expected e.g. 'Z0123456789ABC')")
        return value

    @field_validator("record_name_template")
    @classmethod
    def _record_template(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value, cls.RECORD_PLACEHOLDERS, required={"broker_id"})
        return value

    @model_validator(mode="after")
    def _dns_pair(self) -> Ec2ReplacerSettings:
        check_record_name_template(self.record_name_template, self.hosted_zone_id)
        return self


ReplacerSettings = SandboxReplacerSettings | ScriptReplacerSettings | Ec2ReplacerSettings
#: The block-type slug of each replacer kind: a cluster names its replacer "<slug>/<block-name>".
REPLACER_SLUGS: dict[str, type[BaseModel]] = {
    "sandbox-replacer": SandboxReplacerSettings,
    "script-replacer": ScriptReplacerSettings,
    "ec2-replacer": Ec2ReplacerSettings,
}
