"""Work nobody owns: replication throttles and reassignments left behind by an action that ended.

Seen by a user: Ctrl-C on a drain left throttles on five brokers and two topics, and nothing said
so. A leftover throttle is not harmless: Kafka applies it to every listed ``partition:broker``
whenever that replica is out of the ISR, so the next time that broker fetches the partition -- a
replacement re-fetching everything after a disk loss -- it crawls at the throttled rate. A
reassignment nobody owns may wait forever (a dead target never joins the ISR) and blocks every
kafka-medic move of those partitions (a foreign reassignment refuses the plan).

"Owned" means: a kafka-medic action holds the cluster's mutate lock (it may be using anything), or
an ended run's journal lists it (the next reassign run adopts it: waits for its moves, removes its
throttles). Ownership is read from Prefect just before and after the collection
(:func:`tasks.collect.look_now`); without it (``snapshot.ownership is None``) these rules stay
silent rather than guess. Throttles or reassignments someone set by hand outside kafka-medic are
reported too -- kafka-medic cannot tell them from its own lost ones -- and the summary says so.

Both are warnings with no automatic action: removing a throttle or cancelling a move someone may
still want is a human's call; the finding is what an incident opens on.
"""

from __future__ import annotations

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import MAX_LISTED_ITEMS, MAX_LISTED_PARTITIONS, RuleContext
from kafka_medic.rules.names import RuleName


def leftover_throttles(ctx: RuleContext) -> list[Finding]:
    """Replication throttles while no kafka-medic action runs."""
    snap = ctx.snapshot
    own, found = snap.ownership, snap.throttles
    if own is None or found is None or own.lock_held or not found:
        return []
    brokers = sorted({b for b, _ in found.broker_rates})
    topics = sorted({t for t, _ in found.topic_replicas})
    journal_brokers = sorted(set(brokers) & own.journal_rate_brokers)
    summary = (
        f"replication throttles left with no kafka-medic action running: rates on {len(brokers)} broker(s) "
        f"{brokers[:10]}, throttled-replica lists on {len(topics)} topic(s)"
    )
    if own.journal_run is not None:
        summary += f"; the journal of ended run {own.journal_run} lists some (the next reassign run removes them)"
    else:
        summary += "; no journal owns them (an interrupted action, or set by hand outside kafka-medic)"
    evidence = {
        "broker_rates": {f"{b} {c}": v for (b, c), v in sorted(found.broker_rates.items())[:MAX_LISTED_ITEMS]},
        "topic_lists": {f"{t} {c}": v[:200] for (t, c), v in sorted(found.topic_replicas.items())[:MAX_LISTED_ITEMS]},
        "brokers_total": len(brokers),
        "topics_total": len(topics),
        "journal_run": own.journal_run,
        "journal_rate_brokers": journal_brokers,
        "brokers_read": sorted(found.brokers_read),
    }
    return [
        Finding(
            rule=RuleName.LEFTOVER_THROTTLES,
            severity=Severity.WARNING,
            summary=summary,
            brokers=tuple(brokers),
            evidence=evidence,
            action=Action.NONE,
        )
    ]


def unowned_reassignments(ctx: RuleContext) -> list[Finding]:
    """Reassignments in progress while no kafka-medic action runs."""
    snap = ctx.snapshot
    own, ra = snap.ownership, snap.reassignments
    if own is None or own.lock_held or ra.empty:
        return []
    keys = sorted((str(t), int(p)) for t, p in zip(ra["topic"], ra["partition"], strict=True))
    journaled = [k for k in keys if k in own.journal_partitions]
    foreign = [k for k in keys if k not in own.journal_partitions]
    parts = []
    if journaled:
        parts.append(f"{len(journaled)} started by ended run {own.journal_run} (the next reassign run adopts them)")
    if foreign:
        parts.append(f"{len(foreign)} in no journal (an interrupted action, or started outside kafka-medic)")
    return [
        Finding(
            rule=RuleName.UNOWNED_REASSIGNMENT,
            severity=Severity.WARNING,
            summary=f"{len(keys)} partition reassignment(s) with no kafka-medic action running: " + "; ".join(parts),
            partitions=tuple(f"{t}-{p}" for t, p in keys[:MAX_LISTED_PARTITIONS]),
            evidence={
                "partitions_total": len(keys),
                "in_journal": len(journaled),
                "in_no_journal": len(foreign),
                "journal_run": own.journal_run,
            },
            action=Action.NONE,
        )
    ]
