"""The cost of a plan or a replacement where people read it (issue 14): approval forms, the health
check's decisions table, the reassignment, drain and replacement artifacts, and the audit record.

Pure pieces only (the flows pass these through); the cluster is the one of ``test_decide``: broker 1
(rack a) down, 60 GB to re-create in rack a from leaders in racks b and c.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from flows.remediate import RemediationParams
from kafka_medic.decide import Decision, Remedy, approval_cost_text, approval_text, with_costs
from kafka_medic.planner import DrainRequest, plan_moves, replacement_cost
from kafka_medic.policy import HealthPolicy
from kafka_medic.reports.drain import DrainReport, drain_markdown
from kafka_medic.reports.health import findings_markdown
from kafka_medic.reports.reassign import ReassignReport, cost_markdown, fill_plan_figures
from kafka_medic.reports.replace import outcome_markdown
from kafka_medic.rules import Evaluation
from tasks.rungs import replacement_cost_record
from tests.unit.test_decide import PRICE, _costed_cluster


def _replace_decision(approval: bool = True) -> Decision:
    d = Decision(Remedy.REPLACE_BROKER, 1, "broker_down", "broker 1 down", execute=True, needs_approval=approval)
    (out,) = with_costs([d], _costed_cluster(), PRICE)
    return out


def test_the_record_has_the_four_figures_and_what_they_assume() -> None:
    rec = replacement_cost(_costed_cluster(), 1, PRICE).record()
    assert {k: rec[k] for k in ("bytes", "cross_az_bytes", "dollars", "eta_s")} == {
        "bytes": 60_000_000_000,
        "cross_az_bytes": 60_000_000_000,
        "dollars": 3.0,
        "eta_s": 6000.0,
    }
    assert rec["price_per_gb"] == 0.05 and rec["throttle_bytes_per_sec"] == 10e6
    assert rec["summary"].startswith("replacement of broker 1 in its AZ (a): 60.0 GB to copy")


def _form(p: RemediationParams) -> str:
    """The approval form the remediate flow shows for ``p`` on cluster "prod"."""
    return approval_text("prod", p.remedy, p.broker_id, p.rule, p.reason, p.cost)


def test_the_approval_form_shows_the_cost_of_a_replacement_and_a_drain() -> None:
    d = _replace_decision()
    params = RemediationParams.from_decision(d)
    assert params.cost == d.cost, "the decision's cost travels with the remediation"
    text = _form(params)
    assert "Cost: **60.0 GB** to copy, 60.0 GB across AZs (**$3.00** at $0.05/GB), **~1 h 40 min**" in text
    assert "a restart that keeps its disk copies only what it missed" in text
    drain = params.model_copy(update={"remedy": Remedy.REASSIGN_AWAY})
    assert "Cost: **60.0 GB**" in _form(drain) and "restart" not in approval_cost_text(Remedy.REASSIGN_AWAY, d.cost)
    unknown = params.model_copy(update={"cost": None})
    assert "Cost: unknown" in _form(unknown)
    demote = params.model_copy(update={"remedy": Remedy.DEMOTE_BROKER, "cost": None})
    assert "Cost" not in _form(demote), "no data moves: no cost paragraph"


def test_the_health_check_decisions_table_has_a_cost_column() -> None:
    ev = Evaluation(findings=[], down_since={}, broker_health=pd.DataFrame(), automation_allowed=True)
    failed = Decision(Remedy.REPLACE_BROKER, 7, "r", "x", execute=False, needs_approval=False, cost_error="no such")
    md = findings_markdown("prod", ev, [_replace_decision(), failed], maintenance=False)
    assert "| remedy | broker | execute | reason | cost |" in md
    assert "| 60.0 GB to copy, 60.0 GB cross-AZ, $3.00, ~1 h 40 min |" in md
    assert "| unknown: no such |" in md


def test_the_reassignment_report_and_artifact_carry_dollars_and_eta_at_the_run_throttle() -> None:
    snap = _costed_cluster()
    plan = plan_moves(snap, DrainRequest(brokers=[1]))
    report = ReassignReport(cluster="t", status="dry_run", dry_run=True, summary="", request={},
                            throttle_bytes_per_sec=20_000_000)  # fmt: skip
    fill_plan_figures(report, snap, plan, 20_000_000, (5, 50), PRICE)
    est = report.cost_estimate
    assert est is not None and est["dollars"] == 3.0 and est["throttle_bytes_per_sec"] == 20e6
    assert est["eta_s"] == pytest.approx(3000.0), "the run's own throttle, not the policy's"
    md = cost_markdown("t", {}, True, (5, 50), plan, 20_000_000, 3000.0, 1, [], None, est)
    assert "| cross-AZ cost | $3.00 at $0.05/GB |" in md and "~50 min" in md
    default = ReassignReport(cluster="t", status="dry_run", dry_run=True, summary="", request={},
                             throttle_bytes_per_sec=1)  # fmt: skip
    fill_plan_figures(default, snap, plan, 20_000_000, (5, 50))
    assert default.cost_estimate is not None and default.cost_estimate["price_per_gb"] == 0.02


def test_drain_and_replacement_artifacts_show_the_cost() -> None:
    rec = replacement_cost(_costed_cluster(), 1, PRICE).record()
    r = DrainReport(action="drain", cluster="t", broker_id=1, dry_run=True, moves=2, summary="s", cost=rec)
    assert f"Cost: {rec['summary']}" in drain_markdown(r)
    assert f"Cost: {rec['summary']}" in outcome_markdown("t", 1, "REPLACED", "ok", {}, rec)
    assert "Cost: unknown (gone)" in outcome_markdown("t", 1, "PLANNED", "ok", {}, {"error": "gone"})
    assert "Cost" not in outcome_markdown("t", 1, "SKIPPED", "ok", {})


def test_the_price_per_gb_is_a_policy_setting() -> None:
    assert HealthPolicy().inter_az_price_per_gb == 0.02
    assert HealthPolicy(inter_az_price_per_gb=0.01).inter_az_price_per_gb == 0.01


def test_the_replacement_started_record_cost_never_fails_the_run() -> None:
    run = SimpleNamespace(snapshot=_costed_cluster(), broker_id=1, block=SimpleNamespace(policy=PRICE))
    rec = replacement_cost_record(run)  # type: ignore[arg-type]
    assert rec is not None and rec["dollars"] == 3.0 and rec["eta_s"] == 6000.0
    assert replacement_cost_record(SimpleNamespace(snapshot=None)) is None  # type: ignore[arg-type]
    unknown = SimpleNamespace(snapshot=_costed_cluster(), broker_id=42, block=SimpleNamespace(policy=PRICE))
    assert "42" in replacement_cost_record(unknown)["error"]  # type: ignore[arg-type,index]
