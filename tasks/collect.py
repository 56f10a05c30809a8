"""The collection task: one pass over one cluster, run in a worker thread (the clients block)."""

from __future__ import annotations

import asyncio

from prefect import task

from blocks.kafka_cluster import KafkaCluster
from kafka_medic.collector import CollectResult, KnownBroker, collect_snapshot
from tasks.ec2 import ec2_lookup_for


@task(name="collect-cluster", retries=1, retry_delay_seconds=2, cache_policy=None)
async def collect_cluster(cluster: KafkaCluster, known: dict[int, KnownBroker]) -> CollectResult:
    """Never raises for an unhealthy cluster: what could not be read is in ``snapshot.issues``."""
    return await asyncio.to_thread(
        collect_snapshot, cluster, known_brokers=known, ec2_lookup=ec2_lookup_for(cluster),
        probe_timeout_s=probe_timeout(cluster),
    )  # fmt: skip


def probe_timeout(cluster: KafkaCluster) -> float | None:
    """The listener-probe bound the cluster's policy asks for, or None when refusals do not count."""
    p = cluster.policy
    return p.listener_probe_timeout_s if p.refused_listener_is_down else None
