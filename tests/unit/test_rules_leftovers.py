"""Work nobody owns: leftover_throttles and unowned_reassignment (kafka_medic/rules/leftovers.py)."""

from __future__ import annotations

from dataclasses import replace

from kafka_medic.findings import Action, Severity
from kafka_medic.rules import RuleName
from kafka_medic.snapshot import ClusterSnapshot, ThrottleReading, WorkOwnership
from tests.unit.rules_helpers import by_rule, one, part, run, snapshot

LEFT = ThrottleReading(
    broker_rates={
        (2, "leader.replication.throttled.rate"): 150_000,
        (5, "follower.replication.throttled.rate"): 150_000,
    },
    topic_replicas={("orders", "leader.replication.throttled.replicas"): "0:1,0:2"},
    brokers_read=frozenset({1, 2, 3, 5}),
)
FREE = WorkOwnership(lock_held=False)
RA = [{"topic": "orders", "partition": 0, "replicas": (1, 2, 3, 4), "adding": (4,), "removing": (3,)},
      {"topic": "orders", "partition": 1, "replicas": (1, 2, 3, 4), "adding": (4,), "removing": (1,)}]  # fmt: skip


def with_state(
    throttles: ThrottleReading | None, ownership: WorkOwnership | None, reassignments: list | None = None
) -> ClusterSnapshot:
    parts = [part("orders", 0, [1, 2, 3]), part("orders", 1, [1, 2, 3])]
    snap = snapshot(partitions=parts, reassignments=reassignments)
    return replace(snap, throttles=throttles, ownership=ownership)


def test_throttles_with_no_action_running_and_no_journal_are_a_warning() -> None:
    f = one(run(with_state(LEFT, FREE)), RuleName.LEFTOVER_THROTTLES)
    assert f.severity is Severity.WARNING and f.action is Action.NONE
    assert f.brokers == (2, 5)
    assert "no journal owns them" in f.summary
    assert f.evidence["topics_total"] == 1 and f.evidence["brokers_total"] == 2
    assert f.evidence["topic_lists"] == {"orders leader.replication.throttled.replicas": "0:1,0:2"}


def test_throttles_listed_by_an_ended_runs_journal_name_it() -> None:
    own = WorkOwnership(lock_held=False, journal_run="run-7", journal_rate_brokers=frozenset({5}))
    f = one(run(with_state(LEFT, own)), RuleName.LEFTOVER_THROTTLES)
    assert "ended run run-7" in f.summary
    assert f.evidence["journal_rate_brokers"] == [5]


def test_nothing_while_an_action_holds_the_lock_or_when_ownership_or_throttles_are_unknown() -> None:
    held = WorkOwnership(lock_held=True)
    assert not by_rule(run(with_state(LEFT, held, RA)), RuleName.LEFTOVER_THROTTLES)
    assert not by_rule(run(with_state(LEFT, held, RA)), RuleName.UNOWNED_REASSIGNMENT)
    assert not by_rule(run(with_state(LEFT, None, RA)), RuleName.LEFTOVER_THROTTLES)
    assert not by_rule(run(with_state(LEFT, None, RA)), RuleName.UNOWNED_REASSIGNMENT)
    assert not by_rule(run(with_state(None, FREE)), RuleName.LEFTOVER_THROTTLES)
    assert not by_rule(run(with_state(ThrottleReading(), FREE)), RuleName.LEFTOVER_THROTTLES)


def test_reassignments_with_no_action_running_split_by_journal() -> None:
    own = WorkOwnership(lock_held=False, journal_run="run-7", journal_partitions=frozenset({("orders", 0)}))
    f = one(run(with_state(None, own, RA)), RuleName.UNOWNED_REASSIGNMENT)
    assert f.severity is Severity.WARNING and f.action is Action.NONE
    assert f.partitions == ("orders-0", "orders-1")
    assert f.evidence == {"partitions_total": 2, "in_journal": 1, "in_no_journal": 1, "journal_run": "run-7"}
    assert "1 started by ended run run-7" in f.summary and "1 in no journal" in f.summary


def test_no_reassignment_no_finding() -> None:
    assert not by_rule(run(with_state(None, FREE)), RuleName.UNOWNED_REASSIGNMENT)
