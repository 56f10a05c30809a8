"""The health policy: every threshold the rules use, and what automation may do.

A pydantic model so it validates (bounds, unknown fields rejected) wherever it comes from: a
cluster YAML file, a Prefect block, or a flow parameter form in the UI.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    @model_validator(mode="after")
    def _ladder_order(self) -> HealthPolicy:
        if not self.demote_score <= self.restart_score <= self.replace_score:
            raise ValueError(
                f"the ladder must climb: demote_score ({self.demote_score}) <= restart_score "
                f"({self.restart_score}) <= replace_score ({self.replace_score})"
            )
        return self

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
    # Timeouts never count (network trouble looks the same). See kafka_medic/monitor/listener_probe.py.
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
    queue_floor_ms: float = Field(
        50.0, ge=0, le=600_000, description="p99 time a produce request waits for a handler thread below this is "
        "never called degraded (healthy brokers: ~1 ms; a CPU-starved one: 100 ms and more).",
    )  # fmt: skip
    isr_shrink_rate_max: float = Field(
        1.0, ge=0, le=1e6, description="ISR shrinks per second above this (on one broker) is degraded."
    )
    # Degraded brokers: evidence over time and the ladder (kafka_medic/judgment.py)
    degraded_history_factor: float = Field(
        3.0, ge=1, le=1000,
        description="A peer outlier counts only if also this many times worse than the broker's own baseline.",
    )  # fmt: skip
    degraded_baseline_alpha: float = Field(
        0.1, gt=0, le=1, description="Weight of one clean observation in the broker's own baseline (EWMA)."
    )
    degraded_baseline_min_samples: int = Field(
        5, ge=1, le=10_000, description="Clean observations before a broker's own baseline is trusted."
    )
    degraded_min_bytes_in_per_sec: float = Field(
        100_000.0, ge=0, le=1e12,
        description="Brokers taking in less than this (bytes/s) are not judged: too few requests to mean anything.",
    )  # fmt: skip
    degraded_settle_s: float = Field(
        120.0, ge=0, le=86_400,
        description="Nobody is judged for this long after a broker was down or came back, a reassignment, "
        "a restart or a replacement (every failover makes the survivors look slow).",
    )  # fmt: skip
    score_decay: int = Field(1, ge=1, le=1000, description="How much a clean cycle takes off a broker's score.")
    demote_score: int = Field(5, ge=1, le=10_000, description="Score at which a degraded broker loses its leaderships.")
    restart_score: int = Field(15, ge=1, le=10_000, description="Score at which it is restarted (disk kept).")
    replace_score: int = Field(30, ge=1, le=10_000, description="Score at which it is replaced (fresh machine/disk).")
    ladder_reset_s: float = Field(
        3600.0, ge=0, le=7 * 86_400, description="A broker healthy this long after its leaderships came back "
        "starts its next episode at the bottom of the ladder (before that it climbs on from its last rung).",
    )  # fmt: skip
    remediation_backoff_s: float = Field(
        300.0, ge=0, le=86_400, description="After a failed or refused remediation of a broker, wait this long "
        "before the next (doubling after each failure).",
    )  # fmt: skip
    remediation_max_attempts: int = Field(
        3, ge=1, le=100, description="Failed remediations of one broker in the window before automation gives "
        "up on it and pages.",
    )  # fmt: skip
    remediation_window_s: float = Field(
        6 * 3600.0, gt=0, le=7 * 86_400, description="The window the failed attempts are counted in."
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
    verify_timeout_s: float = Field(
        1800.0, gt=0, le=86_400, description="How long verify_isr waits for full ISR after an action."
    )
    incident_pending_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="A condition must last this long before it opens an incident (no page "
        "for a clean failover: its partitions are leaderless until the controller fences the broker, 9 s by default).",
    )
    incident_repeat_s: float = Field(
        1800.0, ge=60, le=7 * 86_400, description="An open critical incident is paged again this often while it lasts."
    )
    incident_resolve_cycles: int = Field(
        2, ge=1, le=100, description="Clean health checks in a row before an incident is resolved (no flapping)."
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
