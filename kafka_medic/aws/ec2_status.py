"""Which EC2 instance runs which Kafka broker, and what EC2 itself says about that instance.

Kafka only knows broker ids and hosts; healing a dead broker needs the instance behind it, and
EC2's status checks and scheduled events (e.g. ``instance-retirement``) warn about hardware
trouble before Kafka sees it. Everything here only READS from EC2.

The parsing of ``DescribeInstanceStatus`` is a pure function (:func:`parse_instance_status`) so it
can be tested with crafted AWS-shaped responses: the moto emulator always reports "ok" and never
has scheduled events, so the interesting branches cannot be produced over its API.

Every AWS failure (API error, no connection, no credentials) is raised as
:class:`~kafka_medic.aws.errors.AwsCollectionError` so a collector can turn it into a finding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from kafka_medic.aws._common import error_code, error_text
from kafka_medic.aws.errors import AwsCollectionError
from kafka_medic.errors import ConfigError

# Every state except "terminated": a terminated instance can never be a broker again, and AWS keeps
# listing it for about an hour, which would otherwise look like a second claimant of the broker id.
LIVE_STATES: tuple[str, ...] = ("pending", "running", "shutting-down", "stopping", "stopped")
# A claimant in these states is on its way out; during a replacement it coexists with its successor.
LEAVING_STATES: frozenset[str] = frozenset({"shutting-down"})

HEALTH_COLUMNS: tuple[str, ...] = (
    "instance_id",
    "state",
    "ec2_status",
    "ec2_events",
    "event_not_before",
    "system_status",
    "instance_status",
    "availability_zone",
)

# Worst first: the combined status is the worst of the system and the instance check.
_STATUS_RANK: dict[str, int] = {
    "impaired": 0,
    "insufficient-data": 1,
    "initializing": 2,
    "ok": 3,
    "not-applicable": 4,
}
# AWS keeps finished events in the list for a while, prefixed in their description.
_FINISHED_EVENT_PREFIXES: tuple[str, ...] = ("[Completed]", "[Canceled]", "[Cancelled]")
_IDS_PER_CALL = 100  # DescribeInstanceStatus / DescribeInstances accept at most this many ids
_VALUES_PER_FILTER = 200  # EC2 filter value limit


@dataclass(frozen=True)
class InstanceInfo:
    """The EC2 instance found for one broker, with what the healer needs to act on it."""

    broker_id: int
    instance_id: str
    state: str
    private_ip: str | None
    instance_type: str
    availability_zone: str | None
    subnet_id: str | None
    matched_by: str  # "tag" or "private-ip"
    private_ips: tuple[str, ...] = ()  # every private IP on every interface
    launch_time: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    block_devices: dict[str, str] = field(default_factory=dict)  # device name -> EBS volume id


def _aws_read(operation: str, exc: BaseException) -> AwsCollectionError:
    return AwsCollectionError(
        f"EC2 {operation} failed ({error_text(exc)}); EC2 status and broker->instance mapping are "
        "unknown for this pass. Check credentials, region, endpoint and IAM permissions.",
        operation=operation,
        code=error_code(exc),
    )


def _describe_instances(ec2_client: Any, filters: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    try:
        pages = ec2_client.get_paginator("describe_instances").paginate(Filters=filters)
        for page in pages:
            for reservation in page.get("Reservations", []):
                yield from reservation.get("Instances", [])
    except (ClientError, BotoCoreError) as exc:
        raise _aws_read("DescribeInstances", exc) from exc


def _all_private_ips(instance: Mapping[str, Any]) -> tuple[str, ...]:
    ips: list[str] = []
    if instance.get("PrivateIpAddress"):
        ips.append(instance["PrivateIpAddress"])
    for nic in instance.get("NetworkInterfaces", []):
        for addr in nic.get("PrivateIpAddresses", []):
            ip = addr.get("PrivateIpAddress")
            if ip and ip not in ips:
                ips.append(ip)
    return tuple(ips)


def _info(broker_id: int, instance: Mapping[str, Any], matched_by: str) -> InstanceInfo:
    return InstanceInfo(
        broker_id=broker_id,
        instance_id=instance["InstanceId"],
        state=instance.get("State", {}).get("Name", "unknown"),
        private_ip=instance.get("PrivateIpAddress"),
        instance_type=instance.get("InstanceType", ""),
        availability_zone=instance.get("Placement", {}).get("AvailabilityZone"),
        subnet_id=instance.get("SubnetId"),
        matched_by=matched_by,
        private_ips=_all_private_ips(instance),
        launch_time=instance.get("LaunchTime"),
        tags={t["Key"]: t["Value"] for t in instance.get("Tags", [])},
        block_devices={
            m["DeviceName"]: m["Ebs"]["VolumeId"]
            for m in instance.get("BlockDeviceMappings", [])
            if "Ebs" in m and m["Ebs"].get("VolumeId")
        },
    )


def pick_claimant(broker_id: int, candidates: Sequence[InstanceInfo], how: str) -> InstanceInfo:
    """Choose the one instance that runs ``broker_id`` among those that claim it.

    One claimant in a "leaving" state (shutting-down) next to a live one is the normal picture in
    the middle of a replacement, so the live one wins. Two live claimants mean the tags (or IPs)
    are wrong, and acting on either instance could terminate the healthy broker: refuse.
    """
    live = [c for c in candidates if c.state not in LEAVING_STATES]
    if len(live) > 1:
        ids = ", ".join(f"{c.instance_id} ({c.state})" for c in live)
        raise ConfigError(
            f"Broker {broker_id} is claimed by {len(live)} live EC2 instances ({how}): {ids}. "
            "Fix the tags (or set cluster_tag so other clusters' instances are not matched); "
            "kafka-medic will not act on an ambiguous broker."
        )
    pool = live or list(candidates)
    return max(pool, key=lambda c: c.launch_time.timestamp() if c.launch_time else float("-inf"))


def find_broker_instances(
    ec2_client: Any,
    *,
    cluster_tag: tuple[str, str] | None,
    broker_id_tag: str = "kafka-broker-id",
    private_ips: Mapping[int, str] | None = None,
) -> dict[int, InstanceInfo]:
    """Map broker id -> the EC2 instance running it.

    Instances are matched by the ``broker_id_tag`` tag (value = broker id), restricted to
    ``cluster_tag = (key, value)`` when given -- set it whenever one account holds several
    clusters, or their broker ids collide. Brokers listed in ``private_ips`` (broker id -> the IP
    the broker advertises, for clusters whose hosts are IPs) that carry no tag are matched by
    their primary private IP; for tagged brokers the IP is cross-checked. IP matching does not use
    the cluster tag (untagged instances are the reason it exists), so two live instances with the
    same IP in different VPCs are reported as ambiguous.

    Terminated instances are ignored. Brokers without an instance are simply absent from the
    result. Raises ConfigError for two live instances claiming one broker, a non-integer tag
    value, a non-IP in ``private_ips`` or a tag/IP disagreement; AwsCollectionError on AWS errors.
    """
    ip_map: dict[int, str] = {}
    for broker_id, host in (private_ips or {}).items():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"private_ips must map broker ids to IP addresses; broker {broker_id} has {host!r}. "
                "Pass only brokers whose advertised host is an IP, or tag the instances."
            ) from None
        ip_map[int(broker_id)] = host

    filters: list[dict[str, Any]] = [
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        {"Name": "tag-key", "Values": [broker_id_tag]},
    ]
    if cluster_tag is not None:
        filters.append({"Name": f"tag:{cluster_tag[0]}", "Values": [cluster_tag[1]]})

    claims: dict[int, list[InstanceInfo]] = {}
    for inst in _describe_instances(ec2_client, filters):
        raw = next((t["Value"] for t in inst.get("Tags", []) if t["Key"] == broker_id_tag), "")
        try:
            broker_id = int(str(raw).strip())
        except ValueError:
            raise ConfigError(
                f"EC2 instance {inst['InstanceId']} has tag {broker_id_tag}={raw!r}, which is not "
                "an integer broker id. Fix or remove the tag."
            ) from None
        claims.setdefault(broker_id, []).append(_info(broker_id, inst, "tag"))

    result = {bid: pick_claimant(bid, cands, f"tag {broker_id_tag}={bid}") for bid, cands in claims.items()}

    for broker_id, ip in ip_map.items():
        found = result.get(broker_id)
        if found is not None and ip not in found.private_ips:
            raise ConfigError(
                f"Broker {broker_id} advertises {ip}, but the instance tagged {broker_id_tag}="
                f"{broker_id} ({found.instance_id}) has private IPs {list(found.private_ips)}. "
                "The tag or the broker's host is stale; fix it before kafka-medic acts on this broker."
            )

    wanted = {bid: ip for bid, ip in ip_map.items() if bid not in result}
    if wanted:
        ips = sorted(set(wanted.values()))
        by_ip: dict[str, list[Mapping[str, Any]]] = {}
        for start in range(0, len(ips), _VALUES_PER_FILTER):
            chunk = ips[start : start + _VALUES_PER_FILTER]
            ip_filters = [
                {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
                {"Name": "private-ip-address", "Values": chunk},
            ]
            for inst in _describe_instances(ec2_client, ip_filters):
                for inst_ip in _all_private_ips(inst):
                    by_ip.setdefault(inst_ip, []).append(inst)
        for broker_id, ip in wanted.items():
            cands = [_info(broker_id, inst, "private-ip") for inst in by_ip.get(ip, [])]
            if cands:
                result[broker_id] = pick_claimant(broker_id, cands, f"private IP {ip}")
    return dict(sorted(result.items()))


def _combine_status(system: str, instance: str) -> str:
    """Worst of the two checks: a host (system) problem and an OS (instance) problem both count."""
    known = [s for s in (system, instance) if s in _STATUS_RANK]
    if not known:
        return "not-applicable"
    return min(known, key=_STATUS_RANK.__getitem__)


def _empty_health() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in HEALTH_COLUMNS})
    frame["event_not_before"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def parse_instance_status(response_pages: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Turn DescribeInstanceStatus response pages into one row per instance.

    Columns: ``instance_id``, ``state``, ``ec2_status`` (worst of the system and instance status
    checks: "impaired" if either is impaired, then "insufficient-data", "initializing", "ok",
    "not-applicable"), ``ec2_events`` ("; "-joined codes of events still to come, e.g.
    "instance-retirement"; "" if none), ``event_not_before`` (earliest NotBefore of those events,
    UTC, NaT if none), plus the raw ``system_status``, ``instance_status`` and
    ``availability_zone`` as evidence. Events whose description starts with "[Completed]" or
    "[Canceled]" are over and are left out. Pure: no I/O.
    """
    rows: dict[str, dict[str, Any]] = {}
    for page in response_pages:
        for st in page.get("InstanceStatuses", []):
            system = st.get("SystemStatus", {}).get("Status", "not-applicable")
            inst = st.get("InstanceStatus", {}).get("Status", "not-applicable")
            codes: list[str] = []
            not_before: list[datetime] = []
            for ev in st.get("Events", []):
                if str(ev.get("Description", "")).startswith(_FINISHED_EVENT_PREFIXES):
                    continue
                code = ev.get("Code", "unknown")
                if code not in codes:
                    codes.append(code)
                if ev.get("NotBefore") is not None:
                    not_before.append(ev["NotBefore"])
            rows[st["InstanceId"]] = {
                "instance_id": st["InstanceId"],
                "state": st.get("InstanceState", {}).get("Name", "unknown"),
                "ec2_status": _combine_status(system, inst),
                "ec2_events": "; ".join(codes),
                "event_not_before": min(pd.Timestamp(t) for t in not_before) if not_before else None,
                "system_status": system,
                "instance_status": inst,
                "availability_zone": st.get("AvailabilityZone"),
            }
    if not rows:
        return _empty_health()
    frame = pd.DataFrame(list(rows.values()), columns=list(HEALTH_COLUMNS))
    frame["event_not_before"] = pd.to_datetime(frame["event_not_before"], utc=True)
    return frame.reset_index(drop=True)


def impairment(row: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """Whether EC2 itself reports a fault on an instance, from one :func:`instance_health` row,
    with the sentence saying why. Pure.

    True: the system or the instance status check is "impaired", or an event is scheduled (e.g.
    ``instance-retirement``: the host is going away). False: both checks "ok" and no event.
    None: EC2 cannot tell yet or at all ("initializing", "insufficient-data", a stopped
    instance's "not-applicable", or no row).
    """
    if row is None:
        return None, "EC2 reports no status for it"
    system, inst = str(row.get("system_status")), str(row.get("instance_status"))
    events = str(row.get("ec2_events") or "")
    checks = f"status checks system {system}, instance {inst}"
    if "impaired" in (system, inst):
        return True, checks + (f", scheduled {events}" if events else "")
    if events:
        return True, f"{checks}, scheduled {events}"
    if system == "ok" and inst == "ok":
        return False, "status checks ok, no scheduled events"
    return None, checks


def _status_pages(ec2_client: Any, ids: list[str]) -> list[dict[str, Any]]:
    paginator = ec2_client.get_paginator("describe_instance_status")
    return list(paginator.paginate(InstanceIds=ids, IncludeAllInstances=True))


def instance_health(ec2_client: Any, instance_ids: Iterable[str]) -> pd.DataFrame:
    """EC2's view of each instance: state, combined status checks, scheduled events.

    Calls DescribeInstanceStatus(IncludeAllInstances=True) so stopped instances are reported too
    (AWS otherwise lists running ones only), paginated, at most 100 ids per call. An id EC2 does
    not know (e.g. terminated more than about an hour ago) gets a row with state "not-found"
    instead of failing the whole call, because a vanished instance is exactly what the health
    rules need to see. No ids -> empty frame without calling AWS (an empty id list would
    otherwise ask for every instance in the region). Columns as in :func:`parse_instance_status`.
    """
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        return _empty_health()
    pages: list[dict[str, Any]] = []
    missing: list[str] = []
    try:
        for start in range(0, len(ids), _IDS_PER_CALL):
            batch = ids[start : start + _IDS_PER_CALL]
            try:
                pages.extend(_status_pages(ec2_client, batch))
            except ClientError as exc:
                if error_code(exc) != "InvalidInstanceID.NotFound":
                    raise
                # One unknown id fails the whole call: ask one id at a time to find which.
                for one in batch:
                    try:
                        pages.extend(_status_pages(ec2_client, [one]))
                    except ClientError as one_exc:
                        if error_code(one_exc) != "InvalidInstanceID.NotFound":
                            raise
                        missing.append(one)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_read("DescribeInstanceStatus", exc) from exc
    frame = parse_instance_status(pages)
    if missing:
        gone = pd.DataFrame(
            {
                "instance_id": missing,
                "state": "not-found",
                "ec2_status": "not-applicable",
                "ec2_events": "",
                "event_not_before": pd.NaT,
                "system_status": "not-applicable",
                "instance_status": "not-applicable",
                "availability_zone": None,
            },
            columns=list(HEALTH_COLUMNS),
        )
        gone["event_not_before"] = pd.to_datetime(gone["event_not_before"], utc=True)
        frame = gone if frame.empty else pd.concat([frame, gone], ignore_index=True)
    order = {iid: n for n, iid in enumerate(ids)}
    frame = frame.sort_values("instance_id", key=lambda s: s.map(order).fillna(len(ids)))
    return frame.reset_index(drop=True)


BROKER_EC2_COLUMNS: tuple[str, ...] = (
    "broker_id",
    "instance_id",
    "state",
    "ec2_status",
    "ec2_events",
    "event_not_before",
    "matched_by",
)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def broker_ec2_status(
    ec2_client: Any,
    hosts: Mapping[int, str],
    *,
    cluster_tag: tuple[str, str] | None,
    broker_id_tag: str = "kafka-broker-id",
) -> pd.DataFrame:
    """One row per broker in ``hosts`` (broker id -> advertised host): its instance and EC2 health.

    The shape the collector's EC2 hook returns (bind the keyword arguments with
    ``functools.partial``): columns ``broker_id``, ``instance_id``, ``state``, ``ec2_status``,
    ``ec2_events``, ``event_not_before``, ``matched_by``. Hosts that are IPs are also matched by
    private IP; hostnames rely on the tag. A broker with no instance keeps its row with
    ``instance_id``/``ec2_status`` None ("unknown", not "healthy"). Raises AwsCollectionError or
    ConfigError (ambiguous mapping) like the functions it combines.
    """
    ips = {int(b): h for b, h in hosts.items() if _is_ip(h)}
    found = find_broker_instances(ec2_client, cluster_tag=cluster_tag, broker_id_tag=broker_id_tag, private_ips=ips)
    health = instance_health(ec2_client, [found[b].instance_id for b in sorted(found) if b in hosts])
    by_instance = {row["instance_id"]: row for row in health.to_dict("records")}
    rows: list[dict[str, Any]] = []
    for broker_id in sorted(int(b) for b in hosts):
        info = found.get(broker_id)
        h = by_instance.get(info.instance_id) if info else None
        rows.append(
            {
                "broker_id": broker_id,
                "instance_id": info.instance_id if info else None,
                "state": h["state"] if h else (info.state if info else None),
                "ec2_status": h["ec2_status"] if h else None,
                "ec2_events": h["ec2_events"] if h else "",
                "event_not_before": h["event_not_before"] if h else pd.NaT,
                "matched_by": info.matched_by if info else None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(BROKER_EC2_COLUMNS))
    frame["broker_id"] = frame["broker_id"].astype("int64")
    frame["event_not_before"] = pd.to_datetime(frame["event_not_before"], utc=True)
    return frame
