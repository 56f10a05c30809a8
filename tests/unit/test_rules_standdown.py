"""Stand-down rules: the only copy of an offline partition, and the ``stood_down`` finding."""

from __future__ import annotations

from datetime import datetime

from kafka_medic.findings import Action, Severity
from kafka_medic.rules import RuleName
from tests.unit.rules_helpers import broker, brokers, by_rule, controller_row, one, part, run, snapshot

OLD = "2020-01-01T00:00:00+00:00"  # down long past any grace period


def test_offline_partition_whose_only_in_sync_copy_is_on_a_down_broker() -> None:
    rows = [*brokers(2), broker(3, "c", alive=False)]
    parts = [
        part("a", 0, [3, 1, 2], isr=[3], leader=-1),  # offline, the last ISR member is broker 3: sole copy
        part("a", 1, [1, 2, 3], isr=[1, 2]),  # online
        part("a", 2, [3, 1, 2], isr=[3, 1], leader=3),  # led by the down broker, but 1 is in sync: not sole
    ]
    ev = run(snapshot(rows, parts))
    f = one(ev, RuleName.SOLE_COPY_OFFLINE)
    assert f.severity is Severity.CRITICAL and f.action is Action.NONE
    assert f.brokers == (3,) and f.partitions == ("a-0",)
    assert "never wiped" in f.summary


def test_two_down_brokers_sharing_the_only_copies_are_both_named() -> None:
    rows = [broker(1, "a"), broker(2, "b", alive=False), broker(3, "c", alive=False)]
    ev = run(snapshot(rows, [part("a", 0, [2, 3, 1], isr=[2, 3], leader=-1)]))
    assert sorted(f.brokers for f in by_rule(ev, RuleName.SOLE_COPY_OFFLINE)) == [(2,), (3,)]


def test_no_sole_copy_finding_on_a_healthy_cluster() -> None:
    assert not by_rule(run(snapshot()), RuleName.SOLE_COPY_OFFLINE)


def test_stood_down_names_what_was_withheld_and_why() -> None:
    """The controller is gone and a broker is dead past its grace: nothing is healed, and one
    critical ``stood_down`` finding says so (the page carries it)."""
    rows = [*brokers(2), broker(3, "c", alive=False)]
    snap = snapshot(rows, controller=[controller_row(100, float("nan"), ok=False)])
    ev = run(snap, down_since={3: datetime.fromisoformat(OLD)})
    down = one(ev, RuleName.BROKER_DOWN)
    assert down.action is Action.NONE and down.evidence["suppressed_action"] == Action.HEAL_DEAD_BROKER.value
    f = one(ev, RuleName.STOOD_DOWN)
    assert f.severity is Severity.CRITICAL and f.action is Action.NONE
    assert f.brokers == (3,)
    assert f.summary.startswith("stood down: no_active_controller")
    assert f.evidence["because"] == ["no_active_controller"]
    assert not ev.automation_allowed


def test_no_stood_down_finding_when_nothing_was_withheld() -> None:
    ev = run(snapshot(controller=[controller_row(100, 0.0)]))
    assert by_rule(ev, RuleName.NO_ACTIVE_CONTROLLER)
    assert not by_rule(ev, RuleName.STOOD_DOWN)
