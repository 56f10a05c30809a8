"""Broker -> instance mapping and EC2 health.

Status parsing is tested on crafted, AWS-shaped DescribeInstanceStatus responses (moto always says
"ok" and has no scheduled events); the boto3 calls are tested against the moto server over HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from kafka_medic.aws import (
    HEALTH_COLUMNS,
    AwsCollectionError,
    InstanceInfo,
    find_broker_instances,
    instance_health,
    parse_instance_status,
)
from kafka_medic.aws.ec2_status import pick_claimant
from kafka_medic.errors import ConfigError

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


# ---- pure parsing --------------------------------------------------------------------------------


def status(
    iid: str,
    system: str = "ok",
    instance: str = "ok",
    state: str = "running",
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One InstanceStatuses entry shaped like the real API's (boto3-parsed) output."""

    def check(s: str) -> dict[str, Any]:
        if s == "not-applicable":
            return {"Status": s}
        detail = {"ok": "passed", "impaired": "failed"}.get(s, s)
        return {"Status": s, "Details": [{"Name": "reachability", "Status": detail}]}

    entry: dict[str, Any] = {
        "AvailabilityZone": "us-east-1a",
        "InstanceId": iid,
        "InstanceState": {"Code": 16, "Name": state},
        "SystemStatus": check(system),
        "InstanceStatus": check(instance),
    }
    if events is not None:
        entry["Events"] = events
    return entry


def event(code: str, not_before: datetime, description: str = "The instance is scheduled") -> dict[str, Any]:
    return {
        "InstanceEventId": f"instance-event-{code}",
        "Code": code,
        "Description": description,
        "NotBefore": not_before,
        "NotAfter": not_before.replace(hour=not_before.hour + 2),
    }


def by_id(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["instance_id"]: row for row in frame.to_dict("records")}


def test_parse_combines_system_and_instance_checks_worst_first() -> None:
    frame = parse_instance_status(
        [
            {
                "InstanceStatuses": [
                    status("i-ok"),
                    status("i-sys", system="impaired"),
                    status("i-inst", instance="impaired"),
                    status("i-nodata", system="insufficient-data"),
                    status("i-init", instance="initializing"),
                    status("i-both", system="impaired", instance="insufficient-data"),
                    status("i-stopped", "not-applicable", "not-applicable", state="stopped"),
                ]
            }
        ]
    )
    assert list(frame.columns) == list(HEALTH_COLUMNS)
    rows = by_id(frame)
    assert {k: v["ec2_status"] for k, v in rows.items()} == {
        "i-ok": "ok",
        "i-sys": "impaired",
        "i-inst": "impaired",
        "i-nodata": "insufficient-data",
        "i-init": "initializing",
        "i-both": "impaired",
        "i-stopped": "not-applicable",
    }
    assert rows["i-sys"]["system_status"] == "impaired" and rows["i-sys"]["instance_status"] == "ok"
    assert rows["i-stopped"]["state"] == "stopped"
    assert (frame["ec2_events"] == "").all()
    assert frame["event_not_before"].isna().all()


def test_parse_scheduled_events_joined_earliest_not_before_and_finished_ones_dropped() -> None:
    retire = T0.replace(day=5)
    reboot = T0.replace(day=3)
    frame = parse_instance_status(
        [
            {
                "InstanceStatuses": [
                    status("i-retire", events=[event("instance-retirement", retire)]),
                    status(
                        "i-two",
                        events=[event("instance-retirement", retire), event("system-reboot", reboot)],
                    ),
                    status(
                        "i-done",
                        events=[
                            event("system-maintenance", T0, "[Completed] The instance is running on degraded hardware")
                        ],
                    ),
                ]
            }
        ]
    )
    rows = by_id(frame)
    assert rows["i-retire"]["ec2_events"] == "instance-retirement"
    assert rows["i-retire"]["ec2_status"] == "ok"  # an event is not a failed check
    assert rows["i-retire"]["event_not_before"] == pd.Timestamp(retire)
    assert rows["i-two"]["ec2_events"] == "instance-retirement; system-reboot"
    assert rows["i-two"]["event_not_before"] == pd.Timestamp(reboot)
    assert rows["i-done"]["ec2_events"] == ""
    assert pd.isna(rows["i-done"]["event_not_before"])
    assert str(frame["event_not_before"].dtype) == "datetime64[ns, UTC]"


def test_parse_concatenates_pages_and_handles_empty_input() -> None:
    pages = [
        {"InstanceStatuses": [status("i-1")], "NextToken": "t"},
        {"InstanceStatuses": [status("i-2", system="impaired")]},
    ]
    frame = parse_instance_status(pages)
    assert list(frame["instance_id"]) == ["i-1", "i-2"]
    assert list(frame["ec2_status"]) == ["ok", "impaired"]

    empty = parse_instance_status([{"InstanceStatuses": []}])
    assert empty.empty and list(empty.columns) == list(HEALTH_COLUMNS)
    assert str(empty["event_not_before"].dtype) == "datetime64[ns, UTC]"


def test_pick_claimant_prefers_the_live_instance_during_a_replacement() -> None:
    def info(iid: str, state: str) -> InstanceInfo:
        return InstanceInfo(1, iid, state, "10.0.1.10", "m5.large", "us-east-1a", "subnet-1", "tag")

    assert pick_claimant(1, [info("i-old", "shutting-down"), info("i-new", "pending")], "t").instance_id == "i-new"
    with pytest.raises(ConfigError, match="claimed by 2 live"):
        pick_claimant(1, [info("i-a", "running"), info("i-b", "stopped")], "t")


# ---- against the moto server ----------------------------------------------------------------------


def test_find_by_tag_filters_cluster_and_ignores_terminated(world: Any, ec2: Any) -> None:
    b1 = world.launch(1, world.ip(11))
    b2 = world.launch(2, world.ip(12, subnet_b=True), subnet_id=world.subnet_b_id)
    world.launch(1, world.ip(51), cluster="staging")  # other cluster, same broker id
    dead = world.launch(3, world.ip(13))
    ec2.terminate_instances(InstanceIds=[dead])
    world.launch(None, world.ip(99))  # not a broker

    found = find_broker_instances(ec2, cluster_tag=world.cluster_tag)
    assert sorted(found) == [1, 2]
    assert found[1].instance_id == b1 and found[1].private_ip == world.ip(11)
    assert found[1].matched_by == "tag" and found[1].state == "running"
    assert found[2].instance_id == b2 and found[2].availability_zone == "us-east-1b"
    assert found[2].subnet_id == world.subnet_b_id and found[2].instance_type == "m5.large"
    assert found[2].tags["kafka-broker-id"] == "2"


def test_duplicate_broker_id_is_a_config_error(world: Any, ec2: Any) -> None:
    a = world.launch(1, world.ip(11))
    b = world.launch(1, world.ip(12))
    with pytest.raises(ConfigError, match="Broker 1 is claimed by 2 live") as err:
        find_broker_instances(ec2, cluster_tag=world.cluster_tag)
    assert a in str(err.value) and b in str(err.value)
    # Without a cluster tag, another cluster's broker 1 collides too -- and the message says what to do.
    ec2.terminate_instances(InstanceIds=[b])
    world.launch(1, world.ip(51), cluster="staging")
    assert find_broker_instances(ec2, cluster_tag=world.cluster_tag)[1].instance_id == a
    with pytest.raises(ConfigError, match="cluster_tag"):
        find_broker_instances(ec2, cluster_tag=None)


def test_find_by_private_ip_for_untagged_brokers_and_cross_check(world: Any, ec2: Any) -> None:
    tagged = world.launch(1, world.ip(11))
    untagged = world.launch(None, world.ip(12), cluster=None)
    found = find_broker_instances(
        ec2, cluster_tag=world.cluster_tag, private_ips={1: world.ip(11), 2: world.ip(12), 3: world.ip(77)}
    )
    assert found[1].instance_id == tagged and found[1].matched_by == "tag"
    assert found[2].instance_id == untagged and found[2].matched_by == "private-ip"
    assert 3 not in found  # no instance with that IP: absent, not an error

    with pytest.raises(ConfigError, match=f"advertises {world.ip(12)}"):
        find_broker_instances(ec2, cluster_tag=world.cluster_tag, private_ips={1: world.ip(12)})
    with pytest.raises(ConfigError, match="IP addresses"):
        find_broker_instances(ec2, cluster_tag=world.cluster_tag, private_ips={1: "kafka-1.internal"})


def test_non_integer_broker_tag_is_a_config_error(world: Any, ec2: Any) -> None:
    # Its own tag key: the instance outlives the test (the moto server is shared by the session),
    # and a bad "kafka-broker-id" would break other tests that search without a cluster tag.
    world.launch(None, world.ip(11), extra_tags={"kafka-broker-no": "one"})
    with pytest.raises(ConfigError, match=r"kafka-broker-no='one'.*not an integer"):
        find_broker_instances(ec2, cluster_tag=world.cluster_tag, broker_id_tag="kafka-broker-no")


def test_instance_health_ok_path_stopped_and_unknown(world: Any, ec2: Any) -> None:
    running = world.launch(1, world.ip(11))
    stopped = world.launch(2, world.ip(12))
    ec2.stop_instances(InstanceIds=[stopped])
    unknown = "i-0123456789abcdef0"

    frame = instance_health(ec2, [running, stopped, unknown, running])
    assert list(frame.columns) == list(HEALTH_COLUMNS)
    assert list(frame["instance_id"]) == [running, stopped, unknown]  # input order, de-duplicated
    rows = by_id(frame)
    assert rows[running]["state"] == "running" and rows[running]["ec2_status"] == "ok"
    assert rows[running]["ec2_events"] == "" and pd.isna(rows[running]["event_not_before"])
    assert rows[stopped]["state"] == "stopped" and rows[stopped]["ec2_status"] == "not-applicable"
    assert rows[unknown]["state"] == "not-found"


def test_instance_health_without_ids_does_not_call_aws(world: Any, ec2: Any, inject_error: Any) -> None:
    world.launch(1, world.ip(11))
    seen = inject_error(ec2, "DescribeInstanceStatus", "ShouldNotBeCalled", lambda p: True)
    frame = instance_health(ec2, [])
    assert frame.empty and list(frame.columns) == list(HEALTH_COLUMNS)
    assert seen.calls == []


def test_aws_errors_become_collection_errors(world: Any, ec2: Any, inject_error: Any, make_client: Any) -> None:
    iid = world.launch(1, world.ip(11))
    denied = make_client("ec2")
    inject_error(denied, "DescribeInstanceStatus", "UnauthorizedOperation", lambda p: True, 403)
    inject_error(denied, "DescribeInstances", "UnauthorizedOperation", lambda p: True, 403)
    with pytest.raises(AwsCollectionError, match="UnauthorizedOperation") as err:
        instance_health(denied, [iid])
    assert err.value.code == "UnauthorizedOperation" and err.value.operation == "DescribeInstanceStatus"
    with pytest.raises(AwsCollectionError, match="DescribeInstances"):
        find_broker_instances(denied, cluster_tag=world.cluster_tag)


def test_unreachable_endpoint_is_a_collection_error() -> None:
    import socket

    import boto3
    from botocore.config import Config

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = boto3.client(
        "ec2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}),
    )
    with pytest.raises(AwsCollectionError, match=r"EndpointConnectionError|Could not connect"):
        instance_health(dead, ["i-0123456789abcdef0"])


def test_broker_ec2_status_is_the_collector_hook_shape(world: Any, ec2: Any) -> None:
    from functools import partial

    from kafka_medic.aws import BROKER_EC2_COLUMNS, broker_ec2_status

    tagged = world.launch(1, world.ip(11))
    by_ip = world.launch(None, world.ip(12), cluster=None)
    lookup = partial(broker_ec2_status, ec2, cluster_tag=world.cluster_tag)
    frame = lookup({1: "kafka-1.internal", 2: world.ip(12), 3: "kafka-3.internal"})

    assert list(frame.columns) == list(BROKER_EC2_COLUMNS)
    rows = {r["broker_id"]: r for r in frame.to_dict("records")}
    assert rows[1]["instance_id"] == tagged and rows[1]["ec2_status"] == "ok" and rows[1]["matched_by"] == "tag"
    assert rows[2]["instance_id"] == by_ip and rows[2]["matched_by"] == "private-ip"
    assert rows[3]["instance_id"] is None and rows[3]["ec2_status"] is None and rows[3]["ec2_events"] == ""
