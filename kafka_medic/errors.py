"""Exception types whose messages are shown to operators as one clear line."""


class MedicError(Exception):
    """Base class: the message says what is wrong and what to do; nothing was changed."""


class SandboxError(MedicError):
    """The local sandbox cluster could not do what was asked."""


class ConfigError(MedicError):
    """A cluster definition, policy or parameter is invalid."""


class SafetyError(MedicError):
    """An action was refused because it could cost data or availability."""
