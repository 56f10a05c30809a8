"""Leader imbalance."""

from __future__ import annotations

import pytest

from kafka_medic.findings import Action, Severity
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName
from tests.unit.rules_helpers import brokers, by_rule, one, part, run, snapshot


def _parts(n: int, non_preferred: int, offline: int = 0) -> list[dict]:
    """``n`` partitions on brokers 1..3; the first ``non_preferred`` are led by replicas[1]."""
    out = []
    for p in range(n):
        reps = [1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3]
        if p < non_preferred:
            out.append(part("t", p, reps, leader=reps[1]))
        elif p < non_preferred + offline:
            out.append(part("t", p, reps, isr=[], leader=-1))
        else:
            out.append(part("t", p, reps))
    return out


@pytest.mark.parametrize(("non_preferred", "flagged"), [(10, False), (11, True), (0, False)])
def test_leader_imbalance_threshold_edge(non_preferred: int, flagged: bool) -> None:
    ev = run(snapshot(brokers(3), _parts(100, non_preferred)), HealthPolicy(leader_imbalance_max=0.10))
    assert bool(by_rule(ev, RuleName.LEADER_IMBALANCE)) is flagged


def test_leader_imbalance_evidence() -> None:
    ev = run(snapshot(brokers(3), _parts(30, 9)))
    f = one(ev, RuleName.LEADER_IMBALANCE)
    assert f.severity is Severity.WARNING
    assert f.action is Action.NONE
    e = f.evidence
    assert e["non_preferred_leaders"] == 9
    assert e["partitions_with_leader"] == 30
    assert e["share"] == 0.3
    # partitions 0..8: preferred 1,2,3 (3 each); leaders are the second replica 2,3,1
    assert e["leading_not_preferred_per_broker"] == {"1": 3, "2": 3, "3": 3}
    assert e["preferred_not_leading_per_broker"] == {"1": 3, "2": 3, "3": 3}
    assert set(e["leader_count_skew"]) >= {"leaders_max", "leaders_min", "leaders_mean", "max_over_mean"}
    assert f.brokers == (1, 2, 3)


def test_leader_skew_in_evidence() -> None:
    parts = [part("t", p, [1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3], leader=1) for p in range(30)]
    f = one(run(snapshot(brokers(3), parts)), RuleName.LEADER_IMBALANCE)
    skew = f.evidence["leader_count_skew"]
    assert skew["leaders_max"] == 30
    assert skew["leaders_min"] == 0
    assert skew["max_over_mean"] == 3.0
    assert f.brokers == (2, 3)  # the brokers that lost their preferred leadership


def test_offline_partitions_are_excluded_from_the_share() -> None:
    # 10 non-preferred of 90 led partitions = 11.1% (10 of 100 would be exactly 10%)
    ev = run(snapshot(brokers(3), _parts(100, 10, offline=10)), HealthPolicy(leader_imbalance_max=0.10))
    f = one(ev, RuleName.LEADER_IMBALANCE)
    assert f.evidence["partitions_with_leader"] == 90
