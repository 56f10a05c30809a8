"""Standing down when acting cannot help, on the real sandbox: the controller (node 100) is killed.

The scenario a user hit: the dedicated controller SIGKILLed gave no finding and no page; a broker
killed during that outage was then WIPED (its new incarnation could not register without a
controller, the flow held both locks for its whole timeout). Here: the controller's death is a
critical ``no_active_controller`` finding naming node 100; a broker killed during the outage is
not touched -- neither by the health check acting nor by the replace flow, which completes
``stood_down`` with an audited reason; once the controller is back, normal healing restarts the
broker with its disk. Humans hear of it once: one page for the outage to a real webhook receiver
(once it lasted the incident's pending window), one "resolved" when the controller is back.
Explicit placement (the topic's replicas are chosen, not left to Kafka).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from flows.health_check import health_check as check
from flows.replace_broker import ReplaceBrokerParams, replace_broker
from kafka_medic.monitor.listener_probe import ListenerState, probe_listeners
from kafka_medic.naming import limit_name
from kafka_medic.reports.replace import ReplaceStatus
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.sandbox.layout import CONTROLLER_ID
from tests.flows.test_replace_broker import (
    active_slots,
    audit_of,
    directory_id,
    poll,
    remember_brokers,
    save_cluster,
    statuses,
)
from tests.waiting import wait_until
from tests.webhook import Hook, save_webhook

pytestmark = [pytest.mark.kafka, pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

#: Killed during the outage; not one of the audit topic's brokers (1, 3, 5), so the trail stays writable.
VICTIM = 4
#: The incident's pending window (default 30 s): still longer than a clean failover's fencing (9 s).
PENDING_S = 10


def _findings(report: Any, rule: str) -> list[dict[str, Any]]:
    return [f for f in report.findings if f["rule"] == rule]


def _process(sb: Sandbox, node_id: int) -> str:
    return next(s for s in sb.status(timeout_s=3) if s.node_id == node_id).process


async def test_no_controller_stands_down_then_healing_resumes(
    healthy_sandbox: Sandbox, topic_factory, hook: Hook
) -> None:
    sb = healthy_sandbox
    reports: list[Any] = []

    async def health_check(cluster: str, *, act: bool) -> Any:  # every cycle's report is kept
        reports.append(await check(cluster, act=act))
        return reports[-1]

    def transitions(key: str) -> list[tuple[str, bool]]:
        return [(i["transition"], i["page"]) for r in reports for i in r.incidents if i["key"] == key]

    # The victim leads p0 and follows p1; every partition keeps two in-sync replicas on live
    # brokers without it (one replica per AZ), so only the controller's absence can stop the heal.
    topic_factory(replicas=[[VICTIM, 2, 3], [5, VICTIM, 3], [3, 5, 1]], config={"min.insync.replicas": "2"})
    block = await save_cluster(sb, prefix="sd", incident_pending_s=PENDING_S)
    await save_webhook(hook, block.name)
    await remember_brokers(block.name)
    before = directory_id(sb, VICTIM)

    # 1) the controller dies: a critical finding naming node 100, automation stands down
    sb.kill(CONTROLLER_ID)
    t0 = time.monotonic()

    async def no_controller() -> Any:
        report = await health_check(block.name, act=False)
        return report if _findings(report, "no_active_controller") else None

    report = await poll(no_controller, 60, "a no_active_controller finding")
    detected_s = time.monotonic() - t0
    f = _findings(report, "no_active_controller")[0]
    assert f["severity"] == "critical" and f["action"] == "page", f
    assert f["evidence"]["controllers_unscraped"] == [CONTROLLER_ID], f
    assert f["evidence"]["quorum_state"] == "unanswered", f  # the brokers' forwarded DescribeQuorum timed out
    assert str(CONTROLLER_ID) in f["summary"]
    assert not report.automation_allowed

    # 2) a broker killed during the outage: seen down (its listener refuses), never wiped
    sb.kill(VICTIM)
    port = sb.layout.broker(VICTIM).port
    wait_until(
        lambda: probe_listeners({VICTIM: ("127.0.0.1", port)}, 1.0)[VICTIM] is ListenerState.REFUSED,
        timeout_s=20,
        what=f"broker {VICTIM}'s listener refusing connections",
    )

    async def withheld() -> Any:
        r = await health_check(block.name, act=True)  # automation is live: only the stand-down stops it
        return r if _findings(r, "stood_down") else None

    report = await poll(withheld, 60, "a stood_down finding for the dead broker")
    sd = _findings(report, "stood_down")[0]
    assert sd["severity"] == "critical" and VICTIM in sd["brokers"], sd
    assert "no_active_controller" in sd["summary"], sd
    assert not report.dispatched or all(d.get("remedy") == "page" for d in report.dispatched), report.dispatched
    assert directory_id(sb, VICTIM) == before and _process(sb, VICTIM) == "stopped"

    # 3) the replace flow, asked directly, stands down too: audited, nothing touched, locks released
    res = await replace_broker(
        block.name, ReplaceBrokerParams(broker_id=VICTIM, dry_run=False, cooldown_s=0, require_finding=True)
    )
    assert res.status is ReplaceStatus.STOOD_DOWN, res
    assert res.message.startswith("stood down: no active controller"), res.message
    assert directory_id(sb, VICTIM) == before and _process(sb, VICTIM) == "stopped"
    refused = [r for r in audit_of(block) if r["action"] == "replace_broker"]
    assert statuses(refused) == ["refused"] and refused[0]["details"]["why"] == "stood_down", refused
    assert "started" not in statuses(audit_of(block))
    for kind in ("mutate", "replace"):
        assert await active_slots(limit_name(block.name, kind)) == 0

    # the on-call was paged once the outage lasted the incident's pending window (PENDING_S), once
    async def paged() -> Any:
        r = await health_check(block.name, act=True)
        return r if transitions("no_active_controller") else None

    await poll(paged, 90, "the no_active_controller page")
    for _ in range(2):
        await health_check(block.name, act=True)
    assert transitions("no_active_controller") == [("opened", True)], "one page, no repeat"
    assert directory_id(sb, VICTIM) == before and _process(sb, VICTIM) == "stopped"

    # 4) the controller is back: normal healing proceeds -- the broker is restarted with its disk
    sb.start_broker(CONTROLLER_ID)

    async def healed() -> Any:
        r = await health_check(block.name, act=True)
        if _findings(r, "no_active_controller"):
            return None
        return r if _process(sb, VICTIM) == "running" and VICTIM in sb.registered_brokers() else None

    report = await poll(healed, 180, f"broker {VICTIM} healed once the controller is back", interval_s=2.0)
    assert directory_id(sb, VICTIM) == before, "restarted with its disk, not wiped"
    assert "finished" in statuses(audit_of(block)), audit_of(block)

    async def resolved() -> Any:
        r = await health_check(block.name, act=True)
        return r if ("resolved", False) in transitions("no_active_controller") else None

    await poll(resolved, 60, "the no_active_controller incident resolved")
    assert transitions("no_active_controller") == [("opened", True), ("resolved", False)]
    texts = [t for t in hook.bodies() if "no_active_controller" in t]
    assert len(texts) == 2 and "[OPEN] critical no_active_controller" in texts[0] and "[RESOLVED]" in texts[1], texts
    for key in {i["key"] for r in reports for i in r.incidents}:  # anything else (offline p0): once each way
        assert [t for t, _ in transitions(key)].count("opened") == 1, (key, transitions(key))
    print(f"\nno_active_controller detected {detected_s:.1f} s after the controller was killed")
