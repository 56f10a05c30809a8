"""Synthetic cluster snapshots for benchmarks and property tests (no Kafka needed).

Builds a rack-aware RF-N assignment the way Kafka's own rack-aware assignor spreads replicas:
each partition's replicas land in distinct racks, leaders rotate over brokers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kafka_medic.snapshot import BROKER_METRIC_COLUMNS, ClusterSnapshot, explode_replicas


def synthetic_snapshot(
    n_brokers: int = 200,
    n_partitions: int = 100_000,
    rf: int = 3,
    n_racks: int = 3,
    partitions_per_topic: int = 100,
    seed: int = 0,
    cluster: str = "synthetic",
) -> ClusterSnapshot:
    """A healthy cluster: all brokers alive, ISR full, each partition spread over ``rf`` racks."""
    if rf > n_racks:
        raise ValueError("rf must be <= n_racks for a rack-spread assignment")
    rng = np.random.default_rng(seed)
    broker_ids = np.arange(1, n_brokers + 1)
    racks = np.array([f"az-{chr(ord('a') + i % n_racks)}" for i in range(n_brokers)])
    by_rack = [broker_ids[racks == f"az-{chr(ord('a') + r)}"] for r in range(n_racks)]

    replicas: list[tuple[int, ...]] = []
    for p in range(n_partitions):
        first_rack = p % n_racks
        reps = []
        for k in range(rf):
            members = by_rack[(first_rack + k) % n_racks]
            reps.append(int(members[(p // n_racks + k * 7) % len(members)]))
        replicas.append(tuple(reps))

    topics = [f"topic-{p // partitions_per_topic:05d}" for p in range(n_partitions)]
    parts = [p % partitions_per_topic for p in range(n_partitions)]
    partitions = pd.DataFrame(
        {
            "topic": topics,
            "partition": parts,
            "leader": [r[0] for r in replicas],
            "replicas": replicas,
            "isr": replicas,
            "min_isr": 2,
        }
    )
    brokers = pd.DataFrame(
        {
            "broker_id": broker_ids,
            "host": [f"broker-{b}.example" for b in broker_ids],
            "port": 9092,
            "rack": racks,
            "alive": True,
            "metrics_ok": True,
        }
    )
    base = {
        "under_replicated_partitions": 0.0,
        "under_min_isr_partitions": 0.0,
        "offline_replicas": 0.0,
        "bytes_in_per_sec": 5e6,
        "bytes_out_per_sec": 1e7,
        "replication_bytes_in_per_sec": 1e7,
        "messages_in_per_sec": 5e3,
        "request_handler_idle": 0.8,
        "network_processor_idle": 0.85,
        "isr_shrinks_per_sec": 0.0,
        "isr_expands_per_sec": 0.0,
        "produce_p99_ms": 5.0,
        "produce_queue_p99_ms": 0.5,
        "fetch_consumer_p99_ms": 500.0,
        "fetch_follower_p99_ms": 500.0,
    }
    for col in BROKER_METRIC_COLUMNS:
        noise = rng.normal(1.0, 0.05, n_brokers).clip(0.5, 1.5)
        values = base[col] * noise
        if col.endswith("_idle"):
            values = values.clip(0, 1)
        brokers[col] = values
    brokers["instance_id"] = None
    brokers["ec2_status"] = None
    brokers["ec2_events"] = ""

    replicas_df = explode_replicas(partitions)
    replicas_df["size_bytes"] = rng.lognormal(mean=20, sigma=1.0, size=len(replicas_df)).round()
    # Followers hold the same data as their leader: one size per partition.
    replicas_df["size_bytes"] = replicas_df.groupby(["topic", "partition"])["size_bytes"].transform("first")

    log_dirs = pd.DataFrame(
        {
            "broker_id": broker_ids,
            "path": "/var/lib/kafka",
            "error": None,
            "total_bytes": 4e12,
            "usable_bytes": 4e12
            - replicas_df.groupby("broker_id")["size_bytes"].sum().reindex(broker_ids, fill_value=0).to_numpy(),
        }
    )
    return ClusterSnapshot(
        cluster=cluster,
        brokers=brokers,
        partitions=partitions,
        replicas=replicas_df,
        log_dirs=log_dirs,
    )
