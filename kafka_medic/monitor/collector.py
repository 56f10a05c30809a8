"""One collection pass over one cluster: Admin API + kafka-python + JMX exporters (+ EC2).

Everything that can fail independently is done independently, and every failure becomes a
``CollectionIssue`` on the snapshot (a finding later), never an exception: a broker that does not
answer or a metrics endpoint that is down is exactly what a health check exists to report.

Brokers in the frame are the union of: brokers the cluster lists now (registered), brokers named
in any replica list, brokers the operator declared (``expected_brokers``) and brokers remembered
from earlier passes (``known_brokers``, persisted by the flow). Only the first set can be alive;
the others are down (fenced or gone) — Metadata does not list fenced brokers. With listener probes
on, a listed broker whose listener actively refuses connections is down too (``registered`` stays
True, ``listener`` says ``refused``): its process is gone, the controller just has not noticed yet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from kafka_medic.monitor import kip455
from kafka_medic.monitor.cluster_reads import (
    BrokerInfo,
    SafetyConfigs,
    describe_cluster,
    describe_safety_configs,
    describe_throttle_rates,
    host_port,
    make_admin,
    read_metadata,
)
from kafka_medic.monitor.listener_probe import ListenerState, probe_listeners
from kafka_medic.monitor.metrics import (
    SCRAPE_TIMEOUT_S,
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
    QuorumView,
    ThrottleReading,
    empty_frame,
    explode_replicas,
    is_alive,
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

#: Racks from the last DescribeCluster per cluster (name@bootstrap): (monotonic time read, id -> rack).
_RACK_CACHE: dict[str, tuple[float, dict[int, str | None]]] = {}
#: Racks are re-read at least this often (a broker re-registered with a new ``broker.rack``) and at
#: once when a listed broker has none cached yet.
RACK_REFRESH_S = 300.0


@dataclass
class CollectResult:
    snapshot: ClusterSnapshot
    known_brokers: dict[int, KnownBroker]
    seconds: float


#: Scrape bound for a broker the cluster does not list (fenced or gone). Its metrics are only asked
#: to tell a JVM that still answers ("maybe dead": restart first) from one that does not, and a
#: live JVM answers at once; a frozen one would otherwise cost every pass the full scrape timeout
#: for as long as it stays frozen.
UNLISTED_SCRAPE_TIMEOUT_S = 1.5


def _scrape_broker(url: str | None, timeout_s: float = SCRAPE_TIMEOUT_S) -> tuple[dict[str, float] | None, str | None]:
    if url is None:
        return None, None
    try:
        return parse_broker_metrics(scrape(url, timeout_s)), None
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
    probe_timeout_s: float | None = None,
) -> CollectResult:
    """One pass over ``cluster``. ``probe_timeout_s`` (None = off) probes every listed broker's
    listener (``kafka_medic.monitor.listener_probe``) so a crashed broker reads as down before its session
    expires, and so the pass itself does not wait on it (configs and log dirs are asked of brokers
    that accept connections)."""
    t0 = time.monotonic()
    issues: list[CollectionIssue] = []
    known: dict[int, KnownBroker] = dict(known_brokers or {})
    admin = make_admin({**cluster.confluent_config(), "socket.timeout.ms": int(timeout_s * 1000)})

    listed: list[BrokerInfo] = []
    partitions = empty_frame(PARTITION_COLUMNS)
    throttles: ThrottleReading | None = None
    try:
        listed, partitions = read_metadata(admin, timeout_s)
    except Exception as exc:
        issues.append(CollectionIssue("admin", f"cluster unreachable: Metadata request failed: {exc}"))
    listener = _probe(listed, probe_timeout_s)
    registered_ids = {b.broker_id for b in listed}
    alive_ids = {b for b in registered_ids if is_alive(True, listener.get(b))}
    rack_key = f"{cluster.name}@{cluster.confluent_config().get('bootstrap.servers', '')}"
    racks = _racks(rack_key, admin, listed, min(timeout_s, 3.0))
    for b in listed:
        rack = racks.get(b.broker_id, known[b.broker_id].rack if b.broker_id in known else None)
        known[b.broker_id] = KnownBroker(b.broker_id, b.host, b.port, rack)

    # Configs change rarely: ask one broker that accepts connections (see describe_safety_configs)
    # with a short timeout, and fall back to the values learnt in an earlier pass (a stale min ISR
    # is better than none).
    cache = _CONFIG_CACHE.setdefault(cluster.name, {})
    default_rf, default_min_isr = cache.get("defaults", (3, 2))
    configs_fresh = False  # min ISR read in THIS pass; the guards refuse on anything else
    topic_min_isr_cache: dict[str, int] = cache.setdefault("min_isr", {})
    config_broker = _config_broker(listed, listener)
    if config_broker is not None:
        topics = partitions["topic"].unique() if not partitions.empty else []
        try:
            cfg = describe_safety_configs(admin, config_broker, topics, min(timeout_s, 3.0))
            default_rf, default_min_isr = cfg.default_replication_factor, cfg.default_min_isr
            cache["defaults"] = (default_rf, default_min_isr)
            topic_min_isr_cache.clear()
            topic_min_isr_cache.update(cfg.topic_min_isr)
            configs_fresh = True
            throttles = _throttles(admin, cfg, listed, listener, min(timeout_s, 3.0), issues)
        except Exception as exc:
            issues.append(CollectionIssue("admin", f"DescribeConfigs failed, using last known values: {exc}"))
    if not partitions.empty:
        # A topic whose min ISR was not read stays NaN (unknown): the rules show the default, but
        # the guards refuse to judge a destructive step on a value nobody read.
        partitions["min_isr"] = partitions["topic"].map(topic_min_isr_cache).astype(float)

    referenced: set[int] = set()
    if not partitions.empty:
        for reps in partitions["replicas"]:
            referenced.update(reps)
    all_ids = sorted(registered_ids | referenced | set(cluster.expected_brokers) | set(known))

    # Metrics of every broker we know of (a fenced broker whose exporter still answers is a JVM that
    # is alive but out of the cluster: "maybe dead", restart before replace), and of the controllers,
    # concurrently with the kafka-python calls.
    urls = {b: cluster.metrics_url_for(b, known[b].host if b in known else None) for b in all_ids}
    with ThreadPoolExecutor(max_workers=min(16, len(urls) + len(cluster.controller_metrics_urls) + 2)) as pool:
        metric_futs = {
            b: pool.submit(_scrape_broker, u, SCRAPE_TIMEOUT_S if b in registered_ids else UNLISTED_SCRAPE_TIMEOUT_S)
            for b, u in urls.items()
        }
        ctrl_futs = [(u, pool.submit(_scrape_controller, u)) for u in cluster.controller_metrics_urls]
        kp_conf = _kafka_python_conf(cluster, listed, alive_ids)
        quorum_fut = pool.submit(_describe_quorum, kp_conf) if alive_ids else None
        log_dirs, sizes, reassignments = _kafka_python_reads_bounded(kp_conf, alive_ids, timeout_s, issues)
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
                "registered": b in registered_ids,
                "listener": listener.get(b),
                "metrics_ok": None if urls[b] is None else metrics is not None,
                "metrics_error": err,
            }
            row.update({c: (metrics or {}).get(c, math.nan) for c in BROKER_METRIC_COLUMNS})
            rows.append(row)
            if err is not None and b in alive_ids:
                issues.append(CollectionIssue("metrics", err, broker_id=b))
        ctrl_rows = []
        ctrl_ids = controller_node_ids(cluster)
        for (url, fut), node_id in zip(ctrl_futs, ctrl_ids, strict=True):
            cm, err = fut.result()
            ctrl_rows.append({"node_id": node_id, "metrics_ok": cm is not None, **(cm or {}), "url": url})
            if err is not None:
                issues.append(CollectionIssue("controller_metrics", f"controller {node_id}: {err}"))
        quorum = _quorum_result(quorum_fut, issues)

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
        brokers = brokers.astype({"broker_id": int, "alive": bool, "registered": bool})
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
        throttles=throttles,
        default_replication_factor=default_rf,
        default_min_isr=default_min_isr,
        quorum=quorum,
        configs_fresh=configs_fresh,
    )
    return CollectResult(snap, known, time.monotonic() - t0)


def controller_node_ids(cluster: ClusterAccess) -> list[int]:
    """The node id of each controller metrics URL: ``controller_ids`` when configured (the sandbox's
    controller is 100), else the URL's position -- a page that names a controller must name the
    node an operator can find (configure ``controller_ids``)."""
    urls = list(cluster.controller_metrics_urls)
    ids = [int(i) for i in getattr(cluster, "controller_ids", None) or []]
    return ids if len(ids) == len(urls) else list(range(len(urls)))


#: Request bound of the DescribeQuorum (answered in ~0.1 s when a controller leads; a dead
#: controller makes the broker's forwarded request time out instead).
QUORUM_TIMEOUT_S = 3.0


def _describe_quorum(kp_conf: dict[str, Any]) -> QuorumView:
    try:
        with kip455.kafka_python_admin(kp_conf, int(QUORUM_TIMEOUT_S * 1000)) as kadmin:
            return kip455.describe_quorum(kadmin)
    except Exception as exc:  # could not even connect: no evidence either way
        return QuorumView("unknown", error=f"{type(exc).__name__}: {exc}"[:300])


def _quorum_result(fut: Any, issues: list[CollectionIssue]) -> QuorumView | None:
    """The quorum view, bounded (a broker that accepts but never answers must not stall the pass)."""
    if fut is None:
        return QuorumView("unknown", error="no broker accepting connections to ask")
    try:
        view: QuorumView = fut.result(timeout=QUORUM_TIMEOUT_S + 2.0)
    except FutureTimeout:
        view = QuorumView("unknown", error=f"DescribeQuorum did not complete within {QUORUM_TIMEOUT_S + 2.0:.0f}s")
    if view.state != "leader":
        issues.append(CollectionIssue("controller_quorum", f"metadata quorum {view.state}: {view.error or ''}"))
    return view


def _racks(key: str, admin: Any, listed: list[BrokerInfo], timeout_s: float) -> dict[int, str | None]:
    """Broker id -> rack, from a DescribeCluster only when the cache lacks a listed broker or is old.

    Why cached: racks come only from DescribeCluster (Metadata as read here does not carry them),
    which the client may send to ANY listed broker -- including one that crashed a moment ago and
    is still listed -- and then waits out its timeout. Asked every pass, that stalled exactly the
    pass that should report the crash (measured: 3 s added to detection). Racks change only when a
    broker re-registers with a new ``broker.rack``; re-read every :data:`RACK_REFRESH_S` for that.
    An empty dict (never read, read failed) makes the caller fall back to the known brokers' racks.
    """
    if not listed:
        return {}
    cached = _RACK_CACHE.get(key)
    fresh = cached is not None and time.monotonic() - cached[0] < RACK_REFRESH_S
    if fresh and cached is not None and {b.broker_id for b in listed} <= cached[1].keys():
        return cached[1]
    try:  # short timeout (see read_metadata on why liveness does not come from here)
        racks = {b.broker_id: b.rack for b in describe_cluster(admin, timeout_s).brokers}
    except Exception:
        return cached[1] if cached is not None else {}
    _RACK_CACHE[key] = (time.monotonic(), racks)
    return racks


def _probe(listed: list[BrokerInfo], timeout_s: float | None) -> dict[int, str]:
    """Listener state per listed broker (``ListenerState`` values); {} when probing is off."""
    if timeout_s is None or not listed:
        return {}
    states = probe_listeners({b.broker_id: (b.host, b.port) for b in listed}, timeout_s)
    return {b: str(state) for b, state in states.items()}


def _throttles(
    admin: Any, cfg: SafetyConfigs, listed: list[BrokerInfo], listener: Mapping[int, str], timeout_s: float,
    issues: list[CollectionIssue],
) -> ThrottleReading | None:  # fmt: skip
    """Replication throttles in the cluster: the topic lists came with the safety configs; the rates
    are asked of every broker that accepted a connection (in parallel, 1 s at most; one that does
    not answer is left out of ``brokers_read``). None if unreadable."""
    asked = [b.broker_id for b in listed if listener.get(b.broker_id, ListenerState.OPEN) == ListenerState.OPEN]
    try:
        rates, answered = describe_throttle_rates(admin, asked, min(timeout_s, 1.0))
    except Exception as exc:
        issues.append(CollectionIssue("throttles", f"reading replication throttle rates failed: {exc}"))
        return None
    return ThrottleReading(rates, dict(cfg.topic_throttles), answered)


def _config_broker(listed: list[BrokerInfo], listener: Mapping[int, str]) -> int | None:
    """The broker to ask for configs: one that accepted a connection, else any not refusing."""
    for wanted in (lambda s: s == ListenerState.OPEN, lambda s: s != ListenerState.REFUSED):
        for b in listed:
            if wanted(listener.get(b.broker_id, ListenerState.OPEN)):
                return b.broker_id
    return None


def _kafka_python_conf(cluster: ClusterAccess, listed: list[BrokerInfo], alive_ids: set[int]) -> dict[str, Any]:
    """kafka-python's config, bootstrapped from the brokers this pass found alive (listed, listener
    not refusing) instead of the configured list.

    Why: kafka-python bootstraps from one server of its list, and a configured server that is
    frozen (SIGSTOP, a hung disk: its kernel still accepts the connection, nothing answers) or
    already fenced costs the pass its whole request timeout -- measured 10-30 s per pass with one
    frozen broker among the configured three.
    """
    conf = dict(cluster.kafka_python_config())
    alive = [b for b in listed if b.broker_id in alive_ids]
    if alive:
        conf["bootstrap_servers"] = [host_port(b.host, b.port) for b in alive]
    return conf


#: Bound on the whole kafka-python part of a pass (bootstrap, DescribeLogDirs, reassignments).
#: Normally 0.1-0.3 s; each request has its own 4 s timeout, but one frozen broker that is still
#: listed can make them add up (measured 10 s: bootstrap, then a request to it, then another).
KAFKA_PYTHON_DEADLINE_S = 5.0


def _kafka_python_reads_bounded(
    kp_conf: dict[str, Any], alive_ids: set[int], timeout_s: float, issues: list[CollectionIssue]
) -> tuple[pd.DataFrame, dict[tuple[str, int, int], float], pd.DataFrame]:
    """:func:`_kafka_python_reads` within :data:`KAFKA_PYTHON_DEADLINE_S`; past it, the pass goes on
    without log dirs and reassignments (an issue says so, as for a failed read) and the reads are
    left to end by their own timeouts in the background (their client is closed when they do)."""
    own: list[CollectionIssue] = []
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-python-reads")
    fut = pool.submit(_kafka_python_reads, kp_conf, alive_ids, timeout_s, own)
    pool.shutdown(wait=False)
    deadline = min(timeout_s, KAFKA_PYTHON_DEADLINE_S)
    try:
        out = fut.result(timeout=deadline)
    except FutureTimeout:
        issues.append(
            CollectionIssue(
                "log_dirs",
                f"DescribeLogDirs / ListPartitionReassignments did not complete within {deadline:.0f}s (a broker "
                "that accepts connections but does not answer?); log dirs and reassignments left out of this pass",
            )
        )
        return empty_frame(LOG_DIR_COLUMNS), {}, empty_frame(REASSIGNMENT_COLUMNS)
    issues.extend(own)
    return out


def _kafka_python_reads(
    kp_conf: dict[str, Any], alive_ids: set[int], timeout_s: float, issues: list[CollectionIssue]
) -> tuple[pd.DataFrame, dict[tuple[str, int, int], float], pd.DataFrame]:
    log_dirs, sizes, reassignments = empty_frame(LOG_DIR_COLUMNS), {}, empty_frame(REASSIGNMENT_COLUMNS)
    if not alive_ids:
        return log_dirs, sizes, reassignments
    try:
        # Short request timeout: a hung broker is still listed for a few seconds and would stall a
        # long one; its absence from this pass is reported, not waited for.
        with kip455.kafka_python_admin(kp_conf, int(min(timeout_s, 4.0) * 1000)) as kadmin:
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
