"""Validators shared by every settings model: names, hosts, URLs, templates, AWS identifiers.

They raise ``ValueError`` with a message that names the bad value and shows a good one, because
pydantic turns that into the one-line error an operator sees (YAML loader, UI form, CLI).
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Iterable

# A DNS-label-like name: it becomes part of concurrency-limit names, Variable names and block
# document names, which Prefect restricts to lowercase letters, digits and dashes (blocks) or
# also underscores (variables). Leading/trailing dashes are refused so names read well in URLs.
CLUSTER_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
TOPIC_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")
BLOCK_NAME_RE = re.compile(r"^[a-z0-9-]+$")


def check_cluster_name(name: str) -> str:
    """Validate a cluster name (also used by coordination before building Prefect object names)."""
    if not CLUSTER_NAME_RE.match(name):
        raise ValueError(
            f"cluster name {name!r} must be 1-63 characters of lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def check_host_port(entry: str) -> str:
    """Validate one ``host:port`` entry; IPv6 hosts must be bracketed (``[::1]:9092``)."""
    if entry.startswith("["):
        match = re.match(r"^\[([^\]]+)\]:(\d+)$", entry)
        if not match:
            raise ValueError(f"{entry!r} is not [ipv6]:port")
        host, port = match.group(1), match.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{entry!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port = entry.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{entry!r} is not host:port")
        if ":" in host:
            raise ValueError(f"{entry!r}: write an IPv6 host in brackets, e.g. [::1]:9092")
        if not _HOSTNAME_RE.match(host):
            raise ValueError(f"{entry!r}: {host!r} is not a valid host name or IPv4 address")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{entry!r}: port must be a number from 1 to 65535")
    return entry


AWS_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EC2_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
ROUTE53_ZONE_ID_RE = re.compile(r"^(/hostedzone/)?[A-Z0-9]{1,32}$")
# The names EC2 recommends for EBS data volumes on Linux (HVM) instances: /dev/sd[f-z] or its Xen
# alias /dev/xvd[f-z]. The root device (/dev/sda1, /dev/xvda) and the instance-store range (b-e)
# are never a broker's data volume.
EBS_DATA_DEVICE_RE = re.compile(r"^/dev/(sd|xvd)[f-z]$")


def template_fields(template: str) -> set[str]:
    """Names of the ``{placeholders}`` in a ``str.format`` template.

    Raises ValueError for malformed templates (an unmatched ``{``), and for positional,
    attribute or index placeholders, which we never fill in and would fail at run time.
    """
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc} (write a literal brace as {{{{ or }}}})") from exc
    for _literal, field_name, _spec, _conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier():
            raise ValueError(f"template {template!r} has an unsupported placeholder {{{field_name}}}")
        names.add(field_name)
    return names


def check_template(template: str, allowed: Iterable[str], required: Iterable[str] = ()) -> str:
    """Validate that a template only uses ``allowed`` placeholders and has all ``required`` ones."""
    allowed_set, required_set = set(allowed), set(required)
    used = template_fields(template)
    unknown = used - allowed_set
    if unknown:
        names = ", ".join("{" + n + "}" for n in sorted(unknown))
        ok = ", ".join("{" + n + "}" for n in sorted(allowed_set))
        raise ValueError(f"unknown placeholder {names} in {template!r}; allowed: {ok}")
    missing = required_set - used
    if missing:
        names = ", ".join("{" + n + "}" for n in sorted(missing))
        raise ValueError(f"template {template!r} must contain {names}")
    return template


def check_http_url(url: str, what: str = "URL") -> str:
    """Require an absolute http(s) URL; a bare host is a common mistake worth a clear message."""
    url = url.strip()
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"{what} must start with http:// or https:// and name a host, got {url!r}")
    return url


def check_aws_region(region: str) -> str:
    """Catch a missing or mistyped region early (boto3 would only fail when a call is made)."""
    if not AWS_REGION_RE.match(region):
        raise ValueError(f"not a valid AWS region name: {region!r} (expected e.g. 'us-east-1')")
    return region


def check_ebs_data_device(device: str, field: str = "data_volume_device") -> str:
    """An EBS data volume's device name as EC2's API knows it (the block device mapping name).

    A typo here would make kafka-medic miss the data volume and let it be deleted with the old
    instance, so anything but the recommended EBS range is refused with the reason spelled out.
    """
    device = device.strip()
    if EBS_DATA_DEVICE_RE.match(device):
        return device
    example = "e.g. '/dev/sdf'"
    if device.startswith("/dev/nvme"):
        hint = (
            "that is the name Linux gives the disk on Nitro instances; EC2's API needs the block device "
            f"mapping name, {example}"
        )
    elif device in ("/dev/sda", "/dev/sda1", "/dev/xvda", "/dev/xvda1"):
        hint = "that is the root device; a broker's data volume is a separate EBS volume"
    elif re.match(r"^/dev/(sd|xvd)[b-e]$", device):
        hint = "b-e are the instance-store range; EBS data volumes use f-z"
    elif not device.startswith("/dev/"):
        hint = f"write the full device path, {example}"
    else:
        hint = f"{example} or '/dev/xvdf'"
    raise ValueError(f"{field} must be an EBS data device /dev/sd[f-z] or /dev/xvd[f-z], got {device!r}: {hint}")


def check_block_name(value: str | None, field: str, block_type: str) -> str | None:
    """A Prefect block document name (lowercase letters, digits, '-'), e.g. of an AwsCredentials block."""
    if value is not None and not BLOCK_NAME_RE.match(value):
        raise ValueError(f"{field} must be an {block_type} block name (lowercase letters, digits, -), got {value!r}")
    return value


def check_record_name_template(template: str | None, hosted_zone_id: str | None) -> None:
    """A DNS record template is useless without a zone, and a zone without a template is ambiguous."""
    if (template is None) != (hosted_zone_id is None):
        raise ValueError("hosted_zone_id and record_name_template must be set together (or both left unset)")
