"""The EC2 replacer: Orion-style terminate-and-relaunch with the same private IP (:mod:`kafka_medic.aws`),
and reboot for a restart.

Credentials are resolved by the caller (the blocks layer loads an AwsCredentials block into a boto3
session); without a session the default boto3 credential chain is used.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from kafka_medic.errors import ConfigError
from kafka_medic.replacers.base import HostState, ReplaceOutcome, ReplacerError
from kafka_medic.settings.cluster import AwsSettings
from kafka_medic.settings.replacers import Ec2ReplacerSettings

if TYPE_CHECKING:  # kafka_medic.aws (and pandas with it) is imported when a call needs it
    from kafka_medic.aws.ec2_status import InstanceInfo


# An instance in these states still exists and can run the broker again (a start or a reboot);
# "shutting-down" and "terminated" are on their way out for good.
_PRESENT_STATES: frozenset[str] = frozenset({"pending", "running", "stopping", "stopped"})


def _short(exc: BaseException) -> str:
    """The first clause of a read error ("EC2 DescribeVolumes failed (Code: message)"), without the
    advice meant for a collector's finding: ``HostState.detail`` is one line in the audit."""
    return str(exc).split("; ", 1)[0]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Ec2BrokerReplacer:
    """Terminates a broker's EC2 instance and launches a copy with the same private IP and tags.

    The broker -> instance mapping uses the cluster's ``aws`` settings (broker-id tag, cluster tag)
    when present, else the default ``kafka-broker-id`` tag; a broker whose host is an IP is also
    matched (and cross-checked) by private IP. With ``data_volume_device`` the EBS volume there is
    the broker's disk: kept through a replacement and (``reuse_data_volume``) moved to the new
    instance, and read by :meth:`host_state`.
    """

    kind = "ec2"
    supports_restart = True

    def __init__(
        self,
        block: Ec2ReplacerSettings,
        *,
        cluster_name: str,
        aws: AwsSettings | None = None,
        poll_s: float = 5.0,
        session: Any = None,
        ec2_client: Any = None,
        route53_client: Any = None,
    ) -> None:
        self.block = block
        self._session = session  # a boto3 Session (credentials resolved), or None: resolve lazily
        self.cluster_name = cluster_name
        self.broker_id_tag = aws.broker_id_tag if aws is not None else "kafka-broker-id"
        self.cluster_tag = (
            (aws.cluster_tag_key, aws.cluster_tag_value)
            if aws is not None and aws.cluster_tag_key and aws.cluster_tag_value is not None
            else None
        )
        self.poll_s = poll_s
        self._ec2 = ec2_client
        self._route53 = route53_client

    def _client(self, service: str) -> Any:
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": self.block.region,
            "config": Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"}),
        }
        if self.block.endpoint_url:
            kwargs["endpoint_url"] = self.block.endpoint_url
        if self._session is None:
            if self.block.aws_credentials:
                raise ConfigError(
                    f"the EC2 replacer names AwsCredentials block {self.block.aws_credentials!r}, but no session "
                    "was resolved from it (load the replacer with blocks.load.aload_replacer)"
                )
            self._session = boto3.session.Session()
        return self._session.client(service, **kwargs)

    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = self._client("ec2")
        return self._ec2

    @property
    def route53(self) -> Any:
        if self._route53 is None and self.block.hosted_zone_id:
            self._route53 = self._client("route53")
        return self._route53

    def _find(self, broker_id: int, host: str) -> InstanceInfo | None:
        """The live instance of ``broker_id`` (by tags, or by private IP when ``host`` is one), or None.

        Raises AwsCollectionError (EC2 could not be read) and ConfigError (ambiguous mapping).
        """
        from kafka_medic.aws import find_broker_instances

        found = find_broker_instances(
            self.ec2,
            cluster_tag=self.cluster_tag,
            broker_id_tag=self.broker_id_tag,
            private_ips={broker_id: host} if host and _is_ip(host) else None,
        )
        return found.get(broker_id)

    def instance_of(self, broker_id: int, host: str) -> str:
        from kafka_medic.aws import AwsCollectionError

        try:
            info = self._find(broker_id, host)
        except (AwsCollectionError, ConfigError) as exc:
            raise ReplacerError(f"cannot map broker {broker_id} to its EC2 instance: {exc}", changed=False) from exc
        if info is None:
            where = f" with {self.cluster_tag[0]}={self.cluster_tag[1]}" if self.cluster_tag else ""
            raise ReplacerError(
                f"no live EC2 instance found for broker {broker_id} (tag {self.broker_id_tag}={broker_id}{where}"
                + (f", or private IP {host}" if host and _is_ip(host) else "")
                + "); nothing was changed",
                changed=False,
            )
        return info.instance_id

    def _replace(self, broker_id: int, host: str, *, dry_run: bool) -> ReplaceOutcome:
        from kafka_medic.aws import AwsActionError, replace_instance

        t0 = time.monotonic()
        instance_id = self.instance_of(broker_id, host)
        record_name = (
            self.block.record_name_template.format(broker_id=broker_id, cluster=self.cluster_name)
            if self.block.record_name_template
            else None
        )
        try:
            result = replace_instance(
                self.ec2,
                instance_id,
                keep_private_ip=self.block.keep_private_ip,
                instance_type_fallbacks=self.block.instance_type_fallbacks,
                wait_timeout_s=self.block.wait_timeout_s,
                poll_s=self.poll_s,
                route53_client=self.route53 if record_name else None,
                hosted_zone_id=self.block.hosted_zone_id,
                record_name=record_name,
                dry_run=dry_run,
                data_volume_device=self.block.data_volume_device,
                reuse_data_volume=self.block.reuse_data_volume,
            )
        except AwsActionError as exc:
            raise ReplacerError(
                f"EC2 replacement of broker {broker_id} ({instance_id}) failed: {exc}",
                changed=exc.changed,
                details={"instance_id": instance_id, "steps": list(exc.steps), "new_instance_id": exc.new_instance_id},
            ) from exc
        except ConfigError as exc:
            raise ReplacerError(f"EC2 replacement of broker {broker_id}: {exc}", changed=False) from exc
        record = result.to_record()
        if dry_run:
            summary = f"would terminate {instance_id} and launch a {result.instance_type} ({result.strategy})"
        else:
            summary = (
                f"replaced {instance_id} by {result.new_instance_id} ({result.instance_type}, "
                f"private IP {result.private_ip}, {result.strategy})"
            )
        volume = result.data_volume
        if volume is not None:
            if volume["reused"]:
                verb = "would re-attach" if dry_run else "re-attached"
                summary += f"; {verb} data volume {volume['volume_id']} at {volume['device']}"
            else:
                summary += f"; data volume not reused: {volume['why']}"
        return ReplaceOutcome(
            "ec2", "plan" if dry_run else "replace", broker_id, summary, time.monotonic() - t0, record
        )

    def replace(self, broker_id: int, host: str) -> ReplaceOutcome:
        return self._replace(broker_id, host, dry_run=False)

    def plan(self, broker_id: int, host: str) -> ReplaceOutcome:
        return self._replace(broker_id, host, dry_run=True)

    def restart(self, broker_id: int, host: str) -> ReplaceOutcome:
        from kafka_medic.aws import AwsActionError, restart_instance

        t0 = time.monotonic()
        instance_id = self.instance_of(broker_id, host)
        try:
            res = restart_instance(self.ec2, instance_id, wait_timeout_s=self.block.wait_timeout_s, poll_s=self.poll_s)
        except AwsActionError as exc:
            raise ReplacerError(
                f"EC2 reboot of broker {broker_id} ({instance_id}) failed: {exc}", changed=exc.changed
            ) from exc
        return ReplaceOutcome(
            "ec2", "restart", broker_id, f"rebooted {instance_id} (EC2 status {res.ec2_status})",
            time.monotonic() - t0, {"instance_id": instance_id, "steps": res.steps},
        )  # fmt: skip

    def host_state(self, broker_id: int, host: str) -> HostState:
        """What EC2 says about the broker's instance and data disk, read right before a destructive rung.

        * ``present``: the instance (found as :meth:`instance_of` finds it) is pending, running,
          stopping or stopped -- a start or reboot can bring it back; False when it is shutting
          down or no live instance is found.
        * ``disk_intact``: with ``data_volume_device``, the EBS volume at that device exists and is
          in-use/available (False: no volume there, deleted, or in error); without it the data is
          on the instance's own disks, which live exactly as long as the instance.
        * ``impaired``: EC2's status checks or a scheduled event (e.g. retirement) say the host is
          faulty (see :func:`kafka_medic.aws.ec2_status.impairment`); None when EC2 cannot tell.

        Read-only, a few describe calls bounded by the client's timeouts and retries. Never raises
        for a failed read: what could not be read is None, with the reason in ``detail``.
        """
        from kafka_medic.aws import AwsCollectionError, describe_volume, instance_health, same_device
        from kafka_medic.aws.ec2_status import impairment

        device = self.block.data_volume_device
        try:
            info = self._find(broker_id, host)
        except ConfigError as exc:
            return HostState(None, None, None, f"cannot tell which EC2 instance runs broker {broker_id}: {_short(exc)}")
        except (AwsCollectionError, ClientError, BotoCoreError) as exc:
            return HostState(None, None, None, f"EC2 could not be read for broker {broker_id}: {_short(exc)}")
        if info is None:
            return HostState(
                present=False, disk_intact=None if device else False, impaired=None,
                detail=f"no live EC2 instance for broker {broker_id}"
                + (f" (its data volume at {device} cannot be found without one)" if device else ""),
            )  # fmt: skip
        iid, state = info.instance_id, info.state
        present = state in _PRESENT_STATES
        parts = [f"instance {iid} is {state}"]

        disk: bool | None
        if device is None:
            disk = present
            parts.append("its data is on the instance's own disks")
        else:
            attached = [(d, v) for d, v in info.block_devices.items() if same_device(d, device)]
            if not attached:
                disk = False
                parts.append(f"no EBS volume is attached at {device}")
            else:
                dev, vid = attached[0]
                try:
                    vol = describe_volume(self.ec2, vid)
                except AwsCollectionError as exc:
                    disk = None
                    parts.append(f"data volume {vid} at {dev} could not be read: {_short(exc)}")
                else:
                    disk = vol.exists
                    parts.append(f"data volume {vid} at {dev} is {vol.state}")

        impaired: bool | None = None
        if present:
            try:
                health = instance_health(self.ec2, [iid])
            except AwsCollectionError as exc:
                parts.append(f"EC2 status could not be read: {_short(exc)}")
            else:
                rows = health.to_dict("records")
                impaired, why = impairment(rows[0] if rows else None)
                parts.append(why)
        return HostState(present, disk, impaired, "; ".join(parts))
