"""EC2 status reaches the cluster snapshot: real sandbox brokers, EC2 on a moto server over HTTP."""

from __future__ import annotations

import pytest

from blocks.sandbox import sandbox_cluster
from kafka_medic.monitor.collector import collect_snapshot
from kafka_medic.sandbox.cluster import Sandbox
from kafka_medic.settings import AwsSettings
from tasks.ec2 import ec2_lookup_for

pytestmark = pytest.mark.kafka


def test_snapshot_carries_each_brokers_instance_and_status(
    healthy_sandbox: Sandbox, world, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(var, value)
    instances = {b: world.launch(b) for b in (1, 2, 3, 4, 5, 6)}
    block = sandbox_cluster(
        healthy_sandbox,
        name="ec2-collect",
        aws=AwsSettings(
            region="us-east-1",
            endpoint_url=endpoint,
            cluster_tag_key=world.cluster_tag[0],
            cluster_tag_value=world.cluster_tag[1],
        ),
    )
    lookup = ec2_lookup_for(block)
    assert lookup is not None
    # Sandbox brokers all advertise 127.0.0.1, which no EC2 instance has (and the lookup rightly
    # refuses an IP that contradicts the instance's). Present them by DNS name, as fleets that
    # advertise hostnames do; the instance is then found by its broker-id tag.
    snap = collect_snapshot(
        block, ec2_lookup=lambda hosts: lookup({b: f"broker-{b}.kafka.internal" for b in hosts})
    ).snapshot
    assert not [i for i in snap.issues if i.source == "ec2"], snap.issues
    by_broker = snap.brokers.set_index("broker_id")
    for b, iid in instances.items():
        assert by_broker.loc[b, "instance_id"] == iid
        assert by_broker.loc[b, "ec2_status"] == "ok"
        assert by_broker.loc[b, "ec2_events"] == ""


def test_unreachable_ec2_is_a_collection_issue_not_a_crash(
    healthy_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(var, value)
    block = sandbox_cluster(
        healthy_sandbox, name="ec2-down", aws=AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    )
    snap = collect_snapshot(block, ec2_lookup=ec2_lookup_for(block)).snapshot
    assert any(i.source == "ec2" for i in snap.issues)
    assert snap.brokers["alive"].all()
