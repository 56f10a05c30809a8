"""How one pass stays short while a broker is frozen: pure parts of the collector (no Kafka).

The behaviour on a real frozen broker is covered by tests/e2e/reliability/test_hung_broker.py; these
pin the two rules that keep a pass short there (measured: 10-30 s per pass before, ~1.6 s after).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import kafka_medic.monitor.collector as collector
from kafka_medic.monitor.cluster_reads import BrokerInfo
from kafka_medic.monitor.collector import CollectionIssue


class _Access:
    name = "c"

    def kafka_python_config(self) -> dict[str, Any]:
        return {"bootstrap_servers": ["10.0.0.1:9092", "10.0.0.2:9092", "10.0.0.3:9092"], "security_protocol": "SSL"}


def test_kafka_python_bootstraps_only_from_brokers_found_alive() -> None:
    listed = [BrokerInfo(1, "10.0.0.1", 9092, "a"), BrokerInfo(2, "fe80::2", 9093, "b"), BrokerInfo(3, "h3", 9092, "c")]
    conf = collector._kafka_python_conf(_Access(), listed, alive_ids={1, 2})  # type: ignore[arg-type]
    assert conf["bootstrap_servers"] == ["10.0.0.1:9092", "[fe80::2]:9093"]
    assert conf["security_protocol"] == "SSL", "everything else is the cluster's own config"
    # nothing alive (cluster unreachable): the configured list stands
    assert collector._kafka_python_conf(_Access(), listed, set())["bootstrap_servers"][0] == "10.0.0.1:9092"  # type: ignore[arg-type]


def test_kafka_python_reads_past_the_deadline_leave_the_pass_with_an_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stuck(conf: Any, alive: Any, timeout_s: float, issues: list[CollectionIssue]) -> Any:
        release.wait(30)  # a request to a broker that accepts but never answers
        issues.append(CollectionIssue("log_dirs", "late issue that must not leak into the pass"))
        return None

    monkeypatch.setattr(collector, "_kafka_python_reads", stuck)
    monkeypatch.setattr(collector, "KAFKA_PYTHON_DEADLINE_S", 0.3)
    issues: list[CollectionIssue] = []
    try:
        log_dirs, sizes, reassignments = collector._kafka_python_reads_bounded({}, {1}, 10.0, issues)
    finally:
        release.set()
    assert log_dirs.empty and sizes == {} and reassignments.empty
    assert [i.source for i in issues] == ["log_dirs"] and "did not complete within" in issues[0].message
    time.sleep(0.1)
    assert len(issues) == 1, "the abandoned read's own issues stay out of the pass"


def test_kafka_python_reads_in_time_pass_through_with_their_issues(monkeypatch: pytest.MonkeyPatch) -> None:
    def quick(conf: Any, alive: Any, timeout_s: float, issues: list[CollectionIssue]) -> Any:
        issues.append(CollectionIssue("reassignments", "ListPartitionReassignments failed: x"))
        return "frames"

    monkeypatch.setattr(collector, "_kafka_python_reads", quick)
    issues: list[CollectionIssue] = []
    assert collector._kafka_python_reads_bounded({}, {1}, 10.0, issues) == "frames"
    assert [i.source for i in issues] == ["reassignments"]
