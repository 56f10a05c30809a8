"""kafka_medic.heal: restart before wipe -- the host side is the second signal before a destructive step."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from kafka_medic.heal import (
    controller_view_missing,
    isr_verdict,
    refusal_reasons,
    restart_first,
    second_look_needed,
    stand_down_reasons,
    two_looks,
)
from kafka_medic.replacers.base import UNKNOWN_HOST, HostState
from kafka_medic.rules import Evaluation
from kafka_medic.snapshot import ClusterSnapshot
from tests.unit.rules_helpers import broker, brokers, controller_row, part, run, snapshot

DEAD = {"broker_id": 3, "alive": False, "metrics_ok": False}  # crashed: not registered, exporter silent
HUNG = {"broker_id": 3, "alive": False, "metrics_ok": True}  # fenced, but its JVM still answers
THERE = HostState(True, True, False, "instance running, data volume in-use")


@pytest.mark.parametrize(
    ("row", "host", "restarted", "can", "expected", "why"),
    [
        (DEAD, THERE, False, True, True, "host and disk are still there"),
        (HUNG, UNKNOWN_HOST, False, True, True, "may only be hung"),
        (DEAD, UNKNOWN_HOST, False, True, True, "cannot be seen"),
        (DEAD, HostState(True, False, None, "data dir missing"), False, True, False, "disk is gone"),
        (DEAD, HostState(False, None, None, "terminated"), False, True, False, "host is gone"),
        (DEAD, HostState(True, True, True, "status checks impaired"), False, True, False, "reports a fault"),
        (DEAD, THERE, True, True, False, "restarted recently"),
        (DEAD, THERE, False, False, False, "cannot restart"),
    ],
)  # fmt: skip
def test_restart_first_unless_the_disk_or_host_is_gone_or_it_was_just_tried(
    row: dict, host: HostState, restarted: bool, can: bool, expected: bool, why: str
) -> None:
    go, reason = restart_first(row, host, supports_restart=can, restarted_recently=restarted)
    assert go is expected and why in reason, reason


# ---------------------------------------------------------------- the guard: stand down, look twice
STALE = "2020-01-01T00:00:00+00:00"


def _ev(snap: ClusterSnapshot, down: dict[int, str] | None = None) -> Evaluation:
    return run(snap, down_since={b: datetime.fromisoformat(t) for b, t in (down or {}).items()})


def test_no_active_controller_stands_a_wipe_and_a_restart_down() -> None:
    gone = [controller_row(100, float("nan"), ok=False)]  # its exporter cannot be scraped
    snap = snapshot([*brokers(2), broker(3, "c", alive=False)], controller=gone)
    ev = _ev(snap, {3: STALE})
    for wipe in (True, False):
        reasons = stand_down_reasons(ev, 3, wipe=wipe)
        assert len(reasons) == 1 and "controller" in reasons[0] and "could not register" in reasons[0], reasons


def test_the_only_copy_of_offline_partitions_stands_a_wipe_down_but_not_a_restart() -> None:
    parts = [part("a", 0, [3, 1, 2], isr=[3], leader=-1), part("a", 1, [1, 2, 3], isr=[1, 2])]
    ev = _ev(snapshot([*brokers(2), broker(3, "c", alive=False)], parts), {3: STALE})
    assert "only in-sync copy of 1 offline partition(s) (a-0)" in stand_down_reasons(ev, 3)[0]
    assert stand_down_reasons(ev, 3, wipe=False) == []  # its disk is what brings them back
    assert stand_down_reasons(ev, 1) == []


def test_unknown_min_isr_refuses_instead_of_assuming_the_default() -> None:
    parts = [part("a", 0, [1, 2, 3]), {**part("b", 0, [1, 2, 3]), "min_isr": float("nan")}]
    snap = snapshot([*brokers(3)], parts)
    reasons, partitions = refusal_reasons(snap, _ev(snap), 1)
    assert partitions == ["b-0"]
    assert any("min.insync.replicas of 1 partition(s) losing a replica is unknown" in r for r in reasons), reasons
    # known min ISR everywhere: a healthy RF-3 / min-ISR-2 cluster may lose one broker
    ok = snapshot([*brokers(3)], [part("a", 0, [1, 2, 3]), part("b", 0, [1, 2, 3])])
    assert refusal_reasons(ok, _ev(ok), 1) == ([], [])


def test_min_isr_not_read_in_this_look_refuses() -> None:
    snap = snapshot()
    snap.configs_fresh = False  # DescribeConfigs failed: the values are an earlier pass's or assumed
    reasons, _ = refusal_reasons(snap, _ev(snap), 1)
    assert any("stale or assumed" in r for r in reasons), reasons


def test_a_broker_the_controller_no_longer_lists_is_not_counted_in_sync() -> None:
    """Frozen broker 2: Metadata still lists it (alive in the snapshot) and in every ISR, but the
    controller's registration list (DescribeCluster) has dropped it. Wiping broker 1 would leave
    partition a-0 with only broker 3 in sync: below min ISR 2."""
    snap = snapshot(brokers(3), [part("a", 0, [1, 2, 3])])
    ev = _ev(snap)
    assert refusal_reasons(snap, ev, 1) == ([], [])  # one look at Metadata alone: "safe"
    assert refusal_reasons(snap, ev, 1, registered={1, 2, 3}) == ([], [])
    reasons, partitions = refusal_reasons(snap, ev, 1, registered={1, 3})
    assert partitions == ["a-0"] and any("below min.insync.replicas" in r for r in reasons), reasons
    assert any("[2] answer metadata but are not registered" in r for r in reasons), reasons


def test_refusal_when_the_registration_list_is_required_but_unreadable() -> None:
    snap = snapshot()
    reasons, _ = refusal_reasons(snap, _ev(snap), 1, registered=None, check_registered=True)
    assert reasons == ["the controller's list of registered brokers could not be read"]


def test_two_looks_go_only_when_both_are_clear() -> None:
    assert two_looks(([], []), ([], [])) == ([], [])
    assert two_looks((["first saw a-0 short"], ["a-0"]), ([], [])) == (["first saw a-0 short"], ["a-0"])
    assert two_looks(([], []), (["frozen broker 2"], ["a-1"])) == (["frozen broker 2"], ["a-1"])
    assert two_looks((["x"], ["a-0"]), (["y", "x"], ["a-0"])) == (["y", "x"], ["a-0"])


def test_isr_verdict_while_another_broker_is_down() -> None:
    parts = pd.DataFrame(
        {
            "topic": ["a", "a", "a", "b"],
            "partition": [0, 1, 2, 0],
            "replicas": [(1, 2, 3), (1, 2, 3), (1, 3, 4), (2, 3, 4)],
            "isr": [(1, 2), (1, 2, 3), (3, 4), (2, 3)],
        }
    )
    verdict, short = isr_verdict(parts, 1, down={3})
    assert short == ["a-2"] and "short of a live replica" in verdict  # broker 1 itself is missing from a-2
    verdict, short = isr_verdict(parts.iloc[:2], 1, down={3})
    assert short == [] and "wait only for down broker(s) [3]" in verdict and "a-0" in verdict
    assert isr_verdict(parts.iloc[1:2], 1, down=set()) == ("full ISR", [])


def test_only_a_dead_brokers_restart_with_its_disk_skips_the_second_look() -> None:
    dead = {"alive": False, "metrics_ok": False}
    assert not second_look_needed(dead, restart=True), "a restart of a dead broker takes no live copy away"
    assert second_look_needed(dead, restart=False), "a wipe always looks twice"
    assert second_look_needed({"alive": True, "metrics_ok": False}, restart=True), "registered: may be hung"
    assert second_look_needed({"alive": False, "metrics_ok": True}, restart=True), "fenced but its JVM answers"


def test_a_wipe_waits_for_a_look_that_read_the_controllers_registrations() -> None:
    assert controller_view_missing(True, True) == [] and controller_view_missing(False, True) == []
    assert controller_view_missing(True, False) == []
    assert controller_view_missing(False, False) == [
        "the controller's list of registered brokers could not be read on either look (try again)"
    ]
