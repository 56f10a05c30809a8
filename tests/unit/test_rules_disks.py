"""Disk rules: offline log dirs and usage thresholds."""

from __future__ import annotations

import pytest

from kafka_medic.findings import Action, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName
from tests.unit.rules_helpers import broker, brokers, by_rule, log_dir, one, run, snapshot

NAN = float("nan")


def test_offline_log_dir_is_critical_and_replaces_the_broker() -> None:
    dirs = [
        log_dir(1),
        log_dir(2, error="KafkaStorageException: I/O error", path="/d2"),
        log_dir(2, path="/d1"),
    ]
    ev = run(snapshot(log_dirs=dirs))
    f = one(ev, RuleName.OFFLINE_LOG_DIR)
    assert f.severity is Severity.CRITICAL
    assert f.action is Action.REPLACE_DEGRADED_BROKER
    assert f.brokers == (2,)
    assert f.evidence["failed_dirs"] == [{"path": "/d2", "error": "KafkaStorageException: I/O error"}]
    assert f.evidence["replicas_on_broker"] == 6
    status = dict(zip(ev.broker_health["broker_id"], ev.broker_health["status"], strict=True))
    assert status[2] == "degraded"
    assert ev.automation_allowed


def test_log_dir_of_a_down_broker_is_stale_and_ignored() -> None:
    rows = [broker(1, "a", alive=False), broker(2, "b"), broker(3, "c")]
    dirs = [log_dir(1, error="I/O", used=0.99)]
    ev = run(snapshot(rows, log_dirs=dirs))
    assert not by_rule(ev, RuleName.OFFLINE_LOG_DIR)
    assert not by_rule(ev, RuleName.DISK_USAGE_CRITICAL)


@pytest.mark.parametrize(
    ("used", "rule"),
    [
        (0.80, None),  # exactly at warn: not over it
        (0.8001, RuleName.DISK_USAGE_HIGH),
        (0.90, RuleName.DISK_USAGE_HIGH),  # exactly at critical: still only a warning
        (0.9001, RuleName.DISK_USAGE_CRITICAL),
        (1.0, RuleName.DISK_USAGE_CRITICAL),
    ],
)
def test_disk_usage_thresholds(used: float, rule: RuleName | None) -> None:
    # exact binary fractions so "exactly at threshold" really is exact
    total = 1024.0 * 1024
    d = {
        "broker_id": 1,
        "path": "/d1",
        "error": None,
        "total_bytes": total,
        "usable_bytes": total - used * total,
    }
    ev = run(snapshot(log_dirs=[d]), HealthPolicy(disk_usage_warn=0.80, disk_usage_critical=0.90))
    found = by_rule(ev, RuleName.DISK_USAGE_HIGH) + by_rule(ev, RuleName.DISK_USAGE_CRITICAL)
    if rule is None:
        assert found == []
        return
    assert [f.rule for f in found] == [rule]
    f = found[0]
    assert f.action is Action.NONE
    assert f.severity is (Severity.CRITICAL if rule == RuleName.DISK_USAGE_CRITICAL else Severity.WARNING)
    assert f.brokers == (1,)
    assert f.evidence["dirs"][0]["path"] == "/d1"


def test_disk_usage_exactly_at_warn_threshold_with_policy_values() -> None:
    total = 1000.0
    d = {"broker_id": 1, "path": "/d1", "error": None, "total_bytes": total, "usable_bytes": 250.0}
    assert not by_rule(run(snapshot(log_dirs=[d]), HealthPolicy(disk_usage_warn=0.75)), RuleName.DISK_USAGE_HIGH)
    d["usable_bytes"] = 249.0
    assert by_rule(run(snapshot(log_dirs=[d]), HealthPolicy(disk_usage_warn=0.75)), RuleName.DISK_USAGE_HIGH)


def test_disk_usage_aggregates_dirs_and_sorts_fullest_first() -> None:
    dirs = [
        log_dir(1, used=0.85),
        log_dir(2, used=0.95),
        log_dir(3, used=0.97),
        log_dir(3, used=0.5, path="/d2"),
    ]
    ev = run(snapshot(log_dirs=dirs))
    crit = one(ev, RuleName.DISK_USAGE_CRITICAL)
    assert crit.brokers == (2, 3)
    assert [d["broker_id"] for d in crit.evidence["dirs"]] == [3, 2]
    assert crit.evidence["max_usage"] == pytest.approx(0.97)
    high = one(ev, RuleName.DISK_USAGE_HIGH)
    assert high.brokers == (1,)
    health = ev.broker_health.set_index("broker_id")
    assert health.loc[3, "disk_usage_max"] == pytest.approx(0.97)


@pytest.mark.parametrize("total", [NAN, 0.0, None])
def test_unknown_volume_sizes_are_skipped(total: float | None) -> None:
    d = {"broker_id": 1, "path": "/d1", "error": None, "total_bytes": total, "usable_bytes": NAN}
    ev = run(snapshot(log_dirs=[d]))
    assert ev.findings == []


def test_many_failed_disks_are_a_mass_degradation() -> None:
    dirs = [log_dir(i, error="I/O") for i in (1, 2, 3)]
    ev = run(snapshot(brokers(10), log_dirs=dirs))
    assert one(ev, RuleName.MASS_DEGRADATION).evidence["signal_counts"] == {"offline_log_dir": 3}
    assert {f.action for f in by_rule(ev, RuleName.OFFLINE_LOG_DIR)} == {Action.NONE}
    assert not ev.automation_allowed
