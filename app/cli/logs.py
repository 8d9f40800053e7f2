"""Logging, set up once where the command line starts (app.cli.main).

Our modules log through `log = logging.getLogger(__name__)`. Their lines go to stderr, one short line each:
an info line is the bare message, a warning or an error has its level in front, a debug line its module too.
Info is shown by default, `-v` adds debug lines, `-q` keeps only warnings and errors; SDXS_LOG=debug|info|
warning|error says the same without a flag (a flag wins). The libraries' own notices and progress bars stay
off the terminal (models.quiet). The window adds a status-bar handler (app.ui.outputs.logbar).
"""

from __future__ import annotations

import logging
import os
import sys

from models.quiet import OURS, quiet_libraries

ENV = "SDXS_LOG"  # the environment variable that sets the level when no -v or -q is given
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class OneLine(logging.Formatter):
    """`message`, `warning: message`, `debug: models.engine: message`; an exception as its first line."""

    def format(self, record: logging.LogRecord) -> str:
        from models.errors import first_line

        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text}: {type(record.exc_info[1]).__name__}: {first_line(record.exc_info[1])}"
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        if record.levelno < logging.INFO:
            return f"debug: {record.name}: {text}"
        return text


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes, so a redirected or captured stderr gets it."""

    def __init__(self):
        super().__init__()
        self.setFormatter(OneLine())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; ours always follows sys.stderr
        pass


def level_for(verbose: int = 0, quiet: int = 0, env: str | None = None) -> int:
    """The level of our loggers: -v wins, then -q, then SDXS_LOG, else info."""
    from models.errors import UserError

    if verbose:
        return logging.DEBUG
    if quiet:
        return logging.WARNING
    if env:
        if env.strip().lower() not in LEVELS:
            raise UserError(f"{ENV}={env!r} is not a log level: use one of {', '.join(LEVELS)}")
        return LEVELS[env.strip().lower()]
    return logging.INFO


def configure(verbose: int = 0, quiet: int = 0) -> int:
    """Set up stderr logging for this process and return the level; calling it again replaces the setup."""
    level = level_for(verbose, quiet, os.environ.get(ENV))
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    root.addHandler(StderrHandler())
    for name in OURS:
        logging.getLogger(name).setLevel(level)
    quiet_libraries(imported_only=True)
    return level
