"""A plan is checked against the safety rules before anything executes it.

Pure: the planner's plan for a request on a snapshot, refused as a whole (SafetyError naming the
violations) if any move would break a safety rule, and a clear ConfigError when there is nothing to
plan. Nothing is changed either way.
"""

from __future__ import annotations

from kafka_medic.errors import ConfigError, SafetyError
from kafka_medic.executor.isr import capped
from kafka_medic.planner import DrainRequest, Plan, ReplaceRequest, plan_moves
from kafka_medic.safety import validate_plan
from kafka_medic.snapshot import ClusterSnapshot


def checked_plan(snapshot: ClusterSnapshot, request: DrainRequest | ReplaceRequest, *, allow_partial: bool) -> Plan:
    """Plan and check; ConfigError / PlanningError / SafetyError name what is wrong, nothing changed."""
    if snapshot.partitions.empty:
        raise ConfigError(f"cluster {snapshot.cluster!r} has no topics: there is nothing to reassign")
    plan = plan_moves(snapshot, request, allow_partial=allow_partial)
    violations = validate_plan(snapshot, plan.moves)
    if violations:
        raise SafetyError(
            f"Refusing the plan: {len(violations)} safety violation(s): {capped(violations, sep='; ')}. "
            "Nothing was changed."
        )
    return plan
