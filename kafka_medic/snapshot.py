"""The cluster snapshot: everything one collection pass learned, as plain pandas frames.

This is the contract between the collectors (I/O, in ``tasks/``) and the pure core (health rules,
placement planner, safety guards). Nothing here talks to Kafka or Prefect, so every rule and
planner can be tested on crafted frames and benchmarked on synthetic ones.

Frames and their columns (one row per ...):

``brokers`` (broker):
    broker_id:int, host:str, port:int, rack:str|None, alive:bool (registered and unfenced, i.e.
    listed by the cluster, AND its listener does not actively refuse connections: see
    ``is_alive``), registered:bool|None (listed by the cluster as registered and unfenced; None =
    unknown), listener:str|None (what a TCP connect to its listener showed, a
    ``kafka_medic.monitor.listener_probe.ListenerState`` value; None = not probed),
    metrics_ok:bool|None (None = no endpoint configured),
    and metric columns (float, NaN when unknown) named in ``BROKER_METRIC_COLUMNS``;
    EC2 columns ``instance_id:str|None``, ``ec2_status:str|None`` ("ok", "impaired",
    "insufficient-data", ...), ``ec2_events:str`` ("; "-joined scheduled event codes, "" if none).
``partitions`` (partition):
    topic:str, partition:int, leader:int (-1 = none), replicas:tuple[int,...] (preferred first),
    isr:tuple[int,...], min_isr:int.
``replicas`` (replica; the exploded form of ``partitions`` for vectorised rules):
    topic, partition, broker_id:int, position:int (0 = preferred leader), in_isr:bool,
    is_leader:bool, size_bytes:float (NaN when unknown).
``log_dirs`` (broker log dir):
    broker_id:int, path:str, error:str|None (None = online), total_bytes:float, usable_bytes:float
    (NaN when the broker does not report volume sizes).
``reassignments`` (partition being reassigned):
    topic, partition, replicas:tuple, adding:tuple, removing:tuple.
``controller`` (controller process whose metrics were scraped):
    node_id:int, metrics_ok:bool, active_controller_count:float, offline_partitions:float,
    fenced_brokers:float, active_brokers:float.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

BROKER_METRIC_COLUMNS: tuple[str, ...] = (
    "under_replicated_partitions",
    "under_min_isr_partitions",
    "offline_replicas",
    "bytes_in_per_sec",
    "bytes_out_per_sec",
    "replication_bytes_in_per_sec",  # a follower's fetched bytes: its load when it leads nothing
    "messages_in_per_sec",
    "request_handler_idle",  # ratio 0..1
    "network_processor_idle",  # ratio 0..1
    "isr_shrinks_per_sec",
    "isr_expands_per_sec",
    "produce_p99_ms",
    "produce_queue_p99_ms",  # time a produce request waits for a handler thread: this broker's own slowness
    "fetch_consumer_p99_ms",
    "fetch_follower_p99_ms",
)

BROKER_COLUMNS: tuple[str, ...] = (
    "broker_id",
    "host",
    "port",
    "rack",
    "alive",
    "registered",
    "listener",
    "metrics_ok",
    *BROKER_METRIC_COLUMNS,
    "instance_id",
    "ec2_status",
    "ec2_events",
)
PARTITION_COLUMNS: tuple[str, ...] = ("topic", "partition", "leader", "replicas", "isr", "min_isr")
REPLICA_COLUMNS: tuple[str, ...] = (
    "topic",
    "partition",
    "broker_id",
    "position",
    "in_isr",
    "is_leader",
    "size_bytes",
)
LOG_DIR_COLUMNS: tuple[str, ...] = ("broker_id", "path", "error", "total_bytes", "usable_bytes")
REASSIGNMENT_COLUMNS: tuple[str, ...] = ("topic", "partition", "replicas", "adding", "removing")
CONTROLLER_COLUMNS: tuple[str, ...] = (
    "node_id",
    "metrics_ok",
    "active_controller_count",
    "offline_partitions",
    "fenced_brokers",
    "active_brokers",
)


#: ``listener`` value of a broker whose listener actively refused a TCP connection.
LISTENER_REFUSED = "refused"


def is_alive(registered: bool, listener: str | None) -> bool:
    """A broker is alive when the cluster lists it AND its listener does not refuse connections.

    Why both: the controller keeps listing a crashed broker until its session expires, while a
    refused connection (host up, nothing listening) shows the process is gone at once. A listener
    that times out or is unreachable does not make a broker dead here (network trouble looks the
    same); ``None`` (not probed) leaves the controller's word alone.
    """
    return bool(registered) and listener != LISTENER_REFUSED


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


@dataclass(frozen=True)
class CollectionIssue:
    """Something the collector could not learn. Rules turn these into findings; never a crash."""

    source: str  # "admin", "metrics", "log_dirs", "reassignments", "ec2", "controller_metrics"
    message: str
    broker_id: int | None = None


@dataclass(frozen=True)
class ThrottleReading:
    """The replication throttles the cluster holds (dynamic configs), as the collector read them.

    ``broker_rates``: (broker, ``leader|follower.replication.throttled.rate``) -> bytes/s, set on that
    broker; ``topic_replicas``: (topic, ``leader|follower.replication.throttled.replicas``) -> the raw
    value (``"0:1,1:2"`` or ``"*"``). Only the brokers that accepted connections were asked.
    """

    broker_rates: dict[tuple[int, str], int] = field(default_factory=dict)
    topic_replicas: dict[tuple[str, str], str] = field(default_factory=dict)
    brokers_read: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.broker_rates or self.topic_replicas)


@dataclass(frozen=True)
class WorkOwnership:
    """Who may own throttles and reassignments right now (read from Prefect around the collection).

    ``lock_held``: a kafka-medic action holds the cluster's mutate lock (anything may be in use).
    The journal (``journal_*``) is what an ended kafka-medic run left for the next one to adopt.
    """

    lock_held: bool
    journal_run: str | None = None
    journal_partitions: frozenset[tuple[str, int]] = frozenset()
    journal_rate_brokers: frozenset[int] = frozenset()


@dataclass
class ClusterSnapshot:
    """One consistent-enough view of one cluster at ``taken_at``."""

    cluster: str
    brokers: pd.DataFrame
    partitions: pd.DataFrame
    replicas: pd.DataFrame = field(default_factory=lambda: empty_frame(REPLICA_COLUMNS))
    log_dirs: pd.DataFrame = field(default_factory=lambda: empty_frame(LOG_DIR_COLUMNS))
    reassignments: pd.DataFrame = field(default_factory=lambda: empty_frame(REASSIGNMENT_COLUMNS))
    controller: pd.DataFrame = field(default_factory=lambda: empty_frame(CONTROLLER_COLUMNS))
    issues: list[CollectionIssue] = field(default_factory=list)
    #: Replication throttles found (None: not read, e.g. a synthetic snapshot or a failed read).
    throttles: ThrottleReading | None = None
    #: Who owns moves and throttles now (None: unknown; set by ``tasks.collect.look_now``).
    ownership: WorkOwnership | None = None
    default_replication_factor: int = 3
    default_min_isr: int = 2
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.replicas.empty and not self.partitions.empty:
            self.replicas = explode_replicas(self.partitions)

    @property
    def alive_broker_ids(self) -> set[int]:
        return {int(b) for b in self.brokers.loc[self.brokers["alive"].astype(bool), "broker_id"]}

    @property
    def rack_of(self) -> dict[int, str | None]:
        return {int(r.broker_id): r.rack for r in self.brokers.itertuples(index=False)}


def explode_replicas(partitions: pd.DataFrame, sizes: dict[tuple[str, int, int], float] | None = None) -> pd.DataFrame:
    """One row per replica, from the partitions frame (sizes keyed by (topic, partition, broker))."""
    if partitions.empty:
        return empty_frame(REPLICA_COLUMNS)
    p = partitions[["topic", "partition", "leader", "replicas", "isr"]]
    ex = p.explode("replicas", ignore_index=False)
    ex = ex[ex["replicas"].notna()]
    position = ex.groupby(level=0).cumcount()
    out = pd.DataFrame(
        {
            "topic": ex["topic"].to_numpy(),
            "partition": ex["partition"].astype(int).to_numpy(),
            "broker_id": ex["replicas"].astype(int).to_numpy(),
            "position": position.to_numpy(),
        }
    )
    isr_sets = p["isr"].map(frozenset)
    out["in_isr"] = [b in s for b, s in zip(out["broker_id"], isr_sets.loc[ex.index], strict=True)]
    out["is_leader"] = out["broker_id"].to_numpy() == ex["leader"].astype(int).to_numpy()
    if sizes:
        out["size_bytes"] = [
            sizes.get((t, pt, b), float("nan"))
            for t, pt, b in zip(out["topic"], out["partition"], out["broker_id"], strict=True)
        ]
    else:
        out["size_bytes"] = float("nan")
    return out
