"""Degraded brokers: alive and registered, but sick enough that replacing them is the fix.

Kafka keeps a slow broker in the cluster (it is neither fenced nor dead), and one slow broker
slows every producer with acks=all whose partitions it follows. The signals:

* peer outliers on request-handler / network-processor idle and the broker's *own* produce p99
  latency and produce queue time (fetch latency is no signal: see ``PEER_METRICS``). A
  broker is compared with the median of the *other* alive brokers: including itself would pull
  the median towards the outlier and, in small clusters, hide it. A cluster-wide slowdown (load
  spike) moves the median too and flags nobody, which is the point: replacing brokers does not fix
  load. Each peer rule also has an absolute floor so a 2 ms vs 0.3 ms p99 never counts.
* a broker's own produce time is its produce ``TotalTimeMs`` p99 minus its ``RemoteTimeMs`` p99
  (``produce_local_p99_ms``). With acks=all a leader answers a produce only once every in-sync
  follower has fetched it, and Kafka's RequestMetrics books that wait as the request's *remote*
  time: a slow follower raises the total of every leader it follows, not its own. Measured on a
  real-broker bench: broker 3's host duty-cycled with SIGSTOP, and broker 1 -- healthy, leading
  partitions broker 3 follows -- was the one scored and demoted on total p99. Cruise Control's
  SlowBrokerFinder likewise avoids raw produce latency: it judges the broker's log flush time
  (p99.9) per byte in, which no follower can inflate. A difference of two p99s is not the p99 of
  the difference: an approximation (clamped at 0), enough for a 5x-over-peers outlier. When
  ``produce_remote_p99_ms`` is unknown for any broker compared (an exporter config from before
  RemoteTimeMs was scraped, or not yet rolled out everywhere), the rule compares total p99
  (``produce_p99_ms``) for all of them as it always did: peers are compared on one measure, and
  nothing that worked before stops working -- bystander leaders included, as before.
* ISR shrinks per second above an absolute rate — skipped while any broker is down or has just
  come back, because then every leader shrinks/expands ISRs as collateral, not as a symptom.
* EC2 status checks "impaired" and scheduled retirement/stop/reboot events (AWS is telling us the
  hardware is going away; replacing on our schedule beats losing it on theirs).

What one snapshot shows is *evidence*, never a verdict: the ``degraded_broker`` finding carries no
action. Whether it is confirmed (the broker's own history, its traffic, no failover under way), how
long it has lasted and which rung of the ladder is due is :mod:`kafka_medic.judgment`'s call, across
cycles. If many brokers are judged degraded at once it is the environment, not hardware: the
judgment pages and automation stands down; here ``mass_degradation`` covers failed log dirs (hard
evidence) on too many brokers at once.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from kafka_medic.findings import Action, Finding, Severity
from kafka_medic.rules.brokers import exceeds_cutoffs
from kafka_medic.rules.context import RuleContext, plain, rounded
from kafka_medic.rules.disks import failed_log_dir_brokers
from kafka_medic.rules.names import RuleName

#: EC2 scheduled-event codes that mean the instance (or its host) is going away or restarting.
EC2_REPLACEMENT_EVENT_CODES: frozenset[str] = frozenset(
    {"instance-retirement", "instance-stop", "system-reboot", "instance-reboot", "system-maintenance"}
)

#: (metric column, which direction is bad) for the peer-outlier rules.
#: Fetch latencies are deliberately NOT here: a fetch's TotalTimeMs is dominated by long-poll wait
#: in purgatory (``replica.fetch.wait.max.ms`` / the consumer's ``fetch.max.wait.ms``), so a broker
#: whose followers fetch idle partitions shows p99 near 500 ms by design while busy peers answer in
#: a few ms. Seen on the sandbox: it flagged healthy brokers as degraded.
#: ``produce_queue_p99_ms`` (RequestQueueTimeMs) is the slow broker's own: a produce's *total* time
#: also rises on every leader whose follower is slow (acks=all waits for it), so with RF 3 a slow
#: broker raises nearly every peer's total p99 and is no outlier there; the time a request waits
#: for one of the broker's own handler threads rises on that broker alone.
#: ``produce_p99_ms`` stands for the broker's own produce time, ``produce_local_p99_ms`` (total
#: minus remote, see :func:`produce_local_p99`), and for the total only where remote is unknown.
PEER_METRICS: tuple[tuple[str, Literal["low", "high"]], ...] = (
    ("request_handler_idle", "low"),
    ("network_processor_idle", "low"),
    ("produce_p99_ms", "high"),
    ("produce_queue_p99_ms", "high"),
)
#: The signal name of the broker's own produce p99 (total minus the wait for followers).
PRODUCE_LOCAL = "produce_local_p99_ms"

Signal = dict[str, Any]


def leave_one_out_median(values: np.ndarray) -> np.ndarray:
    """For each element, the median of all the *other* elements (vectorised, O(n log n)).

    Sort once; removing the element at sorted rank ``i`` shifts every later element down by one,
    so the k-th remaining value is ``s[k]`` if ``k < i`` else ``s[k + 1]``.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n < 2:
        return np.full(n, np.nan)
    order = np.argsort(v, kind="stable")
    s = v[order]
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    m = n - 1  # number of peers

    def kth_remaining(k: int) -> np.ndarray:
        return np.where(k < ranks, s[k], s[k + 1])

    if m % 2 == 1:
        return kth_remaining(m // 2)
    return (kth_remaining(m // 2 - 1) + kth_remaining(m // 2)) / 2.0


def produce_local_p99(total: Any, remote: Any) -> np.ndarray:
    """The broker's own produce p99: total minus the time spent waiting for followers, at least 0.

    NaN where either is unknown (the caller decides what unknown remote means).
    """
    t = np.asarray(total, dtype=np.float64)
    r = np.asarray(remote, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(t) & np.isfinite(r), np.maximum(t - r, 0.0), np.nan)


def _produce_values(b: Any, usable: np.ndarray) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """(signal name, values, extra evidence columns) of the produce-latency peer rule.

    The broker's own time when every broker compared (usable, total known) has its remote time;
    otherwise the total for everyone, as before RemoteTimeMs was scraped.
    """
    total = b["produce_p99_ms"].to_numpy(dtype=np.float64)
    remote = b["produce_remote_p99_ms"].to_numpy(dtype=np.float64)
    compared = usable & np.isfinite(total)
    if compared.any() and np.isfinite(remote[compared]).all():
        return PRODUCE_LOCAL, produce_local_p99(total, remote), {"total_p99_ms": total, "remote_p99_ms": remote}
    return "produce_p99_ms", total, {}


def isr_shrink_suppressed(ctx: RuleContext) -> str | None:
    """Why ISR-shrink rates are not trusted this cycle (None = they are)."""
    if ctx.down_ids:
        return "brokers down"
    if set(ctx.previous_down_since) & ctx.alive_ids:
        return "brokers just recovered"
    return None


def _peer_signals(ctx: RuleContext, metrics_usable: np.ndarray, signals: dict[int, list[Signal]]) -> None:
    """Peer-outlier signals (idle ratios too low, p99 latencies too high) into ``signals``."""
    p = ctx.policy
    b = ctx.brokers
    ids = ctx.broker_ids
    floors = {"request_handler_idle": p.request_idle_floor, "network_processor_idle": p.network_idle_floor,
              "produce_p99_ms": p.latency_floor_ms, PRODUCE_LOCAL: p.latency_floor_ms,
              "produce_queue_p99_ms": p.queue_floor_ms}  # fmt: skip
    for column, bad in PEER_METRICS:
        extra: dict[str, np.ndarray] = {}
        if column == "produce_p99_ms":
            column, values, extra = _produce_values(b, metrics_usable)
        else:
            values = b[column].to_numpy(dtype=np.float64)
        valid = metrics_usable & np.isfinite(values)
        n_valid = int(valid.sum())
        if n_valid < max(p.degraded_min_peers, 2):
            continue
        v = values[valid]
        valid_ids = ids[valid]
        med = leave_one_out_median(v)
        if bad == "low":
            floor = floors[column]
            rel = p.idle_peer_ratio * med
            flagged = (v < floor) & (v < rel)
            threshold = np.minimum(floor, rel)
            why = f"below {floor:g} and below {p.idle_peer_ratio:g} x peer median"
        else:
            floor = floors[column]
            rel = p.latency_peer_factor * med
            flagged = (v > floor) & (v > rel)
            threshold = np.maximum(floor, rel)
            why = f"above {floor:g} ms and above {p.latency_peer_factor:g} x peer median"
        extra_valid = {k: a[valid] for k, a in extra.items()}
        for i in np.flatnonzero(flagged):
            signals.setdefault(int(valid_ids[i]), []).append(
                {
                    "signal": column,
                    "value": rounded(v[i]),
                    "peer_median": rounded(med[i]),
                    "threshold": rounded(threshold[i]),
                    "peers": n_valid - 1,
                    "condition": why,
                    **{k: rounded(a[i]) for k, a in extra_valid.items()},
                }
            )


def degraded_signals(ctx: RuleContext) -> dict[int, list[Signal]]:
    """Every degradation signal per alive broker id (memoised: also feeds ``mass_degradation``)."""
    p = ctx.policy
    b = ctx.brokers
    signals: dict[int, list[Signal]] = {}
    alive = ctx.alive_mask
    if not alive.any():
        return signals
    ids = ctx.broker_ids
    # metrics_ok False = endpoint failed: values may be stale, do not judge (or compare against) them
    metrics_usable = alive & np.array([v is not False for v in b["metrics_ok"]], dtype=bool)
    _peer_signals(ctx, metrics_usable, signals)

    if isr_shrink_suppressed(ctx) is None:
        shrinks = b["isr_shrinks_per_sec"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            flagged = metrics_usable & np.isfinite(shrinks) & (shrinks > p.isr_shrink_rate_max)
        for i in np.flatnonzero(flagged):
            signals.setdefault(int(ids[i]), []).append(
                {
                    "signal": "isr_shrinks_per_sec",
                    "value": rounded(shrinks[i]),
                    "threshold": p.isr_shrink_rate_max,
                    "condition": f"above {p.isr_shrink_rate_max:g}/s",
                }
            )

    statuses = b["ec2_status"].to_numpy(dtype=object)
    events = b["ec2_events"].to_numpy(dtype=object)
    for i in np.flatnonzero(alive):
        bid = int(ids[i])
        status = statuses[i]
        if p.ec2_impaired_is_degraded and status is not None and str(status).lower() == "impaired":
            signals.setdefault(bid, []).append(
                {"signal": "ec2_impaired", "value": str(status), "condition": "EC2 status check impaired"}
            )
        if p.ec2_retirement_is_degraded and events[i]:
            listed = {c.strip().lower() for c in str(events[i]).split(";")}
            codes = sorted(listed & EC2_REPLACEMENT_EVENT_CODES)
            if codes:
                signals.setdefault(bid, []).append(
                    {
                        "signal": "ec2_scheduled_event",
                        "value": codes,
                        "condition": "EC2 scheduled retirement/stop/reboot",
                    }
                )
    return signals


def degraded_broker(ctx: RuleContext) -> list[Finding]:
    """One finding per degraded alive broker, listing every signal with value/peer median/threshold."""
    signals = ctx.memo(degraded_signals)
    findings: list[Finding] = []
    for bid in sorted(signals):
        sigs = signals[bid]
        names = ", ".join(s["signal"] for s in sigs)
        findings.append(
            Finding(
                rule=RuleName.DEGRADED_BROKER,
                severity=Severity.WARNING,
                summary=f"Broker {bid} degraded: {names}",
                brokers=(bid,),
                evidence={
                    "broker_id": bid,
                    "rack": plain(ctx.rack_by_broker.get(bid)),
                    "signals": sigs,
                },
                action=Action.NONE,  # evidence only: kafka_medic.judgment decides, across cycles
            )
        )
    return findings


def mass_degradation(ctx: RuleContext) -> list[Finding]:
    """Too many brokers with a failed log dir at once: page, stand down.

    Uses the mass-failure cutoffs: replacing more brokers at once than we would tolerate losing is
    never a safe automatic response, and the shared cause is usually outside the brokers. (Brokers
    judged degraded on metrics are counted by :mod:`kafka_medic.judgment`, on confirmed evidence.)
    """
    signals: dict[int, list[Signal]] = {}
    failed_disks = ctx.memo(failed_log_dir_brokers)
    targets = set(failed_disks)
    by_count, by_fraction = exceeds_cutoffs(len(targets), ctx.n_brokers, ctx.policy)
    if not (by_count or by_fraction):
        return []
    ids = tuple(sorted(targets))
    signal_counts: dict[str, int] = {}
    for sigs in signals.values():
        for s in sigs:
            signal_counts[s["signal"]] = signal_counts.get(s["signal"], 0) + 1
    if failed_disks:
        signal_counts["offline_log_dir"] = len(failed_disks)
    return [
        Finding(
            rule=RuleName.MASS_DEGRADATION,
            severity=Severity.CRITICAL,
            summary=f"{len(ids)} of {ctx.n_brokers} brokers look degraded at once: likely an environment "
            "problem, not hardware; automation stands down",
            brokers=ids,
            evidence={
                "degraded_brokers": len(ids),
                "total_brokers": ctx.n_brokers,
                "max_brokers": ctx.policy.mass_failure_max_brokers,
                "max_fraction": ctx.policy.mass_failure_max_fraction,
                "exceeded_by_count": by_count,
                "exceeded_by_fraction": bool(by_fraction),
                "signal_counts": signal_counts,
            },
            action=Action.PAGE,
        )
    ]
