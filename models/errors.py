"""The one exception users see: a message that names the bad value and the fix."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a user. The command line prints it as one line and exits with code 2; the window
    shows it in a message. Never raised for bugs: those stay ordinary exceptions with tracebacks."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line for a message: its first non-empty line, or its class name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]
