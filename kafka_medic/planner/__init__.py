"""Placement planner: pure functions that decide where replicas go (no Kafka, no Prefect).

``plan_moves(snapshot, DrainRequest(...) | ReplaceRequest(...))`` returns a ``Plan`` whose moves
keep replication factor, rack spread, in-sync copies and capacity limits, and move nothing but the
replicas of the drained/replaced brokers. See ``kafka_medic.planner.planner`` for the design.
"""

from kafka_medic.planner.cost import compute_cost, partition_sizes, plan_cost
from kafka_medic.planner.estimate import ReplaceOrDrain, compare_replace_vs_drain, estimate_plan, replacement_cost
from kafka_medic.planner.models import (
    CostEstimate,
    DrainRequest,
    Move,
    Plan,
    PlanCost,
    PlanningError,
    PlanRequest,
    ReplaceRequest,
    Unplaceable,
)
from kafka_medic.planner.planner import kafka_generate_inputs, moves_from_kafka_json, parse_request, plan_moves

__all__ = [
    "CostEstimate",
    "DrainRequest",
    "Move",
    "Plan",
    "PlanCost",
    "PlanRequest",
    "PlanningError",
    "ReplaceOrDrain",
    "ReplaceRequest",
    "Unplaceable",
    "compare_replace_vs_drain",
    "compute_cost",
    "estimate_plan",
    "kafka_generate_inputs",
    "moves_from_kafka_json",
    "parse_request",
    "partition_sizes",
    "plan_cost",
    "plan_moves",
    "replacement_cost",
]
