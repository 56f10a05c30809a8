"""Read cluster state through confluent-kafka's Admin API into plain frames.

One Metadata request gives every partition's leader, replicas and ISR (leader -1 = offline);
DescribeCluster gives the registered, unfenced brokers with their racks; DescribeConfigs gives the
topic settings that matter for safety (min.insync.replicas). Reassignments and log dirs are not in
librdkafka: see ``kafka_medic.monitor.kip455`` (kafka-python).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from confluent_kafka.admin import AdminClient, ConfigResource

from kafka_medic.snapshot import PARTITION_COLUMNS, empty_frame

_quiet = logging.getLogger("kafka_medic.librdkafka")
_quiet.setLevel(logging.CRITICAL)
CONFIG_BATCH = 500


def make_admin(conf: dict[str, Any]) -> AdminClient:
    """An AdminClient whose connection noise goes to a silenced logger (a dead broker is expected)."""
    return AdminClient({"logger": _quiet, **conf})


@dataclass(frozen=True)
class BrokerInfo:
    broker_id: int
    host: str
    port: int
    rack: str | None


def host_port(host: str, port: int) -> str:
    """``host:port`` for a bootstrap list, with an IPv6 literal bracketed."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str | None
    controller_id: int | None
    brokers: list[BrokerInfo]


def describe_cluster(admin: AdminClient, timeout_s: float = 10.0) -> ClusterInfo:
    desc = admin.describe_cluster(request_timeout=timeout_s).result(timeout=timeout_s + 2)
    brokers = [BrokerInfo(int(n.id), n.host, int(n.port), n.rack or None) for n in desc.nodes]
    controller = int(desc.controller.id) if desc.controller is not None else None
    return ClusterInfo(desc.cluster_id, controller, sorted(brokers, key=lambda b: b.broker_id))


def read_metadata(admin: AdminClient, timeout_s: float = 15.0) -> tuple[list[BrokerInfo], pd.DataFrame]:
    """Live brokers (rack unknown: Metadata carries none in librdkafka) and partitions, in ONE request.

    Metadata goes to any reachable broker. DescribeCluster, by contrast, goes to the broker that
    KRaft advertises as "controller" (a random live broker), and right after that broker dies
    librdkafka can wait on it until the request times out: liveness must not depend on it.
    """
    md = admin.list_topics(timeout=timeout_s)
    brokers = [BrokerInfo(int(b.id), b.host, int(b.port), None) for b in md.brokers.values()]
    return sorted(brokers, key=lambda b: b.broker_id), _partitions_frame(md, None)


def describe_partitions(
    admin: AdminClient, topics: Iterable[str] | None = None, timeout_s: float = 15.0
) -> pd.DataFrame:
    """Partitions frame (topic, partition, leader, replicas, isr, min_isr=NaN until configs are read)."""
    wanted = set(topics) if topics is not None else None
    return _partitions_frame(admin.list_topics(timeout=timeout_s), wanted)


def _partitions_frame(md: Any, wanted: set[str] | None) -> pd.DataFrame:
    rows = []
    for name, tmd in md.topics.items():
        if wanted is not None and name not in wanted:
            continue
        if tmd.error is not None:
            continue
        for pid, pmd in tmd.partitions.items():
            rows.append((name, int(pid), int(pmd.leader), tuple(pmd.replicas), tuple(pmd.isrs), float("nan")))
    if not rows:
        return empty_frame(PARTITION_COLUMNS)
    df = pd.DataFrame(rows, columns=list(PARTITION_COLUMNS))
    return df.sort_values(["topic", "partition"], ignore_index=True)


def topic_min_isr(admin: AdminClient, topics: Iterable[str], timeout_s: float = 15.0) -> dict[str, int]:
    """min.insync.replicas per topic (the effective value: topic override or broker default)."""
    names = sorted(set(topics))
    out: dict[str, int] = {}
    for i in range(0, len(names), CONFIG_BATCH):
        batch = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in names[i : i + CONFIG_BATCH]]
        futures = admin.describe_configs(batch, request_timeout=timeout_s)
        for res, fut in futures.items():
            entries = fut.result(timeout=timeout_s + 2)
            entry = entries.get("min.insync.replicas")
            if entry is not None and entry.value is not None:
                out[res.name] = int(entry.value)
    return out


@dataclass(frozen=True)
class SafetyConfigs:
    """The configs the safety guards need, as one broker reported them."""

    default_replication_factor: int
    default_min_isr: int
    topic_min_isr: dict[str, int]
    #: (topic, ``leader|follower.replication.throttled.replicas``) -> value set on the topic (raw text).
    topic_throttles: dict[tuple[str, str], str] = field(default_factory=dict)


#: The topic-level lists and the broker-level rates that make up a replication throttle.
THROTTLED_REPLICAS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
THROTTLED_RATES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")


def describe_throttle_rates(
    admin: AdminClient, brokers: Iterable[int], timeout_s: float = 1.0
) -> tuple[dict[tuple[int, str], int], frozenset[int]]:
    """The throttle rates set on each broker itself (dynamic per-broker values only), and which
    brokers answered. One request per broker (a BROKER resource's dynamic values are that broker's),
    all at once; a broker that does not answer in ``timeout_s`` (hung) is just not read: a leftover
    throttle is worth reporting, not worth slowing every health check for."""
    from confluent_kafka.admin import ConfigSource

    pending = {
        b: admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, str(b))], request_timeout=timeout_s)
        for b in sorted(set(brokers))
    }
    rates: dict[tuple[int, str], int] = {}
    answered: set[int] = set()
    for b, futures in pending.items():
        for fut in futures.values():
            try:
                entries = fut.result(timeout=timeout_s + 1)
            except Exception:
                continue
            answered.add(b)
            for config in THROTTLED_RATES:
                e = entries.get(config)
                if e is not None and e.value and int(e.source) == ConfigSource.DYNAMIC_BROKER_CONFIG.value:
                    rates[(b, config)] = int(e.value)
    return rates, frozenset(answered)


def describe_safety_configs(
    admin: AdminClient, broker_id: int, topics: Iterable[str], timeout_s: float = 3.0
) -> SafetyConfigs:
    """Broker defaults and every topic's min ISR, asked of ONE chosen broker.

    Why one named broker: librdkafka sends a DescribeConfigs of topics to the broker KRaft
    advertises as "controller" -- a random listed broker, possibly one that just crashed and is not
    fenced yet, which costs a full timeout. A request that also names a BROKER resource goes to
    that broker instead (every KRaft broker serves every topic's config from its metadata image),
    so the caller picks a broker known to accept connections. Batched like ``topic_min_isr``.
    """
    names = sorted(set(topics))
    broker = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    from confluent_kafka.admin import ConfigSource

    rf, min_isr = 1, 1
    out: dict[str, int] = {}
    throttles: dict[tuple[str, str], str] = {}
    for i in range(0, max(1, len(names)), CONFIG_BATCH):
        batch = [broker, *(ConfigResource(ConfigResource.Type.TOPIC, t) for t in names[i : i + CONFIG_BATCH])]
        futures = admin.describe_configs(batch, request_timeout=timeout_s)
        for res, fut in futures.items():
            entries = fut.result(timeout=timeout_s + 2)
            if res.restype == ConfigResource.Type.BROKER:
                e_rf, e_mi = entries.get("default.replication.factor"), entries.get("min.insync.replicas")
                rf = int(e_rf.value) if e_rf and e_rf.value else 1
                min_isr = int(e_mi.value) if e_mi and e_mi.value else 1
                continue
            entry = entries.get("min.insync.replicas")
            if entry is not None and entry.value is not None:
                out[res.name] = int(entry.value)
            for config in THROTTLED_REPLICAS:  # same answer, so leftover throttles cost no request
                e = entries.get(config)
                if e is not None and e.value and int(e.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value:
                    throttles[(res.name, config)] = e.value.strip()
    return SafetyConfigs(rf, min_isr, out, throttles)


def add_min_isr(
    admin: AdminClient, parts: pd.DataFrame, default_min_isr: int = 1, timeout_s: float = 15.0
) -> pd.DataFrame:
    """Fill the min_isr column from the topics' effective configs."""
    if parts.empty:
        return parts
    min_isr = topic_min_isr(admin, parts["topic"].unique(), timeout_s)
    parts["min_isr"] = parts["topic"].map(min_isr).fillna(default_min_isr).astype(int)
    return parts


def not_fully_replicated(parts: pd.DataFrame) -> pd.DataFrame:
    """Rows whose ISR is not the full replica set, or that have no leader."""
    if parts.empty:
        return parts
    short = [set(r) != set(i) for r, i in zip(parts["replicas"], parts["isr"], strict=True)]
    return parts[pd.Series(short, index=parts.index) | (parts["leader"] < 0)]
