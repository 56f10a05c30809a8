"""The snapshot refuses malformed frames at the edge, in one line naming frame, row, column and value
(issue 14, defect 6), and the vectorised replicas frame equals a plain per-row reference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_medic.errors import ConfigError
from kafka_medic.snapshot import ClusterSnapshot, explode_replicas
from tests.unit.test_planner_properties import SETTINGS


def brokers(ids: list[int] | None = None, **column: list[Any]) -> pd.DataFrame:
    ids = [1, 2, 3] if ids is None else ids
    data: dict[str, Any] = {"broker_id": ids, "rack": ["a", "b", "c"][: len(ids)], "alive": [True] * len(ids)}
    data.update(column)
    return pd.DataFrame(data)


def partitions(rows: list[tuple[Any, ...]] | None = None) -> pd.DataFrame:
    rows = rows or [("t", 0, 1, (1, 2, 3), (1, 2, 3), 2), ("t", 1, 2, (2, 3, 1), (2, 3), 2)]
    return pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])


def build(**kw: Any) -> ClusterSnapshot:
    kw.setdefault("brokers", brokers())
    kw.setdefault("partitions", partitions())
    return ClusterSnapshot(cluster="c", **kw)


def refused(match: str, **kw: Any) -> str:
    """Build must fail with a ConfigError whose one-line message matches ``match``; frames unchanged."""
    frames = {k: v.copy(deep=True) for k, v in kw.items() if isinstance(v, pd.DataFrame)}
    with pytest.raises(ConfigError, match=match) as err:
        build(**kw)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("Snapshot of cluster 'c': ")
    for k, before in frames.items():
        pd.testing.assert_frame_equal(kw[k], before)  # bad input changes nothing
    return msg


# ---------------------------------------------------------------------------------- defect 6: tracebacks


def test_defect6_none_replica_cell_is_named_not_a_pandas_traceback() -> None:
    p = partitions([("t", 0, 1, (1, 2, 3), (1, 2, 3), 2), ("t", 1, 2, None, (2,), 2)])
    refused(r"partitions row 1 \(t-1\), column 'replicas': must be a list of broker ids \(got None\)", partitions=p)


def test_defect6_nan_isr_cell() -> None:
    p = partitions([("t", 0, 1, (1, 2, 3), float("nan"), 2)])
    refused(r"row 0 \(t-0\), column 'isr': must be a list of broker ids \(got nan\)", partitions=p)


def test_defect6_non_integer_ids() -> None:
    p = partitions([("t", 0, 1, (1, "b2", 3), (1,), 2)])
    refused(r"column 'replicas': holds 'b2', which is not a broker id", partitions=p)
    p = partitions([("t", 0, 1, (1, 2.5, 3), (1,), 2)])
    refused(r"column 'replicas': holds 2.5, which is not a broker id", partitions=p)
    refused(r"brokers row 1, column 'broker_id': must be a number \(got 'two'\)", brokers=brokers([1, "two", 3]))
    refused(r"brokers row 2, column 'broker_id': must be a whole number \(got 3.5\)", brokers=brokers([1, 2, 3.5]))
    p = partitions([("t", 0, "one", (1, 2, 3), (1,), 2)])
    refused(r"column 'leader': must be a number", partitions=p)


def test_defect6_nan_id_in_a_replica_list() -> None:
    p = partitions([("t", 0, 1, (1, 2, 3), (1,), 2), ("t", 1, 1, (1, float("nan")), (1,), 2)])
    refused(r"partitions row 1 \(t-1\), column 'replicas': holds a missing id", partitions=p)


# ---------------------------------------------------------------------------------- defect 6: silently accepted


def test_defect6_negative_and_infinite_sizes() -> None:
    r = explode_replicas(partitions())
    r["size_bytes"] = 10.0
    r.loc[4, "size_bytes"] = -5.0
    refused(r"replicas row 4 \(t-1\), column 'size_bytes': must be >= 0 \(got -5.0\)", replicas=r)
    r.loc[4, "size_bytes"] = math.inf
    refused(r"replicas row 4 \(t-1\), column 'size_bytes': must be finite \(got inf\)", replicas=r)


def test_defect6_usable_above_total_and_negative_disk() -> None:
    ld = pd.DataFrame(
        [(1, "/a", None, 100.0, 50.0), (2, "/a", None, 100.0, 150.0)],
        columns=["broker_id", "path", "error", "total_bytes", "usable_bytes"],
    )
    refused(r"log_dirs row 1 \(broker 2\), column 'usable_bytes': exceeds total_bytes 100", log_dirs=ld)
    ld.loc[1, "usable_bytes"] = -1.0
    refused(r"log_dirs row 1 \(broker 2\), column 'usable_bytes': must be >= 0", log_dirs=ld)
    ld.loc[1, "usable_bytes"] = 1.0
    ld.loc[0, "total_bytes"] = math.inf
    refused(r"log_dirs row 0 \(broker 1\), column 'total_bytes': must be finite", log_dirs=ld)


def test_defect6_duplicate_broker_in_a_replica_list() -> None:
    p = partitions([("t", 0, 1, (1, 2, 1), (1, 2), 2)])
    refused(r"row 0 \(t-0\), column 'replicas': lists a broker more than once \(got \(1, 2, 1\)\)", partitions=p)
    p = partitions([("t", 0, 1, (1, 2, 3), (2, 2), 2)])
    refused(r"column 'isr': lists a broker more than once", partitions=p)


def test_defect6_duplicate_partition_rows_and_broker_rows() -> None:
    p = partitions([("t", 0, 1, (1, 2, 3), (1,), 2), ("u", 0, 1, (1,), (1,), 2), ("t", 0, 2, (2,), (2,), 2)])
    msg = refused(
        r"partitions row 0, column 'partition': the same partition is listed in more than one row", partitions=p
    )
    assert "1 more row(s) like it" in msg
    refused(
        r"brokers row 0, column 'broker_id': the same broker is listed in more than one row", brokers=brokers([2, 2])
    )


def test_defect6_liveness_must_be_true_false_or_unknown() -> None:
    refused(r"brokers row 1 \(broker 2\), column 'alive': must be True, False or unknown \(None\) \(got 'no'\)",
            brokers=brokers(alive=[True, "no", False]))  # fmt: skip
    refused(r"column 'alive'", brokers=brokers(alive=[True, 1, False]))


def test_missing_column_and_explode_replicas_say_what_is_wrong() -> None:
    refused(r"partitions frame has no 'isr' column", partitions=partitions().drop(columns=["isr"]))
    with pytest.raises(ConfigError, match=r"^Snapshot: partitions row 0 \(t-0\), column 'replicas'"):
        explode_replicas(partitions([("t", 0, 1, None, (1,), 2)]))


# ---------------------------------------------------------------------------------- what stays accepted


def test_legitimate_odd_values_are_accepted() -> None:
    p = partitions(
        [
            ("t", 0, -1, [1, 2, 3], [], float("nan")),  # offline, lists, min ISR not read yet
            ("t", 1, None, np.array([2, 3]), np.array([2]), 2),  # numpy cells, unknown leader
            ("t", 2, 3, (3.0, 1.0), (3.0,), 2),  # whole-number floats
            ("u", 0, -1, (), (), 1),  # no replicas at all
        ]
    )
    b = brokers(alive=[True, None, np.bool_(False)])
    s = build(partitions=p, brokers=b)
    assert len(s.replicas) == 7
    assert s.alive_broker_ids == {1}, "unknown liveness is not alive, False is not alive"
    row = s.replicas[(s.replicas["partition"] == 2) & (s.replicas["broker_id"] == 3)].iloc[0]
    assert bool(row["in_isr"]) and bool(row["is_leader"])


def test_log_dir_text_follows_the_rules_convention() -> None:
    """Numbers written as text are read; other text is an unknown size (as the health rules read it)."""
    ld = pd.DataFrame(
        [("3", "/a", None, "x", 1.0), (1, "/a", None, "100", "40")],
        columns=["broker_id", "path", "error", "total_bytes", "usable_bytes"],
    )
    build(log_dirs=ld)
    ld.loc[1, "usable_bytes"] = "400"
    refused(r"log_dirs row 1 \(broker 1\), column 'usable_bytes': exceeds total_bytes 100", log_dirs=ld)


# ---------------------------------------------------------------------------------- properties

ids = st.integers(0, 30)


@st.composite
def partition_frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for p in range(draw(st.integers(1, 12))):
        reps = draw(st.lists(ids, min_size=0, max_size=5, unique=True))
        isr = [b for b in reps if draw(st.booleans())]
        leader = draw(st.sampled_from([*isr, -1]))
        cell = draw(st.sampled_from([tuple, list, np.array]))
        rows.append((draw(st.sampled_from(["a", "b"])), p, leader, cell(reps), cell(isr), draw(st.integers(1, 3))))
    return pd.DataFrame(rows, columns=["topic", "partition", "leader", "replicas", "isr", "min_isr"])


def reference_explode(p: pd.DataFrame) -> list[tuple[Any, ...]]:
    out = []
    for t, part, leader, reps, isr in zip(
        p["topic"], p["partition"], p["leader"], p["replicas"], p["isr"], strict=True
    ):
        for pos, b in enumerate(reps):
            out.append((t, int(part), int(b), pos, int(b) in {int(x) for x in isr}, int(b) == int(leader)))
    return out


@SETTINGS
@given(partition_frames())
def test_vectorised_replicas_frame_equals_the_per_row_reference(p: pd.DataFrame) -> None:
    r = build(partitions=p).replicas
    got = list(
        zip(
            r["topic"],
            r["partition"].astype(int),
            r["broker_id"].astype(int),
            r["position"].astype(int),
            r["in_isr"].astype(bool),
            r["is_leader"].astype(bool),
            strict=True,
        )
    )
    assert got == reference_explode(p)
    assert r["size_bytes"].isna().all()


BAD_CELLS: list[tuple[str, Any]] = [
    ("replicas", None),
    ("replicas", float("nan")),
    ("replicas", 7),
    ("replicas", (1, None)),
    ("replicas", (1, "x")),
    ("replicas", (4, 4)),
    ("replicas", (-3,)),
    ("isr", None),
    ("isr", (2.5,)),
    ("leader", "x"),
    ("partition", -1),
    ("partition", None),
    ("topic", None),
    ("min_isr", 0),
]


@SETTINGS
@given(partition_frames(), st.data())
def test_any_single_bad_cell_is_refused_naming_its_row_and_column(p: pd.DataFrame, data: st.DataObject) -> None:
    column, value = data.draw(st.sampled_from(BAD_CELLS))
    row = data.draw(st.integers(0, len(p) - 1))
    bad = p.copy()
    bad[column] = bad[column].astype(object)
    bad.at[row, column] = value
    with pytest.raises(ConfigError, match=rf"partitions row {row}\b.*column '{column}'"):
        build(partitions=bad)
