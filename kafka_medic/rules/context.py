"""The evaluation context shared by all rules, plus small helpers for building findings.

Rules are pure functions ``(ctx) -> list[Finding]``. The context normalises the snapshot once
(collectors may hand over object columns, ``None`` for unknown, NaN metrics) and memoises derived
facts that several rules need (liveness, per-replica arrays, degraded signals), so each rule stays
short and the whole evaluation touches the 300k-row ``replicas`` frame only a handful of times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from kafka_medic.findings import Finding
from kafka_medic.policy import HealthPolicy
from kafka_medic.snapshot import BROKER_COLUMNS, BROKER_METRIC_COLUMNS, ClusterSnapshot

T = TypeVar("T")

#: Findings list at most this many "topic-partition" strings; the total goes in the evidence.
MAX_LISTED_PARTITIONS = 50
#: Evidence lists of per-item detail (log dirs, topics, brokers) are capped at this length.
MAX_LISTED_ITEMS = 50

Rule = Callable[["RuleContext"], list[Finding]]


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken to be UTC (mixing naive and aware would raise)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def tri_state(value: object) -> bool | None:
    """``True``/``False`` or ``None`` for unknown (None, NaN, pd.NA) — collectors use all three."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return bool(value)


def plain(value: Any) -> Any:
    """A JSON-safe plain Python value: numpy scalars unwrapped, NaN/inf become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rounded(value: float, digits: int = 6) -> float | None:
    """A float for evidence: rounded for readability, None when NaN/inf (not valid JSON)."""
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def as_ids(value: object) -> tuple[int, ...]:
    """Broker ids from a replicas/isr/adding cell (tuple, list, array); () for None/NaN/garbage."""
    if isinstance(value, tuple | list | np.ndarray | set | frozenset):
        return tuple(int(v) for v in value)
    return ()


def partition_labels(
    topics: Iterable[object], partitions: Iterable[object], cap: int = MAX_LISTED_PARTITIONS
) -> tuple[str, ...]:
    """The first ``cap`` "topic-partition" strings (Kafka's own spelling, e.g. ``orders-7``)."""
    out: list[str] = []
    for t, p in zip(topics, partitions, strict=False):
        if len(out) >= cap:
            break
        out.append(f"{t}-{int(p)}")
    return tuple(out)


def count_map(counts: pd.Series, cap: int = MAX_LISTED_ITEMS) -> dict[str, int]:
    """``{str(key): count}`` for the ``cap`` largest counts (str keys survive a JSON round trip)."""
    top = counts.sort_values(ascending=False, kind="stable").head(cap)
    return {str(plain(k)): int(v) for k, v in top.items()}


def normalize_brokers(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the brokers frame with every contract column present and sane dtypes.

    ``alive``/``registered``/``metrics_ok`` become object columns of True/False/None (None =
    unknown), ``listener`` a str or None, metrics
    become float (NaN = unknown), ``rack``/``ec2_status`` None when blank, ``ec2_events`` a str.
    Rows without a usable broker id are dropped; duplicate ids keep the first row.
    """
    b = frame.copy()
    for col in BROKER_COLUMNS:
        if col not in b.columns:
            b[col] = "" if col == "ec2_events" else (np.nan if col in BROKER_METRIC_COLUMNS else None)
    ids = pd.to_numeric(b["broker_id"], errors="coerce")
    b = b.loc[ids.notna().to_numpy()].copy()
    b["broker_id"] = ids[ids.notna()].astype("int64").to_numpy()
    b = b.drop_duplicates("broker_id", keep="first").reset_index(drop=True)
    b["alive"] = pd.Series([tri_state(v) for v in b["alive"]], dtype="object")
    b["metrics_ok"] = pd.Series([tri_state(v) for v in b["metrics_ok"]], dtype="object")
    b["registered"] = pd.Series([tri_state(v) for v in b["registered"]], dtype="object")
    b["listener"] = pd.Series([_blank_to_none(v) for v in b["listener"]], dtype="object")
    for col in BROKER_METRIC_COLUMNS:
        b[col] = pd.to_numeric(b[col], errors="coerce").astype("float64")
    b["rack"] = pd.Series([_blank_to_none(v) for v in b["rack"]], dtype="object")
    b["ec2_status"] = pd.Series([_blank_to_none(v) for v in b["ec2_status"]], dtype="object")
    b["ec2_events"] = pd.Series(["" if _blank_to_none(v) is None else str(v) for v in b["ec2_events"]])
    return b


def _blank_to_none(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip()
    return s or None


class RuleContext:
    """Everything a rule may read: the snapshot, the policy, the clock, and memoised derived facts.

    Not frozen (it memoises), but rules must treat it as read-only.
    """

    def __init__(
        self,
        snapshot: ClusterSnapshot,
        policy: HealthPolicy,
        now: datetime,
        previous_down_since: Mapping[int, datetime] | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.policy = policy
        self.now = as_utc(now)
        self.previous_down_since: dict[int, datetime] = {
            int(k): as_utc(v) for k, v in (previous_down_since or {}).items()
        }
        self._memo: dict[Callable[..., Any], Any] = {}

    def memo(self, fn: Callable[[RuleContext], T]) -> T:
        """``fn(self)``, computed once per evaluation (for facts several rules share)."""
        if fn not in self._memo:
            self._memo[fn] = fn(self)
        return self._memo[fn]  # type: ignore[no-any-return]

    # ----------------------------------------------------------------------------------- brokers
    @cached_property
    def brokers(self) -> pd.DataFrame:
        return normalize_brokers(self.snapshot.brokers)

    @cached_property
    def broker_ids(self) -> np.ndarray:
        return self.brokers["broker_id"].to_numpy(dtype=np.int64)

    @cached_property
    def alive_mask(self) -> np.ndarray:
        return np.array([v is True for v in self.brokers["alive"]], dtype=bool)

    @cached_property
    def down_mask(self) -> np.ndarray:
        return np.array([v is False for v in self.brokers["alive"]], dtype=bool)

    @cached_property
    def alive_ids(self) -> frozenset[int]:
        return frozenset(int(b) for b in self.broker_ids[self.alive_mask])

    @cached_property
    def down_ids(self) -> tuple[int, ...]:
        return tuple(sorted(int(b) for b in self.broker_ids[self.down_mask]))

    @cached_property
    def n_brokers(self) -> int:
        return len(self.brokers)

    @cached_property
    def down_since(self) -> dict[int, datetime]:
        """First-seen-down time per down broker: the earliest of the remembered time and ``now``.

        Brokers alive again (or of unknown liveness) are dropped so a later failure restarts the
        grace clock. Entries for brokers absent from the snapshot are dropped too — unless the
        broker list itself is missing or came from a failed admin call, in which case absence
        means "not seen", not "removed", and the remembered times are carried over unchanged.
        """
        out: dict[int, datetime] = {}
        for b in self.down_ids:
            prev = self.previous_down_since.get(b)
            out[b] = min(prev, self.now) if prev is not None else self.now
        admin_failed = any(i.source == "admin" for i in self.snapshot.issues)
        if self.brokers.empty or admin_failed:
            known = set(int(b) for b in self.broker_ids)
            for b, t in self.previous_down_since.items():
                if b not in known:
                    out.setdefault(b, t)
        return out

    def seconds_down(self, broker_id: int) -> float:
        return max(0.0, (self.now - self.down_since[broker_id]).total_seconds())

    @cached_property
    def rack_by_broker(self) -> dict[int, str | None]:
        return dict(zip(self.broker_ids.tolist(), self.brokers["rack"].tolist(), strict=True))

    # ---------------------------------------------------------------------------------- replicas
    @cached_property
    def rep_broker(self) -> np.ndarray:
        """Broker id per replica row (int64; -1 where the collector could not say)."""
        col = self.snapshot.replicas["broker_id"]
        return pd.to_numeric(col, errors="coerce").fillna(-1).to_numpy(dtype=np.int64)

    @cached_property
    def rep_broker_index(self) -> np.ndarray:
        """Row of ``self.brokers`` per replica row (-1 = broker not in the brokers frame)."""
        return pd.Index(self.broker_ids).get_indexer(self.rep_broker).astype(np.int64)

    @cached_property
    def rep_position(self) -> np.ndarray:
        col = self.snapshot.replicas["position"]
        return pd.to_numeric(col, errors="coerce").fillna(-1).to_numpy(dtype=np.int64)

    @cached_property
    def rep_in_isr(self) -> np.ndarray:
        return _bool_array(self.snapshot.replicas["in_isr"])

    @cached_property
    def rep_is_leader(self) -> np.ndarray:
        return _bool_array(self.snapshot.replicas["is_leader"])

    @cached_property
    def rep_partition_code(self) -> tuple[np.ndarray, int]:
        """Dense int code per replica row identifying its (topic, partition), and how many there are.

        Lets rules aggregate per partition with ``np.bincount`` instead of a 300k-row groupby.
        """
        r = self.snapshot.replicas
        if r.empty:
            return np.zeros(0, dtype=np.int64), 0
        topic_codes, _ = pd.factorize(r["topic"])
        part = pd.to_numeric(r["partition"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64) + 1
        stride = int(part.max()) + 1 if len(part) else 1
        codes, uniques = pd.factorize(topic_codes.astype(np.int64) * stride + part)
        return codes.astype(np.int64), len(uniques)

    # -------------------------------------------------------------------------------- partitions
    @cached_property
    def part_leader(self) -> np.ndarray:
        """Leader per partition row (int64; -1 = none, including None/NaN from the collector)."""
        col = self.snapshot.partitions.get("leader")
        if col is None:
            return np.full(len(self.snapshot.partitions), -1, dtype=np.int64)
        return pd.to_numeric(col, errors="coerce").fillna(-1).to_numpy(dtype=np.int64)

    @cached_property
    def part_rf(self) -> np.ndarray:
        """Replica-list length per partition row."""
        return _lengths(self.snapshot.partitions, "replicas")

    @cached_property
    def part_isr_len(self) -> np.ndarray:
        return _lengths(self.snapshot.partitions, "isr")

    @cached_property
    def part_min_isr(self) -> np.ndarray:
        """min.insync.replicas per partition row; unknown -> the cluster default."""
        p = self.snapshot.partitions
        default = int(self.snapshot.default_min_isr)
        if "min_isr" not in p:
            return np.full(len(p), default, dtype=np.int64)
        return pd.to_numeric(p["min_isr"], errors="coerce").fillna(default).to_numpy(dtype=np.int64)


def _bool_array(col: pd.Series) -> np.ndarray:
    """A bool column as a numpy array, unknown (None/NaN) as False; free when already bool."""
    if col.dtype == bool:
        return col.to_numpy()
    try:
        return pd.array(col, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    except (TypeError, ValueError):
        return np.fromiter((tri_state(v) is True for v in col), dtype=bool, count=len(col))


def _lengths(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``len()`` of each tuple in an object column (0 for None/NaN), as int64 — a C-speed map."""
    if column not in frame or frame.empty:
        return np.zeros(len(frame), dtype=np.int64)
    values = frame[column]
    try:  # fast path: every cell is a sized container
        return np.fromiter(map(len, values), dtype=np.int64, count=len(frame))
    except TypeError:  # a None/NaN cell somewhere: treat it as empty
        return np.fromiter(
            (len(v) if isinstance(v, tuple | list | frozenset | set | np.ndarray) else 0 for v in values),
            dtype=np.int64,
            count=len(frame),
        )
