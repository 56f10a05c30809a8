"""Kafka reads and writes the maintenance flows share: partitions, registered brokers, leader elections."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pandas as pd
from confluent_kafka import ElectionType, TopicPartition

from kafka_medic.maintenance.election import PartitionKey, leaders_on_preferred
from kafka_medic.monitor.cluster_reads import describe_cluster, describe_partitions, make_admin
from kafka_medic.settings.cluster import ClusterSettings
from kafka_medic.waiting import NotYet, WaitTimeout, apoll


async def read_partitions(cluster: ClusterSettings, timeout_s: float = 15.0) -> pd.DataFrame:
    """Every partition's leader, replicas and ISR (one Metadata request)."""
    admin = make_admin(cluster.confluent_config())
    return await asyncio.to_thread(describe_partitions, admin, None, timeout_s)


async def registered_brokers(cluster: ClusterSettings, timeout_s: float = 10.0) -> set[int] | None:
    """The controller's own list of registered, unfenced brokers (DescribeCluster); None if unreadable."""

    def read() -> set[int]:
        return {b.broker_id for b in describe_cluster(make_admin(cluster.confluent_config()), timeout_s).brokers}

    try:
        return await asyncio.to_thread(read)
    except Exception:
        return None


async def elect_preferred(cluster: ClusterSettings, keys: list[PartitionKey], timeout_s: float) -> dict[str, Any]:
    """Ask the controller for a preferred election on ``keys`` and wait until metadata shows it."""
    if not keys:
        return {"requested": 0, "moved": 0, "errors": {}, "not_moved": []}
    # Timeouts go in the client config: confluent-kafka 2.x's elect_leaders rejects its own
    # request_timeout keyword (SystemError "more argument specifiers than keyword list entries").
    admin = make_admin({**cluster.confluent_config(), "socket.timeout.ms": int(min(timeout_s, 60.0) * 1000)})
    tps = [TopicPartition(t, p) for t, p in keys]

    def call() -> dict[str, str]:
        result = admin.elect_leaders(ElectionType.PREFERRED, tps).result(timeout=timeout_s + 5)
        errors: dict[str, str] = {}
        for tp, err in result.items():
            if err is not None and "ELECTION_NOT_NEEDED" not in str(err):
                errors[f"{tp.topic}-{tp.partition}"] = str(err)
        return errors

    errors = await asyncio.to_thread(call)
    done: set[PartitionKey] = set()

    async def moved() -> None:
        nonlocal done
        done = leaders_on_preferred(await read_partitions(cluster), keys)
        if len(done) < len(keys):
            raise NotYet(f"{len(keys) - len(done)} leader(s) not on their preferred replica yet")

    with contextlib.suppress(WaitTimeout):  # what did not move is reported below
        await apoll(moved, timeout_s=timeout_s, interval_s=0.5, what="preferred leaders in place")
    not_moved = sorted(f"{t}-{p}" for t, p in set(keys) - done)
    return {"requested": len(keys), "moved": len(done), "errors": errors, "not_moved": not_moved}
