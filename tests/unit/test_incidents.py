"""kafka_medic.incidents: one page per condition, repeats on a schedule, "resolved" when it clears."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.incidents import Incidents, Transition, conditions, remediation_conditions, step
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
    leftover = Finding("leftover_throttles", Severity.WARNING, "throttle on broker 2", brokers=(2,))
    worse = Finding("leftover_throttles", Severity.CRITICAL, "throttle on brokers 2, 3", brokers=(2, 3))
    _, log = run([[leftover], [worse]])
    assert log == [
        [(Transition.OPENED, "leftover_throttles", False)],
        [(Transition.ESCALATED, "leftover_throttles", True)],
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


def test_failing_remediation_is_a_notice_and_giving_up_escalates_to_a_page() -> None:
    failed = {"remedy": "replace_broker", "broker_id": 6, "status": "failed", "error": "no capacity"}
    backing = {"remedy": "replace_broker", "broker_id": 6, "status": "backing off", "why": "30 s left"}
    gave_up = {"remedy": "replace_broker", "broker_id": 6, "status": "gave up", "why": "2 failed attempt(s)"}
    fine = {"remedy": "replace_broker", "broker_id": 6, "status": "replaced"}
    inc, log = Incidents(), []
    for i, dispatched in enumerate([[failed], [backing], [gave_up], [gave_up], [fine], [fine]]):
        inc, notes = step(inc, remediation_conditions(dispatched), T0 + timedelta(seconds=10 * i), repeat_s=600,
                          resolve_cycles=2)  # fmt: skip
        log.append([(n.transition, n.incident.rule, n.page) for n in notes])
    assert log == [
        [(Transition.OPENED, "remediation_failing", False)],  # a failed try: a notice, the next may work
        [],
        [(Transition.ESCALATED, "remediation_gave_up", True)],  # nobody will act now: a page, once
        [],
        [],
        [(Transition.RESOLVED, "remediation_gave_up", False)],
    ]


def test_the_worst_outcome_of_a_broker_wins_and_other_outcomes_are_not_conditions() -> None:
    out = remediation_conditions([
        {"remedy": "restart_broker", "broker_id": 3, "status": "refused", "message": "would go under min ISR"},
        {"remedy": "replace_broker", "broker_id": 3, "status": "stood_down", "message": "no active controller"},
        {"remedy": "demote_broker", "broker_id": 4, "status": "completed"},
        {"remedy": "replace_broker", "broker_id": 5, "status": "cooling down"},
    ])  # fmt: skip
    got = [(c.key, c.severity, c.rule) for c in out]
    assert got == [("remediation:3", Severity.CRITICAL, "remediation_stood_down")]
    assert "no active controller" in out[0].summary


def test_the_controller_and_our_own_count_of_offline_partitions_are_one_incident() -> None:
    theirs = Finding(RuleName.OFFLINE_REPORTED_BY_CONTROLLER, Severity.CRITICAL, "controller: 1 offline")
    assert [c.key for c in conditions([OFFLINE, theirs], automation_heals=True)] == ["offline"]


def test_what_is_stored_is_plain_json_even_when_findings_carry_numpy_ids() -> None:
    import json

    import numpy as np
    import orjson

    dead = Finding(RuleName.BROKER_DOWN, Severity.CRITICAL, "Broker 4 down", brokers=(np.int64(4),),
                   action=Action.HEAL_DEAD_BROKER)  # fmt: skip
    inc, _ = step(Incidents(), conditions([dead, OFFLINE], automation_heals=False), T0, repeat_s=600,
                  resolve_cycles=2)  # fmt: skip
    assert json.loads(json.dumps(inc.to_json())) == inc.to_json()
    orjson.dumps(inc.to_json())  # what Prefect's Variable check uses: str subclasses as keys fail there
    assert all(type(k) is str for k in inc.to_json()["i"])


def test_a_condition_opens_only_once_it_has_lasted_the_pending_window() -> None:
    def cycles(seen: list[bool]) -> list[list[tuple[Transition, str]]]:
        inc, log = Incidents(), []
        for i, on in enumerate(seen):  # one cycle every 10 s, a 30 s window
            inc, notes = step(inc, conditions([OFFLINE] if on else [], automation_heals=True),
                              T0 + timedelta(seconds=10 * i), repeat_s=600, resolve_cycles=2, pending_s=30)  # fmt: skip
            inc = Incidents.from_json(inc.to_json())  # what survives between cycles is what is stored
            log.append([(n.transition, n.incident.key) for n in notes])
        return log

    # a clean failover: offline for 20 s, then gone -- nobody is paged, nothing to resolve
    assert cycles([True, True, True, False, False, False]) == [[]] * 6
    # still offline after 30 s: one page, dated from when it was first seen
    log = cycles([True, True, True, True, True])
    assert log == [[], [], [], [(Transition.OPENED, "offline")], []]
    # a remediation's failure is an outcome: no window
    failed = {"remedy": "replace_broker", "broker_id": 6, "status": "failed", "error": "no capacity"}
    _, notes = step(Incidents(), remediation_conditions([failed]), T0, repeat_s=600, resolve_cycles=2, pending_s=30)
    assert [n.transition for n in notes] == [Transition.OPENED]


def test_the_only_copy_on_a_down_broker_is_told_in_the_offline_page_and_a_stand_down_is_no_extra_page() -> None:
    sole = Finding(RuleName.SOLE_COPY_OFFLINE, Severity.CRITICAL, "broker 5 is down holding the only in-sync copy "
                   "of 1 offline partition(s): it must come back with its disk", brokers=(5,))  # fmt: skip
    stood = Finding(RuleName.STOOD_DOWN, Severity.CRITICAL, "stood down: no_active_controller", brokers=(5,))
    out = conditions([OFFLINE, sole, stood], automation_heals=True)
    assert [(c.key, c.brokers) for c in out] == [("offline", (5,))]
    assert "2 partitions offline" in out[0].summary and "come back with its disk" in out[0].summary


def test_a_failed_remediation_stays_an_incident_until_an_attempt_succeeds_not_only_in_its_cycle() -> None:
    from kafka_medic.incidents import ladder_conditions
    from kafka_medic.judgment import Attempt, BrokerLadder, Ladder
    from kafka_medic.policy import HealthPolicy

    policy = HealthPolicy(remediation_backoff_s=60, remediation_max_attempts=2)
    failed_once = Ladder({3: BrokerLadder(attempts=(Attempt(T0, "restart_broker", False),))})
    inc, log = Incidents(), []
    for i in range(4):  # four cycles after one failed restart, nothing dispatched in them
        now = T0 + timedelta(seconds=10 * (i + 1))
        inc, notes = step(inc, ladder_conditions(failed_once, policy, now), now, repeat_s=600, resolve_cycles=2)
        log.append([(n.transition, n.incident.rule) for n in notes])
    assert log == [[(Transition.OPENED, "remediation_failing")], [], [], []], "open while the failure stands"
    second = Attempt(T0 + timedelta(seconds=70), "restart_broker", False)
    twice = Ladder({3: BrokerLadder(attempts=(Attempt(T0, "restart_broker", False), second))})
    now = T0 + timedelta(seconds=80)
    inc, notes = step(inc, ladder_conditions(twice, policy, now), now, repeat_s=600, resolve_cycles=2)
    assert [(n.transition, n.incident.rule, n.page) for n in notes] == [
        (Transition.ESCALATED, "remediation_gave_up", True)
    ]
    healed = Ladder({3: BrokerLadder(attempts=(*twice.of(3).attempts, Attempt(now, "replace_broker", True)))})
    for _ in range(2):
        now += timedelta(seconds=10)
        inc, notes = step(inc, ladder_conditions(healed, policy, now), now, repeat_s=600, resolve_cycles=2)
    assert [(n.transition, n.incident.key) for n in notes] == [(Transition.RESOLVED, "remediation:3")]
