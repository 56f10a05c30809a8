"""kafka_medic.incidents: one page per condition, repeats on a schedule, "resolved" when it clears."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.incidents import Incidents, Transition, conditions, step
from kafka_medic.rules.names import RuleName
from tests.unit.rules_helpers import T0

OFFLINE = Finding(RuleName.OFFLINE, Severity.CRITICAL, "2 partitions offline", partitions=("t-0", "t-1"))
UNDER_MIN = Finding(RuleName.UNDER_MIN_ISR, Severity.CRITICAL, "3 under min ISR", partitions=("t-2",))
DEAD = Finding(RuleName.BROKER_DOWN, Severity.CRITICAL, "Broker 4 down", brokers=(4,), action=Action.HEAL_DEAD_BROKER)
GRACE = Finding(RuleName.BROKER_DOWN, Severity.WARNING, "Broker 4 down (in grace)", brokers=(4,))
PAGE = Finding(RuleName.MASS_FAILURE, Severity.CRITICAL, "3 of 6 down", brokers=(1, 2, 3), action=Action.PAGE)
SKEW = Finding(RuleName.LEADER_IMBALANCE, Severity.WARNING, "leaders skewed")


def run(cycles: list[list[Finding]], *, heals: bool = True, repeat_s: float = 600, resolve_cycles: int = 2,
        every_s: float = 10):  # fmt: skip
    inc, log = Incidents(), []
    for i, findings in enumerate(cycles):
        inc, notes = step(inc, conditions(findings, automation_heals=heals), T0 + timedelta(seconds=every_s * i),
                          repeat_s=repeat_s, resolve_cycles=resolve_cycles)  # fmt: skip
        log.append([(n.transition, n.incident.key, n.page) for n in notes])
    return inc, log


def test_an_offline_partition_pages_once_then_resolves_once() -> None:
    inc, log = run([[OFFLINE], [OFFLINE], [OFFLINE], [], [], []])
    assert log[0] == [(Transition.OPENED, "offline", True)]
    assert log[1] == log[2] == [] and log[3] == [], "no repeat within the interval; one clean cycle is not enough"
    assert log[4] == [(Transition.RESOLVED, "offline", False)]
    assert log[5] == [] and not inc.open


def test_a_flapping_condition_does_not_reopen_every_cycle() -> None:
    _, log = run([[UNDER_MIN], [], [UNDER_MIN], [], [UNDER_MIN]])
    assert sum(len(x) for x in log) == 1, log


def test_still_open_repeats_on_its_schedule() -> None:
    _, log = run([[OFFLINE]] * 8, repeat_s=30)
    assert [len(x) for x in log] == [1, 0, 0, 1, 0, 0, 1, 0]
    assert log[3] == [(Transition.REPEATED, "offline", True)]


def test_a_warning_that_turns_critical_is_escalated() -> None:
    leftover = Finding("leftover_throttle", Severity.WARNING, "throttle on broker 2", brokers=(2,))
    worse = Finding("leftover_throttle", Severity.CRITICAL, "throttle on brokers 2, 3", brokers=(2, 3))
    _, log = run([[leftover], [worse]])
    assert log == [
        [(Transition.OPENED, "leftover_throttle", False)],
        [(Transition.ESCALATED, "leftover_throttle", True)],
    ]


@pytest.mark.parametrize(("heals", "expected"), [(True, []), (False, ["broker_down:4"])])
def test_a_dead_broker_is_an_incident_only_when_automation_will_not_heal_it(heals: bool, expected: list[str]) -> None:
    assert [c.key for c in conditions([DEAD], automation_heals=heals)] == expected
    assert conditions([GRACE], automation_heals=False) == [], "inside its grace period: not yet"


def test_paging_findings_and_ordinary_warnings() -> None:
    keys = {c.key: c.severity for c in conditions([PAGE, SKEW, OFFLINE], automation_heals=True)}
    assert keys == {"mass_failure": Severity.CRITICAL, "offline": Severity.CRITICAL}


def test_incidents_survive_a_round_trip_and_refuse_what_they_did_not_write() -> None:
    inc, _ = run([[OFFLINE, DEAD]], heals=False)
    again = Incidents.from_json(inc.to_json())
    assert again == inc and set(again.open) == {"offline", "broker_down:4"}
    with pytest.raises(ValueError, match="version-1"):
        Incidents.from_json({"i": {}})
