"""Throttle computations: exactly the moving replicas, never what someone else set."""

from __future__ import annotations

from kafka_medic.executor.throttles import (
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
    WILDCARD,
    ConfigOp,
    CurrentThrottles,
    ThrottleSet,
    group_entries,
    needed_for,
    parse_entries,
    plan_additions,
    plan_removals,
)
from kafka_medic.planner import Move

RATE = 5_000_000


def test_needed_covers_old_replicas_as_leaders_and_added_as_followers() -> None:
    moves = [Move("t", 0, (4, 2, 3), (1, 2, 3)), Move("u", 1, (2, 3, 5), (2, 3, 6))]
    n = needed_for(moves, alive={1, 2, 3, 5, 6})  # broker 4 is dead
    assert n.leader_replicas == {("t", 0, 4), ("t", 0, 2), ("t", 0, 3), ("u", 1, 2), ("u", 1, 3), ("u", 1, 5)}
    assert n.follower_replicas == {("t", 0, 1), ("u", 1, 6)}
    assert n.leader_rate == {2, 3, 5}, "a dead broker gets no config request"
    assert n.follower_rate == {1, 6}


def test_a_pure_reorder_needs_no_throttle() -> None:
    assert not needed_for([Move("t", 0, (1, 2, 3), (2, 1, 3))], alive={1, 2, 3})


def test_additions_on_a_clean_cluster_set_rates_and_append_entries() -> None:
    needed = needed_for([Move("t", 0, (1, 2, 3), (4, 2, 3))], alive={1, 2, 3, 4})
    adds = plan_additions(needed, ThrottleSet(), CurrentThrottles(), RATE)
    assert adds.to_set == needed and not adds.foreign
    ops = {(o.resource, o.name, o.config, o.op): o.value for o in adds.ops}
    assert ops[("broker", "1", LEADER_RATE, "SET")] == str(RATE)
    assert ops[("broker", "4", FOLLOWER_RATE, "SET")] == str(RATE)
    assert ops[("topic", "t", LEADER_REPLICAS, "APPEND")] == "0:1,0:2,0:3"
    assert ops[("topic", "t", FOLLOWER_REPLICAS, "APPEND")] == "0:4"
    assert all(o.op in ("SET", "APPEND") for o in adds.ops), "never a blind overwrite of a list"


def test_preexisting_throttles_are_foreign_and_never_recorded_as_ours() -> None:
    needed = needed_for([Move("t", 0, (1, 2, 3), (4, 2, 3)), Move("w", 0, (1, 2, 3), (1, 2, 6))], alive=range(1, 7))
    current = CurrentThrottles(
        broker_rates={(1, LEADER_RATE): 1_000_000},  # an operator's own rate on broker 1
        topic_replicas={
            ("t", LEADER_REPLICAS): frozenset({("t", 0, 2), ("t", 7, 1)}),
            ("w", FOLLOWER_REPLICAS): WILDCARD,  # everything on w is already throttled
        },
    )
    adds = plan_additions(needed, ThrottleSet(), current, RATE)
    assert 1 not in adds.to_set.leader_rate and 1 in adds.foreign.leader_rate
    assert adds.foreign_rates == {(1, LEADER_RATE): 1_000_000}
    assert ("t", 0, 2) not in adds.to_set.leader_replicas
    assert ("w", 0, 6) in adds.foreign.follower_replicas and ("w", 0, 6) not in adds.to_set.follower_replicas
    appended = {o.name + o.config: o.value for o in adds.ops if o.op == "APPEND"}
    assert appended["t" + LEADER_REPLICAS] == "0:1,0:3"
    assert not any(o.name == "w" and o.config == FOLLOWER_REPLICAS for o in adds.ops), "no APPEND onto '*'"
    assert not any(o.resource == "broker" and o.name == "1" and o.config == LEADER_RATE for o in adds.ops)


def test_removal_subtracts_only_our_entries_and_deletes_an_emptied_list() -> None:
    owned = ThrottleSet(
        leader_rate=frozenset({1}),
        follower_rate=frozenset({4}),
        leader_replicas=frozenset({("t", 0, 1), ("t", 0, 2)}),
        follower_replicas=frozenset({("t", 0, 4)}),
    )
    current = CurrentThrottles(
        broker_rates={(1, LEADER_RATE): RATE, (4, FOLLOWER_RATE): RATE},
        topic_replicas={
            ("t", LEADER_REPLICAS): frozenset({("t", 0, 1), ("t", 0, 2), ("t", 9, 9)}),  # 9:9 is someone else's
            ("t", FOLLOWER_REPLICAS): frozenset({("t", 0, 4)}),
        },
    )
    rem = plan_removals(owned, ThrottleSet(), current, RATE)
    assert rem.released == owned
    ops = {(o.resource, o.name, o.config): (o.op, o.value) for o in rem.ops}
    assert ops[("topic", "t", LEADER_REPLICAS)] == ("SUBTRACT", "0:1,0:2")
    assert ops[("topic", "t", FOLLOWER_REPLICAS)] == ("DELETE", None)
    assert ops[("broker", "1", LEADER_RATE)] == ("DELETE", None)
    assert ops[("broker", "4", FOLLOWER_RATE)] == ("DELETE", None)


def test_removal_keeps_what_a_running_move_needs() -> None:
    running = Move("t", 1, (1, 2, 3), (4, 2, 3))
    done = Move("t", 0, (1, 2, 3), (5, 2, 3))
    owned = needed_for([running, done], alive=range(1, 7))
    keep = needed_for([running], alive=range(1, 7))
    current = CurrentThrottles(
        broker_rates={(b, c): RATE for b in owned.leader_rate for c in [LEADER_RATE]}
        | {(b, FOLLOWER_RATE): RATE for b in owned.follower_rate},
        topic_replicas={
            ("t", LEADER_REPLICAS): owned.leader_replicas,
            ("t", FOLLOWER_REPLICAS): owned.follower_replicas,
        },
    )
    rem = plan_removals(owned, keep, current, RATE)
    assert rem.released == owned - keep
    assert not (rem.released & keep), "nothing a running move needs is released"
    assert ConfigOp("broker", "5", FOLLOWER_RATE, "DELETE") in rem.ops
    assert not any(o.name in ("1", "2", "3", "4") for o in rem.ops if o.resource == "broker")
    sub = next(o for o in rem.ops if o.config == LEADER_REPLICAS)
    assert (sub.op, sub.value) == ("SUBTRACT", "0:1,0:2,0:3")


def test_a_rate_changed_by_someone_else_is_left_alone() -> None:
    owned = ThrottleSet(leader_rate=frozenset({1, 2}))
    current = CurrentThrottles(broker_rates={(1, LEADER_RATE): 123, (2, LEADER_RATE): RATE})
    rem = plan_removals(owned, ThrottleSet(), current, RATE)
    assert [o.name for o in rem.ops] == ["2"]
    assert rem.released == owned, "it stops being ours either way"
    assert "broker 1" in rem.changed_by_others[0]


def test_entries_round_trip_through_the_config_format() -> None:
    entries = frozenset({("t", 0, 1), ("t", 10, 2), ("t", 2, 3)})
    text = group_entries(entries)["t"]
    assert text == "0:1,2:3,10:2"
    assert parse_entries("t", text) == entries
    assert parse_entries("t", "") == frozenset()
