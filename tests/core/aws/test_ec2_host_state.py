"""The EC2 replacer's host state (the second signal before a destructive rung) on the moto server.

Each test builds the broker's instance and data volume explicitly and reads ``host_state`` through
the replacer interface. moto always reports both status checks "ok" for a running instance and
never has scheduled events, so ``impaired=True`` cannot be produced over its API: that verdict is
tested on crafted, AWS-shaped DescribeInstanceStatus responses (as in test_ec2_status.py), and
over HTTP only "ok" (False) and "not-applicable" (None, a stopped instance) are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kafka_medic.aws import parse_instance_status
from kafka_medic.aws.ec2_status import impairment
from kafka_medic.replacers import Ec2BrokerReplacer, HostState, replacer_for
from kafka_medic.settings import AwsSettings, ClusterSettings
from kafka_medic.settings.replacers import Ec2ReplacerSettings
from tests.core.aws.conftest import REGION, client

SDF = "/dev/sdf"


def replacer(world: Any, ec2: Any, endpoint: str, data_volume_device: str | None = SDF) -> Ec2BrokerReplacer:
    key, value = world.cluster_tag
    cluster = ClusterSettings(
        name="prod",
        bootstrap_servers=f"{world.ip(11)}:9092",
        aws=AwsSettings(region=REGION, cluster_tag_key=key, cluster_tag_value=value),
    )
    block = Ec2ReplacerSettings(region=REGION, endpoint_url=endpoint, data_volume_device=data_volume_device)
    r = replacer_for(block, cluster, ec2_client=ec2, poll_s=0.05)
    assert isinstance(r, Ec2BrokerReplacer)
    return r


def as_tuple(state: HostState) -> tuple[bool | None, bool | None, bool | None]:
    return state.present, state.disk_intact, state.impaired


def test_running_instance_with_its_data_volume(world: Any, ec2: Any, endpoint: str) -> None:
    iid = world.launch(1, world.ip(11), data_volume=False)
    vid = world.add_volume(iid, SDF)

    state = replacer(world, ec2, endpoint).host_state(1, world.ip(11))

    assert as_tuple(state) == (True, True, False)
    assert state.restartable
    assert f"instance {iid} is running" in state.detail
    assert f"data volume {vid} at {SDF} is in-use" in state.detail
    assert "status checks ok, no scheduled events" in state.detail
    assert state.to_record()["detail"] == state.detail


def test_stopped_instance_is_present_and_its_status_unknown(world: Any, ec2: Any, endpoint: str) -> None:
    iid = world.launch(2, world.ip(12))  # data volume from the launch, at /dev/sdf
    ec2.stop_instances(InstanceIds=[iid])
    assert world.state(iid) == "stopped"

    state = replacer(world, ec2, endpoint).host_state(2, world.ip(12))

    assert as_tuple(state) == (True, True, None)  # EC2: status checks "not-applicable" while stopped
    assert state.restartable and "is stopped" in state.detail and "not-applicable" in state.detail


def test_terminated_instance_is_not_present(world: Any, ec2: Any, endpoint: str) -> None:
    iid = world.launch(3, world.ip(13), data_volume=False)
    world.add_volume(iid, SDF)
    ec2.terminate_instances(InstanceIds=[iid])
    assert world.state(iid) == "terminated"

    with_volume = replacer(world, ec2, endpoint).host_state(3, world.ip(13))
    assert as_tuple(with_volume) == (False, None, None)
    assert not with_volume.restartable
    assert "no live EC2 instance for broker 3" in with_volume.detail and SDF in with_volume.detail

    # Without a data volume the data was on the instance's own disks: gone with it.
    own_disks = replacer(world, ec2, endpoint, data_volume_device=None).host_state(3, world.ip(13))
    assert as_tuple(own_disks) == (False, False, None)


def test_missing_instance_is_not_present(world: Any, ec2: Any, endpoint: str) -> None:
    world.launch(1, world.ip(11))  # another broker
    state = replacer(world, ec2, endpoint, data_volume_device=None).host_state(9, "")
    assert as_tuple(state) == (False, False, None)
    assert state.detail == "no live EC2 instance for broker 9"


def test_data_volume_gone_while_the_instance_runs(world: Any, ec2: Any, endpoint: str) -> None:
    iid = world.launch(4, world.ip(14), data_volume=False)
    vid = world.add_volume(iid, SDF)
    ec2.detach_volume(VolumeId=vid, InstanceId=iid, Device=SDF)
    ec2.delete_volume(VolumeId=vid)

    state = replacer(world, ec2, endpoint).host_state(4, world.ip(14))

    assert as_tuple(state) == (True, False, False)
    assert not state.restartable  # a restart would bring the broker back without its data
    assert f"no EBS volume is attached at {SDF}" in state.detail


def test_xen_alias_names_the_same_device(world: Any, ec2: Any, endpoint: str) -> None:
    iid = world.launch(5, world.ip(15), data_volume=False)
    vid = world.add_volume(iid, "/dev/xvdf")
    state = replacer(world, ec2, endpoint).host_state(5, world.ip(15))  # configured as /dev/sdf
    assert as_tuple(state) == (True, True, False) and vid in state.detail


def test_without_a_data_volume_the_disk_lives_as_long_as_the_instance(world: Any, ec2: Any, endpoint: str) -> None:
    world.launch(6, world.ip(16), data_volume=False)
    state = replacer(world, ec2, endpoint, data_volume_device=None).host_state(6, world.ip(16))
    assert as_tuple(state) == (True, True, False)
    assert "its data is on the instance's own disks" in state.detail


def test_aws_read_errors_are_unknowns_never_exceptions(
    world: Any, ec2: Any, endpoint: str, inject_error: Any, make_client: Any
) -> None:
    iid = world.launch(7, world.ip(17), data_volume=False)
    vid = world.add_volume(iid, SDF)

    # AWS error injection: the role may not describe instances.
    denied = make_client("ec2")
    inject_error(denied, "DescribeInstances", "UnauthorizedOperation", lambda p: True, 403)
    state = replacer(world, denied, endpoint).host_state(7, world.ip(17))
    assert as_tuple(state) == (None, None, None)
    assert state.restartable  # unknown counts as "a bounded restart may help"
    assert "EC2 could not be read for broker 7" in state.detail and "UnauthorizedOperation" in state.detail

    # ... may describe instances but not volumes, nor instance status: those parts are unknown.
    partial = make_client("ec2")
    inject_error(partial, "DescribeVolumes", "UnauthorizedOperation", lambda p: True, 403)
    inject_error(partial, "DescribeInstanceStatus", "RequestLimitExceeded", lambda p: True, 503)
    state = replacer(world, partial, endpoint).host_state(7, world.ip(17))
    assert as_tuple(state) == (True, None, None)
    assert f"data volume {vid} at {SDF} could not be read" in state.detail
    assert "EC2 status could not be read" in state.detail


def test_an_ambiguous_broker_is_unknown(world: Any, ec2: Any, endpoint: str) -> None:
    world.launch(8, world.ip(18))
    world.launch(8, world.ip(19))  # a second live instance claims broker 8
    state = replacer(world, ec2, endpoint).host_state(8, "")
    assert as_tuple(state) == (None, None, None)
    assert "cannot tell which EC2 instance runs broker 8" in state.detail


def test_unreachable_endpoint_is_unknown_within_the_client_bounds() -> None:
    cluster = ClusterSettings(name="prod", bootstrap_servers="10.0.0.1:9092", aws=AwsSettings(region=REGION))
    block = Ec2ReplacerSettings(region=REGION, endpoint_url="http://127.0.0.1:9", data_volume_device=SDF)
    # Nothing listens on port 9: connection refused (the test client does not retry).
    r = replacer_for(block, cluster, ec2_client=client("ec2", "http://127.0.0.1:9"))
    state = r.host_state(1, "10.0.0.1")
    assert as_tuple(state) == (None, None, None) and "EC2 could not be read" in state.detail


# ---- impaired: crafted AWS-shaped DescribeInstanceStatus (moto always says "ok") -------------------------


def _status(system: str = "ok", instance: str = "ok", events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "InstanceStatuses": [
            {
                "InstanceId": "i-1",
                "AvailabilityZone": "us-east-1a",
                "InstanceState": {"Code": 16, "Name": "running"},
                "SystemStatus": {"Status": system},
                "InstanceStatus": {"Status": instance},
                **({"Events": events} if events is not None else {}),
            }
        ]
    }


def _row(page: dict[str, Any]) -> dict[str, Any]:
    return dict(parse_instance_status([page]).to_dict("records")[0])


@pytest.mark.parametrize(
    ("page", "impaired", "says"),
    [
        (_status(), False, "status checks ok, no scheduled events"),
        (_status(system="impaired"), True, "system impaired"),
        (_status(instance="impaired"), True, "instance impaired"),
        (
            _status(events=[{"Code": "instance-retirement", "NotBefore": datetime(2026, 12, 1, tzinfo=UTC),
                             "Description": "The instance is running on degraded hardware"}]),
            True,
            "scheduled instance-retirement",
        ),
        (
            _status(events=[{"Code": "system-reboot", "NotBefore": datetime(2026, 12, 1, tzinfo=UTC),
                             "Description": "[Completed] The instance was rebooted"}]),
            False,
            "no scheduled events",
        ),
        (_status(system="initializing"), None, "system initializing"),
        (_status(instance="insufficient-data"), None, "instance insufficient-data"),
        (_status(system="not-applicable", instance="not-applicable"), None, "not-applicable"),
    ],
)  # fmt: skip
def test_impairment_verdicts(page: dict[str, Any], impaired: bool | None, says: str) -> None:
    verdict, why = impairment(_row(page))
    assert verdict is impaired and says in why


def test_impairment_without_a_row_is_unknown() -> None:
    assert impairment(None) == (None, "EC2 reports no status for it")
