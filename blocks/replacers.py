"""Configuration blocks for the ways a dead broker can be replaced.

Only configuration and its validation live here; the code that actually replaces a broker is
written elsewhere and reads these blocks. Keeping them as Prefect blocks means an operator can
create and edit them in the UI, and a cluster refers to one by ``"<block-type-slug>/<name>"``.

Validation is strict on purpose: a replacer runs with the power to stop machines, so a typo
should fail when the block is saved, not in the middle of an incident.

The small validators at the top are shared with :mod:`blocks.kafka_cluster`.
"""

from __future__ import annotations

import copy
import re
import string
from abc import ABC
from collections.abc import Iterable
from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

# -- shared validators -------------------------------------------------------------------------

AWS_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EC2_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
ROUTE53_ZONE_ID_RE = re.compile(r"^(/hostedzone/)?[A-Z0-9]{1,32}$")


def template_fields(template: str) -> set[str]:
    """Names of the ``{placeholders}`` in a ``str.format`` template.

    Raises ValueError for malformed templates (an unmatched ``{``), and for positional,
    attribute or index placeholders, which we never fill in and would fail at run time.
    """
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc} (write a literal brace as {{{{ or }}}})") from exc
    for _literal, field_name, _spec, _conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier():
            raise ValueError(f"template {template!r} has an unsupported placeholder {{{field_name}}}")
        names.add(field_name)
    return names


def check_template(template: str, allowed: Iterable[str], required: Iterable[str] = ()) -> str:
    """Validate that a template only uses ``allowed`` placeholders and has all ``required`` ones."""
    allowed_set, required_set = set(allowed), set(required)
    used = template_fields(template)
    unknown = used - allowed_set
    if unknown:
        names = ", ".join("{" + n + "}" for n in sorted(unknown))
        ok = ", ".join("{" + n + "}" for n in sorted(allowed_set))
        raise ValueError(f"unknown placeholder {names} in {template!r}; allowed: {ok}")
    missing = required_set - used
    if missing:
        names = ", ".join("{" + n + "}" for n in sorted(missing))
        raise ValueError(f"template {template!r} must contain {names}")
    return template


def check_http_url(url: str, what: str = "URL") -> str:
    """Require an absolute http(s) URL; a bare host is a common mistake worth a clear message."""
    url = url.strip()
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"{what} must start with http:// or https:// and name a host, got {url!r}")
    return url


def check_aws_region(region: str) -> str:
    """Catch a missing or mistyped region early (boto3 would only fail when a call is made)."""
    if not AWS_REGION_RE.match(region):
        raise ValueError(f"not a valid AWS region name: {region!r} (expected e.g. 'us-east-1')")
    return region


def check_record_name_template(template: str | None, hosted_zone_id: str | None) -> None:
    """A DNS record template is useless without a zone, and a zone without a template is ambiguous."""
    if (template is None) != (hosted_zone_id is None):
        raise ValueError("hosted_zone_id and record_name_template must be set together (or both left unset)")


# -- blocks -------------------------------------------------------------------------------------


class MedicBlock(Block, ABC):
    """Base of kafka-medic blocks: strict fields and a cached JSON schema.

    ``ABC`` among the direct bases makes Prefect refuse to register this base itself (e.g. by
    ``prefect block register -m blocks.replacers``), so no stray block type appears in the UI.
    """

    model_config = ConfigDict(extra="forbid")  # a typo must never silently fall back to a default

    @model_validator(mode="before")
    @classmethod
    def _strip_block_metadata(cls, data: Any) -> Any:
        # Block.model_dump() adds "block_type_slug"; with extra="forbid" a dump could not be
        # validated back. The slug is checked here and dropped.
        if isinstance(data, dict) and "block_type_slug" in data:
            data = dict(data)
            slug = data.pop("block_type_slug")
            if slug and slug != cls.get_block_type_slug():
                raise ValueError(f"block_type_slug {slug!r} does not match {cls.get_block_type_slug()!r}")
        return data

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Prefect's schema, computed once per class and arguments.

        Prefect 3.9 rebuilds the whole JSON schema for every field in ``Block.save`` (to find
        secret fields) and in ``repr``; for KafkaCluster that made one save cost ~1-2 s of CPU.
        The schema of a class never changes, so it is cached; callers get a deep copy.
        """
        key = (cls, args, tuple(sorted(kwargs.items())))
        schema = _SCHEMA_CACHE.get(key)
        if schema is None:
            schema = super().model_json_schema(*args, **kwargs)
            _SCHEMA_CACHE[key] = schema
        return copy.deepcopy(schema)


_SCHEMA_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


class SandboxReplacer(MedicBlock):
    """Replaces a broker of the local sandbox cluster (tests, demos): wipes and restarts it."""

    _block_type_slug: ClassVar[str] = "sandbox-replacer"
    _block_type_name: ClassVar[str] = "Kafka Medic Sandbox Replacer"
    _description: ClassVar[str] = "Replaces a broker of the local kafka-medic sandbox cluster."

    state_dir: str = Field(..., description="Directory holding the sandbox cluster's state.")

    @field_validator("state_dir")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("state_dir must not be empty")
        return value


class ScriptReplacer(MedicBlock):
    """Replaces a broker by running an operator-provided program.

    The command is an argv list, never a shell string: placeholders are substituted inside each
    element, so a hostile or odd host name can never inject extra arguments or shell syntax.
    """

    _block_type_slug: ClassVar[str] = "script-replacer"
    _block_type_name: ClassVar[str] = "Kafka Medic Script Replacer"
    _description: ClassVar[str] = "Replaces a broker by running a program (argv list, no shell)."

    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset({"broker_id", "host"})

    argv: list[str] = Field(
        ...,
        min_length=1,
        description='Program and arguments, one per element; "{broker_id}" and "{host}" are substituted.',
    )
    timeout_s: float = Field(
        1800.0, gt=0, le=24 * 3600, description="Kill the program if it runs longer than this (seconds)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    secret_env: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra environment variables holding secrets (masked everywhere)."
    )

    @field_validator("argv", mode="before")
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

    @field_validator("argv")
    @classmethod
    def _check_argv(cls, argv: list[str]) -> list[str]:
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
    def _no_env_overlap(self) -> ScriptReplacer:
        both = set(self.env) & set(self.secret_env)
        if both:
            raise ValueError(f"variables set in both env and secret_env: {sorted(both)}")
        return self

    def render_argv(self, broker_id: int, host: str) -> list[str]:
        """The argv for one broker: placeholders substituted per element, never re-split."""
        return [arg.format(broker_id=broker_id, host=host) for arg in self.argv]


class Ec2Replacer(MedicBlock):
    """Replaces a broker's EC2 instance with a new one of the same launch configuration."""

    _block_type_slug: ClassVar[str] = "ec2-replacer"
    _block_type_name: ClassVar[str] = "Kafka Medic EC2 Replacer"
    _description: ClassVar[str] = "Replaces a dead broker's EC2 instance."

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
        if value is not None and not re.match(r"^[a-z0-9-]+$", value):
            raise ValueError(
                f"aws_credentials must be an AwsCredentials block name (lowercase letters, digits, -), got {value!r}"
            )
        return value

    @field_validator("instance_type_fallbacks")
    @classmethod
    def _instance_types(cls, value: list[str]) -> list[str]:
        for item in value:
            if not EC2_INSTANCE_TYPE_RE.match(item):
                raise ValueError(f"not an EC2 instance type: {item!r} (expected e.g. 'm5.large')")
        if len(set(value)) != len(value):
            raise ValueError("instance_type_fallbacks lists a type twice")
        return value

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
    def _dns_pair(self) -> Ec2Replacer:
        check_record_name_template(self.record_name_template, self.hosted_zone_id)
        return self


REPLACER_BLOCK_CLASSES: tuple[type[Block], ...] = (SandboxReplacer, ScriptReplacer, Ec2Replacer)
REPLACER_SLUGS: frozenset[str] = frozenset(cls.get_block_type_slug() for cls in REPLACER_BLOCK_CLASSES)
