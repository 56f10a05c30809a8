"""One collection pass over one cluster: Admin API + kafka-python + JMX exporters (+ EC2).

Everything that can fail independently is done independently, and every failure becomes a
``CollectionIssue`` on the snapshot (a finding later), never an exception: a broker that does not
answer or a metrics endpoint that is down is exactly what a health check exists to report.

Brokers in the frame are the union of: brokers the cluster lists now (alive), brokers named in any
replica list, brokers the operator declared (``expected_brokers``) and brokers remembered from
earlier passes (``known_brokers``, persisted by the flow). Only the first set is alive; the others
are down (fenced or gone) — DescribeCluster does not list fenced brokers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from confluent_kafka.admin import ConfigResource

from kafka_medic import kip455
from kafka_medic.cluster_reads import BrokerInfo, add_min_isr, describe_cluster, make_admin, read_metadata
from kafka_medic.metrics import (
    MetricsParseError,
    ScrapeError,
    parse_broker_metrics,
    parse_controller_metrics,
    scrape,
)
from kafka_medic.snapshot import (
    BROKER_COLUMNS,
    BROKER_METRIC_COLUMNS,
    CONTROLLER_COLUMNS,
    LOG_DIR_COLUMNS,
    PARTITION_COLUMNS,
    REASSIGNMENT_COLUMNS,
    ClusterSnapshot,
    CollectionIssue,
    empty_frame,
    explode_replicas,
)


class ClusterAccess(Protocol):
    """What the collector needs from a cluster definition (the KafkaCluster block provides it)."""

    name: str
    controller_metrics_urls: list[str]
    expected_brokers: list[int]

    def confluent_config(self) -> dict[str, Any]: ...
    def kafka_python_config(self) -> dict[str, Any]: ...
    def metrics_url_for(self, broker_id: int, host: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class KnownBroker:
    """What we remember about a broker between passes (so a dead broker keeps its rack)."""

    broker_id: int
    host: str
    port: int
    rack: str | None

    def to_json(self) -> dict[str, Any]:
        return {"broker_id": self.broker_id, "host": self.host, "port": self.port, "rack": self.rack}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KnownBroker:
        return cls(int(d["broker_id"]), str(d.get("host", "")), int(d.get("port", 0)), d.get("rack"))


#: Optional EC2 hook: given broker id -> host, return a frame with broker_id, instance_id, ec2_status,
#: ec2_events (or raise; the error becomes a CollectionIssue).
Ec2Lookup = Callable[[Mapping[int, str]], pd.DataFrame]


#: Per-cluster cache of slowly changing configs (broker defaults, topic min ISR); see collect_snapshot.
_CONFIG_CACHE: dict[str, dict[str, Any]] = {}


@dataclass
class CollectResult:
    snapshot: ClusterSnapshot
    known_brokers: dict[int, KnownBroker]
    seconds: float


def _broker_defaults(admin: Any, broker_id: int, timeout_s: float) -> tuple[int, int]:
    res = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    entries = admin.describe_configs([res], request_timeout=timeout_s)[res].result(timeout=timeout_s + 2)
    rf = entries.get("default.replication.factor")
    mi = entries.get("min.insync.replicas")
    return (int(rf.value) if rf and rf.value else 1, int(mi.value) if mi and mi.value else 1)


def _scrape_broker(url: str | None) -> tuple[dict[str, float] | None, str | None]:
    if url is None:
        return None, None
    try:
        return parse_broker_metrics(scrape(url)), None
    except (ScrapeError, MetricsParseError) as exc:
        return None, str(exc)


def _scrape_controller(url: str) -> tuple[dict[str, float] | None, str | None]:
    try:
        return parse_controller_metrics(scrape(url)), None
    except (ScrapeError, MetricsParseError) as exc:
        return None, str(exc)


def collect_snapshot(
    cluster: ClusterAccess,
    *,
    known_brokers: Mapping[int, KnownBroker] | None = None,
    ec2_lookup: Ec2Lookup | None = None,
    timeout_s: float = 10.0,
) -> CollectResult:
    t0 = time.monotonic()
    issues: list[CollectionIssue] = []
    known: dict[int, KnownBroker] = dict(known_brokers or {})
    admin = make_admin({**cluster.confluent_config(), "socket.timeout.ms": int(timeout_s * 1000)})

    alive: list[BrokerInfo] = []
    partitions = empty_frame(PARTITION_COLUMNS)
    try:
        alive, partitions = read_metadata(admin, timeout_s)
    except Exception as exc:
        issues.append(CollectionIssue("admin", f"cluster unreachable: Metadata request failed: {exc}"))
    alive_ids = {b.broker_id for b in alive}
    racks: dict[int, str | None] = {}
    if alive:
        try:  # racks only; short timeout (see read_metadata on why liveness does not come from here)
            racks = {b.broker_id: b.rack for b in describe_cluster(admin, min(timeout_s, 3.0)).brokers}
        except Exception:
            racks = {}
    for b in alive:
        rack = racks.get(b.broker_id, known[b.broker_id].rack if b.broker_id in known else None)
        known[b.broker_id] = KnownBroker(b.broker_id, b.host, b.port, rack)

    # DescribeConfigs is routed to the broker KRaft advertises as "controller"; right after that
    # broker dies librdkafka waits on it. Ask with a short timeout and fall back to the values
    # learnt in an earlier pass (configs change rarely; a stale min ISR is better than none).
    cache = _CONFIG_CACHE.setdefault(cluster.name, {})
    default_rf, default_min_isr = cache.get("defaults", (3, 2))
    side_timeout = min(timeout_s, 3.0)
    if alive:
        try:
            default_rf, default_min_isr = _broker_defaults(admin, alive[0].broker_id, side_timeout)
            cache["defaults"] = (default_rf, default_min_isr)
        except Exception as exc:
            issues.append(CollectionIssue("admin", f"DescribeConfigs(broker) failed: {exc}"))
        topic_min_isr_cache: dict[str, int] = cache.setdefault("min_isr", {})
        try:
            partitions = add_min_isr(admin, partitions, default_min_isr, side_timeout)
            topic_min_isr_cache.clear()
            topic_min_isr_cache.update(partitions.groupby("topic")["min_isr"].first().astype(int).to_dict())
        except Exception as exc:
            issues.append(CollectionIssue("admin", f"DescribeConfigs(topics) failed, using last known values: {exc}"))
            if not partitions.empty:
                partitions["min_isr"] = partitions["topic"].map(topic_min_isr_cache).fillna(default_min_isr).astype(int)

    referenced: set[int] = set()
    if not partitions.empty:
        for reps in partitions["replicas"]:
            referenced.update(reps)
    all_ids = sorted(alive_ids | referenced | set(cluster.expected_brokers) | set(known))

    # Metrics of every broker we know of (a fenced broker whose exporter still answers is a JVM that
    # is alive but out of the cluster: "maybe dead", restart before replace), and of the controllers,
    # concurrently with the kafka-python calls.
    urls = {b: cluster.metrics_url_for(b, known[b].host if b in known else None) for b in all_ids}
    with ThreadPoolExecutor(max_workers=min(16, len(urls) + len(cluster.controller_metrics_urls) + 2)) as pool:
        metric_futs = {b: pool.submit(_scrape_broker, u) for b, u in urls.items()}
        ctrl_futs = [(u, pool.submit(_scrape_controller, u)) for u in cluster.controller_metrics_urls]
        log_dirs, sizes, reassignments = _kafka_python_reads(cluster, alive_ids, timeout_s, issues)
        ec2 = _ec2(ec2_lookup, {b: known[b].host for b in all_ids if b in known}, issues)

        rows = []
        for b in all_ids:
            kb = known.get(b)
            metrics, err = metric_futs[b].result()
            row: dict[str, Any] = {
                "broker_id": b,
                "host": kb.host if kb else None,
                "port": kb.port if kb else None,
                "rack": kb.rack if kb else None,
                "alive": b in alive_ids,
                "metrics_ok": None if urls[b] is None else metrics is not None,
                "metrics_error": err,
            }
            row.update({c: (metrics or {}).get(c, math.nan) for c in BROKER_METRIC_COLUMNS})
            rows.append(row)
            if err is not None and b in alive_ids:
                issues.append(CollectionIssue("metrics", err, broker_id=b))
        ctrl_rows = []
        for i, (url, fut) in enumerate(ctrl_futs):
            cm, err = fut.result()
            ctrl_rows.append({"node_id": i, "metrics_ok": cm is not None, **(cm or {}), "url": url})
            if err is not None:
                issues.append(CollectionIssue("controller_metrics", err))

    brokers = pd.DataFrame(rows, columns=[*BROKER_COLUMNS, "metrics_error"]) if rows else empty_frame(BROKER_COLUMNS)
    if not brokers.empty:
        brokers = brokers.drop(columns=["instance_id", "ec2_status", "ec2_events"])
        if ec2 is not None and not ec2.empty:
            brokers = brokers.merge(
                ec2[["broker_id", "instance_id", "ec2_status", "ec2_events"]], on="broker_id", how="left"
            )
        else:
            brokers["instance_id"] = None
            brokers["ec2_status"] = None
            brokers["ec2_events"] = ""
        brokers["ec2_events"] = brokers["ec2_events"].fillna("")
        brokers = brokers.astype({"broker_id": int, "alive": bool})
    controller = (
        pd.DataFrame(ctrl_rows).reindex(columns=[*CONTROLLER_COLUMNS, "url"])
        if ctrl_rows
        else empty_frame(CONTROLLER_COLUMNS)
    )
    replicas = explode_replicas(partitions, sizes)
    snap = ClusterSnapshot(
        cluster=cluster.name,
        brokers=brokers,
        partitions=partitions,
        replicas=replicas,
        log_dirs=log_dirs,
        reassignments=reassignments,
        controller=controller,
        issues=issues,
        default_replication_factor=default_rf,
        default_min_isr=default_min_isr,
    )
    return CollectResult(snap, known, time.monotonic() - t0)


def _kafka_python_reads(
    cluster: ClusterAccess, alive_ids: set[int], timeout_s: float, issues: list[CollectionIssue]
) -> tuple[pd.DataFrame, dict[tuple[str, int, int], float], pd.DataFrame]:
    log_dirs, sizes, reassignments = empty_frame(LOG_DIR_COLUMNS), {}, empty_frame(REASSIGNMENT_COLUMNS)
    if not alive_ids:
        return log_dirs, sizes, reassignments
    try:
        # Short request timeout: a hung broker is still listed for a few seconds and would stall a
        # long one; its absence from this pass is reported, not waited for.
        with kip455.kafka_python_admin(cluster.kafka_python_config(), int(min(timeout_s, 4.0) * 1000)) as kadmin:
            try:
                log_dirs, sizes = kip455.describe_log_dirs(kadmin, alive_ids)
            except Exception as exc:
                issues.append(CollectionIssue("log_dirs", f"DescribeLogDirs failed: {exc}"))
            try:
                reassignments = kip455.list_reassignments(kadmin, int(min(timeout_s, 4.0) * 1000))
            except Exception as exc:
                issues.append(CollectionIssue("reassignments", f"ListPartitionReassignments failed: {exc}"))
    except Exception as exc:
        issues.append(CollectionIssue("admin", f"kafka-python admin client could not connect: {exc}"))
    return log_dirs, sizes, reassignments


def _ec2(lookup: Ec2Lookup | None, hosts: Mapping[int, str], issues: list[CollectionIssue]) -> pd.DataFrame | None:
    if lookup is None:
        return None
    try:
        return lookup(hosts)
    except Exception as exc:
        issues.append(CollectionIssue("ec2", f"EC2 status lookup failed: {exc}"))
        return None
