"""Disk rules: failed log directories and full volumes.

A log dir with an error means Kafka took it offline (I/O error, JBOD disk death): every replica on
it is gone from that broker and the broker keeps serving the rest. That is degraded hardware, so
the action is replacement. A *full* disk is different: replacing the broker moves the same bytes
onto a new disk of the same size, so it is reported (retention, expansion, rebalance) not healed.
Only alive brokers are considered: a down broker's last log-dir report is stale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import MAX_LISTED_ITEMS, RuleContext, plain, rounded
from kafka_medic.rules.names import RuleName


def _alive_log_dirs(ctx: RuleContext) -> pd.DataFrame:
    ld = ctx.snapshot.log_dirs
    if ld.empty:
        return ld
    ids = pd.to_numeric(ld["broker_id"], errors="coerce")
    keep = ids.isin(list(ctx.alive_ids)).to_numpy()
    out = ld.loc[keep].copy()
    out["broker_id"] = ids[keep].astype("int64").to_numpy()
    return out


def failed_log_dir_brokers(ctx: RuleContext) -> dict[int, list[dict[str, Any]]]:
    """Alive broker id -> its failed log dirs (path, error). Memoised; feeds mass_degradation."""
    ld = _alive_log_dirs(ctx)
    out: dict[int, list[dict[str, Any]]] = {}
    if ld.empty:
        return out
    err = ld["error"]
    failed = ld.loc[err.notna() & (err.astype(str).str.strip() != "")]
    for r in failed.itertuples(index=False):
        out.setdefault(int(r.broker_id), []).append({"path": plain(r.path), "error": str(r.error)})
    return out


def offline_log_dir(ctx: RuleContext) -> list[Finding]:
    """One CRITICAL finding per broker with a failed log dir; action: replace the broker."""
    failed = ctx.memo(failed_log_dir_brokers)
    if not failed:
        return []
    findings: list[Finding] = []
    for bid in sorted(failed):
        dirs = failed[bid]
        n_rep = int((ctx.rep_broker == bid).sum())
        findings.append(
            Finding(
                rule=RuleName.OFFLINE_LOG_DIR,
                severity=Severity.CRITICAL,
                summary=f"Broker {bid}: {len(dirs)} log dir(s) offline ({', '.join(str(d['path']) for d in dirs)})",
                brokers=(bid,),
                evidence={
                    "broker_id": bid,
                    "rack": plain(ctx.rack_by_broker.get(bid)),
                    "failed_dirs": dirs[:MAX_LISTED_ITEMS],
                    "failed_dir_count": len(dirs),
                    "replicas_on_broker": n_rep,
                },
                action=Action.REPLACE_DEGRADED_BROKER,
            )
        )
    return findings


def disk_usage(ctx: RuleContext) -> list[Finding]:
    """Log-dir usage share (1 - usable/total) over the warn / critical thresholds; report only.

    Dirs without a size report (NaN or non-positive total) and failed dirs are skipped.
    """
    p = ctx.policy
    ld = _alive_log_dirs(ctx)
    if ld.empty:
        return []
    total = pd.to_numeric(ld["total_bytes"], errors="coerce").to_numpy(dtype=np.float64)
    usable = pd.to_numeric(ld["usable_bytes"], errors="coerce").to_numpy(dtype=np.float64)
    online = ld["error"].isna().to_numpy() | (ld["error"].astype(str).str.strip() == "").to_numpy()
    ok = online & np.isfinite(total) & np.isfinite(usable) & (total > 0)
    usage = np.full(len(ld), np.nan)
    usage[ok] = 1.0 - usable[ok] / total[ok]
    with np.errstate(invalid="ignore"):
        critical = ok & (usage > p.disk_usage_critical)
        warn = ok & (usage > p.disk_usage_warn) & ~critical
    findings: list[Finding] = []
    for mask, rule, severity, threshold in (
        (critical, RuleName.DISK_USAGE_CRITICAL, Severity.CRITICAL, p.disk_usage_critical),
        (warn, RuleName.DISK_USAGE_HIGH, Severity.WARNING, p.disk_usage_warn),
    ):
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-usage[idx], kind="stable")]
        brokers = tuple(sorted({int(b) for b in ld["broker_id"].to_numpy()[idx]}))
        dirs = [
            {
                "broker_id": int(ld["broker_id"].iat[i]),
                "path": plain(ld["path"].iat[i]),
                "usage": rounded(usage[i], 4),
                "total_bytes": rounded(total[i], 0),
                "usable_bytes": rounded(usable[i], 0),
            }
            for i in idx[:MAX_LISTED_ITEMS]
        ]
        findings.append(
            Finding(
                rule=rule,
                severity=severity,
                summary=f"{len(idx)} log dir(s) on {len(brokers)} broker(s) over {threshold:.0%} full "
                f"(max {usage[idx[0]]:.1%})",
                brokers=brokers,
                evidence={
                    "threshold": threshold,
                    "dir_count": len(idx),
                    "max_usage": rounded(usage[idx[0]], 4),
                    "dirs": dirs,
                },
                action=Action.NONE,
            )
        )
    return findings
