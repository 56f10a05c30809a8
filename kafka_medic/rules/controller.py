"""Controller rules, from the controller processes' metrics (KRaft quorum or ZK-era controller).

Exactly one active controller must exist. None means no metadata changes (no leader elections, no
fencing, no reassignments) — healing cannot work, so a human is paged and automation stands down.
More than one is split brain: any automated metadata change could be lost or contradicted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import RuleContext, tri_state
from kafka_medic.rules.names import RuleName


def _known_rows(ctx: RuleContext) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The controller frame, a mask of rows whose metrics were scraped and parse, and the counts."""
    c = ctx.snapshot.controller
    n = len(c)
    ok = np.array([tri_state(v) is True for v in c["metrics_ok"]], dtype=bool) if "metrics_ok" in c else None
    if ok is None:
        ok = np.zeros(n, dtype=bool)
    if "active_controller_count" in c:
        acc = pd.to_numeric(c["active_controller_count"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        acc = np.full(n, np.nan)
    return c, ok & np.isfinite(acc), acc


def no_active_controller(ctx: RuleContext) -> list[Finding]:
    """Sum of ActiveControllerCount over the controllers must be exactly 1.

    Unscraped rows are unknown: a sum of 0 with some rows unknown is not proof of "no controller"
    (the active one may be the one we could not scrape), so only ``controller_metrics_unavailable``
    is reported then. A sum above 1 is split brain whatever the unknown rows say.
    """
    c = ctx.snapshot.controller
    if c.empty:
        return []
    c, known, acc = _known_rows(ctx)
    if not known.any():
        return []
    total = round(float(acc[known].sum()))
    n_unknown = int((~known).sum())
    if total == 1 or (total == 0 and n_unknown):
        return []
    node_ids = pd.to_numeric(c["node_id"], errors="coerce").to_numpy(dtype=np.float64)
    active = sorted(int(n) for n, a, k in zip(node_ids, acc, known, strict=True) if k and a >= 1)
    what = "no active controller" if total == 0 else f"{total} active controllers (split brain)"
    return [
        Finding(
            rule=RuleName.NO_ACTIVE_CONTROLLER,
            severity=Severity.CRITICAL,
            summary=f"Controller quorum has {what}: metadata changes are impossible or unsafe; automation stands down",
            evidence={
                "active_controller_count_sum": total,
                "controllers_scraped": int(known.sum()),
                "controllers_unscraped": n_unknown,
                "active_node_ids": active,
            },
            since=ctx.now,
            action=Action.PAGE,
        )
    ]


def controller_metrics_unavailable(ctx: RuleContext) -> list[Finding]:
    """Controller rows whose metrics could not be scraped: controller health is partly unknown."""
    c = ctx.snapshot.controller
    if c.empty:
        return []
    c, known, _ = _known_rows(ctx)
    if known.all():
        return []
    node_ids = pd.to_numeric(c["node_id"], errors="coerce")
    missing = sorted(int(n) for n in node_ids[~known].dropna())
    return [
        Finding(
            rule=RuleName.CONTROLLER_METRICS_UNAVAILABLE,
            severity=Severity.WARNING,
            summary=f"Metrics unavailable for {len(missing)} of {len(c)} controller(s)"
            + (f" ({', '.join(map(str, missing))})" if missing else ""),
            evidence={"node_ids": missing, "controllers": len(c), "all_unavailable": not known.any()},
            action=Action.NONE,
        )
    ]


def offline_reported_by_controller(ctx: RuleContext) -> list[Finding]:
    """The active controller counts offline partitions the metadata snapshot does not show.

    Usually a few seconds of skew between the two reads; persistent disagreement means the
    metadata view is incomplete (e.g. a topic listing failed), which the operator should know.
    """
    c = ctx.snapshot.controller
    if c.empty or "offline_partitions" not in c:
        return []
    c, known, acc = _known_rows(ctx)
    off = pd.to_numeric(c["offline_partitions"], errors="coerce").to_numpy(dtype=np.float64)
    active = known & (acc >= 1) & np.isfinite(off)
    if not active.any():
        return []
    reported = int(off[active].max())
    seen = int(((ctx.part_leader < 0) | np.isin(ctx.part_leader, np.asarray(ctx.down_ids, np.int64))).sum())
    if reported <= 0 or seen > 0:
        return []
    return [
        Finding(
            rule=RuleName.OFFLINE_REPORTED_BY_CONTROLLER,
            severity=Severity.WARNING,
            summary=f"Active controller reports {reported} offline partition(s) but the metadata snapshot "
            "shows none: the snapshot may be incomplete",
            evidence={"controller_offline_partitions": reported, "snapshot_offline_partitions": seen},
            action=Action.NONE,
        )
    ]
