"""New host, same disk: a replacement that moves the broker's EBS data volume to the new instance.

Against the moto server over HTTP. Each test builds its state explicitly: a broker instance, its
data volume at /dev/sdf (either created with the instance, DeleteOnTermination=true, or by
CreateVolume + AttachVolume, DeleteOnTermination=false), a tag on the volume to recognise it by.

The order of the EC2 calls is observed with recording hooks on the test's client (``inject`` with
a condition that never fails); a hook may also read moto's state at the moment of a call through a
second client, which is how "attached only once detached from the terminated instance" is checked.
AWS failures moto cannot produce are injected as the exact ClientError AWS returns, as in
test_ec2_replace.py. moto cannot put a volume in "error" or attach one volume to two instances
(Multi-Attach); those choices are tested on the pure decision function with AWS-shaped input.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kafka_medic.aws import AwsActionError, AwsTimeoutError, ReplacementRefusedError, replace_instance
from kafka_medic.aws.ec2_replace import _choose_data_volume
from kafka_medic.replacers import Ec2BrokerReplacer, replacer_for
from kafka_medic.settings import AwsSettings, ClusterSettings
from kafka_medic.settings.replacers import Ec2ReplacerSettings
from tests.core.aws.conftest import REGION

FAST: dict[str, Any] = {"wait_timeout_s": 10, "poll_s": 0.05}
SDF = "/dev/sdf"
WRITES = ("ModifyInstanceAttribute", "TerminateInstances", "RunInstances", "AttachVolume", "DetachVolume")


def tags_of(obj: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def record_calls(ec2: Any, inject_error: Any, operations: tuple[str, ...] = (*WRITES, "DeleteVolume")) -> list[str]:
    """Record every call of ``operations`` on this client, in order ("Name" or "Name(DryRun)")."""
    calls: list[str] = []

    def recorder(op: str) -> Any:
        return lambda p: calls.append(op + ("(DryRun)" if p.get("DryRun") else "")) and False

    for op in operations:
        inject_error(ec2, op, "-", recorder(op))
    return calls


def real(calls: list[str]) -> list[str]:
    return [c for c in calls if not c.endswith("(DryRun)")]


def check_attached_once_to(world: Any, vid: str, new_id: str, old_id: str) -> None:
    vol = world.volume(vid)
    assert vol is not None, "the data volume was deleted"
    assert vol["State"] == "in-use"
    assert [(a["InstanceId"], a["Device"], a["State"]) for a in vol["Attachments"]] == [(new_id, SDF, "attached")]
    assert world.device_volume(new_id) == vid
    assert world.state(old_id) == "terminated"


# ---- replace_instance ----------------------------------------------------------------------------------


def test_reattaches_the_same_volume_at_the_same_device_after_the_old_instance_is_gone(
    world: Any, ec2: Any, inject_error: Any, make_client: Any
) -> None:
    old_id = world.launch(3, world.ip(13), data_volume=False)
    vid = world.add_volume(old_id, SDF)  # CreateVolume + AttachVolume: DeleteOnTermination=false
    ec2.create_tags(Resources=[vid], Tags=[{"Key": "written", "Value": "broker-3-data"}])
    calls = record_calls(ec2, inject_error)
    # What moto shows at the very moment of the real AttachVolume call (read through another client).
    observer = make_client("ec2")
    at_attach: list[tuple[str, list[str], str]] = []

    def observe(p: dict[str, Any]) -> bool:
        if not p.get("DryRun"):
            vol = observer.describe_volumes(VolumeIds=[p["VolumeId"]])["Volumes"][0]
            old = observer.describe_instances(InstanceIds=[old_id])["Reservations"][0]["Instances"][0]
            at_attach.append((vol["State"], [a["InstanceId"] for a in vol["Attachments"]], old["State"]["Name"]))
        return False

    inject_error(ec2, "AttachVolume", "-", observe)

    result = replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)

    new_id = str(result.new_instance_id)
    check_attached_once_to(world, vid, new_id, old_id)
    assert tags_of(world.volume(vid) or {})["written"] == "broker-3-data"  # the same volume, not a copy
    assert result.private_ip == world.describe(new_id)["PrivateIpAddress"] == world.ip(13)
    assert world.state(new_id) == "running"
    # Attached only once it was detached from the terminated instance: never on two instances.
    assert at_attach == [("available", [], "terminated")]
    # DeleteOnTermination was already false: nothing to modify; no volume was ever detached or deleted.
    assert real(calls) == ["TerminateInstances", "RunInstances", "AttachVolume"]
    assert "DeleteVolume" not in "".join(calls) and "DetachVolume" not in "".join(calls)
    # The new instance was launched WITHOUT a volume at /dev/sdf (the root volume is copied fresh).
    assert {"DeviceName": SDF, "NoDevice": ""} in result.launch_spec["BlockDeviceMappings"]
    assert any(m["DeviceName"] == "/dev/xvda" and "Ebs" in m for m in result.launch_spec["BlockDeviceMappings"])
    assert result.data_volume == {
        "volume_id": vid,
        "device": SDF,
        "reused": True,
        "why": f"volume {vid} moved from {old_id} to {new_id} at {SDF}",
    }
    assert {"keep_volume", "terminate", "launch", "wait_running", "wait_volume", "attach_volume"} <= set(result.timings)
    order = [
        next(i for i, s in enumerate(result.steps) if key in s)
        for key in ("is re-attached to the new instance", "checked: data volume", f"terminate {old_id} requested",
                    f"old instance {old_id} terminated", f"launched {new_id}", f"{new_id} is running",
                    f"{vid} is available (detached", f"attach {vid} to {new_id} at {SDF} requested",
                    f"{vid} attached to {new_id} at {SDF}")
    ]  # fmt: skip
    assert order == sorted(order), "\n".join(result.steps)


def test_a_volume_created_with_the_instance_is_made_to_survive_before_the_termination(
    world: Any, ec2: Any, inject_error: Any
) -> None:
    old_id = world.launch(4, world.ip(14))  # /dev/sdf from the launch: DeleteOnTermination=true
    vid = world.device_volume(old_id)
    assert vid is not None
    before = world.describe(old_id)["BlockDeviceMappings"]
    assert [m["Ebs"]["DeleteOnTermination"] for m in before if m["DeviceName"] == SDF] == [True]
    calls = record_calls(ec2, inject_error)

    result = replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)

    new_id = str(result.new_instance_id)
    check_attached_once_to(world, vid, new_id, old_id)
    # Permission checked first (DryRun), then DeleteOnTermination=false BEFORE the termination.
    assert calls.index("ModifyInstanceAttribute(DryRun)") < calls.index("ModifyInstanceAttribute")
    assert real(calls) == ["ModifyInstanceAttribute", "TerminateInstances", "RunInstances", "AttachVolume"]
    assert any("DeleteOnTermination set to false" in s for s in result.steps)
    # AttachVolume's default: the volume stays safe on the new instance too (a later replacement).
    mapping = next(m for m in world.describe(new_id)["BlockDeviceMappings"] if m["DeviceName"] == SDF)
    assert mapping["Ebs"]["DeleteOnTermination"] is False
    assert result.data_volume is not None and result.data_volume["reused"] is True


def test_without_the_setting_the_launch_time_volume_dies_with_the_instance(world: Any, ec2: Any) -> None:
    """The behaviour the setting exists for: the same broker replaced as before loses its volume."""
    old_id = world.launch(4, world.ip(14))
    vid = world.device_volume(old_id)
    assert vid is not None
    result = replace_instance(ec2, old_id, **FAST)
    assert world.volume(vid) is None
    assert result.data_volume is None
    assert world.device_volume(str(result.new_instance_id)) not in (None, vid)  # a fresh one


def test_falls_back_to_the_old_behaviour_when_the_volume_was_deleted_beforehand(world: Any, ec2: Any) -> None:
    old_id = world.launch(5, world.ip(15), data_volume=False)
    vid = world.add_volume(old_id, SDF)
    ec2.detach_volume(VolumeId=vid, InstanceId=old_id, Device=SDF)
    ec2.delete_volume(VolumeId=vid)
    assert world.volume(vid) is None

    result = replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)

    new_id = str(result.new_instance_id)
    assert world.state(old_id) == "terminated" and world.state(new_id) == "running"
    assert result.private_ip == world.ip(15)
    assert result.data_volume is not None and result.data_volume["reused"] is False
    assert result.data_volume["volume_id"] is None
    assert f"no EBS volume is attached to {old_id} at {SDF}" in result.data_volume["why"]
    assert world.device_volume(new_id) is None  # nothing there to copy the shape of
    assert "keep_volume" not in result.timings and "attach_volume" not in result.timings


def test_reuse_off_keeps_the_old_volume_and_gives_the_new_instance_a_fresh_one(
    world: Any, ec2: Any, inject_error: Any
) -> None:
    old_id = world.launch(6, world.ip(16))  # DeleteOnTermination=true: would be deleted without the setting
    vid = world.device_volume(old_id)
    assert vid is not None
    calls = record_calls(ec2, inject_error)

    result = replace_instance(ec2, old_id, data_volume_device=SDF, reuse_data_volume=False, **FAST)

    new_id = str(result.new_instance_id)
    old_volume = world.volume(vid)
    assert old_volume is not None and old_volume["State"] == "available"  # kept, never deleted
    fresh = world.device_volume(new_id)
    assert fresh is not None and fresh != vid
    assert (world.volume(fresh) or {}).get("Size") == 50  # same shape
    assert "AttachVolume" not in real(calls)
    assert result.data_volume is not None and result.data_volume["reused"] is False
    assert "reuse_data_volume is off" in result.data_volume["why"]


def test_a_volume_in_another_az_is_kept_and_not_attached(world: Any, ec2: Any) -> None:
    # moto attaches a us-east-1b volume to a us-east-1a instance (AWS refuses): the only way to
    # reach this defensive branch; on AWS an attached volume is always in its instance's AZ.
    old_id = world.launch(7, world.ip(17), data_volume=False)
    vid = world.add_volume(old_id, SDF, az="us-east-1b")

    result = replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)

    new_id = str(result.new_instance_id)
    assert result.data_volume is not None and result.data_volume["reused"] is False
    assert "us-east-1b" in result.data_volume["why"] and "us-east-1a" in result.data_volume["why"]
    assert (world.volume(vid) or {}).get("State") == "available"  # kept
    assert world.device_volume(new_id) not in (None, vid)  # a fresh volume of the same shape


def test_dry_run_names_the_volume_and_changes_nothing(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(8, world.ip(18))  # DeleteOnTermination=true: the dry run must not change it
    vid = world.device_volume(old_id)
    before = world.all_instances()
    calls = record_calls(ec2, inject_error)

    result = replace_instance(ec2, old_id, data_volume_device=SDF, dry_run=True, **FAST)

    assert real(calls) == []
    assert world.all_instances() == before
    mapping = next(m for m in world.describe(old_id)["BlockDeviceMappings"] if m["DeviceName"] == SDF)
    assert mapping["Ebs"]["VolumeId"] == vid and mapping["Ebs"]["DeleteOnTermination"] is True
    assert result.dry_run and result.data_volume is not None
    assert result.data_volume["volume_id"] == vid and result.data_volume["reused"] is True
    assert any(f"would keep data volume {vid}" in s and f"re-attach it to the new instance at {SDF}" in s
               for s in result.steps)  # fmt: skip


def test_attach_failure_after_the_termination_names_the_kept_volume(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(9, world.ip(19), data_volume=False)
    vid = world.add_volume(old_id, SDF)
    # AWS error injection: AttachVolume refused once the instance runs (DryRun passes).
    inject_error(ec2, "AttachVolume", "VolumeLimitExceeded", lambda p: not p.get("DryRun"))

    with pytest.raises(AwsActionError, match="IS TERMINATED and new instance i-") as err:
        replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)

    assert err.value.changed is True and err.value.new_instance_id is not None
    assert f"data volume {vid}" in str(err.value) and f"attach it at {SDF}" in str(err.value)
    assert (world.volume(vid) or {}).get("State") == "available"  # kept, on no instance
    assert world.state(str(err.value.new_instance_id)) == "running"


def test_a_volume_never_seen_detached_times_out_within_the_budget(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(10, world.ip(20), data_volume=False)
    vid = world.add_volume(old_id, SDF)
    launch = inject_error(ec2, "RunInstances", "-", lambda p: False)
    # AWS error injection: every DescribeVolumes after the launch is throttled.
    throttled = inject_error(
        ec2,
        "DescribeVolumes",
        "RequestLimitExceeded",
        lambda p: any(not c.get("DryRun") for c in launch.calls),
        503,
    )
    attach = inject_error(ec2, "AttachVolume", "-", lambda p: False)
    t0 = time.monotonic()
    with pytest.raises(AwsTimeoutError, match=f"data volume {vid}: still unknown") as err:
        replace_instance(ec2, old_id, data_volume_device=SDF, wait_timeout_s=1.5, poll_s=0.05)
    assert time.monotonic() - t0 < 6
    assert err.value.changed is True
    assert [c for c in attach.calls if not c.get("DryRun")] == []  # never attached blind
    throttled.enabled = False
    assert (world.volume(vid) or {}).get("State") == "available"


def test_keeping_the_volume_refused_leaves_the_broker_running(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(11, world.ip(21))  # DeleteOnTermination=true
    vid = world.device_volume(old_id)
    # AWS error injection: the role may not modify instance attributes; the DryRun pre-flight sees it.
    denied = inject_error(ec2, "ModifyInstanceAttribute", "UnauthorizedOperation", lambda p: True, 403)
    with pytest.raises(ReplacementRefusedError, match="ModifyInstanceAttribute would fail") as err:
        replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)
    assert err.value.changed is False and f"data volume {vid}" in str(err.value)
    assert world.state(old_id) == "running" and world.device_volume(old_id) == vid

    # ... and when only the real call fails (DryRun allowed), the instance is not terminated either.
    denied.should_fail = lambda p: not p.get("DryRun")
    with pytest.raises(ReplacementRefusedError, match="could not set DeleteOnTermination=false") as err:
        replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)
    assert "NOT terminated" in str(err.value)
    assert world.state(old_id) == "running" and world.device_volume(old_id) == vid


def test_attach_permission_refused_in_the_preflight(world: Any, ec2: Any, inject_error: Any) -> None:
    old_id = world.launch(12, world.ip(22), data_volume=False)
    vid = world.add_volume(old_id, SDF)
    inject_error(ec2, "AttachVolume", "UnauthorizedOperation", lambda p: True, 403)
    with pytest.raises(ReplacementRefusedError, match="AttachVolume would be refused"):
        replace_instance(ec2, old_id, data_volume_device=SDF, **FAST)
    assert world.state(old_id) == "running" and world.device_volume(old_id) == vid


# ---- through the replacer interface --------------------------------------------------------------------


def replacer(world: Any, ec2: Any, endpoint: str, **settings: Any) -> Ec2BrokerReplacer:
    key, value = world.cluster_tag
    cluster = ClusterSettings(
        name="prod",
        bootstrap_servers=f"{world.ip(11)}:9092",
        aws=AwsSettings(region=REGION, cluster_tag_key=key, cluster_tag_value=value),
    )
    block = Ec2ReplacerSettings(region=REGION, endpoint_url=endpoint, wait_timeout_s=20, **settings)
    r = replacer_for(block, cluster, ec2_client=ec2, poll_s=0.05)
    assert isinstance(r, Ec2BrokerReplacer)
    return r


def test_replacer_plan_then_replace_moves_the_data_volume(
    world: Any, ec2: Any, endpoint: str, inject_error: Any
) -> None:
    ids = {b: world.launch(b, world.ip(10 + b), data_volume=False) for b in (1, 2)}
    vols = {b: world.add_volume(ids[b], SDF) for b in (1, 2)}
    r = replacer(world, ec2, endpoint, data_volume_device=SDF)
    calls = record_calls(ec2, inject_error)

    plan = r.plan(2, world.ip(12))
    assert plan.action == "plan" and f"would re-attach data volume {vols[2]} at {SDF}" in plan.summary
    assert plan.details["data_volume"]["volume_id"] == vols[2] and plan.details["data_volume"]["reused"] is True
    assert real(calls) == [] and world.state(ids[2]) == "running" and world.device_volume(ids[2]) == vols[2]

    outcome = r.replace(2, world.ip(12))

    new_id = outcome.details["new_instance_id"]
    assert f"re-attached data volume {vols[2]} at {SDF}" in outcome.summary
    assert outcome.details["data_volume"] == {
        "volume_id": vols[2],
        "device": SDF,
        "reused": True,
        "why": f"volume {vols[2]} moved from {ids[2]} to {new_id} at {SDF}",
    }
    assert any("attached to" in s for s in outcome.details["steps"])
    check_attached_once_to(world, vols[2], new_id, ids[2])
    assert world.describe(new_id)["PrivateIpAddress"] == world.ip(12)
    assert world.state(ids[1]) == "running" and world.device_volume(ids[1]) == vols[1]  # untouched


# ---- the choice itself, on AWS-shaped input moto cannot produce ----------------------------------------


def _instance(volume_id: str = "vol-1", dot: bool = True) -> dict[str, Any]:
    return {
        "InstanceId": "i-old",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-root", "DeleteOnTermination": True}},
            {"DeviceName": SDF, "Ebs": {"VolumeId": volume_id, "DeleteOnTermination": dot, "Status": "attached"}},
        ],
    }


def _volume(state: str = "in-use", attachments: tuple[str, ...] = ("i-old",), az: str = "us-east-1a") -> dict[str, Any]:
    return {
        "VolumeId": "vol-1",
        "State": state,
        "AvailabilityZone": az,
        "Size": 500,
        "VolumeType": "gp3",
        "Attachments": [{"InstanceId": i, "Device": SDF, "State": "attached"} for i in attachments],
        "MultiAttachEnabled": len(attachments) > 1,
    }


def test_choice_reuses_a_healthy_volume_and_matches_the_xen_alias() -> None:
    data = _choose_data_volume(_instance(), {"vol-1": _volume()}, "/dev/xvdf", True, "us-east-1a")
    assert (data.volume_id, data.attached_as, data.keep, data.reuse, data.delete_on_termination) == (
        "vol-1", SDF, True, True, True,
    )  # fmt: skip


def test_choice_keeps_but_does_not_reuse_a_volume_in_error() -> None:
    data = _choose_data_volume(_instance(), {"vol-1": _volume(state="error")}, SDF, True, "us-east-1a")
    assert data.keep and not data.reuse
    assert "error" in data.why and "kept (not deleted)" in data.why


def test_choice_refuses_a_volume_attached_to_another_instance_too() -> None:
    with pytest.raises(ReplacementRefusedError, match=r"also attached to i-other \(attached\)"):
        _choose_data_volume(_instance(), {"vol-1": _volume(attachments=("i-old", "i-other"))}, SDF, True, "us-east-1a")


def test_choice_when_the_listed_volume_is_unknown_to_describe_volumes() -> None:
    data = _choose_data_volume(_instance(), {}, SDF, True, "us-east-1a")
    assert not data.keep and not data.reuse and "no longer exists" in data.why
