"""SIGTERM and SIGHUP stop a command as Ctrl+C does: `kill`, a closed terminal, `systemctl stop` and `docker stop`
finish a recording (the frames so far, playable) instead of killing it mid-write.

    with StopSignals() as stop:
        play(...)            # the first SIGTERM/SIGHUP raises Stopped (a KeyboardInterrupt) here
        stop.finishing()     # from here on they are noted and ignored: finishing the file is not cut short
        sinks.close()

A second signal while stopping is ignored with one line (docker and systemd send SIGKILL after their grace
period anyway). Outside the main thread (a test calling main() from a thread) nothing is installed.
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: stop as for Ctrl+C."""


class StopSignals:
    """While entered: the first SIGTERM/SIGHUP raises Stopped in the main thread; later ones are ignored."""

    def __init__(self) -> None:
        self.received: str | None = None  # the signal's name once one came
        self.armed = True  # False after finishing(): a signal no longer interrupts
        self._old: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def finishing(self) -> None:
        self.armed = False

    def _handle(self, signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if self.received is None and self.armed:
            self.received = name
            log.warning("%s: stopping as for Ctrl+C (the recording is finished and kept)", name)
            raise Stopped(name)
        log.warning("%s: already stopping, finishing the files first", name)

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
