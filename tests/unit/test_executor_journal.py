"""The journal's compact encoding: round trip, the 5000-character limit, and bad stored values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
import pytest

from kafka_medic.errors import CoordinationError
from kafka_medic.executor.journal import (
    JOURNAL_MAX_CHARS,
    Journal,
    JournalTooLarge,
    SizeBudget,
    check_fits,
    decode,
    encode,
    encoded_size,
    fits,
    memory_journal_store,
)
from kafka_medic.executor.throttles import ThrottleSet, needed_for
from kafka_medic.planner import Move

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def journal(moves: list[Move], owned: ThrottleSet | None = None) -> Journal:
    if owned is None:
        owned = needed_for(moves, alive=range(1, 100))
    return Journal("prod-a", "run-1", "alice", NOW, 5_000_000, tuple(moves), owned)


def test_round_trip_keeps_moves_and_owned_throttles() -> None:
    moves = [Move("orders", 3, (4, 2, 3), (1, 2, 3)), Move("pay.v2", 0, (1, 5, 6), (1, 2, 6))]
    j = journal(moves)
    raw = json.loads(json.dumps(encode(j)))
    back = decode(raw, "prod-a")
    assert back == j


def test_entries_that_were_already_there_are_remembered_as_not_ours() -> None:
    moves = [Move("orders", 3, (4, 2, 3), (1, 2, 3))]
    full = needed_for(moves, alive={1, 2, 3})
    owned = full - ThrottleSet(leader_replicas=frozenset({("orders", 3, 2)}))
    back = decode(encode(journal(moves, owned)), "prod-a")
    assert back.owned == owned
    assert ("orders", 3, 2) not in back.owned.leader_replicas


def test_owning_entries_of_unlisted_moves_is_a_bug() -> None:
    with pytest.raises(ValueError, match="does not list"):
        encode(journal([], ThrottleSet(follower_replicas=frozenset({("t", 0, 1)}))))


def test_representation_is_compact() -> None:
    moves = [Move(f"topic-{i // 10:03d}", i % 10, (4, 2, 3), (1, 2, 3)) for i in range(200)]
    j = journal(moves)
    size = encoded_size(j)
    assert size < JOURNAL_MAX_CHARS, size
    assert size / len(moves) < 25, "per-topic strings, throttle entries derived, not stored"


def test_too_large_fails_clearly() -> None:
    moves = [Move(f"a-very-long-topic-name-{i:05d}", 0, (101, 102, 103), (104, 102, 103)) for i in range(400)]
    j = journal(moves)
    assert not fits(j)
    with pytest.raises(JournalTooLarge, match="5000-character"):
        check_fits(j)
    store = memory_journal_store()
    with pytest.raises(JournalTooLarge):
        anyio.run(store.save, j)
    assert store.store.values == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", [None, "text", {"v": 99}, {"v": 1, "run": "r"}, {"v": 1, "m": {"t": "x=1/2"}}])
def test_decode_refuses_what_it_did_not_write(raw: object) -> None:
    with pytest.raises(ValueError):
        decode(raw, "prod-a")


def test_unreadable_stored_journal_is_refused() -> None:
    store = memory_journal_store()
    store.store.values["kafka_medic__prod-a__reassign_journal"] = '{"v": 99}'  # type: ignore[attr-defined]
    with pytest.raises(CoordinationError, match="unreadable reassignment journal"):
        anyio.run(store.load, "prod-a")


def test_memory_store_round_trip() -> None:
    store = memory_journal_store()
    j = journal([Move("t", 0, (1, 2, 3), (4, 2, 3))])

    async def go() -> None:
        assert await store.load("prod-a") is None
        await store.save(j)
        assert await store.load("prod-a") == j
        await store.clear("prod-a")
        assert await store.load("prod-a") is None

    anyio.run(go)


def test_journal_edits() -> None:
    a, b = Move("t", 0, (1, 2, 3), (4, 2, 3)), Move("t", 1, (1, 2, 3), (4, 2, 3))
    j = journal([a]).with_moves([b])
    assert j.keys == {("t", 0), ("t", 1)}
    assert j.without_moves([("t", 0)]).keys == {("t", 1)}
    assert Journal("c", "r", "x", NOW, 1).empty


def test_size_budget_never_underestimates_and_stops_before_the_limit() -> None:
    start = journal([Move("already", 0, (1, 2, 3), (4, 2, 3))])
    budget = SizeBudget(start, alive=range(1, 400))
    taken: list[Move] = []
    for i in range(2000):
        m = Move(f"topic-{i % 37}", i, (i % 300 + 1, 301, 302), (i % 300 + 2, 301, 302))
        if not budget.try_add(m):
            break
        taken.append(m)
    assert 50 < len(taken) < 2000, "the budget stopped the batch"
    grown = start.with_moves(taken)
    grown = grown.with_owned(grown.owned | needed_for(taken, alive=range(1, 400)))
    assert encoded_size(grown) <= budget.used <= JOURNAL_MAX_CHARS, (encoded_size(grown), budget.used)
    check_fits(grown)
