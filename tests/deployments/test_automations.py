"""The Prefect Automation the README shows for incidents is valid and fires on our events.

It is created on a real Prefect server (the test harness) with a real notification block, so the
file under deployments/automations/ cannot drift from what Prefect accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.automations import AutomationCore
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

pytestmark = [pytest.mark.prefect, pytest.mark.anyio, pytest.mark.usefixtures("prefect_server")]

AUTOMATION = Path(__file__).resolve().parents[2] / "deployments" / "automations" / "incident-still-open.json"


async def test_the_incident_automation_is_accepted_by_prefect_and_matches_our_events() -> None:
    block_id = await CustomWebhookNotificationBlock(name="oncall", url="http://127.0.0.1:9/x").save(
        "automation-test", overwrite=True
    )
    raw = json.loads(AUTOMATION.read_text())
    raw["actions"][0]["block_document_id"] = str(block_id)
    automation = AutomationCore.model_validate(raw)
    async with get_client() as client:
        created = await client.create_automation(automation)
        try:
            stored = await client.read_automation(created)
            assert stored is not None and stored.name == raw["name"]
            assert stored.trigger.expect == {"kafka-medic.incident.repeated"}
        finally:
            await client.delete_automation(created)
    # the events it expects are the ones tasks/incidents.py emits
    from kafka_medic.findings import Severity
    from kafka_medic.incidents import Incident, Notification, Transition
    from tests.unit.rules_helpers import T0

    note = Notification(Transition.REPEATED, Incident("offline", "offline", Severity.CRITICAL, "x", T0, T0), page=True)
    assert note.event in raw["trigger"]["expect"]
