"""Prefect block types of kafka-medic (configuration only) and how to load them.

Register them once per Prefect server with :func:`register_block_types` (or
``prefect block register -m blocks``) so they can be created and edited in the UI.
"""

from __future__ import annotations

from prefect.blocks.core import Block

from blocks.kafka_cluster import KafkaCluster
from blocks.replacers import REPLACER_BLOCK_CLASSES, Ec2Replacer, SandboxReplacer, ScriptReplacer

BLOCK_CLASSES: tuple[type[Block], ...] = (KafkaCluster, *REPLACER_BLOCK_CLASSES)

__all__ = [
    "BLOCK_CLASSES",
    "Ec2Replacer",
    "KafkaCluster",
    "SandboxReplacer",
    "ScriptReplacer",
    "aregister_block_types",
    "register_block_types",
]


def register_block_types() -> list[str]:
    """Register every kafka-medic block type and schema with the current Prefect API.

    Idempotent (Prefect looks types up by slug and schemas by checksum), so every command that
    saves blocks can call it first instead of relying on a separate setup step. Returns the slugs.
    ``_sync=True`` forces the blocking path even when called from async code; use
    :func:`aregister_block_types` there to avoid blocking the event loop.
    """
    for cls in BLOCK_CLASSES:
        cls.register_type_and_schema(_sync=True)  # type: ignore[call-arg]
    return [cls.get_block_type_slug() for cls in BLOCK_CLASSES]


async def aregister_block_types() -> list[str]:
    """Async twin of :func:`register_block_types`."""
    for cls in BLOCK_CLASSES:
        await cls.aregister_type_and_schema()
    return [cls.get_block_type_slug() for cls in BLOCK_CLASSES]
