"""Errors of the AWS side, each saying what happened, what (if anything) was changed, and what to do.

Two families, because callers treat them differently:

* ``AwsCollectionError``: a read (describe) failed while collecting cluster state. Nothing was
  changed; the collector turns it into a finding ("cannot see EC2") instead of crashing the pass.
* ``AwsActionError`` and subclasses: a write (terminate / launch / reboot / DNS) could not be
  carried out. These may be raised AFTER something was changed (the old instance is terminated
  but the new one failed to launch); ``changed`` says so and the message says it in words, and
  ``launch_spec`` holds what a human needs to finish the job by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka_medic.errors import MedicError


class AwsCollectionError(MedicError):
    """Reading EC2 state failed (API error, no connection, no permission). Nothing was changed."""

    def __init__(self, message: str, *, operation: str = "", code: str = "") -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


class AwsActionError(MedicError):
    """An EC2/Route53 action failed.

    ``changed`` is True when the failure happened after AWS state was modified (for a replacement:
    the old instance was terminated), so the caller must page a human instead of retrying blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        instance_id: str | None = None,
        changed: bool = False,
        new_instance_id: str | None = None,
        launch_spec: dict[str, Any] | None = None,
        steps: Sequence[str] = (),
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.changed = changed
        self.new_instance_id = new_instance_id
        self.launch_spec = launch_spec
        self.steps = tuple(steps)
        self.code = code


class InstanceNotFoundError(AwsActionError):
    """The instance id does not exist (in this account/region). Nothing was changed."""


class InstanceStateError(AwsActionError):
    """The instance is in a state the action cannot start from (e.g. replacing a terminated one)."""


class ReplacementRefusedError(AwsActionError):
    """A pre-flight check failed, so the old instance was NOT terminated.

    Examples: termination protection on, instance owned by an Auto Scaling group or a spot request,
    AMI deregistered, no permission to launch (RunInstances DryRun refused), DNS zone missing.
    """


class CapacityError(AwsActionError):
    """Every allowed instance type was refused for lack of capacity."""


class AwsTimeoutError(AwsActionError):
    """A bounded wait ran out (instance never terminated/ran, private IP never released, ...)."""
