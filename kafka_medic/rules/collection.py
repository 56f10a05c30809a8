"""Collection issues become findings: what we could not see is itself worth showing."""

from __future__ import annotations

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.context import RuleContext
from kafka_medic.rules.names import RuleName


def collection_error(ctx: RuleContext) -> list[Finding]:
    """One WARNING per ``CollectionIssue`` (never a crash: missing data degrades to a finding)."""
    findings: list[Finding] = []
    for issue in ctx.snapshot.issues:
        broker = getattr(issue, "broker_id", None)
        brokers = (int(broker),) if broker is not None else ()
        source = str(getattr(issue, "source", "unknown"))
        message = str(getattr(issue, "message", issue))
        where = f" (broker {brokers[0]})" if brokers else ""
        findings.append(
            Finding(
                rule=RuleName.COLLECTION_ERROR,
                severity=Severity.WARNING,
                summary=f"Could not collect {source}{where}: {message}",
                brokers=brokers,
                evidence={"source": source, "message": message, "broker_id": brokers[0] if brokers else None},
                action=Action.NONE,
            )
        )
    return findings
