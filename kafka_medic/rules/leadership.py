"""Leadership balance: partitions not led by their preferred replica.

Leaders do all the produce/consume work, so after a broker restart (leadership moved away and
auto.leader.rebalance is off or slow) a few brokers carry far more than their share. The fix is a
preferred-leader election, which is cheap and safe; the finding reports where the skew sits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import RuleContext, count_map, rounded
from kafka_medic.rules.names import RuleName


def leader_imbalance(ctx: RuleContext) -> list[Finding]:
    """Share of led partitions whose leader is not ``replicas[0]`` above ``leader_imbalance_max``.

    Offline partitions (no leader) are excluded from the share: they have their own finding.
    """
    p = ctx.snapshot.partitions
    if p.empty or not len(ctx.rep_broker):
        return []
    with_leader = int((ctx.part_leader >= 0).sum())
    if with_leader == 0:
        return []
    pos0 = ctx.rep_position == 0
    led = ctx.rep_is_leader
    preferred_led = int((pos0 & led).sum())
    non_preferred = max(0, with_leader - preferred_led)
    share = non_preferred / with_leader
    if share <= ctx.policy.leader_imbalance_max:
        return []
    rb = ctx.rep_broker
    leading_not_preferred = pd.Series(rb[led & ~pos0]).value_counts()
    preferred_not_leading = pd.Series(rb[pos0 & ~led]).value_counts()
    alive = sorted(ctx.alive_ids)
    leaders = pd.Series(rb[led]).value_counts().reindex(alive, fill_value=0)
    skew: dict[str, object] = {}
    if len(leaders):
        mean = float(leaders.mean())
        skew = {
            "leaders_max": int(leaders.max()),
            "leaders_min": int(leaders.min()),
            "leaders_mean": rounded(mean, 2),
            "max_over_mean": rounded(leaders.max() / mean, 3) if mean > 0 else None,
            "most_leaders": count_map(leaders, cap=5),
            "fewest_leaders": {str(k): int(v) for k, v in leaders.sort_values(kind="stable").head(5).items()},
        }
    restore = tuple(sorted(int(b) for b in preferred_not_leading.index if int(b) in ctx.alive_ids))
    return [
        Finding(
            rule=RuleName.LEADER_IMBALANCE,
            severity=Severity.WARNING,
            summary=f"{share:.1%} of partitions ({non_preferred}/{with_leader}) are not led by their "
            f"preferred replica (max {ctx.policy.leader_imbalance_max:.0%}); "
            "a preferred-leader election would rebalance",
            brokers=restore,
            evidence={
                "non_preferred_leaders": non_preferred,
                "partitions_with_leader": with_leader,
                "share": rounded(share, 4),
                "threshold": ctx.policy.leader_imbalance_max,
                "leading_not_preferred_per_broker": count_map(leading_not_preferred),
                "preferred_not_leading_per_broker": count_map(preferred_not_leading),
                "leader_count_skew": skew,
                "alive_preferred_not_leading": len(restore),
                "any_brokers_down": bool(np.size(ctx.down_ids)),
            },
            action=Action.NONE,
        )
    ]
