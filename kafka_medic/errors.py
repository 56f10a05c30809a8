"""The error contract: exception types whose messages are shown to operators as one clear line.

Two families, because an on-call must know at once whether the cluster may have changed:

* nothing was changed: :class:`ConfigError` (bad input or configuration, refused at the edge),
  :class:`SafetyError` (a safety guard refused), :class:`ClusterBusy` (another action holds the
  cluster's lock), :class:`CoordinationError` (the Prefect API cannot be reached or holds unusable
  state). Flows report refusals and busy locks as a *result* with that status (the run Completes);
  they raise these only from helpers, before anything was attempted.
* something may have changed: :class:`ActionFailed` (and its subclasses): an action was attempted
  and did not complete; the message says what state it left.

The CLI maps each to an exit code (:mod:`kafka_medic.outcome`).
"""


class MedicError(Exception):
    """Base class: the message says what is wrong and what to do."""


class SandboxError(MedicError):
    """The local sandbox cluster could not do what was asked."""


class ConfigError(MedicError):
    """A cluster definition, policy or parameter is invalid; nothing was changed."""


class SafetyError(MedicError):
    """An action was refused because it could cost data or availability; nothing was changed."""


class ClusterBusy(MedicError):
    """Another action holds the cluster's lock; nothing was changed."""


class CoordinationError(MedicError):
    """The Prefect API is unreachable, refused a request, or holds unusable coordination state."""


class ActionFailed(MedicError):
    """An action was attempted and did not complete: the cluster may have changed (the message says how)."""


class LockLost(ActionFailed):
    """The lock's lease could not be kept while acting: another action may now hold the lock."""
