"""Replace (or reboot) the EC2 instance of a dead Kafka broker, the way Pinterest's Orion does.

Why terminate-then-launch instead of launch-then-terminate: the replacement must come back with
the broker's private IP (and so its hostname, and the broker id the boot scripts derive from it),
and an IP can only be on one instance at a time. The primary network interface (device index 0)
cannot be detached on AWS, so "move the ENI" is not possible while the old instance exists.

How the IP is kept, chosen from the old instance's primary ENI:

* ``reuse-eni``: the ENI has DeleteOnTermination=false, so it (with its IPs, security groups and
  MAC) outlives the old instance; launch with ``NetworkInterfaces=[{DeviceIndex: 0,
  NetworkInterfaceId: eni}]``. This is also the ONLY way to keep the IP in that case: the
  surviving ENI holds the address, so a launch with ``PrivateIpAddress`` would fail forever.
* ``same-ip`` (AWS default, DeleteOnTermination=true): the ENI is deleted with the instance; launch
  in the same subnet with ``PrivateIpAddress`` = old IP (Orion's approach).
* ``new-ip``: keep_private_ip=False, or the address stayed in use past the bounded wait and the
  caller allowed a new address (``allow_new_ip``); a Route53 record then keeps the name.

AWS can take a while to release an address or ENI after termination; launches failing with
``InvalidIPAddress.InUse`` / ``InvalidNetworkInterface.InUse`` are retried until a bound.
``InsufficientInstanceCapacity`` (and similar) moves on to the next instance type in
``instance_type_fallbacks``.

New host, same disk (``data_volume_device``): a broker whose data lives on an EBS volume at a
known device can get that volume back on the new instance, so it only catches up on what it
missed instead of re-replicating everything. The order, and why it is safe:

1. before anything changes, the volume at that device is found and checked (it exists, is in
   use by the old instance only, in the AZ the replacement launches in); DryRun calls check the
   permissions of ModifyInstanceAttribute and AttachVolume;
2. ModifyInstanceAttribute sets DeleteOnTermination=false on that mapping (when it is true), and
   a fresh DescribeInstances checks it took, with the same volume still at that device. Only then
   is the old instance terminated: the volume can no longer be deleted with it;
3. the old instance is terminated (EC2 shuts the OS down, which unmounts the filesystem, and
   detaches the volume itself), the new one launched with ``NoDevice`` at that device (so neither
   a copied mapping nor the AMI's own puts a fresh volume there) and waited for until running;
4. the volume is waited for until it is "available" with no attachment left (bounded), and only
   then attached to the new instance at the same device, and waited for until "attached".

Why not detach first: detaching a volume from a running instance pulls a mounted disk out from
under Kafka (AWS warns it can corrupt the filesystem), and stopping the instance first adds a
whole stop to an incident. DeleteOnTermination=false has the same effect -- the volume outlives
the instance -- with EC2 doing the unmount and the detach. The volume is never attached to two
instances: it is attached to the new one only once EC2 lists no attachment at all (AWS would
refuse otherwise too, except for Multi-Attach volumes, which are refused up front), and never
deleted: nothing here deletes a volume, and a fresh volume at that device is only ever a new one.
A volume that cannot be re-attached (gone, in error, another AZ, ``reuse_data_volume`` off) is
still kept, the replacement gets a fresh one of the same shape, and the outcome says why. The new
instance boots before its data volume is attached: its boot scripts must wait for the device (as
for any EBS volume attached after launch) before starting Kafka.

Everything that can be checked without changing anything is checked BEFORE the old instance is
terminated (state, termination protection, Auto Scaling / spot ownership, AMI still available,
Route53 zone, and RunInstances/TerminateInstances with DryRun=True for permissions), because the
worst outcome is a terminated broker with no replacement.

moto (the emulator used by the tests) differs from AWS here; the code does not depend on the
differences, but the tests are shaped by them:

* moto gives an instance launched with a plain ``SubnetId`` a primary ENI with
  DeleteOnTermination=false (AWS: true). Such instances take the ``reuse-eni`` path under moto.
  Launch with ``NetworkInterfaces=[{..., "DeleteOnTermination": True}]`` to get the AWS shape.
* moto never releases an ENI after termination: it stays "in-use", attached to the terminated
  instance (AWS: "available" within seconds). This code never waits for "available"; it tries
  the launch and retries on the InUse errors, bounded. moto accepts the in-use ENI at once.
* moto reserves the address in the subnet until the ENI is deleted; relaunching with
  ``PrivateIpAddress`` while a surviving ENI holds it gives an HTTP 500 ("IP already in use")
  instead of ``InvalidIPAddress.InUse``.
* moto moves instances to "running" and "terminated" instantly, never reports capacity errors,
  and reports no status-check changes after a reboot.
* moto detaches volumes at termination at once (AWS: within seconds), lets AttachVolume attach an
  in-use volume or one of another AZ (AWS refuses both), and never puts a volume in "error".
"""

from __future__ import annotations

import base64
import copy
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kafka_medic.aws._common import Deadline, StepLog, error_code, error_text
from kafka_medic.aws.ebs import VolumeInfo, describe_volume, ebs_at, same_device, volume_info
from kafka_medic.aws.ec2_status import instance_health
from kafka_medic.aws.errors import (
    AwsActionError,
    AwsCollectionError,
    AwsTimeoutError,
    CapacityError,
    InstanceNotFoundError,
    InstanceStateError,
    ReplacementRefusedError,
)
from kafka_medic.aws.route53 import RecordChange, check_zone, fqdn, normalize_zone_id, upsert_a_record
from kafka_medic.errors import ConfigError
from kafka_medic.waiting import NotYet, WaitTimeout, poll

REPLACES_TAG = "kafka-medic:replaces"
REPLACEABLE_STATES: frozenset[str] = frozenset({"running", "stopped"})
# Errors meaning "this instance type cannot be had here right now": try the next type.
CAPACITY_ERROR_CODES: frozenset[str] = frozenset(
    {"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity", "Unsupported"}
)
# Errors meaning "the old instance's address/ENI is not released yet": wait and retry.
ADDRESS_IN_USE_CODES: frozenset[str] = frozenset({"InvalidIPAddress.InUse", "InvalidNetworkInterface.InUse"})
_NOT_FOUND_CODES: frozenset[str] = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
# A DryRun refused for lack of permission (as opposed to the request's parameters or state).
_PERMISSION_CODES: frozenset[str] = frozenset({"UnauthorizedOperation", "AccessDenied", "AuthFailure"})
# Instances owned by something that replaces them itself: a second, competing replacement would
# leave two brokers with the same id.
_OWNER_TAGS: dict[str, str] = {
    "aws:autoscaling:groupName": "Auto Scaling group",
    "aws:ec2spot:fleet-request-id": "spot fleet request",
    "aws:ec2:fleet-id": "EC2 fleet",
}
_METADATA_KEYS = (
    "HttpTokens",
    "HttpPutResponseHopLimit",
    "HttpEndpoint",
    "HttpProtocolIpv6",
    "InstanceMetadataTags",
)


_Fail = Callable[..., AwsActionError]  # builds the "old instance is terminated" error


class Strategy(StrEnum):
    """How the replacement gets its network identity (see the module docstring)."""

    REUSE_ENI = "reuse-eni"
    SAME_IP = "same-ip"
    NEW_IP = "new-ip"


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A launch spec safe to log or audit: user data often holds secrets, so only its size is kept."""
    out = dict(spec)
    if "UserData" in out:
        out["UserData"] = f"<{len(out['UserData'])} bytes>"
    return out


@dataclass
class ReplacementResult:
    """What a replacement did (or, with dry_run, would do).

    ``launch_spec`` is the RunInstances request that succeeded (dry run: the one that would be
    sent first), including ``UserData`` as bytes; use :meth:`to_record` for logs and audits.
    ``timings`` holds seconds per phase (describe, preflight, keep_volume, terminate, launch,
    wait_running, wait_volume, attach_volume, route53, total); ``steps`` the human-readable log.
    ``data_volume`` (with ``data_volume_device``): ``{"volume_id", "device", "reused", "why"}``.
    """

    old_instance_id: str
    new_instance_id: str | None
    old_private_ip: str | None
    private_ip: str | None
    instance_type: str
    strategy: str
    dry_run: bool
    launch_spec: dict[str, Any]
    route53: RecordChange | None = None
    timings: dict[str, float] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    data_volume: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-friendly form with the user data redacted."""
        record = asdict(self)
        record["launch_spec"] = redact_spec(self.launch_spec)
        return record


@dataclass
class RestartResult:
    """Outcome of :func:`restart_instance`: EC2's combined status once the instance was back."""

    instance_id: str
    ec2_status: str
    elapsed_s: float
    steps: list[str] = field(default_factory=list)


@dataclass
class _DataVolume:
    """The broker's data volume at ``data_volume_device`` on the old instance, and what to do with it.

    ``keep``: the volume exists and must survive the termination (DeleteOnTermination=false):
    true whenever it exists, re-attached or not, because a data volume is never deleted here.
    ``reuse``: it is attached to the new instance at ``attached_as``; otherwise the replacement
    gets a fresh volume of the same shape (or nothing, when there was no volume) and ``why`` says so.
    """

    device: str  # as configured
    attached_as: str  # the device name EC2 lists it under on the old instance
    volume_id: str | None
    keep: bool
    reuse: bool
    why: str
    delete_on_termination: bool = False  # as attached to the old instance, before any change
    availability_zone: str | None = None

    def record(self, *, reused: bool | None = None, why: str | None = None) -> dict[str, Any]:
        return {
            "volume_id": self.volume_id,
            "device": self.attached_as,
            "reused": self.reuse if reused is None else reused,
            "why": self.why if why is None else why,
        }


@dataclass
class _Plan:
    """Everything captured from the old instance, and how to turn it into a RunInstances request."""

    instance_id: str
    base: dict[str, Any]  # RunInstances arguments except InstanceType and the network keys
    subnet_id: str
    security_group_ids: list[str]
    private_ip: str | None
    eni_id: str | None
    strategy: Strategy
    instance_types: list[str]
    data: _DataVolume | None = None

    def spec(self, instance_type: str, strategy: Strategy) -> dict[str, Any]:
        spec = copy.deepcopy(self.base)
        spec["InstanceType"] = instance_type
        spec["MinCount"] = 1
        spec["MaxCount"] = 1
        if strategy is Strategy.REUSE_ENI:
            # The ENI carries subnet and security groups; AWS rejects them next to NetworkInterfaces.
            spec["NetworkInterfaces"] = [{"DeviceIndex": 0, "NetworkInterfaceId": self.eni_id}]
        else:
            spec["SubnetId"] = self.subnet_id
            spec["SecurityGroupIds"] = list(self.security_group_ids)
            if strategy is Strategy.SAME_IP:
                spec["PrivateIpAddress"] = self.private_ip
        return spec


def _describe_one(ec2_client: Any, instance_id: str) -> dict[str, Any]:
    """DescribeInstances for one id; InstanceNotFoundError when EC2 does not know it."""
    try:
        resp = ec2_client.describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND_CODES:
            raise InstanceNotFoundError(
                f"EC2 instance {instance_id} does not exist in this account/region ({error_text(exc)}); "
                "nothing was changed. Check the broker->instance mapping.",
                instance_id=instance_id,
                code=error_code(exc),
            ) from exc
        raise AwsActionError(
            f"DescribeInstances {instance_id} failed ({error_text(exc)}); nothing was changed.",
            instance_id=instance_id,
            code=error_code(exc),
        ) from exc
    except BotoCoreError as exc:
        raise AwsActionError(
            f"DescribeInstances {instance_id} failed ({error_text(exc)}); nothing was changed.",
            instance_id=instance_id,
        ) from exc
    instances = [i for r in resp.get("Reservations", []) for i in r.get("Instances", [])]
    if not instances:
        raise InstanceNotFoundError(
            f"EC2 instance {instance_id} does not exist in this account/region; nothing was changed.",
            instance_id=instance_id,
        )
    return instances[0]


def _read_error(what: str, instance_id: str, exc: BaseException) -> AwsActionError:
    return AwsActionError(
        f"{what} for {instance_id} failed ({error_text(exc)}); nothing was changed.",
        instance_id=instance_id,
        code=error_code(exc),
    )


def _user_data(ec2_client: Any, instance_id: str) -> bytes | None:
    try:
        resp = ec2_client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    except (ClientError, BotoCoreError) as exc:
        raise _read_error("DescribeInstanceAttribute userData", instance_id, exc) from exc
    value = resp.get("UserData", {}).get("Value")
    # The API returns it base64-encoded; boto3 encodes it again on RunInstances, so keep raw bytes
    # (user data may be binary, e.g. gzip-compressed cloud-init).
    return base64.b64decode(value) if value else None


def _attached_volumes(ec2_client: Any, inst: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """The old instance's EBS mappings (device, Ebs) and DescribeVolumes of their volumes by id."""
    ebs = [(m["DeviceName"], m["Ebs"]) for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m]
    if not ebs:
        return [], {}
    try:
        resp = ec2_client.describe_volumes(VolumeIds=[e["VolumeId"] for _, e in ebs])
    except (ClientError, BotoCoreError) as exc:
        raise _read_error("DescribeVolumes", inst["InstanceId"], exc) from exc
    return ebs, {v["VolumeId"]: v for v in resp.get("Volumes", [])}


def _block_devices(
    ebs: list[tuple[str, dict[str, Any]]],
    volumes: dict[str, Any],
    data: _DataVolume | None,
    log: StepLog,
) -> list[dict[str, Any]]:
    """EBS mappings with the old volumes' size/type/IOPS/throughput/encryption, as FRESH volumes.

    Kafka data is re-replicated from the other brokers, so the replacement needs the same disk
    shape, not the old disks. Volumes with DeleteOnTermination=false outlive the old instance and
    are NOT reattached; they are named in the step log so someone can reclaim them. The one
    exception is the data volume of ``data`` when it is re-attached: its device gets ``NoDevice``,
    so that neither a fresh volume nor the AMI's own mapping takes the slot it goes back into.
    """
    mappings: list[dict[str, Any]] = []
    for device, attached in ebs:
        is_data = data is not None and same_device(device, data.attached_as)
        if is_data and data is not None and data.reuse:
            mappings.append({"DeviceName": device, "NoDevice": ""})
            continue
        vol = volumes.get(attached["VolumeId"])
        if vol is None:
            continue
        delete = bool(attached.get("DeleteOnTermination", True))
        spec: dict[str, Any] = {
            "VolumeSize": int(vol["Size"]),
            "VolumeType": vol["VolumeType"],
            "DeleteOnTermination": delete,
        }
        if vol["VolumeType"] in ("io1", "io2", "gp3") and vol.get("Iops"):
            spec["Iops"] = int(vol["Iops"])
        if vol["VolumeType"] == "gp3" and vol.get("Throughput"):
            spec["Throughput"] = int(vol["Throughput"])
        if vol.get("Encrypted"):  # never send Encrypted=False: it fails for encrypted AMI snapshots
            spec["Encrypted"] = True
            if vol.get("KmsKeyId"):
                spec["KmsKeyId"] = vol["KmsKeyId"]
        mappings.append({"DeviceName": device, "Ebs": spec})
        if is_data:
            log(
                f"data volume {vol['VolumeId']} ({device}) is kept but NOT re-attached; the replacement gets a "
                "fresh volume of the same shape. Reclaim or delete the old one."
            )
        elif not delete:
            log(
                f"volume {vol['VolumeId']} ({device}) survives termination and will NOT be reattached; "
                "the replacement gets a fresh volume. Reclaim or delete the old one."
            )
    return mappings


def _choose_data_volume(
    inst: dict[str, Any],
    volumes: dict[str, Any],
    device: str,
    reuse: bool,
    launch_az: str,
) -> _DataVolume:
    """Find the data volume at ``device`` and decide whether it can go to the new instance. Pure.

    Raises ReplacementRefusedError when the volume cannot be handled safely at all: attached to
    another instance too (Multi-Attach), so it would be in use by two machines.
    """
    iid = inst["InstanceId"]
    found = ebs_at(inst.get("BlockDeviceMappings", []), device)
    if found is None:
        return _DataVolume(
            device, device, None, keep=False, reuse=False,
            why=f"no EBS volume is attached to {iid} at {device}: nothing to keep or re-attach; the "
            "replacement gets the old instance's other disks only",
        )  # fmt: skip
    attached_as, ebs = found
    vid = ebs["VolumeId"]
    dot = bool(ebs.get("DeleteOnTermination", True))
    raw = volumes.get(vid)
    if raw is None:
        return _DataVolume(
            device, attached_as, vid, keep=False, reuse=False, delete_on_termination=dot,
            why=f"volume {vid} listed at {attached_as} no longer exists; the replacement gets no volume there",
        )  # fmt: skip
    vol = volume_info(raw)
    others = [a for a in vol.attachments if a.instance_id != iid]
    if others:
        where = ", ".join(f"{a.instance_id} ({a.state})" for a in others)
        raise ReplacementRefusedError(
            f"Replacement of {iid} refused: its data volume {vid} is also attached to {where} (Multi-Attach); "
            "kafka-medic never hands a volume that another machine uses to a new instance. Nothing was changed.",
            instance_id=iid,
        )

    def kept(why: str) -> _DataVolume:
        return _DataVolume(
            device, attached_as, vid, keep=True, reuse=False, why=why, delete_on_termination=dot,
            availability_zone=vol.availability_zone,
        )  # fmt: skip

    if not reuse:
        return kept(
            f"reuse_data_volume is off: the replacement gets a fresh volume at {attached_as}; {vid} is kept "
            "(detached, not deleted) for a human to reclaim"
        )
    if vol.state != "in-use":
        return kept(
            f"{vol.describe()} is not usable: the replacement gets a fresh volume of the same shape; {vid} is "
            "kept (not deleted) for a human to inspect"
        )
    if vol.availability_zone != launch_az:
        return kept(
            f"volume {vid} is in {vol.availability_zone} but the replacement launches in {launch_az}: it gets a "
            f"fresh volume; {vid} is kept (not deleted)"
        )
    return _DataVolume(
        device, attached_as, vid, keep=True, reuse=True, delete_on_termination=dot,
        availability_zone=vol.availability_zone,
        why=f"{vol.describe()} is re-attached to the new instance at {attached_as}",
    )  # fmt: skip


def _capture(
    ec2_client: Any,
    inst: dict[str, Any],
    *,
    keep_private_ip: bool,
    instance_type_fallbacks: Sequence[str],
    log: StepLog,
    data_volume_device: str | None = None,
    reuse_data_volume: bool = True,
) -> _Plan:
    """Read everything the replacement must copy from the old instance. Read-only."""
    iid = inst["InstanceId"]
    subnet_id = inst.get("SubnetId")
    if not subnet_id:
        raise ReplacementRefusedError(
            f"Instance {iid} has no subnet (not in a VPC); kafka-medic only replaces VPC instances. "
            "Nothing was changed.",
            instance_id=iid,
        )
    nics = inst.get("NetworkInterfaces", [])
    primary = next((n for n in nics if n.get("Attachment", {}).get("DeviceIndex") == 0), None)
    groups = (primary or {}).get("Groups") or inst.get("SecurityGroups", [])
    sg_ids = [g["GroupId"] for g in groups]
    private_ip = inst.get("PrivateIpAddress")
    eni_id = primary.get("NetworkInterfaceId") if primary else None
    eni_survives = bool(primary) and not primary.get("Attachment", {}).get("DeleteOnTermination", True)

    if not keep_private_ip or not private_ip:
        strategy = Strategy.NEW_IP
    elif eni_survives and eni_id:
        strategy = Strategy.REUSE_ENI
    else:
        strategy = Strategy.SAME_IP

    if strategy is Strategy.NEW_IP and eni_survives:
        log(
            f"primary ENI {eni_id} survives termination (DeleteOnTermination=false) and will be left "
            "unused (available); delete it if the old IP is not wanted back."
        )
    if strategy is Strategy.SAME_IP and primary:
        extra = [a["PrivateIpAddress"] for a in primary.get("PrivateIpAddresses", []) if not a.get("Primary")]
        if extra:
            log(f"secondary private IPs {extra} of the old primary ENI are NOT carried over.")
    for nic in nics:
        if nic.get("Attachment", {}).get("DeviceIndex", 0) != 0:
            log(
                f"secondary ENI {nic.get('NetworkInterfaceId')} (device {nic['Attachment']['DeviceIndex']}) "
                "is NOT carried over."
            )

    tags = [t for t in inst.get("Tags", []) if not t["Key"].startswith("aws:") and t["Key"] != REPLACES_TAG]
    tags.append({"Key": REPLACES_TAG, "Value": iid})

    placement_in = inst.get("Placement", {})
    placement: dict[str, Any] = {"AvailabilityZone": placement_in["AvailabilityZone"]}
    if placement_in.get("GroupName"):
        placement["GroupName"] = placement_in["GroupName"]
        if placement_in.get("PartitionNumber"):
            placement["PartitionNumber"] = placement_in["PartitionNumber"]
    if placement_in.get("Tenancy") and placement_in["Tenancy"] != "default":
        placement["Tenancy"] = placement_in["Tenancy"]

    base: dict[str, Any] = {
        "ImageId": inst["ImageId"],
        "Placement": placement,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
    }
    if inst.get("KeyName"):
        base["KeyName"] = inst["KeyName"]
    if inst.get("IamInstanceProfile", {}).get("Arn"):
        base["IamInstanceProfile"] = {"Arn": inst["IamInstanceProfile"]["Arn"]}
    user_data = _user_data(ec2_client, iid)
    if user_data:
        base["UserData"] = user_data
    if inst.get("EbsOptimized"):
        base["EbsOptimized"] = True
    if inst.get("Monitoring", {}).get("State") in ("enabled", "pending"):
        base["Monitoring"] = {"Enabled": True}
    metadata = {k: inst["MetadataOptions"][k] for k in _METADATA_KEYS if k in inst.get("MetadataOptions", {})}
    if metadata:
        base["MetadataOptions"] = metadata
    ebs, volumes = _attached_volumes(ec2_client, inst)
    data = None
    if data_volume_device:
        data = _choose_data_volume(inst, volumes, data_volume_device, reuse_data_volume, placement["AvailabilityZone"])
        log(f"data volume: {data.why}")
    mappings = _block_devices(ebs, volumes, data, log)
    if mappings:
        base["BlockDeviceMappings"] = mappings

    types = list(dict.fromkeys([inst["InstanceType"], *instance_type_fallbacks]))
    log(
        f"captured {iid}: {inst['InstanceType']} {inst['ImageId']} in {subnet_id}/"
        f"{placement['AvailabilityZone']} ip {private_ip} sgs {sg_ids}; strategy {strategy.value}; "
        f"types {types}"
    )
    return _Plan(iid, base, subnet_id, sg_ids, private_ip, eni_id, strategy, types, data)


def _dry_run_call(fn: Any, what: str, iid: str, **kwargs: Any) -> tuple[str, str]:
    """Call an EC2 API with DryRun=True; return (error code, "Code: message").

    AWS answers an allowed, valid request with the error DryRunOperation.
    """
    try:
        fn(DryRun=True, **kwargs)
    except ClientError as exc:
        return error_code(exc), error_text(exc)
    except BotoCoreError as exc:
        raise _read_error(f"{what} (DryRun)", iid, exc) from exc
    # Some emulators ignore DryRun and perform the call: that would be a real change. Refuse loudly.
    raise AwsActionError(
        f"{what} with DryRun=True did not report DryRunOperation for {iid}; "
        "the endpoint ignores DryRun. Stop and check what it did.",
        instance_id=iid,
        changed=True,
    )


def _preflight(
    ec2_client: Any,
    inst: dict[str, Any],
    plan: _Plan,
    route53_client: Any,
    hosted_zone_id: str | None,
    record_name: str | None,
    log: StepLog,
) -> None:
    """Everything that can refuse the replacement without changing anything. See module docstring."""
    iid = inst["InstanceId"]

    def refuse(reason: str, code: str = "") -> ReplacementRefusedError:
        return ReplacementRefusedError(
            f"Replacement of {iid} refused: {reason}. Nothing was changed.",
            instance_id=iid,
            launch_spec=plan.spec(plan.instance_types[0], plan.strategy),
            steps=log.steps,
            code=code,
        )

    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    for key, owner in _OWNER_TAGS.items():
        if key in tags:
            raise refuse(
                f"it belongs to {owner} {tags[key]}, which replaces its own instances; a second "
                "replacement would run two brokers with one id"
            )
    if inst.get("InstanceLifecycle") == "spot":
        raise refuse(
            "it is a spot instance; its spot request may relaunch it, and an on-demand copy would then compete with it"
        )
    try:
        attr = ec2_client.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
        images = ec2_client.describe_images(ImageIds=[plan.base["ImageId"]]).get("Images", [])
    except ClientError as exc:
        if error_code(exc).startswith("InvalidAMIID"):
            raise refuse(f"AMI {plan.base['ImageId']} is gone ({error_text(exc)})", error_code(exc)) from exc
        raise _read_error("pre-flight describe", iid, exc) from exc
    except BotoCoreError as exc:
        raise _read_error("pre-flight describe", iid, exc) from exc
    if attr.get("DisableApiTermination", {}).get("Value"):
        raise refuse(
            "termination protection (disableApiTermination) is on; turn it off deliberately "
            "if this broker really must be replaced"
        )
    if not images or images[0].get("State", "available") != "available":
        state = images[0].get("State") if images else "deregistered"
        raise refuse(f"AMI {plan.base['ImageId']} is {state}; the replacement could not boot from it")
    if route53_client is not None and hosted_zone_id and record_name:
        zone = check_zone(route53_client, hosted_zone_id, record_name)
        log(f"route53 zone {normalize_zone_id(hosted_zone_id)} ({zone}) holds {fqdn(record_name)}")

    # Permission / parameter check of the exact request, minus the address the old instance holds.
    code, text = _dry_run_call(
        ec2_client.run_instances, "RunInstances", iid, **plan.spec(plan.instance_types[0], Strategy.NEW_IP)
    )
    if code in CAPACITY_ERROR_CODES:
        log(f"pre-flight RunInstances: {code} for {plan.instance_types[0]} (fallbacks will be tried)")
    elif code != "DryRunOperation":
        raise refuse(f"RunInstances would fail ({text}); fix permissions/launch parameters first", code)
    code, text = _dry_run_call(ec2_client.terminate_instances, "TerminateInstances", iid, InstanceIds=[iid])
    if code != "DryRunOperation":
        raise refuse(f"TerminateInstances would fail ({text})", code)
    checked = "launch+terminate"
    data = plan.data
    if data is not None and data.keep and data.volume_id:
        if data.delete_on_termination:
            code, text = _dry_run_call(
                ec2_client.modify_instance_attribute,
                "ModifyInstanceAttribute",
                iid,
                InstanceId=iid,
                BlockDeviceMappings=_keep_mapping(data),
            )
            if code != "DryRunOperation":
                raise refuse(
                    f"ModifyInstanceAttribute would fail ({text}), so data volume {data.volume_id} would be "
                    "deleted with the instance",
                    code,
                )
            checked += "+keep volume"
        if data.reuse:
            # The volume is still attached to the old instance, so AWS may answer a state error
            # instead of DryRunOperation: only a refused permission stops the replacement here.
            code, text = _dry_run_call(
                ec2_client.attach_volume,
                "AttachVolume",
                iid,
                VolumeId=data.volume_id,
                InstanceId=iid,
                Device=data.attached_as,
            )
            if code in _PERMISSION_CODES:
                raise refuse(f"AttachVolume would be refused ({text}); the data volume could not be re-attached", code)
            if code != "DryRunOperation":
                log(f"pre-flight AttachVolume: {text} (the volume is still on {iid}; only permission is checked)")
            checked += "+attach volume"
    log(f"pre-flight passed (state, ownership, termination protection, AMI, DNS, DryRun {checked})")


def _keep_mapping(data: _DataVolume) -> list[dict[str, Any]]:
    return [{"DeviceName": data.attached_as, "Ebs": {"DeleteOnTermination": False}}]


def _keep_data_volume(ec2_client: Any, instance_id: str, data: _DataVolume, log: StepLog) -> None:
    """Make the data volume outlive the old instance, and check it did, BEFORE terminating.

    Sets DeleteOnTermination=false on its mapping when it is true, then re-reads the instance: the
    same volume must still be attached at the same device with DeleteOnTermination=false, and the
    instance still replaceable. Anything else refuses the replacement with the instance untouched
    (an instance whose volume now survives termination is harmless).
    """
    vid, dev = data.volume_id, data.attached_as

    def refuse(reason: str, code: str = "") -> ReplacementRefusedError:
        return ReplacementRefusedError(
            f"Replacement of {instance_id} refused: {reason}. The instance was NOT terminated.",
            instance_id=instance_id,
            steps=log.steps,
            code=code,
        )

    if data.delete_on_termination:
        try:
            ec2_client.modify_instance_attribute(InstanceId=instance_id, BlockDeviceMappings=_keep_mapping(data))
        except (ClientError, BotoCoreError) as exc:
            raise refuse(
                f"could not set DeleteOnTermination=false on data volume {vid} at {dev} ({error_text(exc)})",
                error_code(exc),
            ) from exc
        log(f"data volume {vid} at {dev}: DeleteOnTermination set to false (it outlives {instance_id})")
    try:
        inst = _describe_one(ec2_client, instance_id)
    except AwsActionError as exc:
        raise refuse(f"could not re-read {instance_id} to check its data volume ({exc})", exc.code) from exc
    found = ebs_at(inst.get("BlockDeviceMappings", []), dev)
    state = inst.get("State", {}).get("Name", "unknown")
    if found is None or found[1].get("VolumeId") != vid:
        now = found[1].get("VolumeId") if found else "nothing"
        raise refuse(f"{dev} now holds {now}, not data volume {vid} (changed while the replacement was prepared)")
    if found[1].get("DeleteOnTermination", True):
        raise refuse(f"data volume {vid} at {dev} still has DeleteOnTermination=true; it would be deleted")
    if state not in REPLACEABLE_STATES:
        raise refuse(f"{instance_id} went {state} while the replacement was prepared")
    log(f"checked: data volume {vid} stays on {instance_id} at {dev} with DeleteOnTermination=false")


def _instance_state(ec2_client: Any, instance_id: str, log: StepLog) -> tuple[str, dict[str, Any] | None]:
    """("state", instance) for a bounded wait loop.

    "absent" when EC2 does not (or, right after launch, not yet) list the id. A failed describe
    (throttling, a network blip) is logged and reported as "unknown (...)" so the wait goes on
    until its deadline: giving up mid-replacement over one failed poll would leave the broker
    with no instance at all.
    """
    try:
        inst = _describe_one(ec2_client, instance_id)
    except InstanceNotFoundError:
        return "absent", None
    except AwsActionError as exc:
        log(f"polling {instance_id} failed, retrying: {exc}")
        return f"unknown ({exc})", None
    return inst.get("State", {}).get("Name", "unknown"), inst


def _validate(wait_timeout_s: float, poll_s: float) -> None:
    if not wait_timeout_s > 0 or not poll_s > 0:
        raise ConfigError(f"wait_timeout_s and poll_s must be > 0 (got {wait_timeout_s}, {poll_s}).")


def replace_instance(
    ec2_client: Any,
    instance_id: str,
    *,
    keep_private_ip: bool = True,
    allow_new_ip: bool = False,
    instance_type_fallbacks: Sequence[str] = (),
    wait_timeout_s: float = 600,
    poll_s: float = 5,
    route53_client: Any = None,
    hosted_zone_id: str | None = None,
    record_name: str | None = None,
    dry_run: bool = False,
    data_volume_device: str | None = None,
    reuse_data_volume: bool = True,
) -> ReplacementResult:
    """Terminate ``instance_id`` and launch a copy of it, keeping its private IP (and DNS name).

    The copy gets the same AMI, instance type (or the first of ``instance_type_fallbacks`` with
    capacity), subnet, security groups, key pair, IAM instance profile, AZ/placement group,
    user data, metadata options, EBS shapes (fresh volumes), and tags plus
    ``kafka-medic:replaces=<old id>``. See the module docstring for how the IP is kept.

    ``wait_timeout_s`` bounds the WHOLE operation (all waits together; each AWS call is further
    bounded by the client's own timeouts). While the old address is still in use, launches are
    retried until the deadline -- or, with ``allow_new_ip``, until half the remaining time, and
    then launched with a new address in the same subnet. With ``record_name`` (and
    ``hosted_zone_id`` and ``route53_client``) an A record ``record_name -> new private IP`` is
    UPSERTed. ``dry_run`` runs every read-only check (including EC2 DryRun calls) and returns the
    launch request that would be sent, changing nothing.

    ``data_volume_device`` (e.g. "/dev/sdf"): the EBS volume there is the broker's data. It is
    never deleted (DeleteOnTermination=false before the termination) and, with
    ``reuse_data_volume``, attached to the new instance at the same device once it runs (see the
    module docstring for the order); ``data_volume`` in the result says what happened and why.

    Raises (all MedicError): ConfigError (bad arguments, unknown DNS zone); InstanceNotFoundError,
    InstanceStateError (not running/stopped), ReplacementRefusedError (pre-flight, or the data
    volume could not be made to survive) -- the old instance is not terminated; after termination,
    with ``changed=True``: CapacityError (no instance type left), AwsTimeoutError, AwsActionError
    (anything else, e.g. the data volume could not be re-attached). Those carry ``launch_spec``
    and ``steps``, and their message names the data volume when there is one.
    """
    _validate(wait_timeout_s, poll_s)
    if (hosted_zone_id is None) != (record_name is None):
        raise ConfigError("hosted_zone_id and record_name must be given together (or neither).")
    if record_name is not None and route53_client is None:
        raise ConfigError("record_name was given but no route53_client to update it with.")

    deadline = Deadline(wait_timeout_s)
    log = StepLog(deadline, f"replace {instance_id}:")

    with log.timed("describe"):
        old = _describe_one(ec2_client, instance_id)
        state = old.get("State", {}).get("Name", "unknown")
        if state not in REPLACEABLE_STATES:
            raise InstanceStateError(
                f"Instance {instance_id} is {state}; only running or stopped instances are replaced "
                f"(a {state} instance is already changing state). Nothing was changed.",
                instance_id=instance_id,
            )
        log(f"old instance {instance_id} is {state}")
        plan = _capture(
            ec2_client,
            old,
            keep_private_ip=keep_private_ip,
            instance_type_fallbacks=instance_type_fallbacks,
            log=log,
            data_volume_device=data_volume_device,
            reuse_data_volume=reuse_data_volume,
        )
    data = plan.data
    with log.timed("preflight"):
        _preflight(ec2_client, old, plan, route53_client, hosted_zone_id, record_name, log)

    old_ip = old.get("PrivateIpAddress")
    first_spec = plan.spec(plan.instance_types[0], plan.strategy)
    if dry_run:
        planned_ip = None if plan.strategy is Strategy.NEW_IP else old_ip
        planned_change: RecordChange | None = None
        if record_name and hosted_zone_id:
            planned_change = RecordChange(
                normalize_zone_id(hosted_zone_id), fqdn(record_name), planned_ip or "<new ip>", 60, "PLANNED"
            )
        if data is not None and data.keep:
            action = f"re-attach it to the new instance at {data.attached_as}" if data.reuse else "leave it detached"
            log(f"dry run: would keep data volume {data.volume_id} (DeleteOnTermination=false) and {action}")
        log(f"dry run: would terminate {instance_id} and run {redact_spec(first_spec)}")
        log.timings["total"] = round(deadline.elapsed(), 3)
        return ReplacementResult(
            instance_id,
            None,
            old_ip,
            planned_ip,
            plan.instance_types[0],
            plan.strategy.value,
            True,
            first_spec,
            planned_change,
            log.timings,
            log.steps,
            data.record() if data is not None else None,
        )

    # Where the broker's data is, for every error after the termination (a human finishes the job).
    volume_note = ""
    if data is not None and data.keep:
        volume_note = (
            f"data volume {data.volume_id} is kept (DeleteOnTermination=false) and NOT attached to a "
            f"replacement{f'; attach it at {data.attached_as}' if data.reuse else ''}; "
        )

    def failed(
        cls: type[AwsActionError],
        reason: str,
        *,
        spec: dict[str, Any] | None = None,
        new_id: str | None = None,
        code: str = "",
    ) -> AwsActionError:
        where = f"new instance {new_id} exists" if new_id else "NO replacement is running"
        return cls(
            f"Replacement of {instance_id}: {reason}. The old instance IS TERMINATED and {where}; "
            f"{volume_note}page a human (the launch request is attached as launch_spec).",
            instance_id=instance_id,
            changed=True,
            new_instance_id=new_id,
            launch_spec=spec or first_spec,
            steps=log.steps,
            code=code,
        )

    if deadline.expired():  # never terminate with no time left to launch the replacement
        raise AwsTimeoutError(
            f"Replacement of {instance_id}: the checks used up the whole {wait_timeout_s:.0f}s budget; "
            "nothing was changed. Retry with a larger wait_timeout_s.",
            instance_id=instance_id,
            launch_spec=first_spec,
            steps=log.steps,
        )
    if data is not None and data.keep:
        with log.timed("keep_volume"):
            _keep_data_volume(ec2_client, instance_id, data, log)
    with log.timed("terminate"):
        try:
            ec2_client.terminate_instances(InstanceIds=[instance_id])
        except (ClientError, BotoCoreError) as exc:
            raise AwsActionError(
                f"TerminateInstances {instance_id} failed ({error_text(exc)}); no replacement was "
                "launched. Check the instance's state before retrying.",
                instance_id=instance_id,
                code=error_code(exc),
                steps=log.steps,
                launch_spec=first_spec,
            ) from exc
        log(f"terminate {instance_id} requested")

        def terminated() -> None:
            state, _ = _instance_state(ec2_client, instance_id, log)
            if state not in ("terminated", "absent"):
                raise NotYet(state)

        try:
            poll(terminated, timeout_s=deadline.remaining(), interval_s=poll_s, what=f"{instance_id} terminated")
        except WaitTimeout as exc:
            raise failed(
                AwsTimeoutError,
                f"still {exc.last} after {wait_timeout_s:.0f}s of waiting for "
                "termination (the old instance may still be shutting down)",
            ) from None
        log(f"old instance {instance_id} terminated")

    with log.timed("launch"):
        new_id, itype, strategy, spec = _launch(ec2_client, plan, deadline, poll_s, allow_new_ip, log, failed)
    with log.timed("wait_running"):
        new = _wait_running(ec2_client, new_id, deadline, poll_s, wait_timeout_s, spec, log, failed)
    new_ip = new.get("PrivateIpAddress")
    if strategy is not Strategy.NEW_IP and new_ip != old_ip:
        log(f"WARNING: new instance has ip {new_ip}, expected {old_ip}")
    data_record = data.record() if data is not None else None
    if data is not None and data.reuse:
        _reattach(ec2_client, instance_id, new, data, deadline, poll_s, spec, log, failed)
        volume_note = f"data volume {data.volume_id} is attached to {new_id} at {data.attached_as}; "
        data_record = data.record(
            why=f"volume {data.volume_id} moved from {instance_id} to {new_id} at {data.attached_as}"
        )

    change: RecordChange | None = None
    if route53_client is not None and hosted_zone_id and record_name and new_ip:
        with log.timed("route53"):
            try:
                change = upsert_a_record(
                    route53_client,
                    hosted_zone_id=hosted_zone_id,
                    record_name=record_name,
                    ip=new_ip,
                    wait_timeout_s=deadline.remaining(),
                    poll_s=poll_s,
                )
            except AwsActionError as exc:
                raise failed(
                    AwsActionError,
                    f"launched but DNS update failed: {exc}",
                    spec=spec,
                    new_id=new_id,
                    code=exc.code,
                ) from exc
            log(f"route53 UPSERT {change.record_name} A {new_ip}: {change.status}")
    log.timings["total"] = round(deadline.elapsed(), 3)
    return ReplacementResult(
        instance_id,
        new_id,
        old_ip,
        new_ip,
        itype,
        strategy.value,
        False,
        spec,
        change,
        log.timings,
        log.steps,
        data_record,
    )


def _reattach(
    ec2_client: Any,
    old_id: str,
    new: dict[str, Any],
    data: _DataVolume,
    deadline: Deadline,
    poll_s: float,
    spec: dict[str, Any],
    log: StepLog,
    failed: _Fail,
) -> None:
    """Attach the kept data volume to the running new instance, at the same device.

    Only once EC2 lists the volume "available" with no attachment left (it was detached from the
    terminated instance), so it is never attached to two instances; every wait is bounded by the
    replacement's deadline. Any failure is an error naming the volume: the new instance runs, the
    volume exists, and a human can attach it by hand.
    """
    new_id = new["InstanceId"]
    vid, dev = str(data.volume_id), data.attached_as
    new_az = new.get("Placement", {}).get("AvailabilityZone")

    def fail(cls: type[AwsActionError], reason: str) -> AwsActionError:
        return failed(cls, f"data volume {vid}: {reason}", spec=spec, new_id=new_id)

    if data.availability_zone and new_az and new_az != data.availability_zone:
        raise fail(AwsActionError, f"it is in {data.availability_zone} but {new_id} came up in {new_az}")

    def read() -> VolumeInfo:
        try:
            return describe_volume(ec2_client, vid)
        except AwsCollectionError as exc:
            log(f"polling {vid} failed, retrying: {exc}")
            raise NotYet(f"unknown ({exc})") from None

    def gone_or_broken(vol: VolumeInfo) -> None:
        if vol.state == "not-found":
            raise fail(AwsActionError, "it no longer exists (deleted by someone else?)")
        if vol.state not in ("in-use", "available"):
            raise fail(AwsActionError, f"it went {vol.state}")

    def detached() -> VolumeInfo:
        vol = read()
        gone_or_broken(vol)
        others = [a for a in vol.attachments if a.instance_id != old_id]
        if others:
            raise fail(
                AwsActionError, f"it was attached to {others[0].instance_id} meanwhile; it was NOT moved to {new_id}"
            )
        if vol.state == "available" and not vol.attachments:
            return vol
        raise NotYet(vol.describe())

    with log.timed("wait_volume"):
        try:
            poll(detached, timeout_s=deadline.remaining(), interval_s=poll_s, what=f"{vid} detached from {old_id}")
        except WaitTimeout as exc:
            raise fail(AwsTimeoutError, f"still {exc.last} when the time budget ran out") from None
        log(f"data volume {vid} is available (detached from {old_id})")

    with log.timed("attach_volume"):
        try:
            ec2_client.attach_volume(VolumeId=vid, InstanceId=new_id, Device=dev)
        except (ClientError, BotoCoreError) as exc:
            raise fail(AwsActionError, f"AttachVolume to {new_id} at {dev} failed ({error_text(exc)})") from exc
        log(f"attach {vid} to {new_id} at {dev} requested")

        def attached() -> None:
            vol = read()
            gone_or_broken(vol)
            mine = vol.attached_to(new_id)
            if mine is not None and mine.state == "attached" and vol.state == "in-use":
                return
            raise NotYet(vol.describe())

        try:
            poll(attached, timeout_s=deadline.remaining(), interval_s=poll_s, what=f"{vid} attached to {new_id}")
        except WaitTimeout as exc:
            raise fail(AwsTimeoutError, f"still {exc.last} when the time budget ran out") from None
        log(f"data volume {vid} attached to {new_id} at {dev}")


def _launch(
    ec2_client: Any,
    plan: _Plan,
    deadline: Deadline,
    poll_s: float,
    allow_new_ip: bool,
    log: StepLog,
    failed: _Fail,
) -> tuple[str, str, Strategy, dict[str, Any]]:
    """RunInstances with capacity fallback and bounded retries while the old address is in use."""
    strategy = plan.strategy
    # With a fallback allowed, give waiting for the old address only half of what is left, so the
    # fallback launch and its wait still fit in the budget.
    address_until = time.monotonic() + (deadline.remaining() / 2 if allow_new_ip else deadline.remaining())
    types = plan.instance_types
    index = 0
    in_use_logged = False
    capacity_errors: list[str] = []
    while True:
        if index >= len(types):
            raise failed(
                CapacityError,
                f"no capacity for any allowed instance type ({'; '.join(capacity_errors)})",
                code="InsufficientInstanceCapacity",
            )
        itype = types[index]
        spec = plan.spec(itype, strategy)
        if deadline.expired():
            raise failed(AwsTimeoutError, "the time budget ran out before a launch succeeded", spec=spec)
        try:
            # A fresh ClientToken per attempt: botocore's own retries of this call stay idempotent.
            resp = ec2_client.run_instances(ClientToken=uuid.uuid4().hex, **spec)
        except ClientError as exc:
            code = error_code(exc)
            if code in CAPACITY_ERROR_CODES:
                capacity_errors.append(f"{itype}: {code}")
                log(f"RunInstances {itype}: {error_text(exc)}; trying the next instance type")
                index += 1
                continue
            if code in ADDRESS_IN_USE_CODES and strategy is not Strategy.NEW_IP:
                if not in_use_logged:
                    log(f"RunInstances: {code} (old address not released yet); retrying every {poll_s}s")
                    in_use_logged = True
                if time.monotonic() < address_until:
                    deadline.sleep(poll_s, until=address_until)
                    if time.monotonic() < address_until:
                        continue
                # The wait for the old address is over (no last attempt: it just failed).
                if allow_new_ip:
                    left = f"; ENI {plan.eni_id} is left behind" if strategy is Strategy.REUSE_ENI else ""
                    log(f"address {plan.private_ip} still in use; launching with a NEW private IP (allow_new_ip){left}")
                    strategy = Strategy.NEW_IP
                    continue
                raise failed(
                    AwsTimeoutError,
                    f"address {plan.private_ip} / ENI {plan.eni_id} stayed in use "
                    f"({code}) until the time budget ran out; allow_new_ip=True would launch "
                    "with a new address",
                    spec=spec,
                    code=code,
                ) from exc
            raise failed(AwsActionError, f"RunInstances failed ({error_text(exc)})", spec=spec, code=code) from exc
        except BotoCoreError as exc:
            raise failed(
                AwsActionError,
                f"RunInstances failed ({error_text(exc)}); an instance may or "
                "may not have been launched -- look for the kafka-medic:replaces tag",
                spec=spec,
            ) from exc
        new_id = resp["Instances"][0]["InstanceId"]
        log(f"launched {new_id} ({itype}, {strategy.value})")
        return new_id, itype, strategy, spec


def _wait_running(
    ec2_client: Any,
    new_id: str,
    deadline: Deadline,
    poll_s: float,
    wait_timeout_s: float,
    spec: dict[str, Any],
    log: StepLog,
    failed: _Fail,
) -> dict[str, Any]:
    """Poll until the new instance is running; EC2 may not list it for a moment (eventual consistency)."""

    def running() -> dict[str, Any]:
        state, inst = _instance_state(ec2_client, new_id, log)
        if state == "running" and inst is not None:
            return inst
        if state in ("shutting-down", "terminated", "stopping", "stopped"):
            reason = (inst or {}).get("StateReason", {}).get("Message", "no reason given")
            raise failed(
                AwsActionError,
                f"the new instance {new_id} went {state} right after launch ({reason})",
                spec=spec,
                new_id=new_id,
            )
        raise NotYet(state)

    try:
        inst = poll(running, timeout_s=deadline.remaining(), interval_s=poll_s, what=f"{new_id} running")
    except WaitTimeout as exc:
        raise failed(
            AwsTimeoutError,
            f"new instance {new_id} still {exc.last} when the {wait_timeout_s:.0f}s budget ran out",
            spec=spec,
            new_id=new_id,
        ) from None
    log(f"new instance {new_id} is running with ip {inst.get('PrivateIpAddress')}")
    return inst


def restart_instance(
    ec2_client: Any, instance_id: str, wait_timeout_s: float = 300, *, poll_s: float = 5
) -> RestartResult:
    """Reboot a running instance (Orion's first step for a "maybe dead" broker) and wait, bounded,
    until EC2 reports it running with both status checks "ok".

    A reboot keeps the instance, its IP and its disks, so it is far cheaper than a replacement.
    EC2 cannot tell when Kafka is back: the caller must still check the broker itself (registered,
    no under-replicated partitions). Note that right after the reboot call EC2 may still show the
    pre-reboot "ok"; the first poll waits ``poll_s``.

    Raises InstanceNotFoundError, InstanceStateError (not running: a stopped instance needs a
    start, a terminated one a replacement), AwsActionError, AwsTimeoutError.
    """
    _validate(wait_timeout_s, poll_s)
    deadline = Deadline(wait_timeout_s)
    log = StepLog(deadline, f"restart {instance_id}:")
    inst = _describe_one(ec2_client, instance_id)
    state = inst.get("State", {}).get("Name", "unknown")
    if state != "running":
        raise InstanceStateError(
            f"Instance {instance_id} is {state}; only a running instance can be rebooted. Nothing was changed.",
            instance_id=instance_id,
        )
    try:
        ec2_client.reboot_instances(InstanceIds=[instance_id])
    except (ClientError, BotoCoreError) as exc:
        raise AwsActionError(
            f"RebootInstances {instance_id} failed ({error_text(exc)}).",
            instance_id=instance_id,
            code=error_code(exc),
        ) from exc
    log("reboot requested")
    deadline.sleep(poll_s)

    def back() -> str:
        try:
            frame = instance_health(ec2_client, [instance_id])
        except AwsCollectionError as exc:
            raise AwsActionError(
                f"rebooted {instance_id} but could not read its status: {exc}",
                instance_id=instance_id,
                changed=True,
                steps=log.steps,
            ) from exc
        row = frame.iloc[0]
        state, status = str(row["state"]), str(row["ec2_status"])
        if state not in ("running", "pending"):
            raise InstanceStateError(
                f"Instance {instance_id} went {state} after the reboot.",
                instance_id=instance_id,
                changed=True,
                steps=log.steps,
            )
        if state != "running" or status != "ok":
            raise NotYet(f"{state} with status {status}")
        return status

    try:
        status = poll(back, timeout_s=deadline.remaining(), interval_s=poll_s, what=f"{instance_id} back")
    except WaitTimeout as exc:
        raise AwsTimeoutError(
            f"Instance {instance_id} rebooted but is {exc.last} after "
            f"{wait_timeout_s:.0f}s; replace it if the broker does not come back.",
            instance_id=instance_id,
            changed=True,
            steps=log.steps,
        ) from None
    log("running, status checks ok")
    return RestartResult(instance_id, status, round(deadline.elapsed(), 3), log.steps)
