"""The KafkaCluster block: a cluster's settings (:class:`kafka_medic.settings.ClusterSettings`) as a
Prefect block, so it can be created and edited in the UI and loaded by name by every flow.

All fields and their validation are the settings model's; this class only adds the block type.
"""

from __future__ import annotations

from typing import ClassVar

from blocks.replacers import MedicBlock
from kafka_medic.settings.cluster import ClusterSettings


class KafkaCluster(MedicBlock, ClusterSettings):
    """One Kafka cluster: how to connect, where its metrics are, its AWS home and its health policy."""

    _block_type_slug: ClassVar[str] = "kafka-cluster"
    _block_type_name: ClassVar[str] = "Kafka Medic Cluster"
    _description: ClassVar[str] = "A Kafka cluster watched and healed by kafka-medic."
