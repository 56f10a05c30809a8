"""One-line reports of the reliability scenarios, collected for the end of the test session.

Each scenario test prints its line (``-s`` shows it at once); they are also gathered here and
printed as one table by ``pytest_terminal_summary`` in ``tests/conftest.py``, so every full run
(``./medic test``, CI) ends with the detection / heal / message figures of the scenarios it ran.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Lines reported by the test running in this process, not yet attached to its report.
LINES: list[str] = []
#: Every line of the session, in the process that prints the summary (the xdist controller, or
#: the only process), gathered from the tests' reports.
SUMMARY: list[str] = []


def record(line: str) -> str:
    """Remember ``line`` for the session summary and return it (for the test to print too)."""
    LINES.append(line.strip())
    return line


def take() -> list[str]:
    """The lines reported since the last call (they go on the current test's report)."""
    out = LINES[:]
    LINES.clear()
    return out


def collect(lines: Iterable[str]) -> None:
    SUMMARY.extend(lines)


def report(line: str) -> None:
    """Print ``line`` now (seen with ``-s``) and keep it for the session summary."""
    print(record(line))
