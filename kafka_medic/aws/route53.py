"""Keep a broker's DNS name pointing at its (replacement) instance.

Brokers often advertise a name (``kafka-3.prod.internal``) rather than an IP; when a replacement
cannot keep the old private IP, clients and the other brokers only find the new instance if that
name follows it. An UPSERT is idempotent, so repeating it after a partial failure is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kafka_medic.aws._common import Deadline, error_code, error_text
from kafka_medic.aws.errors import AwsActionError
from kafka_medic.errors import ConfigError


@dataclass(frozen=True)
class RecordChange:
    """An A-record UPSERT: submitted (status "PENDING"/"INSYNC") or only planned ("PLANNED")."""

    hosted_zone_id: str
    record_name: str
    ip: str
    ttl: int
    status: str
    change_id: str | None = None


def normalize_zone_id(hosted_zone_id: str) -> str:
    """Accept both "Z123" and "/hostedzone/Z123" (what the API returns) and use the short form."""
    return hosted_zone_id.rsplit("/", 1)[-1]


def fqdn(name: str) -> str:
    """Route53 stores names absolute and lower-case with a trailing dot."""
    return name.rstrip(".").lower() + "."


def check_zone(route53_client: Any, hosted_zone_id: str, record_name: str) -> str:
    """Verify the zone exists and contains ``record_name``; return the zone's name.

    Run before anything is changed, so a typo in the zone id cannot leave a replaced broker whose
    name still points at the old, terminated instance.
    """
    zone_id = normalize_zone_id(hosted_zone_id)
    try:
        zone = route53_client.get_hosted_zone(Id=zone_id)["HostedZone"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchHostedZone":
            raise ConfigError(f"Route53 hosted zone {zone_id} does not exist; fix hosted_zone_id.") from exc
        raise AwsActionError(
            f"Route53 GetHostedZone {zone_id} failed ({error_text(exc)}).", code=error_code(exc)
        ) from exc
    except BotoCoreError as exc:
        raise AwsActionError(f"Route53 GetHostedZone {zone_id} failed ({error_text(exc)}).") from exc
    zone_name = fqdn(zone["Name"])
    name = fqdn(record_name)
    if name != zone_name and not name.endswith("." + zone_name):
        raise ConfigError(f"record_name {name} is not inside hosted zone {zone_id} ({zone_name}).")
    return zone_name


def upsert_a_record(
    route53_client: Any,
    *,
    hosted_zone_id: str,
    record_name: str,
    ip: str,
    ttl: int = 60,
    wait_timeout_s: float = 60.0,
    poll_s: float = 2.0,
    comment: str = "kafka-medic",
) -> RecordChange:
    """UPSERT ``record_name`` A ``ip`` and wait (bounded) until Route53 reports it INSYNC.

    Returns the change with status "INSYNC", or "PENDING" when the wait ran out: the change is
    accepted and will propagate, so running out of time is not an error. A short TTL (60 s)
    keeps clients from caching the old address for long. Raises AwsActionError if the change is
    rejected.
    """
    zone_id = normalize_zone_id(hosted_zone_id)
    name = fqdn(record_name)
    deadline = Deadline(wait_timeout_s)
    try:
        info = route53_client.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Comment": comment,
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": name,
                            "Type": "A",
                            "TTL": ttl,
                            "ResourceRecords": [{"Value": ip}],
                        },
                    }
                ],
            },
        )["ChangeInfo"]
        status = str(info.get("Status", "PENDING"))
        change_id = str(info.get("Id", ""))
        while status != "INSYNC" and change_id and not deadline.expired():
            deadline.sleep(poll_s)
            status = str(route53_client.get_change(Id=change_id)["ChangeInfo"]["Status"])
    except (ClientError, BotoCoreError) as exc:
        raise AwsActionError(
            f"Route53 UPSERT {name} A {ip} in zone {zone_id} failed ({error_text(exc)}); the name "
            "may still point at the old address. Fix and UPSERT it by hand.",
            code=error_code(exc),
        ) from exc
    return RecordChange(zone_id, name, ip, ttl, status, change_id or None)


__all__ = ["RecordChange", "check_zone", "fqdn", "normalize_zone_id", "upsert_a_record"]
