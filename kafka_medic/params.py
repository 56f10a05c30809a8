"""Form fields every mutating flow shares, so each form asks the same question the same way.

Plain pydantic (the flows' parameter models are built from these): a bad value is refused with the
form, in one line, before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from kafka_medic.maintenance.election import parse_partition
from kafka_medic.settings.validators import TOPIC_NAME_RE

#: How long to wait for the cluster's mutate lock before the run completes as ``busy``.
LOCK_WAIT: Any = Field(
    30.0, ge=0, le=3600, description="How long to wait for the cluster's mutate lock (another action running)."
)


def _topics(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for t in value:
        if not TOPIC_NAME_RE.match(t):
            raise ValueError(f"not a valid Kafka topic name: {t!r}")
    return sorted(set(value))


def _partitions(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for spec in value:
        parse_partition(spec)  # 'partition ... must be written "topic-partition"'
    return sorted(set(value))


def _broker_order(value: list[int] | None) -> list[int] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("list at least one broker id, or leave brokers unset for all")
    if any(b < 0 for b in value):
        raise ValueError("broker ids must be >= 0")
    if len(set(value)) != len(value):
        raise ValueError("a broker id is listed twice")
    return value


def _broker_set(value: list[int]) -> list[int]:
    if any(b < 0 for b in value):
        raise ValueError("broker ids must be >= 0")
    return sorted(set(value))


#: Kafka topic names (sorted, without repeats); None: every topic.
TopicNames = Annotated[list[str] | None, AfterValidator(_topics)]
#: "topic-partition" names (sorted, without repeats); None: no filter.
PartitionNames = Annotated[list[str] | None, AfterValidator(_partitions)]
#: Broker ids in the order given, each once; None: every broker.
BrokerOrder = Annotated[list[int] | None, AfterValidator(_broker_order)]
#: Broker ids (sorted, without repeats).
BrokerSet = Annotated[list[int], AfterValidator(_broker_set)]
