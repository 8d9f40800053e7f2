"""Warnings in the window's status bar: a fallback, a dropped LoRA, a failed sink.

A logging handler on the root logger takes our packages' WARNING and ERROR records from any thread (most
come from the worker thread, while a model loads or a frame runs) and passes each as text through a Qt
signal; the connection is queued to the GUI thread, so no widget is touched from another thread.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QStatusBar

from models.errors import first_line
from models.quiet import OURS

SHOWN_MS = 15000  # how long a warning stays, like an error from the worker


class _Bridge(QObject):
    message = Signal(str, int)  # text, milliseconds


class StatusBarHandler(logging.Handler):
    """Shows WARNING+ records from our packages in a status bar, from whichever thread they are logged."""

    def __init__(self, bar: QStatusBar):
        super().__init__(logging.WARNING)
        self.bridge = _Bridge()  # lives on the GUI thread (made there), so its receivers run there
        self.bridge.message.connect(bar.showMessage)  # a Qt slot: queued from other threads, dropped with the bar
        self.elsewhere: set[str] = set()  # loggers whose warnings the window shows itself, for as long as they last

    def shown_elsewhere(self, logger: str) -> None:
        """Leave a logger's warnings to the part of the window that shows them itself (and clears them)."""
        self.elsewhere.add(logger)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in OURS and record.name not in self.elsewhere and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = (record.getMessage().strip().splitlines() or [""])[0][:300]
            if record.exc_info and record.exc_info[1] is not None:
                text = f"{text}: {first_line(record.exc_info[1])}"
            self.bridge.message.emit(text, SHOWN_MS)
        except RuntimeError:  # the bridge is gone (Qt shut down): nothing left to show it in
            self.remove()
        except Exception:
            self.handleError(record)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)


def install(bar: QStatusBar) -> StatusBarHandler:
    """Attach a handler for this status bar to the root logger; call its remove() when the window closes."""
    handler = StatusBarHandler(bar)
    logging.getLogger().addHandler(handler)
    return handler
