"""Reading a broker's EBS data volume: where it is attached, whether it still exists. Read-only.

A broker's data usually lives on one EBS volume at a fixed device (e.g. ``/dev/sdf``). Whether
that volume still exists, and in which state, decides two things: whether a restart can bring
the broker back with its data (the host state read before a destructive rung), and whether a
replacement can hand the same disk to the new instance instead of a fresh one.

Device names: EC2 lists a volume under the name it was attached with; ``/dev/sdf`` and its Xen
alias ``/dev/xvdf`` name the same slot, so both match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kafka_medic.aws._common import error_code, error_text
from kafka_medic.aws.errors import AwsCollectionError

# States in which the volume and its data exist and it can be (or is) attached.
USABLE_VOLUME_STATES: frozenset[str] = frozenset({"in-use", "available"})
VOLUME_NOT_FOUND_CODES: frozenset[str] = frozenset({"InvalidVolume.NotFound", "InvalidVolumeID.Malformed"})


def device_key(name: str) -> str:
    """One key per device slot: "/dev/xvdf" and "/dev/sdf" both give "sdf"."""
    base = name.strip().removeprefix("/dev/")
    return "sd" + base[3:] if base.startswith("xvd") else base


def same_device(a: str, b: str) -> bool:
    return device_key(a) == device_key(b)


def ebs_at(mappings: Iterable[Mapping[str, Any]], device: str) -> tuple[str, Mapping[str, Any]] | None:
    """The EBS mapping at ``device`` in an instance's ``BlockDeviceMappings``: (the device name as
    EC2 lists it, its ``Ebs`` dict with VolumeId/DeleteOnTermination/Status), or None."""
    found = [(m["DeviceName"], m["Ebs"]) for m in mappings if "Ebs" in m and same_device(m["DeviceName"], device)]
    exact = [f for f in found if f[0] == device]
    return (exact or found or [None])[0]


@dataclass(frozen=True)
class VolumeAttachment:
    instance_id: str
    device: str
    state: str  # attaching | attached | detaching | detached | busy


@dataclass(frozen=True)
class VolumeInfo:
    """What DescribeVolumes says about one volume; ``state`` "not-found" when EC2 does not know it."""

    volume_id: str
    state: str  # creating | available | in-use | deleting | deleted | error | not-found
    availability_zone: str | None = None
    size_gib: int | None = None
    volume_type: str | None = None
    attachments: tuple[VolumeAttachment, ...] = ()
    multi_attach: bool = False

    @property
    def exists(self) -> bool:
        return self.state in USABLE_VOLUME_STATES

    def attached_to(self, instance_id: str) -> VolumeAttachment | None:
        return next((a for a in self.attachments if a.instance_id == instance_id), None)

    def describe(self) -> str:
        """A short sentence for step logs and audits."""
        shape = f"{self.size_gib} GiB {self.volume_type}, " if self.size_gib else ""
        where = ", ".join(f"{a.state} to {a.instance_id} at {a.device}" for a in self.attachments)
        return f"volume {self.volume_id} ({shape}{self.state}{', ' + where if where else ''})"


def volume_info(volume: Mapping[str, Any]) -> VolumeInfo:
    """A DescribeVolumes ``Volumes`` entry as a :class:`VolumeInfo`. Pure."""
    return VolumeInfo(
        volume_id=volume["VolumeId"],
        state=str(volume.get("State", "unknown")),
        availability_zone=volume.get("AvailabilityZone"),
        size_gib=int(volume["Size"]) if volume.get("Size") is not None else None,
        volume_type=volume.get("VolumeType"),
        attachments=tuple(
            VolumeAttachment(a.get("InstanceId", "?"), a.get("Device", "?"), a.get("State", "unknown"))
            for a in volume.get("Attachments", [])
        ),
        multi_attach=bool(volume.get("MultiAttachEnabled")),
    )


def describe_volume(ec2_client: Any, volume_id: str) -> VolumeInfo:
    """DescribeVolumes for one id: its state, or ``state="not-found"`` when EC2 does not know it
    (deleted). Raises AwsCollectionError for any other failure (nothing can be said then)."""
    try:
        resp = ec2_client.describe_volumes(VolumeIds=[volume_id])
    except ClientError as exc:
        if error_code(exc) in VOLUME_NOT_FOUND_CODES:
            return VolumeInfo(volume_id, "not-found")
        raise AwsCollectionError(
            f"EC2 DescribeVolumes {volume_id} failed ({error_text(exc)})",
            operation="DescribeVolumes",
            code=error_code(exc),
        ) from exc
    except BotoCoreError as exc:
        raise AwsCollectionError(
            f"EC2 DescribeVolumes {volume_id} failed ({error_text(exc)})", operation="DescribeVolumes"
        ) from exc
    volumes = [v for v in resp.get("Volumes", []) if v.get("VolumeId") == volume_id]
    return volume_info(volumes[0]) if volumes else VolumeInfo(volume_id, "not-found")
