"""The executor's thin I/O shell: every Kafka call it makes, blocking, in one place.

confluent-kafka does metadata and configs; kafka-python does what librdkafka lacks (KIP-455
reassignments, DescribeLogDirs) through :mod:`kafka_medic.monitor.kip455`. Methods block and are called
from worker threads (``asyncio.to_thread``); calls on the kafka-python client are serialised
because it is not meant to be used from several threads at once.

Everything returned is plain data (:class:`ClusterState`, frames, dicts), so the executor's
decisions stay testable with a fake that has the same methods.

A failed call drops the client that made it, and the next call builds a new one. Why (measured on
the sandbox, a broker killed mid-drain): both clients remember the broker they send "controller"
requests to -- in KRaft a random alive broker named in a Metadata answer -- and librdkafka keeps it
until its next metadata refresh (5 min), kafka-python for good. When that broker dies, every
DescribeConfigs / IncrementalAlterConfigs of a topic and every ListPartitionReassignments waits for
it and times out, so the run could neither see nor clean up anything. A new client asks the
brokers that are alive and is sent to one of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from kafka.admin import KafkaAdminClient

from kafka_medic.executor.throttles import ConfigOp, CurrentThrottles, apply_ops, read_throttles
from kafka_medic.executor.transient import TransientKafkaError
from kafka_medic.monitor import kip455
from kafka_medic.monitor.cluster_reads import describe_cluster, make_admin, read_metadata, topic_min_isr
from kafka_medic.monitor.collector import ClusterAccess, KnownBroker, collect_snapshot
from kafka_medic.snapshot import BROKER_COLUMNS, ClusterSnapshot, empty_frame

PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class ClusterState:
    """What one poll saw: live brokers, partitions (replicas/ISR/leader) and running reassignments."""

    alive: frozenset[int]
    partitions: pd.DataFrame
    reassigning: pd.DataFrame
    at: float = field(default_factory=time.monotonic)

    def _column(self, column: str) -> dict[PartitionKey, Any]:
        p = self.partitions
        if p.empty:
            return {}
        return {(str(t), int(n)): v for t, n, v in zip(p["topic"], p["partition"], p[column], strict=True)}

    @property
    def replicas(self) -> dict[PartitionKey, tuple[int, ...]]:
        return {k: tuple(int(b) for b in v) for k, v in self._column("replicas").items()}

    @property
    def isr(self) -> dict[PartitionKey, tuple[int, ...]]:
        return {k: tuple(int(b) for b in v) for k, v in self._column("isr").items()}

    @property
    def leaders(self) -> dict[PartitionKey, int]:
        return {k: int(v) for k, v in self._column("leader").items()}

    @property
    def reassigning_keys(self) -> set[PartitionKey]:
        r = self.reassigning
        if r.empty:
            return set()
        return {(str(t), int(p)) for t, p in zip(r["topic"], r["partition"], strict=True)}

    def original_replicas(self) -> dict[PartitionKey, tuple[int, ...]]:
        """For each reassigning partition, the replicas it had before (Kafka's list minus adding)."""
        r = self.reassigning
        if r.empty:
            return {}
        out = {}
        for t, p, reps, adding in zip(r["topic"], r["partition"], r["replicas"], r["adding"], strict=True):
            add = {int(b) for b in adding}
            out[(str(t), int(p))] = tuple(int(b) for b in reps if int(b) not in add)
        return out


class ClusterOps:
    """Blocking Kafka calls for one cluster. Close it (or use ``with``) to free both clients."""

    def __init__(self, cluster: ClusterAccess, *, request_timeout_s: float = 15.0) -> None:
        self.cluster = cluster
        self.timeout_s = request_timeout_s
        self._admin = self._new_admin()
        self._kadmin: Any = None
        self._klock = threading.Lock()
        self._racks: dict[int, str | None] = {}
        self.known_brokers: dict[int, KnownBroker] = {}

    def __enter__(self) -> ClusterOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._klock:
            self._drop_kp()

    def _new_admin(self) -> Any:
        return make_admin({**self.cluster.confluent_config(), "socket.timeout.ms": int(self.timeout_s * 1000)})

    def renew_clients(self) -> None:
        """New clients for both libraries, e.g. once a broker died (it may be their "controller")."""
        self._renew_admin()
        with self._klock:
            self._drop_kp()

    def _renew_admin(self) -> None:
        """A new confluent-kafka client after a failed call (see the module docstring)."""
        self._admin = self._new_admin()

    def _drop_kp(self) -> None:
        """Forget the kafka-python client (the caller holds ``_klock``); the next call builds a new one."""
        if self._kadmin is not None:
            try:
                self._kadmin.close()
            except Exception:  # closing a client that lost its brokers may fail; it is dropped anyway
                pass
            finally:
                self._kadmin = None

    def _kp_call(self, fn: Any) -> Any:
        with self._klock:
            try:
                return fn(self._kp())
            except Exception:
                self._drop_kp()
                raise

    # -- kafka-python (serialised) -------------------------------------------------------------

    def _kp(self) -> Any:
        if self._kadmin is None:
            try:
                self._kadmin = KafkaAdminClient(
                    **{
                        "request_timeout_ms": int(self.timeout_s * 1000),
                        "client_id": "kafka-medic-executor",
                        **self.cluster.kafka_python_config(),
                    }
                )
            except Exception as exc:
                raise TransientKafkaError(f"cannot connect the kafka-python admin client: {exc}") from exc
        return self._kadmin

    def list_reassignments(self) -> pd.DataFrame:
        timeout_ms = int(self.timeout_s * 1000)
        return self._kp_call(lambda kp: kip455.list_reassignments(kp, timeout_ms))  # type: ignore[no-any-return]

    def alter_reassignments(self, targets: Mapping[PartitionKey, Iterable[int] | None]) -> dict[PartitionKey, str]:
        """Submit targets (None cancels); {partition: error name} for the refused ones."""
        timeout_ms = int(self.timeout_s * 1000) * 2
        return self._kp_call(lambda kp: kip455.alter_reassignments(kp, targets, timeout_ms))  # type: ignore[no-any-return]

    def replica_bytes(self, brokers: Iterable[int]) -> dict[tuple[str, int, int], float]:
        """Bytes on disk per (topic, partition, broker) for the given alive brokers."""
        _dirs, sizes = self._kp_call(lambda kp: kip455.describe_log_dirs(kp, brokers))
        return sizes  # type: ignore[no-any-return]

    # -- confluent-kafka ---------------------------------------------------------------------------

    def state(self) -> ClusterState:
        """One consistent-enough poll: Metadata (one request) + ListPartitionReassignments."""
        try:
            brokers, partitions = read_metadata(self._admin, self.timeout_s)
        except Exception as exc:
            self._renew_admin()
            raise TransientKafkaError(f"Metadata request to cluster {self.cluster.name!r} failed: {exc}") from exc
        reassigning = self.list_reassignments()
        return ClusterState(frozenset(b.broker_id for b in brokers), partitions, reassigning)

    def racks(self, refresh: bool = False) -> dict[int, str | None]:
        """Broker racks (remembered, so a broker that dies keeps its rack)."""
        if refresh or not self._racks:
            for b in describe_cluster(self._admin, min(self.timeout_s, 5.0)).brokers:
                self._racks[b.broker_id] = b.rack
        return dict(self._racks)

    def snapshot(self) -> ClusterSnapshot:
        """A full snapshot (log dirs, sizes, reassignments) for planning and the pre-submit check.

        Raises TransientKafkaError if the cluster could not be read at all: an empty snapshot would
        otherwise read as "no partitions".
        """
        result = collect_snapshot(self.cluster, known_brokers=self.known_brokers, timeout_s=self.timeout_s)
        self.known_brokers = result.known_brokers
        snap = result.snapshot
        unreachable = [i.message for i in snap.issues if i.source == "admin" and "unreachable" in i.message]
        if unreachable:
            raise TransientKafkaError(f"cluster {self.cluster.name!r}: {unreachable[0]}")
        failed_reassign = [i.message for i in snap.issues if i.source == "reassignments"]
        if failed_reassign:
            # Without the list of running reassignments the plan check cannot see conflicts.
            raise TransientKafkaError(f"cluster {self.cluster.name!r}: {failed_reassign[0]}")
        for b in snap.brokers.itertuples(index=False):
            if isinstance(b.rack, str) and b.rack:
                self._racks.setdefault(int(b.broker_id), b.rack)
        return snap

    def light_snapshot(self, state: ClusterState) -> ClusterSnapshot:
        """A snapshot built from one poll, for re-checking each batch just before it is submitted.

        No log dirs and no sizes: the full check ran on a full snapshot at the start; this one
        catches what changes during a long run (a target broker died, someone else moved a
        partition, a reassignment appeared).
        """
        racks = self.racks()
        referenced: set[int] = set()
        for reps in state.partitions["replicas"] if not state.partitions.empty else []:
            referenced.update(int(b) for b in reps)
        ids = sorted(set(state.alive) | referenced | set(racks))
        if ids:
            brokers = pd.DataFrame(
                {
                    "broker_id": ids,
                    "rack": [racks.get(b) for b in ids],
                    "alive": [b in state.alive for b in ids],
                }
            ).reindex(columns=list(BROKER_COLUMNS))
            brokers["broker_id"] = brokers["broker_id"].astype(int)
            brokers["alive"] = brokers["alive"].astype(bool)
        else:
            brokers = empty_frame(BROKER_COLUMNS)
        return ClusterSnapshot(
            cluster=self.cluster.name,
            brokers=brokers,
            partitions=state.partitions,
            reassignments=state.reassigning,
        )

    def min_isr(self, topics: Iterable[str]) -> dict[str, int]:
        return topic_min_isr(self._admin, topics, self.timeout_s)

    def read_throttles(self, brokers: Iterable[int], topics: Iterable[str]) -> CurrentThrottles:
        try:
            return read_throttles(self._admin, brokers, topics, self.timeout_s)
        except Exception:
            self._renew_admin()
            raise

    def apply(self, ops: list[ConfigOp]) -> dict[ConfigOp, Exception]:
        errors = apply_ops(self._admin, ops, self.timeout_s)
        if errors:
            self._renew_admin()
        return errors
