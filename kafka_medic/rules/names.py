"""Rule names as constants, so the decision engine, UI and tests never spell them by hand."""

from __future__ import annotations

from enum import StrEnum


class RuleName(StrEnum):
    """The ``Finding.rule`` values the health rules emit (a StrEnum, so it compares equal to str)."""

    # Broker liveness
    NO_BROKERS_VISIBLE = "no_brokers_visible"
    BROKER_DOWN = "broker_down"
    MASS_FAILURE = "mass_failure"
    METRICS_UNAVAILABLE = "metrics_unavailable"
    # Degraded (alive but unhealthy) brokers
    DEGRADED_BROKER = "degraded_broker"
    MASS_DEGRADATION = "mass_degradation"
    BROKER_RECOVERED = "broker_recovered"  # a judged broker is healthy again (kafka_medic.judgment)
    # Partition state
    UNDER_REPLICATED = "under_replicated"
    UNDER_MIN_ISR = "under_min_isr"
    OFFLINE = "offline"
    OFFLINE_REPORTED_BY_CONTROLLER = "offline_reported_by_controller"
    MIN_ISR_NO_HEADROOM = "min_isr_no_headroom"
    REASSIGNMENT_IN_PROGRESS = "reassignment_in_progress"
    # Work nobody owns (an interrupted or crashed action's leftovers)
    LEFTOVER_THROTTLES = "leftover_throttles"
    UNOWNED_REASSIGNMENT = "unowned_reassignment"
    # Disks
    OFFLINE_LOG_DIR = "offline_log_dir"
    DISK_USAGE_HIGH = "disk_usage_high"
    DISK_USAGE_CRITICAL = "disk_usage_critical"
    # Placement
    RACK_VIOLATION = "rack_violation"
    RACK_MISSING = "rack_missing"
    RF_BELOW_DEFAULT = "rf_below_default"
    # Leadership / controller
    LEADER_IMBALANCE = "leader_imbalance"
    NO_ACTIVE_CONTROLLER = "no_active_controller"
    CONTROLLER_METRICS_UNAVAILABLE = "controller_metrics_unavailable"
    # Stand-down (kafka_medic.rules.standdown)
    SOLE_COPY_OFFLINE = "sole_copy_offline"
    STOOD_DOWN = "stood_down"
    # Meta
    COLLECTION_ERROR = "collection_error"
    RULE_ERROR = "rule_error"
