"""The exceptions users see: a message that names the bad value and the fix, and the kinds a caller tells apart."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a user. The command line prints it as one line and exits with code 2; the window
    shows it in a message. Never raised for bugs: those stay ordinary exceptions with tracebacks."""


class Cancelled(UserError):
    """The user stopped a download (the window's Cancel); told apart by its type, not by its text."""

    def __init__(self, message: str = "Download cancelled. Partial files are kept, so the next download resumes "
                 "where this one stopped."):
        super().__init__(message)


class HubUnreachable(UserError):
    """A hub id that is not in the local cache while the hub cannot be reached (offline, no network)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line for a message: its first non-empty line, or its class name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]
