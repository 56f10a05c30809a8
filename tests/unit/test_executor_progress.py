"""Progress, ISR shortfalls, cancel safety and transient-error classification (pure parts)."""

from __future__ import annotations

import concurrent.futures
import math
from typing import Any

import kafka.errors as kerrors
import pandas as pd
import pytest
from confluent_kafka import KafkaError, KafkaException

from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.executor.cancel import plan_cancel, revert_is_unclean
from kafka_medic.executor.cluster_ops import ClusterState
from kafka_medic.executor.isr import capped, describe_shortfalls, select, shortfalls
from kafka_medic.executor.progress import MoveState, classify, copy_bytes, divergence_reason, measure
from kafka_medic.executor.reassign import ExecutionOptions, ForeignReassignment, precheck
from kafka_medic.executor.transient import TransientKafkaError, is_transient, retry_on_transient
from kafka_medic.planner import Move
from kafka_medic.snapshot import ClusterSnapshot


def parts(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])


def test_classify_done_running_diverged() -> None:
    a = Move("t", 0, (4, 2, 3), (1, 2, 3))
    b = Move("t", 1, (4, 2, 3), (1, 2, 3))
    c = Move("t", 2, (4, 2, 3), (1, 2, 3))
    states = classify([a, b, c], {("t", 1)}, {("t", 0): (1, 2, 3), ("t", 1): (1, 2, 3, 4), ("t", 2): (4, 2, 3)})
    assert states == {("t", 0): MoveState.DONE, ("t", 1): MoveState.RUNNING, ("t", 2): MoveState.DIVERGED}
    assert "on the original replicas [4, 2, 3]: never submitted" in divergence_reason(c, (4, 2, 3))
    assert "no longer exists" in divergence_reason(c, None)


def test_bytes_remaining_counts_pending_and_the_uncopied_rest_of_running_moves() -> None:
    run = Move("t", 0, (4, 2, 3), (1, 2, 3))
    wait = Move("t", 1, (4, 2, 3), (1, 5, 3))  # two replicas added
    sizes = {("t", 0): 100.0, ("t", 1): 50.0}
    assert copy_bytes(wait, sizes) == 100.0
    p = measure(
        total=3, done=1, failed=0, running=[run], pending=[wait], all_moves=[run, wait], sizes=sizes,
        copied={("t", 0, 1): 30.0}, elapsed_s=5.0,
    )  # fmt: skip
    assert p.bytes_total == 200.0
    assert p.bytes_remaining == 100.0 + 70.0
    assert math.isclose(p.fraction, 1 / 3)
    assert "1/3 partitions moved" in p.line()


def test_shortfalls_name_leaderless_short_and_under_min_isr() -> None:
    df = parts(
        [
            ("a", 0, 1, (1, 2, 3), (1, 2, 3), 2),
            ("a", 1, 1, (1, 2, 3), (1, 2), 2),
            ("a", 2, -1, (1, 2, 3), (), 2),
            ("b", 0, 2, (2, 3), (2,), 2),
        ]
    )
    out = shortfalls(df)
    assert [s.name for s in out] == ["a-1", "a-2", "b-0"]
    assert out[0].missing == (3,) and out[0].problems == ("ISR short",)
    assert "no leader" in out[1].problems
    assert any("under min ISR" in p for p in out[2].problems)
    text = describe_shortfalls(out, limit=2)
    assert text.startswith("3 partition(s)") and "... and 1 more" in text


def test_select_filters() -> None:
    df = parts([("a", 0, 1, (1, 2, 3), (1, 2, 3), 2), ("b", 0, 4, (4, 5, 6), (4, 5, 6), 2)])
    assert list(select(df, brokers=[5])["topic"]) == ["b"]
    assert list(select(df, topics=["a"])["topic"]) == ["a"]
    assert list(select(df, keys=[("b", 0)])["topic"]) == ["b"]
    assert len(select(df)) == 2


def test_capped_names() -> None:
    assert capped(["a", "b", "c"], limit=2) == "a, b ... and 1 more"


def state(partitions: list[tuple], reassigning: list[tuple]) -> ClusterState:
    r = pd.DataFrame(reassigning, columns=["topic", "partition", "replicas", "adding", "removing"])
    return ClusterState(frozenset(range(1, 7)), parts(partitions), r)


def test_cancel_is_refused_when_no_original_replica_is_in_sync() -> None:
    s = state(
        [("t", 0, 4, (4, 5, 6, 1, 2, 3), (4, 5, 6), 2), ("t", 1, 2, (1, 2, 3, 4), (2, 3), 2)],
        [("t", 0, (4, 5, 6, 1, 2, 3), (4, 5, 6), (1, 2, 3)), ("t", 1, (4, 2, 3, 1), (4,), (1,))],
    )
    plan = plan_cancel([("t", 0), ("t", 1), ("t", 2)], s)
    assert plan.safe == [("t", 1)]
    assert list(plan.unsafe) == [("t", 0)] and "original replicas [1, 2, 3]" in plan.unsafe[("t", 0)]
    assert plan.not_in_progress == [("t", 2)]
    assert revert_is_unclean((1, 2, 3), (4, 5, 6)) and not revert_is_unclean((1, 2, 3), (3,))


def snapshot_with(reassigning: list[tuple]) -> ClusterSnapshot:
    brokers = pd.DataFrame(
        {"broker_id": [1, 2, 3, 4], "rack": ["a", "b", "c", "a"], "alive": [True, True, True, False]}
    )
    p = parts([("t", 0, 2, (4, 2, 3), (2, 3), 2), ("t", 1, 2, (1, 2, 3), (1, 2, 3), 2)])
    r = pd.DataFrame(reassigning, columns=["topic", "partition", "replicas", "adding", "removing"])
    return ClusterSnapshot("c", brokers, p, reassignments=r)


def test_precheck_drops_moves_in_place_and_refuses_foreign_and_unsafe() -> None:
    good = Move("t", 0, (4, 2, 3), (1, 2, 3))
    done = Move("t", 1, (4, 2, 3), (1, 2, 3))  # the cluster already has [1, 2, 3]
    todo, in_place = precheck(snapshot_with([]), [good, done], ours=set())
    assert todo == [good] and in_place == [done]
    with pytest.raises(ForeignReassignment, match="t-0"):
        precheck(snapshot_with([("t", 0, (4, 2, 3, 1), (1,), (4,))]), [good], ours=set())
    rf_down = Move("t", 0, (4, 2, 3), (2, 3))
    with pytest.raises(SafetyError, match="replication factor reduced"):
        precheck(snapshot_with([]), [rf_down], ours=set())
    same_rack = Move("t", 0, (4, 2, 3), (2, 3, 3))
    with pytest.raises(SafetyError, match="more than once"):
        precheck(snapshot_with([]), [same_rack], ours=set())


def test_options_are_bounded() -> None:
    with pytest.raises(ValueError):
        ExecutionOptions(throttle_bytes_per_sec=0)
    with pytest.raises(ValueError):
        ExecutionOptions(throttle_bytes_per_sec=1, timeout_s=math.inf)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KafkaException(KafkaError(KafkaError._TIMED_OUT)), True),
        (KafkaException(KafkaError(KafkaError.NOT_CONTROLLER)), True),
        (KafkaException(KafkaError(KafkaError.REQUEST_TIMED_OUT)), True),
        (KafkaException(KafkaError(KafkaError.INVALID_CONFIG)), False),
        (KafkaException(KafkaError(KafkaError.POLICY_VIOLATION)), False),
        (kerrors.KafkaTimeoutError(), True),
        (kerrors.NotControllerError(), True),
        (kerrors.KafkaConnectionError(), True),
        (kerrors.InvalidReplicationFactorError(), False),
        (concurrent.futures.TimeoutError(), True),
        (TransientKafkaError("x"), True),
        (SafetyError("unsafe"), False),
        (ConfigError("unknown broker"), False),
        (ValueError("bad"), False),
    ],
)
def test_transient_classification(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_a_wrapped_kafka_error_counts_through_its_cause() -> None:
    try:
        try:
            raise kerrors.RequestTimedOutError()
        except kerrors.KafkaError as inner:
            raise RuntimeError("listing reassignments failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_retry_condition_reads_the_failed_state() -> None:
    from prefect.states import Failed

    assert retry_on_transient(None, None, Failed(data=kerrors.KafkaTimeoutError()))
    assert not retry_on_transient(None, None, Failed(data=SafetyError("no")))


class StaleReadOps:
    """Cluster reads in a scripted order, the third from a broker that has not applied the revert yet."""

    def __init__(self) -> None:
        merged = [("t", 0, 2, (1, 2, 3, 4), (2, 3, 4), 2)]
        self.reads = [
            state(merged, [("t", 0, (1, 2, 3, 4), (1,), (4,))]),  # before the cancel
            state([("t", 0, 2, (2, 3, 4), (2, 3, 4), 2)], []),  # reverted, in the merged order
            state(merged, []),  # a lagging broker: still the merged list
            state([("t", 0, 4, (4, 2, 3), (2, 3, 4), 2)], []),  # after our reorder
        ]
        self.altered: list[dict] = []

    def state(self) -> ClusterState:
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def alter_reassignments(self, targets: dict) -> dict:
        self.altered.append(dict(targets))
        return {}


@pytest.mark.anyio
async def test_cancel_restores_the_original_order_even_when_a_later_read_is_stale() -> None:
    from kafka_medic.executor.cancel import cancel_reassignments

    ops = StaleReadOps()
    res = await cancel_reassignments(ops, [("t", 0)], poll_s=0.0, restore_order={("t", 0): (4, 2, 3)})  # type: ignore[arg-type]
    assert ops.altered == [{("t", 0): None}, {("t", 0): [4, 2, 3]}]
    assert res.reverted == ["t-0"] and res.reordered == ["t-0"] and res.order_changed == {}


class LaggingMetadataOps:
    """Adoption's reads: Kafka lists no move any more, but the first Metadata answers come from a
    broker that has not applied the end of the move yet (still the in-progress, merged list)."""

    def __init__(self, *later: ClusterState) -> None:
        merged = state([("t", 0, 2, (1, 2, 3, 4), (1, 2, 3, 4), 2)], [])
        self.reads = [merged, merged, *later]

    def state(self) -> ClusterState:
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]


async def _adopt_one(ops: LaggingMetadataOps) -> Any:
    from datetime import UTC, datetime

    from kafka_medic.executor.adopt import adopt
    from kafka_medic.executor.journal import Journal, memory_journal_store

    store = memory_journal_store()
    move = Move("t", 0, (4, 2, 3), (1, 2, 3))
    await store.save(Journal("c", "dead-run", "crashed", datetime.now(UTC), 1_000_000, moves=(move,)))
    return await adopt(ops, store, "c", timeout_s=5.0, poll_s=0.05)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_adoption_waits_for_the_metadata_to_show_a_finished_move_at_its_target() -> None:
    """CI saw a finished move adopted as "ended elsewhere": the Metadata answer was a lagging broker's."""
    done = state([("t", 0, 1, (1, 2, 3), (1, 2, 3), 2)], [])
    result = await _adopt_one(LaggingMetadataOps(done))
    assert result.finished == ["t-0"] and result.diverged == {}


@pytest.mark.anyio
async def test_adoption_still_names_a_move_that_ended_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    adopt_module = importlib.import_module("kafka_medic.executor.adopt")

    monkeypatch.setattr(adopt_module, "METADATA_SETTLE_S", 0.3)
    cancelled = state([("t", 0, 4, (4, 2, 3), (4, 2, 3), 2)], [])
    result = await _adopt_one(LaggingMetadataOps(cancelled))
    assert result.finished == [] and "on the original replicas [4, 2, 3]" in result.diverged["t-0"]
