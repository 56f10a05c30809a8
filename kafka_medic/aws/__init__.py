"""The EC2 side of kafka-medic: broker -> instance mapping, EC2 health, instance replacement.

Plain Python over boto3 clients (no Prefect): the flows/tasks pass in clients they built, which
keeps this testable against the moto server and usable from a shell.
"""

from kafka_medic.aws.ebs import VolumeInfo, describe_volume, ebs_at, same_device
from kafka_medic.aws.ec2_replace import (
    REPLACES_TAG,
    ReplacementResult,
    RestartResult,
    Strategy,
    redact_spec,
    replace_instance,
    restart_instance,
)
from kafka_medic.aws.ec2_status import (
    BROKER_EC2_COLUMNS,
    HEALTH_COLUMNS,
    InstanceInfo,
    broker_ec2_status,
    find_broker_instances,
    instance_health,
    parse_instance_status,
)
from kafka_medic.aws.errors import (
    AwsActionError,
    AwsCollectionError,
    AwsTimeoutError,
    CapacityError,
    InstanceNotFoundError,
    InstanceStateError,
    ReplacementRefusedError,
)
from kafka_medic.aws.route53 import RecordChange, upsert_a_record

__all__ = [
    "BROKER_EC2_COLUMNS",
    "HEALTH_COLUMNS",
    "REPLACES_TAG",
    "AwsActionError",
    "AwsCollectionError",
    "AwsTimeoutError",
    "CapacityError",
    "InstanceInfo",
    "InstanceNotFoundError",
    "InstanceStateError",
    "RecordChange",
    "ReplacementRefusedError",
    "ReplacementResult",
    "RestartResult",
    "Strategy",
    "VolumeInfo",
    "broker_ec2_status",
    "describe_volume",
    "ebs_at",
    "find_broker_instances",
    "instance_health",
    "parse_instance_status",
    "redact_spec",
    "replace_instance",
    "restart_instance",
    "same_device",
    "upsert_a_record",
]
