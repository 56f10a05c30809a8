"""kafka_medic.decide: findings -> decisions, in the order an on-call would apply the policy."""

from __future__ import annotations

from datetime import timedelta

from kafka_medic.decide import Remedy, decide
from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.policy import Mode
from tests.unit.rules_helpers import T0


def f(
    action: Action, broker: int, rule: str = "r", since_s: float | None = None, sev: Severity = Severity.WARNING
) -> Finding:
    since = T0 - timedelta(seconds=since_s) if since_s is not None else None
    return Finding(rule, sev, f"{rule} on {broker}", brokers=(broker,), since=since, action=action)


def remedies(ds: list) -> list[tuple[str, int | None, bool]]:
    return [(d.remedy.value, d.broker_id, d.execute) for d in ds]


def test_a_page_stands_everything_down() -> None:
    ds = decide([f(Action.PAGE, 1, "mass_failure"), f(Action.HEAL_DEAD_BROKER, 2)], Mode.AUTO, has_replacer=True)
    assert remedies(ds) == [("page", None, True)], "a page is about the cluster; nothing else is decided"


def test_the_ladder_maps_to_remedies_and_a_rung_we_cannot_take_is_only_reported() -> None:
    for action, with_replacer, without in [
        (Action.DEMOTE_BROKER, Remedy.DEMOTE_BROKER, Remedy.DEMOTE_BROKER),  # needs only Kafka
        (Action.RESTART_BROKER, Remedy.RESTART_BROKER, Remedy.REPORT),
        (Action.REPLACE_DEGRADED_BROKER, Remedy.REPLACE_BROKER, Remedy.REPORT),
        (Action.RESTORE_BROKER, Remedy.RESTORE_BROKER, Remedy.RESTORE_BROKER),
    ]:
        assert decide([f(action, 3)], Mode.AUTO, has_replacer=True)[0].remedy is with_replacer
        d = decide([f(action, 3)], Mode.AUTO, has_replacer=False)[0]
        assert d.remedy is without and d.execute is (without is not Remedy.REPORT)
    d = decide([f(Action.RESTART_BROKER, 3)], Mode.AUTO, has_replacer=True, can_restart=False)[0]
    assert d.remedy is Remedy.REPORT and not d.execute and "no replacer that can do it" in d.reason


def test_dead_before_degraded_and_one_broker_action_per_cycle() -> None:
    dead = [f(Action.HEAL_DEAD_BROKER, 2, since_s=90), f(Action.HEAL_DEAD_BROKER, 1, since_s=300)]
    found = [f(Action.DEMOTE_BROKER, 4), *dead]
    ds = decide(found, Mode.AUTO, has_replacer=True)
    assert remedies(ds) == [("replace_broker", 1, True), ("replace_broker", 2, False), ("demote_broker", 4, False)]
    assert "deferred" in ds[1].reason


def test_observe_maintenance_and_approve_modes() -> None:
    d = decide([f(Action.DEMOTE_BROKER, 3)], Mode.OBSERVE, has_replacer=True)[0]
    assert not d.execute and "not acting: observe mode" in d.reason
    d = decide([f(Action.HEAL_DEAD_BROKER, 3)], Mode.AUTO, has_replacer=True, maintenance=True)[0]
    assert not d.execute and "maintenance mode" in d.reason
    d = decide([f(Action.RESTART_BROKER, 3)], Mode.APPROVE, has_replacer=True)[0]
    assert d.execute and d.needs_approval
    d = decide([f(Action.RESTORE_BROKER, 3)], Mode.APPROVE, has_replacer=True)[0]
    assert d.execute and not d.needs_approval, "giving leadership back undoes an action already approved"
    assert decide([f(Action.NONE, 3)], Mode.AUTO, has_replacer=True) == []
