"""One outcome convention for every flow, and the CLI exit code of each outcome.

A run that changed nothing because it *should not* act -- another action holds the lock (busy), a
safety guard said no (refused), the action is not needed or may not run yet (skipped: cooldown,
maintenance, nothing recorded) -- **completes** with that status on its report: in Prefect it is
Completed, and the report says why. Only an action that was *attempted* and did not finish raises
(the run is Failed), because only then may the cluster have changed and someone must look.

Every flow's report has a ``status``; these are all the values, grouped by outcome:

============  ==============================================================  =========
outcome       statuses                                                        exit code
============  ==============================================================  =========
done          completed, finished, replaced, restarted, ok, nothing_to_do     0
planned       planned, dry_run (a dry run: every check ran, nothing changed)  0
busy          busy (another action holds the cluster's lock)                  4
skipped       skipped, cooling_down, not_needed                               4
refused       refused, stood_down (a safety guard said no, or acting could not    3
              help: no controller, sole copies, audit unwritable)
failed        failed, timed_out, partial, cancelled, stopped, isr_not_full,   1
              handed_back (a broker died: healing got the lock), interrupted
============  ==============================================================  =========

Errors raised before anything runs: bad input or configuration (``ConfigError``, pydantic
validation, unknown cluster, a sandbox command that cannot be done) exit 2; the Prefect API
unreachable exits 2 with its URL; Ctrl-C 130.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from kafka_medic.errors import ActionFailed, ClusterBusy, ConfigError, CoordinationError, SafetyError, SandboxError


class Outcome(StrEnum):
    DONE = "done"
    PLANNED = "planned"
    BUSY = "busy"
    SKIPPED = "skipped"
    REFUSED = "refused"
    FAILED = "failed"


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # an action was attempted and did not finish: the cluster may have changed
    BAD_INPUT = 2  # bad arguments, parameters, configuration, unknown cluster, API unreachable
    REFUSED = 3  # a safety guard refused; nothing was changed
    NOT_NOW = 4  # busy or skipped (lock held, cooling down, not needed); nothing was changed
    INTERRUPTED = 130


_OUTCOME_OF: dict[str, Outcome] = {
    **dict.fromkeys(("completed", "finished", "replaced", "restarted", "ok", "nothing_to_do", "done"), Outcome.DONE),
    **dict.fromkeys(("planned", "dry_run"), Outcome.PLANNED),
    "busy": Outcome.BUSY,
    **dict.fromkeys(("skipped", "cooling_down", "not_needed"), Outcome.SKIPPED),
    **dict.fromkeys(("refused", "stood_down"), Outcome.REFUSED),
    **dict.fromkeys(
        ("failed", "timed_out", "partial", "cancelled", "stopped", "isr_not_full", "handed_back", "interrupted"),
        Outcome.FAILED,
    ),
}

EXIT_CODE: dict[Outcome, ExitCode] = {
    Outcome.DONE: ExitCode.OK,
    Outcome.PLANNED: ExitCode.OK,
    Outcome.BUSY: ExitCode.NOT_NOW,
    Outcome.SKIPPED: ExitCode.NOT_NOW,
    Outcome.REFUSED: ExitCode.REFUSED,
    Outcome.FAILED: ExitCode.FAILED,
}


def outcome_of(status: str) -> Outcome:
    """The outcome of a report status; an unknown status is a bug worth failing loudly on."""
    try:
        return _OUTCOME_OF[str(status)]
    except KeyError:
        raise ValueError(f"unknown report status {status!r}; add it to kafka_medic.outcome") from None


def exit_code(status: str) -> ExitCode:
    return EXIT_CODE[outcome_of(status)]


def error_exit_code(exc: BaseException) -> ExitCode:
    """The exit code of an error that ended a command (the same table, from the error's family)."""
    if isinstance(exc, ActionFailed):
        return ExitCode.FAILED
    if isinstance(exc, SafetyError):
        return ExitCode.REFUSED
    if isinstance(exc, ClusterBusy):
        return ExitCode.NOT_NOW
    if isinstance(exc, ConfigError | CoordinationError | SandboxError):
        return ExitCode.BAD_INPUT
    return ExitCode.FAILED
