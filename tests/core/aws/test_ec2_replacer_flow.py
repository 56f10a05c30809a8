"""The EC2 replacer through the replacer interface (``kafka_medic.replacers``) on the moto server.

What the replace-broker flow relies on: a cluster's replacer reference resolves to a working EC2
replacer (region, endpoint, credentials from an AwsCredentials block or the default chain), the
broker is mapped to its instance by the cluster's tags, and the replacement keeps the private IP
and the tags. The deep EC2 behaviour (fallbacks, ENIs, Route 53) is tested in test_ec2_replace.py.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from blocks.kafka_cluster import KafkaCluster
from blocks.load import aload_replacer
from blocks.replacers import Ec2Replacer
from kafka_medic.aws import REPLACES_TAG, find_broker_instances
from kafka_medic.replacers import Ec2BrokerReplacer, ReplacerError, replacer_for
from kafka_medic.settings import AwsSettings
from tests.core.aws.conftest import REGION


def tags_of(inst: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def cluster_for(world: Any, name: str = "prod", replacer: str | None = None) -> KafkaCluster:
    key, value = world.cluster_tag
    return KafkaCluster(
        name=name,
        bootstrap_servers=f"{world.ip(11)}:9092",
        aws=AwsSettings(region=REGION, cluster_tag_key=key, cluster_tag_value=value),
        replacer=replacer,
    )


@pytest.fixture
def default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for boto3's default chain (environment), as on an instance with a role."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_replace_keeps_the_private_ip_and_tags(world: Any, endpoint: str, default_chain: None) -> None:
    ids = {b: world.launch(b, world.ip(10 + b)) for b in (1, 2, 3)}
    old = world.describe(ids[2])
    block = Ec2Replacer(region=REGION, endpoint_url=endpoint, wait_timeout_s=60)
    replacer = replacer_for(block, cluster_for(world), poll_s=0.05)
    assert isinstance(replacer, Ec2BrokerReplacer) and replacer.kind == "ec2"

    plan = replacer.plan(2, world.ip(12))
    assert plan.action == "plan" and "would terminate" in plan.summary
    assert world.state(ids[2]) == "running", "a plan changes nothing"

    outcome = replacer.replace(2, world.ip(12))

    assert outcome.kind == "ec2" and outcome.action == "replace" and outcome.broker_id == 2
    new_id = outcome.details["new_instance_id"]
    assert world.state(ids[2]) == "terminated"
    assert world.state(ids[1]) == world.state(ids[3]) == "running", "only broker 2's instance was touched"
    new = world.describe(new_id)
    assert new["PrivateIpAddress"] == old["PrivateIpAddress"] == world.ip(12)
    assert tags_of(new) == {**tags_of(old), REPLACES_TAG: ids[2]}
    assert new["SubnetId"] == old["SubnetId"] and new["InstanceType"] == old["InstanceType"]
    assert outcome.details["launch_spec"]["UserData"].startswith("<")  # user data never in the audit
    assert find_broker_instances(world.ec2, cluster_tag=world.cluster_tag)[2].instance_id == new_id
    assert world.ip(12) in outcome.summary


def test_restart_reboots_the_same_instance(world: Any, endpoint: str, default_chain: None) -> None:
    iid = world.launch(4, world.ip(14))
    replacer = replacer_for(Ec2Replacer(region=REGION, endpoint_url=endpoint, wait_timeout_s=30), cluster_for(world))
    replacer.poll_s = 0.05
    outcome = replacer.restart(4, world.ip(14))
    assert outcome.action == "restart" and outcome.details["instance_id"] == iid
    assert world.state(iid) == "running"


def test_unmapped_broker_is_refused_before_anything_changes(world: Any, endpoint: str, default_chain: None) -> None:
    other = world.launch(1, world.ip(11))
    replacer = replacer_for(Ec2Replacer(region=REGION, endpoint_url=endpoint), cluster_for(world), poll_s=0.05)
    with pytest.raises(ReplacerError, match="no live EC2 instance found for broker 9") as info:
        replacer.replace(9, "")
    assert info.value.changed is False
    assert world.state(other) == "running"


def test_failure_after_termination_says_so(world: Any, ec2: Any, endpoint: str, inject_error: Any) -> None:
    old_id = world.launch(5, world.ip(15))
    # AWS error injection: no capacity for any launch (DryRun checks pass, as on AWS)
    inject_error(ec2, "RunInstances", "InsufficientInstanceCapacity", lambda p: not p.get("DryRun"), 500)
    replacer = replacer_for(
        Ec2Replacer(region=REGION, endpoint_url=endpoint, wait_timeout_s=10), cluster_for(world), ec2_client=ec2
    )
    replacer.poll_s = 0.05
    with pytest.raises(ReplacerError, match="IS TERMINATED") as info:
        replacer.replace(5, world.ip(15))
    assert info.value.changed is True and info.value.details["instance_id"] == old_id
    assert world.state(old_id) == "terminated"


@pytest.mark.prefect
@pytest.mark.anyio
@pytest.mark.usefixtures("prefect_server")
async def test_loaded_from_the_cluster_reference_with_an_aws_credentials_block(world: Any, endpoint: str) -> None:
    from prefect_aws import AwsCredentials

    suffix = uuid.uuid4().hex[:8]
    await AwsCredentials(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION).save(
        f"creds-{suffix}", overwrite=True
    )
    await Ec2Replacer(region=REGION, endpoint_url=endpoint, aws_credentials=f"creds-{suffix}", wait_timeout_s=60).save(
        f"ec2-{suffix}", overwrite=True
    )
    cluster = cluster_for(world, name=f"c-{suffix}", replacer=f"ec2-replacer/ec2-{suffix}")
    old_id = world.launch(3, world.ip(13))

    replacer = await aload_replacer(cluster, poll_s=0.05)
    outcome = await asyncio.to_thread(replacer.replace, 3, world.ip(13))  # as the flow runs it

    new = world.describe(outcome.details["new_instance_id"])
    assert new["PrivateIpAddress"] == world.ip(13) and tags_of(new)[REPLACES_TAG] == old_id
    assert tags_of(new)[world.cluster_tag[0]] == world.cluster_tag[1]

    missing = cluster_for(world, name=f"m-{suffix}", replacer="ec2-replacer/does-not-exist")
    with pytest.raises(Exception, match="does not exist"):
        await aload_replacer(missing)
