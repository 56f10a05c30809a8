"""kafka_medic.state: every persisted record's encoding and the typed per-cluster view, on the memory store
(the Prefect Variables adapter is tested against a real server in tests/tasks/test_state_variables.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kafka_medic.errors import CoordinationError
from kafka_medic.monitor.collector import KnownBroker
from kafka_medic.naming import limit_name, mutate_limit_name, replace_limit_name, variable_name
from kafka_medic.state import ClusterState, MemoryStore, parse_refs, remaining_cooldown


def run(coro):
    return asyncio.run(coro)


def state(cluster: str = "prod-a") -> ClusterState:
    return ClusterState(MemoryStore(), cluster)


def test_names() -> None:
    assert mutate_limit_name("prod-a") == "kafka-medic-mutate-prod-a" == limit_name("prod-a")
    assert replace_limit_name("prod-a") == "kafka-medic-replace-prod-a"
    last = variable_name("prod-a", "replace_broker", "last_success")
    assert last == "kafka_medic__prod-a__replace_broker__last_success"
    with pytest.raises(ValueError, match="cluster name"):
        mutate_limit_name("Prod_A")
    with pytest.raises(ValueError, match="free of '__'"):
        variable_name("prod-a", "a__b")


def test_cooldown_round_trip() -> None:
    s = state()
    assert run(s.last_success("replace_broker")) is None
    assert run(s.cooldown_remaining("replace_broker", 1800)) == 0.0
    when = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    run(s.record_success("replace_broker", when))
    assert run(s.last_success("replace_broker")) == when
    assert run(s.cooldown_remaining("replace_broker", 1800, when + timedelta(seconds=600))) == pytest.approx(1200)
    assert run(s.cooldown_remaining("replace_broker", 1800, when + timedelta(hours=1))) == 0.0
    # Another action of the same cluster has its own clock; another cluster sees nothing.
    assert run(s.last_success("preferred-election")) is None
    assert run(ClusterState(s.store, "prod-b").last_success("replace_broker")) is None
    # Overwrite, and a non-UTC zone is normalized to UTC.
    later = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
    run(s.record_success("replace_broker", later.astimezone(ZoneInfo("Asia/Tokyo"))))
    stored = run(s.last_success("replace_broker"))
    assert stored == later and stored is not None and stored.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        run(s.record_success("replace_broker", datetime(2025, 1, 1)))
    for bad in ("Replace Broker", "a__b"):
        with pytest.raises(ValueError, match="action"):
            run(s.last_success(bad))


def test_remaining_cooldown_rules() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert remaining_cooldown(None, 60, now) == 0.0
    assert remaining_cooldown(now - timedelta(seconds=10), 60, now) == 50.0
    assert remaining_cooldown(now - timedelta(seconds=100), 60, now) == 0.0
    # A "last success" in the future (clock skew) counts as just now: the safe side.
    assert remaining_cooldown(now + timedelta(seconds=30), 60, now) == 60.0
    with pytest.raises(ValueError):
        remaining_cooldown(None, -1, now)


def test_corrupt_stored_values_are_refused_not_guessed() -> None:
    s = state()
    s.store.values[s.name("replace_broker", "last_success")] = '"yesterday"'
    with pytest.raises(CoordinationError, match="holds an invalid value"):
        run(s.cooldown_remaining("replace_broker", 60))
    s.store.values[s.name("down_since")] = '{"version": 1, "since": {"2025-01-01T00:00:00+00:00": ["x"]}}'
    with pytest.raises(CoordinationError, match="not a list of ints"):
        run(s.down_since())
    s.store.values[s.name("maintenance")] = '{"on": true}'
    with pytest.raises(CoordinationError, match="by: Field required"):
        run(s.maintenance())


def test_down_since_round_trip_and_size() -> None:
    s = state()
    assert run(s.down_since()) == {}
    t1 = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    t2 = t1 + timedelta(seconds=42.5)
    for mapping in ({3: t1, 1: t1, 7: t2}, {7: t2}, {}):
        run(s.save_down_since(mapping))
        assert run(s.down_since()) == mapping
    # A mass failure seen in one pass fits in one value (grouped by time) ...
    many = {b: t1 for b in range(1000)}
    run(s.save_down_since(many))
    assert run(s.down_since()) == many
    # ... 400 brokers down at 400 different times does not, and says so (the server would refuse it).
    with pytest.raises(CoordinationError, match="cannot store variable"):
        run(s.save_down_since({b: t1 + timedelta(seconds=b) for b in range(400)}))
    with pytest.raises(ValueError, match="timezone-aware"):
        run(s.save_down_since({1: datetime(2025, 1, 1)}))
    with pytest.raises(ValueError, match="broker ids"):
        run(s.save_down_since({-1: t1}))


def test_maintenance_round_trip() -> None:
    s = state()
    assert run(s.maintenance()) is None and not run(s.in_maintenance())
    on = run(s.set_maintenance(True, "rolling upgrade to 4.1", "alice"))
    assert run(s.maintenance()) == on and (on.on, on.reason, on.by) == (True, "rolling upgrade to 4.1", "alice")
    assert run(s.in_maintenance())
    run(s.set_maintenance(False, "", "bob"))
    off = run(s.maintenance())
    assert off is not None and not off.on and off.by == "bob" and not run(s.in_maintenance())
    with pytest.raises(ValueError, match="reason is required"):
        run(s.set_maintenance(True, "  ", "alice"))
    with pytest.raises(ValueError, match="'by'"):
        run(s.set_maintenance(False, "", ""))


def test_known_brokers_round_trip_drops_unreadable_entries() -> None:
    s = state()
    known = {1: KnownBroker(1, "h1", 9092, "az-a"), 2: KnownBroker(2, "h2", 9093, None)}
    run(s.save_known_brokers(known))
    assert run(s.known_brokers()) == known
    s.store.values[s.name("known_brokers")] = '{"brokers": [{"broker_id": 1, "host": "h", "port": 1}, {"x": 1}]}'
    assert list(run(s.known_brokers())) == [1]


def test_drain_undo_small_and_chunked() -> None:
    s = state()
    assert run(s.undo("drain", 4)) is None
    small = [("t", 0, (4, 1, 2), (3, 1, 2))]
    assert run(s.save_undo("drain", 4, small, "run-1")) == f"variable {s.name('drain_rollback', '4')}"
    assert run(s.undo("drain", 4)) == small
    # Thousands of partitions: split over part values, read back whole, cleared whole.
    big = [(f"topic-{i % 7}", i, (4, 1, 2), (5, 1, 2)) for i in range(3000)]
    where = run(s.save_undo("drain", 4, big, "run-2"))
    assert where.startswith(f"variable {s.name('drain_rollback', '4')} (+") and where.endswith(" parts)")
    assert run(s.undo("drain", 4)) == big
    assert all(len(v) <= 5000 for v in s.store.values.values())
    run(s.clear_undo("drain", 4))
    assert run(s.undo("drain", 4)) is None and not [k for k in s.store.values if "drain_rollback" in k]


def test_notification_refs_are_parsed_leniently() -> None:
    assert parse_refs(None) == []
    assert parse_refs("slack-webhook/oncall, custom-webhook/pd ,") == ["slack-webhook/oncall", "custom-webhook/pd"]
    assert parse_refs(["slack-webhook/oncall", "Not A Ref", "slack-webhook/oncall"]) == ["slack-webhook/oncall"]
    assert parse_refs({"blocks": ["a-b/c"]}) == ["a-b/c"]
    assert parse_refs(42) == []
    s = state()
    s.store.values[s.notify_variable()] = '["slack-webhook/oncall"]'
    assert run(s.notify_refs()) == ["slack-webhook/oncall"]


def test_memory_store_enforces_the_servers_size_limit() -> None:
    with pytest.raises(CoordinationError, match="over 5000"):
        run(MemoryStore().put("x", "y" * 6000, tags=[]))


def test_scores_of_a_big_cluster_are_kept_in_parts_and_read_back_whole() -> None:
    from kafka_medic.judgment import BrokerScore, Scores

    s = state()
    big = Scores(observed_at=None, brokers={b: BrokerScore(score=b % 7, baseline={"produce_p99_ms": 5.0 + b},
                                                             samples=10) for b in range(2000)})  # fmt: skip
    where = run(s.save_scores(big))
    assert where.endswith(" parts)") and all(len(v) <= 5000 for v in s.store.values.values())
    assert run(s.scores()) == big
    small = Scores(brokers={1: BrokerScore(score=1)})
    assert run(s.save_scores(small)) == f"variable {s.name('scores')}"
    assert run(s.scores()) == small and not [k for k in s.store.values if "__part" in k], "no stale parts left"
    # a torn read (a part from another write) is refused, never guessed
    run(s.save_scores(big))
    s.store.values[s.name("scores") + "__part1"] = '{"gen": "other", "text": "x"}'
    with pytest.raises(CoordinationError, match="part 1 is missing or from another write"):
        run(s.scores())
