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
    """Exactly one active controller must be *confirmed*; anything else is critical and pages.

    Two sources: the controllers' ActiveControllerCount (their exporters) and the metadata quorum
    a broker reports (DescribeQuorum, ``snapshot.quorum``). The quorum answering with a leader
    confirms it; a sum of 1 over the scraped controllers confirms it unless the quorum says
    otherwise. A controller that cannot be scraped is NOT silently "unknown": when nothing confirms
    an active controller (every controller unscraped, the scraped ones say 0, or the quorum did not
    answer) the finding fires, naming the controllers by node id -- without a controller no broker
    can register, be fenced or lead a new partition, so healing cannot work and a wipe would hold
    its locks waiting for a registration that never comes. A sum above 1 is split brain whatever
    the rest says. With no controller metrics configured and no quorum answer either way, the
    cluster's controllers cannot be judged and nothing is said.
    """
    c = ctx.snapshot.controller
    quorum = ctx.snapshot.quorum
    q_state = quorum.state if quorum is not None else "unknown"
    if c.empty and q_state == "unknown":
        return []
    known = np.zeros(0, dtype=bool)
    acc = np.zeros(0)
    node_ids: list[int] = []
    if not c.empty:
        c, known, acc = _known_rows(ctx)
        node_ids = [int(n) for n in pd.to_numeric(c["node_id"], errors="coerce").fillna(-1)]
    total = round(float(acc[known].sum())) if known.any() else 0
    scraped = [n for n, k in zip(node_ids, known, strict=True) if k]
    unscraped = [n for n, k in zip(node_ids, known, strict=True) if not k]
    active = sorted(n for n, a, k in zip(node_ids, acc, known, strict=True) if k and a >= 1)
    split = total > 1
    confirmed = q_state == "leader" or (total == 1 and q_state not in ("no_leader", "unanswered"))
    if confirmed and not split:
        return []
    if split:
        what = f"{total} active controllers (split brain: {active})"
    elif q_state in ("no_leader", "unanswered"):
        seen = f"; controller(s) {unscraped} cannot be scraped" if unscraped else ""
        seen += f"; {scraped} report {total} active" if scraped else ""
        what = f"no active controller (the metadata quorum {_quorum_words(q_state)}{seen})"
    elif unscraped and not scraped:
        what = f"no active controller confirmed: controller(s) {unscraped} cannot be scraped"
    elif unscraped:
        what = f"no active controller confirmed: {scraped} report none active and {unscraped} cannot be scraped"
    else:
        what = f"no active controller: controller(s) {scraped} report none active"
    return [
        Finding(
            rule=RuleName.NO_ACTIVE_CONTROLLER,
            severity=Severity.CRITICAL,
            summary=f"{what}: metadata changes (registration, fencing, leader election) are impossible or "
            "unsafe; automation stands down",
            brokers=(),
            evidence={
                "active_controller_count_sum": total,
                "controllers_scraped": scraped,
                "controllers_unscraped": unscraped,
                "active_node_ids": active,
                "quorum_state": q_state,
                "quorum_leader_id": quorum.leader_id if quorum is not None else None,
                "quorum_error": quorum.error if quorum is not None else None,
            },
            since=ctx.now,
            action=Action.PAGE,
        )
    ]


def _quorum_words(state: str) -> str:
    return {"no_leader": "has no leader", "unanswered": "did not answer through the brokers"}.get(state, state)


def controller_metrics_unavailable(ctx: RuleContext) -> list[Finding]:
    """Controller rows whose metrics could not be scraped: controller health is partly unknown."""
    c = ctx.snapshot.controller
    if c.empty:
        return []
    c, known, _ = _known_rows(ctx)
    if known.all():
        return []
    node_ids = pd.to_numeric(c["node_id"], errors="coerce")
    missing = sorted(int(n) for n in node_ids[~known].dropna())  # node ids (e.g. 100), not positions
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
