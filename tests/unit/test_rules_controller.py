"""Controller rules and collection issues."""

from __future__ import annotations

import pytest

from kafka_medic.findings import Action, Severity
from kafka_medic.rules import RuleName
from kafka_medic.snapshot import CollectionIssue
from tests.unit.rules_helpers import by_rule, controller_row, one, part, run, snapshot


def test_one_active_controller_is_healthy() -> None:
    rows = [controller_row(100, 1.0), controller_row(101, 0.0), controller_row(102, 0.0)]
    ev = run(snapshot(controller=rows))
    assert ev.findings == []


def test_empty_controller_frame_is_not_a_finding() -> None:
    assert run(snapshot(controller=[])).findings == []


@pytest.mark.parametrize(("counts", "summary_part"), [((0.0, 0.0, 0.0), "no active"), ((1.0, 1.0, 0.0), "split")])
def test_no_or_split_controller_pages_and_stands_down(counts: tuple[float, ...], summary_part: str) -> None:
    rows = [controller_row(100 + i, c) for i, c in enumerate(counts)]
    ev = run(snapshot(controller=rows))
    f = one(ev, RuleName.NO_ACTIVE_CONTROLLER)
    assert f.severity is Severity.CRITICAL
    assert f.action is Action.PAGE
    assert summary_part in f.summary
    assert f.evidence["active_controller_count_sum"] == int(sum(counts))
    assert not ev.automation_allowed


def test_all_controller_metrics_unavailable_is_a_warning_only() -> None:
    rows = [controller_row(100, float("nan"), ok=False), controller_row(101, 0.0, ok=False)]
    ev = run(snapshot(controller=rows))
    f = one(ev, RuleName.CONTROLLER_METRICS_UNAVAILABLE)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    assert f.evidence["node_ids"] == [100, 101]
    assert f.evidence["all_unavailable"] is True
    assert not by_rule(ev, RuleName.NO_ACTIVE_CONTROLLER)
    assert ev.automation_allowed


def test_zero_active_with_an_unscraped_controller_is_not_proof_of_no_controller() -> None:
    rows = [controller_row(100, 0.0), controller_row(101, 0.0), controller_row(102, 1.0, ok=False)]
    ev = run(snapshot(controller=rows))
    assert not by_rule(ev, RuleName.NO_ACTIVE_CONTROLLER)
    assert one(ev, RuleName.CONTROLLER_METRICS_UNAVAILABLE).evidence["node_ids"] == [102]


def test_split_brain_is_reported_even_with_unscraped_rows() -> None:
    rows = [controller_row(100, 1.0), controller_row(101, 1.0), controller_row(102, 0.0, ok=False)]
    ev = run(snapshot(controller=rows))
    assert one(ev, RuleName.NO_ACTIVE_CONTROLLER).evidence["active_node_ids"] == [100, 101]
    assert by_rule(ev, RuleName.CONTROLLER_METRICS_UNAVAILABLE)


def test_controller_reporting_offline_partitions_the_snapshot_does_not_show() -> None:
    ev = run(snapshot(controller=[controller_row(100, 1.0, offline=7.0)]))
    f = one(ev, RuleName.OFFLINE_REPORTED_BY_CONTROLLER)
    assert f.severity is Severity.WARNING
    assert f.evidence == {"controller_offline_partitions": 7, "snapshot_offline_partitions": 0}
    # when the snapshot sees offline partitions itself, the offline finding covers it
    parts = [part("a", 0, [1, 2, 3], isr=[], leader=-1)]
    ev = run(snapshot(partitions=parts, controller=[controller_row(100, 1.0, offline=1.0)]))
    assert not by_rule(ev, RuleName.OFFLINE_REPORTED_BY_CONTROLLER)
    assert by_rule(ev, RuleName.OFFLINE)


def test_collection_issues_become_warnings() -> None:
    issues = [
        CollectionIssue("metrics", "connection refused", broker_id=2),
        CollectionIssue("log_dirs", "timed out"),
    ]
    ev = run(snapshot(issues=issues))
    found = by_rule(ev, RuleName.COLLECTION_ERROR)
    assert len(found) == 2
    assert all(f.severity is Severity.WARNING and f.action is Action.NONE for f in found)
    by_source = {f.evidence["source"]: f for f in found}
    assert by_source["metrics"].brokers == (2,)
    assert by_source["metrics"].evidence["message"] == "connection refused"
    assert by_source["log_dirs"].brokers == ()
    assert "connection refused" in ev.broker_health.set_index("broker_id").loc[2, "reasons"]
    assert ev.automation_allowed
