"""Health rules: pure functions from a ``ClusterSnapshot`` + ``HealthPolicy`` to findings.

No Kafka, no Prefect: everything here runs on pandas frames, so it is unit-tested on crafted
frames and benchmarked on synthetic 100k-partition clusters.

Entry point::

    from kafka_medic.rules import evaluate
    ev = evaluate(snapshot, policy, down_since=previous.down_since)
    ev.findings, ev.down_since, ev.broker_health, ev.automation_allowed
"""

from kafka_medic.rules.context import MAX_LISTED_PARTITIONS, Rule, RuleContext
from kafka_medic.rules.engine import (
    AUTOMATIC_ACTIONS,
    BROKER_HEALTH_COLUMNS,
    RULES,
    Evaluation,
    evaluate,
)
from kafka_medic.rules.names import RuleName

__all__ = [
    "AUTOMATIC_ACTIONS",
    "BROKER_HEALTH_COLUMNS",
    "MAX_LISTED_PARTITIONS",
    "RULES",
    "Evaluation",
    "Rule",
    "RuleContext",
    "RuleName",
    "evaluate",
]
