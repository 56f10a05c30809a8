"""Stand-down rules: when acting cannot help, say so loudly instead of acting.

Why these exist: a controller SIGKILLed on the sandbox produced no finding at all, and a broker
killed during that outage was then wiped while 4 partitions were offline -- the new broker could
not register without a controller, so the wipe held both locks for its whole timeout and healed
nothing. Two facts make a destructive step (wipe/replace) useless or harmful:

* ``sole_copy_offline``: a partition is offline and no live broker is in its ISR, so its only
  in-sync copies are on down brokers. Wiping one of them loses data that no election can bring
  back; that broker must come back *with its disk*. Critical, never acted on by itself.
* ``stood_down``: automation stood down this cycle (something pages a human) while it had
  something to do; the finding names what was withheld and why, so the page says "I did not
  act, on purpose" instead of leaving silence. Critical; built by the engine after the
  stand-down is applied (:func:`stood_down`), not from the snapshot.
"""

from __future__ import annotations

import numpy as np

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import MAX_LISTED_PARTITIONS, RuleContext, as_ids
from kafka_medic.rules.names import RuleName


def sole_copies(ctx: RuleContext) -> dict[int, list[str]]:
    """Down broker -> offline partitions whose in-sync copies are only on down brokers, it among them."""
    p = ctx.snapshot.partitions
    if p.empty:
        return {}
    down = set(ctx.down_ids)
    alive = set(ctx.alive_ids)
    # Vectorised first (millions of partitions): only offline ones (no leader, or a down leader) matter.
    offline = (ctx.part_leader < 0) | np.isin(ctx.part_leader, np.asarray(sorted(down), dtype=np.int64))
    rows = p.loc[offline, ["topic", "partition", "replicas", "isr"]]
    out: dict[int, list[str]] = {}
    for t, part, reps, isr in zip(rows["topic"], rows["partition"], rows["replicas"], rows["isr"], strict=True):
        isr_ids = as_ids(isr)
        if alive.intersection(isr_ids):
            continue  # a live in-sync copy exists: an election (with a controller) brings it back
        holders = [b for b in (isr_ids or as_ids(reps)) if b in down]
        for b in holders:
            out.setdefault(b, []).append(f"{t}-{part}")
    return out


def sole_copy_offline(ctx: RuleContext) -> list[Finding]:
    """One critical finding per down broker holding the only in-sync copy of an offline partition."""
    findings = []
    for b, names in sorted(sole_copies(ctx).items()):
        findings.append(
            Finding(
                rule=RuleName.SOLE_COPY_OFFLINE,
                severity=Severity.CRITICAL,
                summary=f"broker {b} is down holding the only in-sync copy of {len(names)} offline partition(s): "
                "it must come back with its disk; it is never wiped",
                brokers=(b,),
                partitions=tuple(names[:MAX_LISTED_PARTITIONS]),
                evidence={"offline_partitions": len(names)},
                since=ctx.now,
                action=Action.NONE,
            )
        )
    return findings


def stood_down(findings: list[Finding]) -> list[Finding]:
    """The ``stood_down`` finding for findings whose automatic action was withheld ([] if none)."""
    withheld = [f for f in findings if "suppressed_action" in f.evidence]
    if not withheld:
        return []
    pagers = sorted({str(r) for f in withheld for r in f.evidence.get("stand_down", [])})
    what = sorted({f"{f.evidence['suppressed_action']} {list(f.brokers)}" for f in withheld})
    brokers = tuple(sorted({b for f in withheld for b in f.brokers}))
    return [
        Finding(
            rule=RuleName.STOOD_DOWN,
            severity=Severity.CRITICAL,
            summary=f"stood down: {', '.join(pagers)}; nothing was changed, withheld: {'; '.join(what)}",
            brokers=brokers,
            evidence={"because": pagers, "withheld": what},
            action=Action.NONE,
        )
    ]
