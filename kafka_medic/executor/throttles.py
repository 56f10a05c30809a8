"""Replication throttles for exactly the replicas being moved, and nothing an operator set.

Kafka throttles reassignment traffic with four dynamic configs: broker-level
``leader.replication.throttled.rate`` / ``follower.replication.throttled.rate`` (bytes/s on that
broker) and topic-level ``leader.replication.throttled.replicas`` /
``follower.replication.throttled.replicas`` (``partition:broker`` entries saying which replicas the
rates apply to). Leaders only throttle fetches from followers that are *not* in the ISR, so the
existing, in-sync followers and producers are never slowed down.

What we throttle (the same split as Kafka's own tool, minus the brokers that have no part in it):

* leader side: every current replica of a moving partition (any of them may lead while the move
  runs), and the leader rate on those brokers that are alive;
* follower side: only the replicas being added, and the follower rate on those brokers.

Two rules learnt from other tools' bug trackers shape the rest:

* Never clobber what someone else set (Cruise Control hangs or surprises with pre-existing
  throttles, #1865/#2078). List configs are changed with APPEND/SUBTRACT of our own entries only;
  an entry that was already there before we looked is *foreign* and is never recorded as ours, so
  never removed. A broker that already carries a per-broker rate keeps it (we neither overwrite
  nor delete it) and the run reports it, because that rate, not ours, now paces the move. A
  cluster-wide default rate is not clobbered by our per-broker value: deleting ours restores it.
* Never remove a throttle while a move it covers still runs (Cruise Control #1511): removal is
  computed as ``owned - needed(still running moves)``.

Everything here is pure (sets in, config operations out) except :func:`apply_ops` and
:func:`read_throttles`, which take an admin-like object so tests can pass a fake.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"
RATE_CONFIGS: tuple[str, str] = (LEADER_RATE, FOLLOWER_RATE)
REPLICA_CONFIGS: tuple[str, str] = (LEADER_REPLICAS, FOLLOWER_REPLICAS)
WILDCARD = "*"

#: (topic, partition, broker): one ``partition:broker`` entry of a topic's throttled-replicas list.
Replica = tuple[str, int, int]


class MoveLike(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def old_replicas(self) -> tuple[int, ...]: ...
    @property
    def new_replicas(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class ThrottleSet:
    """A set of throttle settings. Sets, so "owned", "needed" and "present" combine with set algebra."""

    leader_rate: frozenset[int] = frozenset()  # brokers with the leader rate
    follower_rate: frozenset[int] = frozenset()  # brokers with the follower rate
    leader_replicas: frozenset[Replica] = frozenset()
    follower_replicas: frozenset[Replica] = frozenset()

    def __or__(self, other: ThrottleSet) -> ThrottleSet:
        return ThrottleSet(
            self.leader_rate | other.leader_rate,
            self.follower_rate | other.follower_rate,
            self.leader_replicas | other.leader_replicas,
            self.follower_replicas | other.follower_replicas,
        )

    def __sub__(self, other: ThrottleSet) -> ThrottleSet:
        return ThrottleSet(
            self.leader_rate - other.leader_rate,
            self.follower_rate - other.follower_rate,
            self.leader_replicas - other.leader_replicas,
            self.follower_replicas - other.follower_replicas,
        )

    def __and__(self, other: ThrottleSet) -> ThrottleSet:
        return ThrottleSet(
            self.leader_rate & other.leader_rate,
            self.follower_rate & other.follower_rate,
            self.leader_replicas & other.leader_replicas,
            self.follower_replicas & other.follower_replicas,
        )

    def __bool__(self) -> bool:
        return bool(self.leader_rate or self.follower_rate or self.leader_replicas or self.follower_replicas)

    @property
    def brokers(self) -> frozenset[int]:
        return self.leader_rate | self.follower_rate

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(t for t, _, _ in self.leader_replicas | self.follower_replicas)

    def replicas_of(self, config: str) -> frozenset[Replica]:
        return self.leader_replicas if config == LEADER_REPLICAS else self.follower_replicas

    def rate_brokers(self, config: str) -> frozenset[int]:
        return self.leader_rate if config == LEADER_RATE else self.follower_rate

    def summary(self) -> str:
        return (
            f"leader rate on brokers {sorted(self.leader_rate)}, follower rate on brokers "
            f"{sorted(self.follower_rate)}, {len(self.leader_replicas)} leader + "
            f"{len(self.follower_replicas)} follower replica entries on {len(self.topics)} topic(s)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for reports (replica entries grouped per topic)."""
        return {
            "leader_rate_brokers": sorted(self.leader_rate),
            "follower_rate_brokers": sorted(self.follower_rate),
            "leader_replicas": group_entries(self.leader_replicas),
            "follower_replicas": group_entries(self.follower_replicas),
        }


def entry(partition: int, broker: int) -> str:
    return f"{partition}:{broker}"


def group_entries(replicas: Iterable[Replica]) -> dict[str, str]:
    """{topic: "p:b,p:b"} sorted, the value format of the topic configs."""
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for t, p, b in replicas:
        by_topic.setdefault(t, []).append((p, b))
    return {t: ",".join(entry(p, b) for p, b in sorted(v)) for t, v in sorted(by_topic.items())}


def parse_entries(topic: str, value: str) -> frozenset[Replica]:
    """The entries of a throttled-replicas value ("" -> none). ``*`` must be handled by the caller."""
    out: set[Replica] = set()
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        p, _, b = item.partition(":")
        out.add((topic, int(p), int(b)))
    return frozenset(out)


def needed_for(moves: Iterable[MoveLike], alive: Iterable[int]) -> ThrottleSet:
    """The throttles that the given (running or about to run) moves need.

    Rates go only on alive brokers: a dead broker serves nothing, and a config request to it would
    hang until it times out.
    """
    alive_set = frozenset(alive)
    lr: set[int] = set()
    fr: set[int] = set()
    lrep: set[Replica] = set()
    frep: set[Replica] = set()
    for m in moves:
        old = tuple(int(b) for b in m.old_replicas)
        old_set = set(old)
        added = [int(b) for b in m.new_replicas if int(b) not in old_set]
        if not added:
            continue  # a pure reorder copies nothing
        for b in old:
            lrep.add((m.topic, int(m.partition), b))
            if b in alive_set:
                lr.add(b)
        for b in added:
            frep.add((m.topic, int(m.partition), b))
            if b in alive_set:
                fr.add(b)
    return ThrottleSet(frozenset(lr), frozenset(fr), frozenset(lrep), frozenset(frep))


@dataclass(frozen=True)
class CurrentThrottles:
    """What the cluster holds now, as read with DescribeConfigs.

    ``broker_rates``: per-broker dynamic values only ((broker, config) -> bytes/s); a static value
    or a cluster-wide default is not "set on this broker" (our per-broker value overrides it and
    deleting ours restores it). ``topic_replicas``: (topic, config) -> entries, or ``"*"``.
    """

    broker_rates: Mapping[tuple[int, str], int] = field(default_factory=dict)
    topic_replicas: Mapping[tuple[str, str], frozenset[Replica] | Literal["*"]] = field(default_factory=dict)

    def present(self) -> ThrottleSet:
        """Every specific setting present (wildcards are not expanded; see :meth:`covered`)."""
        lr = frozenset(b for (b, c) in self.broker_rates if c == LEADER_RATE)
        fr = frozenset(b for (b, c) in self.broker_rates if c == FOLLOWER_RATE)
        lrep: set[Replica] = set()
        frep: set[Replica] = set()
        for (_t, c), v in self.topic_replicas.items():
            if v == WILDCARD:
                continue
            (lrep if c == LEADER_REPLICAS else frep).update(v)
        return ThrottleSet(lr, fr, frozenset(lrep), frozenset(frep))

    def covered(self, wanted: ThrottleSet) -> ThrottleSet:
        """The part of ``wanted`` that is already in place (explicitly or through a ``*``)."""
        present = self.present()
        wild_l = {t for (t, c), v in self.topic_replicas.items() if v == WILDCARD and c == LEADER_REPLICAS}
        wild_f = {t for (t, c), v in self.topic_replicas.items() if v == WILDCARD and c == FOLLOWER_REPLICAS}
        return ThrottleSet(
            wanted.leader_rate & present.leader_rate,
            wanted.follower_rate & present.follower_rate,
            frozenset(r for r in wanted.leader_replicas if r in present.leader_replicas or r[0] in wild_l),
            frozenset(r for r in wanted.follower_replicas if r in present.follower_replicas or r[0] in wild_f),
        )


@dataclass(frozen=True)
class ConfigOp:
    """One incremental config change. ``value`` is None for DELETE."""

    resource: Literal["broker", "topic"]
    name: str  # broker id as text, or topic name
    config: str
    op: Literal["SET", "DELETE", "APPEND", "SUBTRACT"]
    value: str | None = None

    def describe(self) -> str:
        what = f"{self.resource} {self.name} {self.config}"
        return f"{self.op} {what}" + (f"={self.value}" if self.value is not None else "")


@dataclass(frozen=True)
class Additions:
    """What to set for new moves: ``to_set`` becomes ours; ``foreign`` was already there (not ours)."""

    to_set: ThrottleSet
    foreign: ThrottleSet
    ops: tuple[ConfigOp, ...]
    #: brokers whose pre-existing per-broker rate now paces our moves: (broker, config) -> bytes/s
    foreign_rates: Mapping[tuple[int, str], int] = field(default_factory=dict)


def plan_additions(needed: ThrottleSet, owned: ThrottleSet, current: CurrentThrottles, rate: int) -> Additions:
    """Config operations that add what ``needed`` lacks, without touching anything already present."""
    if rate <= 0:
        raise ValueError(f"throttle rate must be > 0 bytes/s, got {rate}")
    candidate = needed - owned
    foreign = current.covered(candidate)
    to_set = candidate - foreign
    ops: list[ConfigOp] = []
    for config in RATE_CONFIGS:
        for b in sorted(to_set.rate_brokers(config)):
            ops.append(ConfigOp("broker", str(b), config, "SET", str(int(rate))))
    for config in REPLICA_CONFIGS:
        for topic, value in group_entries(to_set.replicas_of(config)).items():
            ops.append(ConfigOp("topic", topic, config, "APPEND", value))
    foreign_rates = {
        (b, c): v
        for (b, c), v in current.broker_rates.items()
        if (c == LEADER_RATE and b in foreign.leader_rate) or (c == FOLLOWER_RATE and b in foreign.follower_rate)
    }
    return Additions(to_set, foreign, tuple(ops), foreign_rates)


@dataclass(frozen=True)
class Removals:
    """What releasing throttles does: ``ops`` to run, ``released`` leaves our ledger once they succeed.

    ``changed_by_others``: settings we own that someone changed since (a different rate, or the
    list turned into ``*``). They are left as they are and simply stop being ours.
    """

    released: ThrottleSet
    ops: tuple[ConfigOp, ...]
    changed_by_others: tuple[str, ...] = ()


def plan_removals(owned: ThrottleSet, keep: ThrottleSet, current: CurrentThrottles, rate: int) -> Removals:
    """Config operations that remove ``owned - keep`` and nothing else.

    A list config that would be left empty is DELETEd rather than SUBTRACTed: an empty dynamic
    value would stay behind as a config override that says nothing. A rate is deleted only if it
    still holds the value we set.
    """
    release = owned - keep
    ops: list[ConfigOp] = []
    notes: list[str] = []
    for config in RATE_CONFIGS:
        for b in sorted(release.rate_brokers(config)):
            value = current.broker_rates.get((b, config))
            if value is None:
                continue  # already gone (deleted by hand, or never applied before a crash)
            if value != int(rate):
                notes.append(f"broker {b} {config} is now {value} (we set {rate}); left as it is")
                continue
            ops.append(ConfigOp("broker", str(b), config, "DELETE"))
    for config in REPLICA_CONFIGS:
        mine_by_topic: dict[str, set[Replica]] = {}
        for r in release.replicas_of(config):
            mine_by_topic.setdefault(r[0], set()).add(r)
        for topic in sorted(mine_by_topic):
            now = current.topic_replicas.get((topic, config))
            if now is None:
                continue
            if now == WILDCARD:
                notes.append(f"topic {topic} {config} is now '*'; left as it is")
                continue
            mine = mine_by_topic[topic] & now
            if not mine:
                continue
            if now <= mine:
                ops.append(ConfigOp("topic", topic, config, "DELETE"))
            else:
                ops.append(ConfigOp("topic", topic, config, "SUBTRACT", ",".join(sorted_entries(mine))))
    return Removals(release, tuple(ops), tuple(notes))


def sorted_entries(replicas: Iterable[Replica]) -> list[str]:
    return [entry(p, b) for _t, p, b in sorted(replicas)]


# ----------------------------------------------------------------------------------------------
# Thin I/O shell (confluent-kafka AdminClient or a fake with the same two methods)
# ----------------------------------------------------------------------------------------------


def read_throttles(
    admin: Any, brokers: Iterable[int], topics: Iterable[str], timeout_s: float = 15.0
) -> CurrentThrottles:
    """DescribeConfigs of the given (alive) brokers and topics, reduced to the throttle configs."""
    from confluent_kafka.admin import ConfigResource, ConfigSource

    rates: dict[tuple[int, str], int] = {}
    lists: dict[tuple[str, str], frozenset[Replica] | Literal["*"]] = {}
    # librdkafka allows one BROKER resource per request (it goes to that broker); topics batch.
    topic_res = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in sorted(set(topics))]
    calls = [[ConfigResource(ConfigResource.Type.BROKER, str(b))] for b in sorted(set(brokers))]
    calls += [topic_res[i : i + 200] for i in range(0, len(topic_res), 200)]
    pending = [admin.describe_configs(batch, request_timeout=timeout_s) for batch in calls]
    for futures in pending:
        for res, fut in futures.items():
            entries = fut.result(timeout=timeout_s + 2)
            if res.restype == ConfigResource.Type.BROKER:
                for config in RATE_CONFIGS:
                    e = entries.get(config)
                    if e is not None and e.value and int(e.source) == ConfigSource.DYNAMIC_BROKER_CONFIG.value:
                        rates[(int(res.name), config)] = int(e.value)
            else:
                for config in REPLICA_CONFIGS:
                    e = entries.get(config)
                    if e is None or int(e.source) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value:
                        continue
                    value = (e.value or "").strip()
                    lists[(res.name, config)] = WILDCARD if value == WILDCARD else parse_entries(res.name, value)
    return CurrentThrottles(rates, lists)


def apply_ops(admin: Any, ops: Sequence[ConfigOp], timeout_s: float = 15.0) -> dict[ConfigOp, Exception]:
    """Run config operations (one IncrementalAlterConfigs per resource). Returns the failed ones.

    Failures are returned with their exception (not raised) so the caller can retry the transient
    ones and still count what succeeded as done.

    Operations on one resource go in one request; a resource may not carry two operations on the
    same config, which :func:`plan_additions` / :func:`plan_removals` never produce.
    """
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    by_resource: dict[tuple[str, str], list[ConfigOp]] = {}
    for op in ops:
        by_resource.setdefault((op.resource, op.name), []).append(op)
    resources = []
    for (kind, name), items in by_resource.items():
        restype = ConfigResource.Type.BROKER if kind == "broker" else ConfigResource.Type.TOPIC
        entries = [
            ConfigEntry(o.config, o.value, incremental_operation=getattr(AlterConfigOpType, o.op)) for o in items
        ]
        resources.append((ConfigResource(restype, name, incremental_configs=entries), items))
    errors: dict[ConfigOp, Exception] = {}
    if not resources:
        return errors
    # One BROKER resource per request (librdkafka sends it to that broker); topics go together.
    broker_res = [(r, items) for r, items in resources if r.restype == ConfigResource.Type.BROKER]
    topic_res = [(r, items) for r, items in resources if r.restype != ConfigResource.Type.BROKER]
    calls = [[pair] for pair in broker_res] + ([topic_res] if topic_res else [])
    futures: dict[Any, Any] = {}
    for call in calls:
        futures.update(admin.incremental_alter_configs([r for r, _ in call], request_timeout=timeout_s))
    for res, items in resources:
        try:
            futures[res].result(timeout=timeout_s + 2)
        except Exception as exc:
            for o in items:
                errors[o] = exc
    return errors
