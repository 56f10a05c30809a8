"""The EC2 side of collection: bind a cluster's AWS settings into the collector's EC2 hook."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from blocks.aws import client
from blocks.kafka_cluster import KafkaCluster
from kafka_medic.aws import broker_ec2_status
from kafka_medic.monitor.collector import Ec2Lookup


def ec2_lookup_for(cluster: KafkaCluster) -> Ec2Lookup | None:
    """An ``Ec2Lookup`` for the collector, or None when the cluster has no AWS settings."""
    aws = cluster.aws
    if aws is None:
        return None
    tag = (aws.cluster_tag_key, aws.cluster_tag_value) if aws.cluster_tag_key and aws.cluster_tag_value else None

    def lookup(hosts: Mapping[int, str]) -> pd.DataFrame:
        ec2 = client("ec2", aws.region, aws.aws_credentials, aws.endpoint_url)
        return broker_ec2_status(ec2, hosts, cluster_tag=tag, broker_id_tag=aws.broker_id_tag)

    return lookup
