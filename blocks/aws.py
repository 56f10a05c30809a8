"""boto3 clients for a cluster's AWS settings: a prefect-aws AwsCredentials block or the default chain.

Secrets stay in the AwsCredentials block (SecretStr); nothing here logs or returns them.
"""

from __future__ import annotations

from typing import Any

import boto3

from kafka_medic.errors import ConfigError


def boto3_session(credentials_block: str | None) -> boto3.session.Session:
    """Blocking (it may call the Prefect API): call it from a worker thread, not on an event loop."""
    if not credentials_block:
        return boto3.session.Session()
    from prefect_aws import AwsCredentials

    try:
        creds = AwsCredentials.load(credentials_block, _sync=True)
    except ValueError as exc:
        raise ConfigError(f"AWS credentials block {credentials_block!r} not found") from exc
    return creds.get_boto3_session()


def client(service: str, region: str, credentials_block: str | None, endpoint_url: str | None) -> Any:
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3_session(credentials_block).client(service, **kwargs)
