"""kafka_medic.decide: findings -> decisions, in the order an on-call would apply the policy."""

from __future__ import annotations

from datetime import timedelta

from kafka_medic.decide import MAX_COSTED, Decision, Remedy, cost_line, decide, with_costs
from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.policy import HealthPolicy, Mode
from kafka_medic.snapshot import ClusterSnapshot
from tests.unit.planner_helpers import cluster
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


# -- cost of decisions (issue 14) ---------------------------------------------------------------------

SIX = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"}
PRICE = HealthPolicy(throttle_bytes_per_sec=10_000_000, inter_az_price_per_gb=0.05)


def _costed_cluster() -> ClusterSnapshot:
    # Broker 1 (rack a) is down and held two partitions: every byte re-fetched into rack a crosses AZs.
    parts = [("t", 0, (2, 1, 3)), ("t", 1, (3, 2, 1)), ("t", 2, (5, 6, 4))]
    return cluster(SIX, parts, down=[1], sizes={("t", 0): 40e9, ("t", 1): 20e9, ("t", 2): 5e9})


def test_a_replacement_and_a_drain_carry_their_cost_the_rest_none() -> None:
    snap = _costed_cluster()
    ds = [
        Decision(Remedy.REPLACE_BROKER, 1, "broker_down", "down", execute=True, needs_approval=False),
        Decision(Remedy.REASSIGN_AWAY, 1, "broker_down", "down", execute=False, needs_approval=False),
        Decision(Remedy.DEMOTE_BROKER, 2, "degraded", "slow", execute=False, needs_approval=False),
        Decision(Remedy.PAGE, None, "mass_failure", "many", execute=True, needs_approval=False),
    ]
    out = with_costs(ds, snap, PRICE)
    replace, drain, demote, page = out
    assert replace.cost is not None and drain.cost is not None
    assert demote.cost is None and page.cost is None and demote == ds[2], "no data moves: nothing to cost"
    # Replacement: 60 GB re-fetched into rack a from leaders in b and c: all cross-AZ; $0.05/GB; the
    # new broker receives all 60 GB at 10 MB/s.
    assert (replace.cost["bytes"], replace.cost["cross_az_bytes"]) == (60e9, 60e9)
    assert replace.cost["dollars"] == 3.0 and replace.cost["eta_s"] == 6000.0
    assert replace.cost["price_per_gb"] == 0.05 and "replacement of broker 1" in replace.cost["summary"]
    # Drain: the same 60 GB, onto broker 4 (the only other rack-a broker), from the partitions' leaders.
    assert drain.cost["bytes"] == 60e9 and drain.cost["what"] == "drain of broker 1"
    assert drain.cost["receivers"] == 1 and drain.cost["dollars"] == 3.0
    rec = replace.to_record()
    assert rec["cost"]["eta_s"] == 6000.0 and rec["cost_error"] is None and rec["remedy"] == "replace_broker"
    assert cost_line(replace.cost) == "60.0 GB to copy, 60.0 GB cross-AZ, $3.00, ~1 h 40 min"
    assert cost_line(None) == ""


def test_the_default_price_is_two_cents_per_gb() -> None:
    d = Decision(Remedy.REPLACE_BROKER, 1, "broker_down", "down", execute=True, needs_approval=False)
    (out,) = with_costs([d], _costed_cluster(), HealthPolicy())
    assert out.cost is not None and out.cost["price_per_gb"] == 0.02 and out.cost["dollars"] == 1.2


def test_a_cost_that_cannot_be_estimated_never_stops_the_decision() -> None:
    d = Decision(Remedy.REPLACE_BROKER, 99, "broker_down", "down", execute=True, needs_approval=True)
    (out,) = with_costs([d], _costed_cluster(), PRICE)
    assert out.cost is None and out.cost_error is not None and "99" in out.cost_error
    assert (out.remedy, out.broker_id, out.execute, out.needs_approval) == (d.remedy, 99, True, True)


def test_at_most_max_costed_decisions_are_estimated() -> None:
    snap = _costed_cluster()
    ds = [Decision(Remedy.REPLACE_BROKER, 1, "r", "x", execute=False, needs_approval=False)] * (MAX_COSTED + 2)
    out = with_costs(ds, snap, PRICE)
    assert [d.cost is not None for d in out] == [True] * MAX_COSTED + [False, False]
