"""A moto server over real HTTP on 127.0.0.1 for the AWS tests (no AWS, no in-process mocks).

One server per session, never reset (a reset plus rebuilding the fixtures cost most of the suite's
time): a session-wide VPC, security groups, key pair and IAM profile, and per test two fresh
subnets and a unique cluster tag value, so tests cannot see each other's instances or addresses.
Start and stop run with bounded joins, because moto's own ``start()``/``stop()`` wait without a
timeout.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
_BOUND_S = 15.0


def _bounded(fn: Callable[[], None], what: str) -> None:
    t = threading.Thread(target=fn, name=f"moto-{what}", daemon=True)
    t.start()
    t.join(_BOUND_S)
    if t.is_alive():
        raise RuntimeError(f"moto server {what} did not finish within {_BOUND_S}s")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    _bounded(server.start, "start")
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        _bounded(server.stop, "stop")


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for the moto server: dummy credentials, short timeouts, no retries (so an
    injected error is seen exactly once and a hung server fails the test quickly)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        config=Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture()
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture()
def ec2(endpoint: str) -> Any:
    return client("ec2", endpoint)


@pytest.fixture()
def route53(endpoint: str) -> Any:
    return client("route53", endpoint)


@dataclass(frozen=True)
class Shared:
    """Created once per session: resetting moto and rebuilding a VPC, key pair and IAM profile
    for every test cost most of the suite's time. Tests get their own subnets instead (below)."""

    vpc_id: str
    sg_id: str
    sg2_id: str
    ami_id: str
    profile_arn: str
    key_name: str


@pytest.fixture(scope="session")
def shared(moto_endpoint: str) -> Shared:
    ec2 = client("ec2", moto_endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName="kafka", Description="kafka brokers", VpcId=vpc)["GroupId"]
    sg2 = ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=vpc)["GroupId"]
    # A narrow filter: listing all ~1300 of moto's built-in AMIs costs over a second.
    amis = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*-x86_64-gp2"]}])
    ami = amis["Images"][0]["ImageId"]
    ec2.create_key_pair(KeyName="kafka-key")
    iam = client("iam", moto_endpoint)
    role = iam.create_role(RoleName="kafka-broker", AssumeRolePolicyDocument="{}")["Role"]["RoleName"]
    profile = iam.create_instance_profile(InstanceProfileName="kafka-broker")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="kafka-broker", RoleName=role)
    return Shared(vpc, sg, sg2, ami, profile, "kafka-key")


_SUBNET_NUMBERS = itertools.count(1)


@dataclass
class World:
    """One test's slice of the shared VPC: two fresh subnets (AZ a and b) and its own cluster tag
    value, so tests never see each other's instances or IP addresses; plus a broker launcher."""

    ec2: Any
    shared: Shared
    net: int  # subnet A is 10.0.<net>.0/24, subnet B 10.0.<net+1>.0/24
    subnet_id: str
    subnet_b_id: str
    cluster_tag: tuple[str, str]
    launched: list[str] = field(default_factory=list)

    @property
    def sg_id(self) -> str:
        return self.shared.sg_id

    @property
    def sg2_id(self) -> str:
        return self.shared.sg2_id

    @property
    def ami_id(self) -> str:
        return self.shared.ami_id

    @property
    def profile_arn(self) -> str:
        return self.shared.profile_arn

    def ip(self, host: int, subnet_b: bool = False) -> str:
        return f"10.0.{self.net + int(subnet_b)}.{host}"

    def launch(
        self,
        broker_id: int | None,
        ip: str | None = None,
        *,
        cluster: str | None = "",
        instance_type: str = "m5.large",
        eni_survives: bool = False,
        extra_tags: dict[str, str] | None = None,
        user_data: str = "#!/bin/bash\necho broker\n",
        subnet_id: str | None = None,
        data_volume: bool = True,
    ) -> str:
        """Launch a broker instance (``cluster=""``: this test's cluster; None: no cluster tag).

        ``eni_survives=False`` gives the AWS default shape (primary ENI deleted with the instance,
        so its IP is released); moto only produces it when the ENI is described explicitly.
        ``eni_survives=True`` launches with a plain SubnetId, which moto gives a primary ENI with
        DeleteOnTermination=false -- on AWS the shape of a broker pinned to its own ENI.
        ``data_volume=True`` launches with a 50 GiB gp3 volume at /dev/sdf (DeleteOnTermination=true);
        False with only an 8 GiB root volume at /dev/xvda (add a data volume with :meth:`add_volume`).
        """
        tags = {"Name": f"kafka-{broker_id}", "team": "streaming", **(extra_tags or {})}
        if broker_id is not None:
            tags["kafka-broker-id"] = str(broker_id)
        if cluster is not None:
            tags[self.cluster_tag[0]] = cluster or self.cluster_tag[1]
        subnet = subnet_id or self.subnet_id
        kwargs: dict[str, Any] = {
            "ImageId": self.ami_id,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": instance_type,
            "KeyName": self.shared.key_name,
            "IamInstanceProfile": {"Arn": self.profile_arn},
            "UserData": user_data,
            "Placement": {"AvailabilityZone": "us-east-1a" if subnet == self.subnet_id else "us-east-1b"},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3", "DeleteOnTermination": True}}
                if data_volume
                else {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True},
                }
            ],
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        }
        if eni_survives:
            kwargs.update(SubnetId=subnet, SecurityGroupIds=[self.sg_id, self.sg2_id])
            if ip:
                kwargs["PrivateIpAddress"] = ip
        else:
            nic: dict[str, Any] = {
                "DeviceIndex": 0,
                "SubnetId": subnet,
                "Groups": [self.sg_id, self.sg2_id],
                "DeleteOnTermination": True,
            }
            if ip:
                nic["PrivateIpAddress"] = ip
            kwargs["NetworkInterfaces"] = [nic]
        iid = self.ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]
        self.launched.append(iid)
        return iid

    def add_volume(self, instance_id: str, device: str = "/dev/sdf", *, size: int = 100, az: str | None = None) -> str:
        """CreateVolume + AttachVolume: a data volume attached after launch (DeleteOnTermination=false,
        AttachVolume's default), tagged with the instance it was made for. ``az`` defaults to the
        instance's; moto attaches one of another AZ too (AWS refuses)."""
        zone = az or self.describe(instance_id)["Placement"]["AvailabilityZone"]
        vid = str(
            self.ec2.create_volume(
                AvailabilityZone=zone,
                Size=size,
                VolumeType="gp3",
                TagSpecifications=[
                    {"ResourceType": "volume", "Tags": [{"Key": "kafka-data-of", "Value": instance_id}]}
                ],
            )["VolumeId"]
        )
        self.ec2.attach_volume(VolumeId=vid, InstanceId=instance_id, Device=device)
        return vid

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        """DescribeVolumes for one id, or None once it is deleted."""
        try:
            return dict(self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidVolume.NotFound":
                return None
            raise

    def device_volume(self, instance_id: str, device: str = "/dev/sdf") -> str | None:
        """The volume id the instance lists at ``device``, or None."""
        for m in self.describe(instance_id).get("BlockDeviceMappings", []):
            if m["DeviceName"] == device and "Ebs" in m:
                return str(m["Ebs"]["VolumeId"])
        return None

    def describe(self, instance_id: str) -> dict[str, Any]:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def state(self, instance_id: str) -> str:
        return str(self.describe(instance_id)["State"]["Name"])

    def all_instances(self) -> dict[str, str]:
        """instance id -> state, for every instance in this test's subnets."""
        out: dict[str, str] = {}
        filters = [{"Name": "subnet-id", "Values": [self.subnet_id, self.subnet_b_id]}]
        for page in self.ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for res in page["Reservations"]:
                for inst in res["Instances"]:
                    out[inst["InstanceId"]] = inst["State"]["Name"]
        return out


@pytest.fixture()
def world(ec2: Any, shared: Shared) -> World:
    net = 2 * next(_SUBNET_NUMBERS) - 1
    assert net < 255, "out of /24 subnets in the shared VPC; add a second VPC"
    sub_a = ec2.create_subnet(VpcId=shared.vpc_id, CidrBlock=f"10.0.{net}.0/24", AvailabilityZone="us-east-1a")
    sub_b = ec2.create_subnet(VpcId=shared.vpc_id, CidrBlock=f"10.0.{net + 1}.0/24", AvailabilityZone="us-east-1b")
    return World(
        ec2, shared, net, sub_a["Subnet"]["SubnetId"], sub_b["Subnet"]["SubnetId"], ("kafka-cluster", f"prod-{net}")
    )


@pytest.fixture()
def hosted_zone(route53: Any) -> str:
    """A fresh private-looking zone "kafka.internal" (a new zone id per test; the name may repeat)."""
    return str(route53.create_hosted_zone(Name="kafka.internal", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"])


# ---- AWS error injection ---------------------------------------------------------------------------
# moto cannot produce capacity errors, slow address release or permission errors. These hooks make
# the boto3 client raise the exact ClientError AWS would return, BEFORE the request is sent, so moto's
# state is untouched by the failed call -- as on AWS, where a refused call changes nothing.


def aws_error(code: str, operation: str, message: str = "injected by test", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@dataclass
class Injector:
    """Fail calls of one operation while ``should_fail(params)`` says so; counts what it saw."""

    code: str
    operation: str
    should_fail: Callable[[dict[str, Any]], bool]
    status: int = 400
    calls: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    enabled: bool = True

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if not self.enabled:
            return
        self.calls.append(dict(params))
        if self.should_fail(params):
            self.failures += 1
            raise aws_error(self.code, self.operation, status=self.status)


def inject(
    boto_client: Any, operation: str, code: str, should_fail: Callable[[dict[str, Any]], bool], status: int = 400
) -> Injector:
    """Register an Injector on ``before-parameter-build.<service>.<operation>`` of this client only."""
    injector = Injector(code, operation, should_fail, status)
    service = boto_client.meta.service_model.service_id.hyphenize()
    boto_client.meta.events.register(f"before-parameter-build.{service}.{operation}", injector)
    return injector


@pytest.fixture()
def inject_error() -> Callable[..., Injector]:
    """The :func:`inject` helper, as a fixture so test modules need not import conftest."""
    return inject


@pytest.fixture()
def make_client(endpoint: str) -> Callable[[str], Any]:
    """Build another client for the (reset) moto server, e.g. one with its own error injection."""
    return lambda service: client(service, endpoint)
