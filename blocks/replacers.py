"""Prefect block types for the ways a dead broker can be replaced (configuration only).

Each block is the core's settings model (:mod:`kafka_medic.settings.replacers`) plus a Prefect
block type, so an operator can create and edit it in the UI, and a cluster refers to one by
``"<block-type-slug>/<name>"``. The validation is the settings model's; the code that acts on it
is :mod:`kafka_medic.replacers` (the engines) and :mod:`blocks.load` (loading a cluster's replacer).
"""

from __future__ import annotations

import copy
from abc import ABC
from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import ConfigDict, model_validator

from kafka_medic.settings.replacers import (
    REPLACER_SLUGS,
    Ec2ReplacerSettings,
    SandboxReplacerSettings,
    ScriptReplacerSettings,
)


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


class SandboxReplacer(MedicBlock, SandboxReplacerSettings):
    """Replaces a broker of the local sandbox cluster (tests, demos): wipes and restarts it."""

    _block_type_slug: ClassVar[str] = "sandbox-replacer"
    _block_type_name: ClassVar[str] = "Kafka Medic Sandbox Replacer"
    _description: ClassVar[str] = "Replaces a broker of the local kafka-medic sandbox cluster."


class ScriptReplacer(MedicBlock, ScriptReplacerSettings):
    """Replaces a broker by running an operator-provided program (argv list, never a shell)."""

    _block_type_slug: ClassVar[str] = "script-replacer"
    _block_type_name: ClassVar[str] = "Kafka Medic Script Replacer"
    _description: ClassVar[str] = "Replaces a broker by running a program (argv list, no shell)."


class Ec2Replacer(MedicBlock, Ec2ReplacerSettings):
    """Replaces a dead broker's EC2 instance with a new one of the same launch configuration."""

    _block_type_slug: ClassVar[str] = "ec2-replacer"
    _block_type_name: ClassVar[str] = "Kafka Medic EC2 Replacer"
    _description: ClassVar[str] = "Replaces a dead broker's EC2 instance."


REPLACER_BLOCK_CLASSES: tuple[type[MedicBlock], ...] = (SandboxReplacer, ScriptReplacer, Ec2Replacer)
#: Block classes by slug; every replacer kind of the core has exactly one.
REPLACER_BLOCKS: dict[str, type[MedicBlock]] = {cls.get_block_type_slug(): cls for cls in REPLACER_BLOCK_CLASSES}
assert set(REPLACER_BLOCKS) == set(REPLACER_SLUGS), "a replacer kind without a block type (or the reverse)"
