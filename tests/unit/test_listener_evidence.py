"""Refused-listener evidence, pure parts and plain sockets: how a connect attempt is classified,
how a broker's liveness and its ``broker_down`` evidence follow, and how the safety guards stop
trusting the stale ISR of a broker that is down but not fenced yet."""

from __future__ import annotations

import errno
import socket
from datetime import timedelta

import pytest

from kafka_medic.findings import Action, Severity
from kafka_medic.monitor.listener_probe import ListenerState, classify_error, combine, probe_listener, probe_listeners
from kafka_medic.planner import Move
from kafka_medic.policy import HealthPolicy
from kafka_medic.rules import RuleName
from kafka_medic.rules.brokers import EVIDENCE_NOT_REGISTERED, EVIDENCE_REFUSED, beyond_grace, down_evidence
from kafka_medic.safety import down_broker_ids, effective_isr, removal_impact, validate_plan
from kafka_medic.snapshot import LISTENER_REFUSED, is_alive
from tests.unit.rules_helpers import T0, broker, one, part, run, snapshot

# ---------------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("exc", "state"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ListenerState.REFUSED),
        (OSError(errno.ECONNREFUSED, "refused"), ListenerState.REFUSED),
        (TimeoutError("timed out"), ListenerState.TIMEOUT),
        (OSError(errno.ETIMEDOUT, "timed out"), ListenerState.TIMEOUT),
        (OSError(errno.EHOSTUNREACH, "no route"), ListenerState.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "no net"), ListenerState.UNREACHABLE),
        (socket.gaierror(socket.EAI_NONAME, "unknown host"), ListenerState.UNREACHABLE),
        (OSError(errno.ECONNRESET, "reset after accept"), ListenerState.ERROR),
        (ValueError("odd"), ListenerState.ERROR),
    ],
)
def test_only_an_active_refusal_counts_as_refused(exc: BaseException, state: ListenerState) -> None:
    assert classify_error(exc) is state


def test_a_host_is_refused_only_if_every_address_refuses() -> None:
    ref, slow, ok, unr = ListenerState.REFUSED, ListenerState.TIMEOUT, ListenerState.OPEN, ListenerState.UNREACHABLE
    assert combine([ref, ref]) is ref
    assert combine([ref, slow]) is slow, "one address silent: it may be the real one"
    assert combine([ref, ok]) is ok
    assert combine([unr, ref]) is unr
    assert combine([]) is unr


def test_probe_on_plain_sockets_open_and_refused() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        assert probe_listener("127.0.0.1", port, 1.0) is ListenerState.OPEN
    # the port is closed now: nothing listens, the kernel answers with a reset
    assert probe_listener("127.0.0.1", port, 1.0) is ListenerState.REFUSED
    assert probe_listeners({7: ("127.0.0.1", port)}, 1.0) == {7: ListenerState.REFUSED}
    assert probe_listeners({}, 1.0) == {}
    assert probe_listener("no-such-host.invalid", 9092, 1.0) is ListenerState.UNREACHABLE


# ---------------------------------------------------------------------------------- liveness, rules


def test_alive_needs_registration_and_a_listener_that_does_not_refuse() -> None:
    assert is_alive(True, None) and is_alive(True, "open")
    assert is_alive(True, "timeout") and is_alive(True, "unreachable"), "network trouble is not death"
    assert not is_alive(True, LISTENER_REFUSED)
    assert not is_alive(False, "open") and not is_alive(False, None)


def test_down_evidence_names_the_refusal_only_while_still_listed() -> None:
    assert down_evidence(True, LISTENER_REFUSED) == EVIDENCE_REFUSED == "connection refused"
    assert down_evidence(False, None) == EVIDENCE_NOT_REGISTERED
    assert down_evidence(None, None) == EVIDENCE_NOT_REGISTERED
    assert down_evidence(True, "timeout") == EVIDENCE_NOT_REGISTERED


def _refused(broker_id: int, rack: str) -> dict:
    return broker(broker_id, rack, alive=False, registered=True, listener=LISTENER_REFUSED, metrics_ok=False)


def test_refused_broker_is_reported_down_with_its_evidence() -> None:
    rows = [broker(1, "a", registered=True, listener="open"), _refused(2, "b"), broker(3, "c")]
    ev = run(snapshot(rows))
    f = one(ev, RuleName.BROKER_DOWN)
    assert f.brokers == (2,)
    assert f.evidence["down_evidence"] == "connection refused"
    assert f.evidence["registered"] is True and f.evidence["listener"] == "refused"
    assert "connection refused" in f.summary
    assert f.action is Action.NONE and f.severity is Severity.WARNING, "the grace period still applies"


def test_fenced_broker_evidence_is_not_registered() -> None:
    rows = [broker(1, "a"), broker(2, "b", alive=False, registered=False), broker(3, "c")]
    f = one(run(snapshot(rows)), RuleName.BROKER_DOWN)
    assert f.evidence["down_evidence"] == "not registered"


def test_grace_zero_acts_on_first_sight_other_graces_strictly_after() -> None:
    assert beyond_grace(0.0, 0.0)
    assert not beyond_grace(300.0, 300.0) and beyond_grace(300.5, 300.0)
    rows = [broker(1, "a"), _refused(2, "b"), broker(3, "c")]
    f = one(run(snapshot(rows), HealthPolicy(dead_broker_grace_s=0)), RuleName.BROKER_DOWN)
    assert f.evidence["seconds_down"] == 0.0
    assert f.action is Action.HEAL_DEAD_BROKER and f.severity is Severity.CRITICAL
    f = one(run(snapshot(rows), HealthPolicy(dead_broker_grace_s=5)), RuleName.BROKER_DOWN)
    assert f.action is Action.NONE
    ev = run(snapshot(rows), HealthPolicy(dead_broker_grace_s=5), down_since={2: T0 - timedelta(seconds=6)})
    assert one(ev, RuleName.BROKER_DOWN).action is Action.HEAL_DEAD_BROKER


def test_two_refused_brokers_count_toward_mass_failure() -> None:
    rows = [broker(1, "a"), _refused(2, "b"), _refused(3, "c"), broker(4, "a")]
    ev = run(snapshot(rows), HealthPolicy(mass_failure_max_brokers=1, dead_broker_grace_s=0))
    assert one(ev, RuleName.MASS_FAILURE).brokers == (2, 3)
    assert not ev.automation_allowed


# ---------------------------------------------------------------------------------- safety guards


def test_effective_isr_drops_every_down_member() -> None:
    assert effective_isr((1, 2, 3), {2}) == (1, 3)
    # Issue 14, defect 2: a down broker never holds the surviving copy, even as the last member
    # (removal_impact still counts removing it as losing a copy: see the test below).
    assert effective_isr((2,), {2}) == ()
    assert effective_isr((2, 3), {2, 3}) == ()
    assert effective_isr((1, 2), set()) == (1, 2)


def _cluster(*parts: dict) -> object:
    rows = [broker(1, "a"), broker(2, "b"), _refused(3, "c"), broker(4, "a"), broker(5, "b"), broker(6, "c")]
    return snapshot(rows, list(parts))


def test_down_broker_ids_reads_alive_false_only() -> None:
    snap = _cluster(part("t", 0, [1, 2, 3]))
    assert down_broker_ids(snap) == {3}
    rows = [broker(1, "a", alive=None), broker(2, "b", alive=float("nan")), broker(3, "c", alive=False)]
    assert down_broker_ids(snapshot(rows, [])) == {3}, "unknown liveness is not down"


def test_stale_isr_of_a_refused_broker_does_not_make_wiping_a_healthy_one_look_safe() -> None:
    # metadata still says ISR {1, 3, 5}; 3 is refused (crashed, not fenced yet), min ISR 2
    snap = _cluster(part("t", 0, [1, 3, 5]))
    impact = removal_impact(snap, [1])
    assert impact.under_min_isr == [("t", 0)], "only 5 would be left in sync, not {3, 5}"
    assert impact.stale_isr_brokers == (3,)
    assert not impact.safe


def test_replacing_the_refused_broker_itself_is_judged_as_after_its_fencing() -> None:
    # ISR {1, 3, 5} with 3 crashed: the controller will drop 3 and keep {1, 5}; wiping 3 loses no live copy
    snap = _cluster(part("t", 0, [1, 3, 5]), part("t", 1, [3, 2, 4], isr=[3, 2]))
    assert removal_impact(snap, [3]).safe
    # but if the refused broker is the ONLY in-sync replica, its disk may hold the last copy: refused
    snap = _cluster(part("t", 0, [3, 2, 4], isr=[3]))
    assert removal_impact(snap, [3]).offline == [("t", 0)]
    # and with every in-sync replica down, the others do not count as a safe remainder either
    rows = [broker(1, "a"), broker(2, "b"), _refused(3, "c"), _refused(4, "a")]
    snap = snapshot(rows, [part("t", 0, [3, 4, 1], isr=[3, 4])])
    assert removal_impact(snap, [3]).offline == [("t", 0)], "4 is down: no live in-sync copy would be left"


def test_two_crashed_brokers_replacing_the_first_is_not_blocked_by_the_second() -> None:
    # {2, 6, 1}: 2 and 6 crashed (refused); 1 is the only live in-sync replica, as after both fencings
    rows = [broker(1, "a"), _refused(2, "b"), broker(3, "c"), broker(4, "a"), broker(5, "b"), _refused(6, "c")]
    snap = snapshot(rows, [part("t", 0, [2, 6, 1])])
    assert removal_impact(snap, [2]).safe


def test_plan_validation_keeps_a_live_in_sync_replica() -> None:
    # ISR {3, 5} in metadata, 3 refused: a plan keeping 3 but dropping 5 keeps no live in-sync copy
    snap = _cluster(part("t", 0, [3, 5, 1], isr=[3, 5]))
    bad = Move("t", 0, (3, 5, 1), (3, 2, 1))
    assert any("no current in-sync replica remains" in v for v in validate_plan(snap, [bad]))
    good = Move("t", 0, (3, 5, 1), (4, 5, 1))
    assert not any("in-sync" in v for v in validate_plan(snap, [good]))
