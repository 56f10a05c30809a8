"""One-line reports of the reliability scenarios, collected for the end of the test session.

Each scenario test prints its line (``-s`` shows it at once); they are also gathered here and
printed as one table by ``pytest_terminal_summary`` in ``tests/conftest.py``, so every full run
(``./medic test``, CI) ends with the detection / heal / message figures of the scenarios it ran.
"""

from __future__ import annotations

LINES: list[str] = []


def record(line: str) -> str:
    """Remember ``line`` for the session summary and return it (for the test to print too)."""
    LINES.append(line.strip())
    return line


def report(line: str) -> None:
    """Print ``line`` now (seen with ``-s``) and keep it for the session summary."""
    print(record(line))
