"""The health policy: every threshold the rules use, and what automation may do.

A pydantic model so it validates (bounds, unknown fields rejected) wherever it comes from: a
cluster YAML file, a Prefect block, or a flow parameter form in the UI.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

#: Default ceiling for a log dir that receives replicas by a drain or a replacement (share of its
#: total). Why 0.85: below the 0.90 critical disk alert, so a move never creates that alert itself.
DEFAULT_MOVE_MAX_DISK_USAGE = 0.85
#: Default price of one GB crossing AZs. Why 0.02: AWS bills inter-AZ traffic $0.01/GB on each
#: side (out of one AZ, into the other), so a replica copied across AZs costs $0.02/GB in effect.
DEFAULT_INTER_AZ_PRICE_PER_GB = 0.02


class Mode(StrEnum):
    """What automation may do with actionable findings."""

    OBSERVE = "observe"  # report only
    APPROVE = "approve"  # remediation pauses for a typed human approval
    AUTO = "auto"  # remediation runs on its own


class HealthPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Field(Mode.OBSERVE, description="observe: report only; approve: ask a human; auto: act.")

    # Dead / fenced brokers
    dead_broker_grace_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="A broker must stay down this long before healing acts on it (0: act on first sight).",
    )
    # Why on by default: a refused connection (host up, nothing listening) shows a crashed broker
    # seconds before the controller fences it, so healing can start while the session expires.
    # Timeouts never count (network trouble looks the same). See kafka_medic/listener_probe.py.
    refused_listener_is_down: bool = Field(
        True,
        description="A listed broker whose listener actively refuses TCP connections is down "
        "(its process is gone), before the controller fences it. Timeouts never count.",
    )
    listener_probe_timeout_s: float = Field(
        1.0, gt=0, le=10, description="Bound of the TCP connect to each broker's listener (seconds)."
    )
    # Mass failure: more than either cutoff of brokers down -> page a human, automation stands down.
    mass_failure_max_brokers: int = Field(
        2, ge=0, le=10_000, description="More than this many brokers down at once is a mass failure."
    )
    mass_failure_max_fraction: float = Field(
        0.34, gt=0, le=1, description="More than this share of brokers down at once is a mass failure."
    )

    # Degraded brokers: outliers against their peers
    degraded_min_peers: int = Field(3, ge=2, le=1000, description="Peers needed before outlier rules apply.")
    request_idle_floor: float = Field(0.2, ge=0, le=1, description="Request-handler idle ratio below this is degraded.")
    network_idle_floor: float = Field(
        0.2, ge=0, le=1, description="Network-processor idle ratio below this is degraded."
    )
    idle_peer_ratio: float = Field(
        0.5, gt=0, le=1, description="Idle ratio below this fraction of the peer median is degraded."
    )
    latency_peer_factor: float = Field(
        5.0, ge=1, le=1000, description="p99 latency above this multiple of the peer median is degraded."
    )
    latency_floor_ms: float = Field(
        100.0, ge=0, le=600_000, description="p99 latency below this is never called degraded."
    )
    isr_shrink_rate_max: float = Field(
        1.0, ge=0, le=1e6, description="ISR shrinks per second above this (on one broker) is degraded."
    )
    ec2_impaired_is_degraded: bool = Field(True, description="An impaired EC2 status check marks a degraded broker.")
    ec2_retirement_is_degraded: bool = Field(
        True, description="A scheduled instance retirement/stop marks a broker for replacement."
    )

    # Disks
    disk_usage_warn: float = Field(0.80, gt=0, le=1, description="Log-dir usage share that warns.")
    disk_usage_critical: float = Field(0.90, gt=0, le=1, description="Log-dir usage share that is critical.")

    # Leadership
    leader_imbalance_max: float = Field(
        0.10, ge=0, le=1, description="Share of partitions not led by their preferred replica that warns."
    )

    # Remediation
    replacement_cooldown_s: float = Field(
        1800.0, ge=0, le=7 * 86_400, description="Minimum time between two broker replacements in one cluster."
    )
    guard_reuse_max_age_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="A replacement's safety guard always re-reads metadata (ISR, leaders) and probes the "
        "listeners itself; the slow rest of the health check's snapshot (metrics, log dirs, configs) is "
        "reused if younger than this (seconds; 0: collect everything afresh).",
    )
    verify_timeout_s: float = Field(
        1800.0, gt=0, le=86_400, description="How long verify_isr waits for full ISR after an action."
    )
    approval_timeout_s: float = Field(
        3600.0, gt=0, le=7 * 86_400, description="How long an approve-mode remediation waits for a human."
    )
    throttle_bytes_per_sec: int = Field(
        50_000_000, ge=1_000_000, le=10_000_000_000, description="Replication throttle for moves (bytes/s/broker)."
    )
    move_max_disk_usage: float = Field(
        DEFAULT_MOVE_MAX_DISK_USAGE,
        gt=0,
        le=1,
        description="A log dir that receives replicas (drain or replacement) may be filled to at most this "
        "share of its size; checked per log dir, since a replica lives in one dir.",
    )
    inter_az_price_per_gb: float = Field(
        DEFAULT_INTER_AZ_PRICE_PER_GB,
        ge=0,
        le=10,
        description="Dollars per GB copied across AZs (effective price: out of one AZ plus into the other), "
        "for the cost shown with every plan and replacement.",
    )
