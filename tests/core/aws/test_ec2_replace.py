"""EC2 replacement and reboot against the moto server over HTTP.

AWS failures moto cannot produce (no capacity, address not yet released, permission denied) are
injected as the exact ClientError AWS returns, by a botocore hook on the test's client that fires
before the request is sent (see ``inject`` in conftest). Every wait has a small time budget so a
regression shows up as a fast failure, not a hang.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from kafka_medic.aws import (
    REPLACES_TAG,
    AwsTimeoutError,
    CapacityError,
    InstanceNotFoundError,
    InstanceStateError,
    ReplacementRefusedError,
    find_broker_instances,
    replace_instance,
    restart_instance,
)
from kafka_medic.errors import ConfigError

FAST: dict[str, Any] = {"wait_timeout_s": 10, "poll_s": 0.05}


def tags_of(inst: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def eni_groups(inst: dict[str, Any]) -> set[str]:
    # moto leaves the instance-level SecurityGroups empty for instances launched with
    # NetworkInterfaces; on AWS both agree. The primary ENI's groups are what matters.
    primary = next(n for n in inst["NetworkInterfaces"] if n["Attachment"]["DeviceIndex"] == 0)
    return {g["GroupId"] for g in primary["Groups"]}


def user_data(ec2: Any, iid: str) -> bytes:
    value = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    return base64.b64decode(value)


def test_replace_keeps_ip_subnet_groups_type_ami_tags_and_more(world: Any, ec2: Any) -> None:
    old_id = world.launch(3, world.ip(13))
    other = world.launch(4, world.ip(14))
    old = world.describe(old_id)

    result = replace_instance(ec2, old_id, **FAST)

    assert world.state(old_id) == "terminated"
    assert world.state(other) == "running"
    new = world.describe(result.new_instance_id)
    assert new["State"]["Name"] == "running"
    assert result.strategy == "same-ip"  # AWS-default ENI (deleted with the instance)
    assert result.old_private_ip == result.private_ip == new["PrivateIpAddress"] == world.ip(13)
    assert new["SubnetId"] == old["SubnetId"] == world.subnet_id
    assert new["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert eni_groups(new) == eni_groups(old) == {world.sg_id, world.sg2_id}
    assert new["InstanceType"] == result.instance_type == "m5.large"
    assert new["ImageId"] == world.ami_id
    assert new["KeyName"] == "kafka-key"
    assert new["IamInstanceProfile"]["Arn"] == world.profile_arn
    assert new["MetadataOptions"]["HttpTokens"] == "required"
    assert user_data(ec2, result.new_instance_id) == b"#!/bin/bash\necho broker\n"
    new_tags = tags_of(new)
    assert new_tags == {**tags_of(old), REPLACES_TAG: old_id}
    # the data volume's shape is copied (as a fresh volume)
    vols = [m for m in new["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf"]
    vol = ec2.describe_volumes(VolumeIds=[vols[0]["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (vol["Size"], vol["VolumeType"]) == (50, "gp3")
    # the broker mapping now points at the replacement
    assert find_broker_instances(ec2, cluster_tag=world.cluster_tag)[3].instance_id == result.new_instance_id

    assert not result.dry_run and result.route53 is None
    assert {"describe", "preflight", "terminate", "launch", "wait_running", "total"} <= set(result.timings)
    assert any("terminated" in s for s in result.steps) and any("launched" in s for s in result.steps)
    record = result.to_record()
    assert record["launch_spec"]["UserData"] == "<24 bytes>"  # secrets in user data stay out of audits
    assert record["launch_spec"]["PrivateIpAddress"] == world.ip(13)


def test_replace_reuses_a_surviving_primary_eni(world: Any, ec2: Any) -> None:
    old_id = world.launch(5, world.ip(15), eni_survives=True)
    old = world.describe(old_id)
    eni = old["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert old["NetworkInterfaces"][0]["Attachment"]["DeleteOnTermination"] is False

    result = replace_instance(ec2, old_id, **FAST)

    new = world.describe(result.new_instance_id)
    assert result.strategy == "reuse-eni"
    assert result.launch_spec["NetworkInterfaces"] == [{"DeviceIndex": 0, "NetworkInterfaceId": eni}]
    assert "SubnetId" not in result.launch_spec and "PrivateIpAddress" not in result.launch_spec
    assert new["NetworkInterfaces"][0]["NetworkInterfaceId"] == eni
    assert new["PrivateIpAddress"] == world.ip(15)
    assert eni_groups(new) == {world.sg_id, world.sg2_id}
    # moto: the ENI stays "in-use" (attached to the terminated instance) until the relaunch;
    # AWS would show "available". The code does not wait for "available", so nothing hangs here.


def test_capacity_fallback_uses_the_next_instance_type(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(6, world.ip(16))
    # AWS error injection: no m5.large capacity (moto never runs out). DryRun calls are let through.
    capacity = inject_error(
        ec2,
        "RunInstances",
        "InsufficientInstanceCapacity",
        lambda p: p.get("InstanceType") == "m5.large" and not p.get("DryRun"),
        500,
    )
    result = replace_instance(ec2, old_id, instance_type_fallbacks=["m5.large", "m5.xlarge", "r5.large"], **FAST)

    assert capacity.failures == 1
    assert result.instance_type == "m5.xlarge"
    new = world.describe(result.new_instance_id)
    assert new["InstanceType"] == "m5.xlarge" and new["PrivateIpAddress"] == world.ip(16)
    assert any("InsufficientInstanceCapacity" in s and "next instance type" in s for s in result.steps)


def test_no_fallback_left_is_a_capacity_error_that_says_the_old_one_is_gone(
    world: Any, ec2: Any, inject_error: Any
) -> None:
    old_id = world.launch(6, world.ip(16))
    before = set(world.all_instances())
    inject_error(ec2, "RunInstances", "InsufficientInstanceCapacity", lambda p: not p.get("DryRun"), 500)

    with pytest.raises(CapacityError, match="IS TERMINATED and NO replacement") as err:
        replace_instance(ec2, old_id, instance_type_fallbacks=["m5.xlarge"], **FAST)

    assert err.value.changed is True and err.value.new_instance_id is None
    assert err.value.launch_spec is not None and err.value.launch_spec["PrivateIpAddress"] == world.ip(16)
    assert "m5.large: InsufficientInstanceCapacity" in str(err.value)
    assert "m5.xlarge: InsufficientInstanceCapacity" in str(err.value)
    assert world.state(old_id) == "terminated"
    assert set(world.all_instances()) == before  # nothing launched


def test_address_in_use_is_retried_until_released(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(7, world.ip(17))
    # AWS error injection: the old address is not released for the first two attempts.
    in_use = inject_error(
        ec2, "RunInstances", "InvalidIPAddress.InUse", lambda p: not p.get("DryRun") and in_use.failures < 2
    )
    result = replace_instance(ec2, old_id, **FAST)
    assert in_use.failures == 2
    assert result.private_ip == world.ip(17) and result.strategy == "same-ip"
    assert sum("InvalidIPAddress.InUse" in s for s in result.steps) == 1  # logged once, not per retry


def test_address_never_released_times_out_within_the_budget(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(7, world.ip(17))
    inject_error(ec2, "RunInstances", "InvalidIPAddress.InUse", lambda p: not p.get("DryRun"))
    t0 = time.monotonic()
    with pytest.raises(AwsTimeoutError, match="stayed in use") as err:
        replace_instance(ec2, old_id, wait_timeout_s=1.0, poll_s=0.05)
    assert time.monotonic() - t0 < 5
    assert err.value.changed and "allow_new_ip" in str(err.value)


def test_address_never_released_falls_back_to_a_new_ip_when_allowed(
    world: Any, ec2: Any, inject_error: Any, route53: Any, hosted_zone: str
) -> None:
    zone = hosted_zone
    # A surviving ENI keeps holding its address (in moto as on AWS), so a new address must differ.
    old_id = world.launch(7, world.ip(17), eni_survives=True)
    # AWS error injection: the ENI is never released from the terminated instance.
    stuck = inject_error(
        ec2,
        "RunInstances",
        "InvalidNetworkInterface.InUse",
        lambda p: not p.get("DryRun") and "NetworkInterfaces" in p,
    )
    result = replace_instance(
        ec2,
        old_id,
        allow_new_ip=True,
        wait_timeout_s=2.0,
        poll_s=0.05,
        route53_client=route53,
        hosted_zone_id=zone,
        record_name="kafka-7.kafka.internal",
    )
    assert stuck.failures >= 2  # retried for a while (half the budget) before giving up on the ENI
    assert result.strategy == "new-ip"
    assert "NetworkInterfaces" not in result.launch_spec and "PrivateIpAddress" not in result.launch_spec
    new = world.describe(result.new_instance_id)
    assert new["SubnetId"] == world.subnet_id and eni_groups(new) == {world.sg_id, world.sg2_id}
    assert result.private_ip == new["PrivateIpAddress"] != world.ip(17)
    assert any("NEW private IP" in s for s in result.steps)
    # ... and the DNS name follows the new address
    assert result.route53 is not None and result.route53.ip == result.private_ip


def test_transient_describe_errors_while_waiting_are_retried(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(8, world.ip(18))
    # Record real (non-DryRun) terminate/launch calls without failing them ...
    terminate = inject_error(ec2, "TerminateInstances", "-", lambda p: False)
    launch = inject_error(ec2, "RunInstances", "-", lambda p: False)

    def after(injector: Any) -> bool:
        return any(not c.get("DryRun") for c in injector.calls)

    # ... and throttle the first two polls after termination and after the launch (AWS error injection).
    throttled = inject_error(
        ec2,
        "DescribeInstances",
        "RequestLimitExceeded",
        lambda p: (after(terminate) and throttled.failures < 2) or (after(launch) and throttled.failures < 4),
        503,
    )
    result = replace_instance(ec2, old_id, **FAST)
    assert throttled.failures == 4
    assert world.state(result.new_instance_id) == "running" and result.private_ip == world.ip(18)
    assert sum("RequestLimitExceeded" in s for s in result.steps) == 4


def test_new_instance_never_seen_running_times_out_naming_it(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(8, world.ip(18))
    launch = inject_error(ec2, "RunInstances", "-", lambda p: False)
    throttled = inject_error(
        ec2,
        "DescribeInstances",
        "RequestLimitExceeded",
        lambda p: any(not c.get("DryRun") for c in launch.calls),
        503,
    )
    t0 = time.monotonic()
    with pytest.raises(AwsTimeoutError, match="IS TERMINATED and new instance i-") as err:
        replace_instance(ec2, old_id, wait_timeout_s=1.0, poll_s=0.05)
    assert time.monotonic() - t0 < 5
    assert err.value.changed and err.value.new_instance_id is not None
    throttled.enabled = False
    assert world.state(err.value.new_instance_id) == "running"  # it exists; the error says so


def test_unknown_instance_is_a_clear_error_and_nothing_is_terminated(world: Any, ec2: Any) -> None:
    ids = [world.launch(1, world.ip(11)), world.launch(2, world.ip(12))]
    with pytest.raises(InstanceNotFoundError, match="i-0123456789abcdef0 does not exist") as err:
        replace_instance(ec2, "i-0123456789abcdef0", **FAST)
    assert err.value.changed is False
    assert world.all_instances() == dict.fromkeys(ids, "running")


def test_terminated_instance_is_not_replaceable(world: Any, ec2: Any) -> None:
    iid = world.launch(1, world.ip(11))
    ec2.terminate_instances(InstanceIds=[iid])
    before = world.all_instances()
    with pytest.raises(InstanceStateError, match="is terminated"):
        replace_instance(ec2, iid, **FAST)
    assert world.all_instances() == before


def test_stopped_instance_is_replaceable(world: Any, ec2: Any) -> None:
    iid = world.launch(1, world.ip(11))
    ec2.stop_instances(InstanceIds=[iid])
    result = replace_instance(ec2, iid, **FAST)
    assert world.state(result.new_instance_id) == "running" and result.private_ip == world.ip(11)


def test_keep_private_ip_false_launches_in_the_subnet_without_an_address(world: Any, ec2: Any) -> None:
    old_id = world.launch(2, world.ip(12))
    result = replace_instance(ec2, old_id, keep_private_ip=False, **FAST)
    assert result.strategy == "new-ip"
    assert "PrivateIpAddress" not in result.launch_spec and result.launch_spec["SubnetId"] == world.subnet_id
    new = world.describe(result.new_instance_id)
    # (moto may hand out the just-released address again; AWS may too. Only the subnet is promised.)
    assert new["SubnetId"] == world.subnet_id and result.private_ip == new["PrivateIpAddress"]


def test_dry_run_changes_nothing_and_returns_the_launch_spec(
    world: Any, ec2: Any, route53: Any, hosted_zone: str
) -> None:
    zone = hosted_zone
    old_id = world.launch(3, world.ip(13))
    before = world.all_instances()
    records_before = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]

    result = replace_instance(
        ec2,
        old_id,
        dry_run=True,
        instance_type_fallbacks=["m5.xlarge"],
        route53_client=route53,
        hosted_zone_id=zone,
        record_name="kafka-3.kafka.internal",
        **FAST,
    )

    assert world.all_instances() == before
    assert route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"] == records_before
    assert result.dry_run and result.new_instance_id is None
    assert result.private_ip == world.ip(13) and result.instance_type == "m5.large"
    spec = result.launch_spec
    assert spec["PrivateIpAddress"] == world.ip(13) and spec["SubnetId"] == world.subnet_id
    assert set(spec["SecurityGroupIds"]) == {world.sg_id, world.sg2_id}
    assert spec["ImageId"] == world.ami_id and spec["InstanceType"] == "m5.large"
    assert spec["IamInstanceProfile"] == {"Arn": world.profile_arn} and spec["KeyName"] == "kafka-key"
    assert spec["UserData"] == b"#!/bin/bash\necho broker\n"
    assert spec["Placement"] == {"AvailabilityZone": "us-east-1a"}
    tags = {t["Key"]: t["Value"] for t in spec["TagSpecifications"][0]["Tags"]}
    assert tags[REPLACES_TAG] == old_id and tags["kafka-broker-id"] == "3"
    assert result.route53 is not None and result.route53.status == "PLANNED"
    assert result.route53.record_name == "kafka-3.kafka.internal."


def test_route53_record_is_upserted_to_the_new_ip(world: Any, ec2: Any, route53: Any, hosted_zone: str) -> None:
    zone = hosted_zone
    old_id = world.launch(3, world.ip(13))
    route53.change_resource_record_sets(  # a stale record pointing somewhere else
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "kafka-3.kafka.internal.",
                        "Type": "A",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "10.9.9.9"}],
                    },
                }
            ]
        },
    )
    result = replace_instance(
        ec2, old_id, route53_client=route53, hosted_zone_id=zone, record_name="KAFKA-3.kafka.internal", **FAST
    )
    assert result.route53 is not None and result.route53.status == "INSYNC"
    sets = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    a = [r for r in sets if r["Type"] == "A" and r["Name"] == "kafka-3.kafka.internal."]
    assert len(a) == 1
    assert a[0]["ResourceRecords"] == [{"Value": world.ip(13)}] and a[0]["TTL"] == 60
    assert "route53" in result.timings


def test_route53_misconfiguration_is_caught_before_anything_changes(
    world: Any, ec2: Any, route53: Any, hosted_zone: str
) -> None:
    zone = hosted_zone
    old_id = world.launch(3, world.ip(13))
    with pytest.raises(ConfigError, match="together"):
        replace_instance(ec2, old_id, route53_client=route53, hosted_zone_id=zone, **FAST)
    with pytest.raises(ConfigError, match="not inside hosted zone"):
        replace_instance(ec2, old_id, route53_client=route53, hosted_zone_id=zone, record_name="kafka-3.other", **FAST)
    with pytest.raises(ConfigError, match="does not exist"):
        replace_instance(ec2, old_id, route53_client=route53, hosted_zone_id="ZNOSUCHZONE", record_name="a.b", **FAST)
    assert world.state(old_id) == "running"


def test_preflight_refusals_leave_the_old_instance_running(
    world: Any, ec2: Any, make_client: Any, inject_error: Any
) -> None:
    protected = world.launch(1, world.ip(11))
    ec2.modify_instance_attribute(InstanceId=protected, DisableApiTermination={"Value": True})
    with pytest.raises(ReplacementRefusedError, match="termination protection") as err:
        replace_instance(ec2, protected, **FAST)
    assert err.value.changed is False and world.state(protected) == "running"

    in_asg = world.launch(2, world.ip(12), extra_tags={"aws:autoscaling:groupName": "kafka-asg"})
    with pytest.raises(ReplacementRefusedError, match="Auto Scaling group kafka-asg"):
        replace_instance(ec2, in_asg, **FAST)
    assert world.state(in_asg) == "running"

    # AWS error injection: the role may describe but not launch. The DryRun pre-flight catches it.
    target = world.launch(3, world.ip(13))
    denied = make_client("ec2")
    inject_error(denied, "RunInstances", "UnauthorizedOperation", lambda p: True, 403)
    with pytest.raises(ReplacementRefusedError, match=r"RunInstances would fail \(UnauthorizedOperation: "):
        replace_instance(denied, target, **FAST)
    assert world.state(target) == "running"


def test_bad_arguments_are_config_errors(world: Any, ec2: Any) -> None:
    iid = world.launch(1, world.ip(11))
    with pytest.raises(ConfigError, match="must be > 0"):
        replace_instance(ec2, iid, wait_timeout_s=0)
    with pytest.raises(ConfigError, match="no route53_client"):
        replace_instance(ec2, iid, hosted_zone_id="Z1", record_name="a.b", **FAST)
    assert world.state(iid) == "running"


def test_restart_instance(world: Any, ec2: Any) -> None:
    iid = world.launch(1, world.ip(11))
    result = restart_instance(ec2, iid, wait_timeout_s=5, poll_s=0.05)
    assert result.instance_id == iid and result.ec2_status == "ok"
    assert world.state(iid) == "running"

    ec2.stop_instances(InstanceIds=[iid])
    with pytest.raises(InstanceStateError, match="is stopped"):
        restart_instance(ec2, iid, wait_timeout_s=5, poll_s=0.05)
    with pytest.raises(InstanceNotFoundError):
        restart_instance(ec2, "i-0123456789abcdef0", wait_timeout_s=5, poll_s=0.05)
