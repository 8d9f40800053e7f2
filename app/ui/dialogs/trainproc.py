"""The trainer in its own process (QProcess), read through its public progress stream.

`python main.py train ... --progress jsonl` prints one JSON object per line on stdout (README: "Driving the
trainer"); everything else it says (stderr: notes, errors) arrives here as log lines. A crash in training
ends that process, never the window.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal, Slot

REAP_MS = 600  # the part of the deadline left for a kill: a trainer's exit unmaps GBs (0.4-0.6 s on 2 busy cores)
MIN_REAP_MS = 300  # waited for a kill at the least, when no time is left


def _descendants(pid: int) -> list[int]:
    """The processes pid started (its data loader's workers); [] when it has ended."""
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)] if pid else []
    except psutil.Error:
        return []


class TrainProcess(QObject):
    """Starts, stops (Ctrl+C: the trainer saves a checkpoint) and kills one training process."""

    event = Signal(dict)  # one progress object: {"event": "step", "step": ..., ...}
    line = Signal(str)  # a log line: what the trainer printed that is not a progress object
    ended = Signal(int)  # its exit code: 0 finished, 130 stopped with a checkpoint, 2 bad input, other: a crash

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.proc.setProcessEnvironment(env)
        self.proc.readyReadStandardOutput.connect(self._stdout)
        self.proc.readyReadStandardError.connect(self._stderr)
        self.proc.finished.connect(self._finished)
        self._out = self._err = b""
        self._interrupted = False  # Ctrl+C was sent to this run (a second one would cut its checkpoint short)

    @property
    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def start(self, argv: list[str]) -> None:
        """argv: the train subcommand's arguments (training.runs.train_argv)."""
        self._interrupted = False
        self.proc.start(sys.executable, ["-m", "app.cli.main", *argv])

    def stop(self) -> None:
        """Ask it to finish the step, save a checkpoint and exit (as Ctrl+C does in a terminal)."""
        pid = self.proc.processId()
        if self.running and pid and not self._interrupted:
            self._interrupted = True
            os.kill(pid, signal.SIGINT)

    def kill(self, grace_ms: int = 1500) -> None:
        """Gone within grace_ms: Ctrl+C (unless sent already), and what has not ended REAP_MS before that deadline
        is killed with its own processes (the data loader's workers) and reaped by it. Checkpoints are written
        whole or not at all, so the newest complete one stays usable."""
        if not self.running:
            return
        end = time.monotonic() + grace_ms / 1000
        self.stop()
        if self.proc.waitForFinished(max(0, grace_ms - REAP_MS)):
            return
        pid = self.proc.processId()
        for child in _descendants(pid):  # a killed trainer's workers would otherwise live on for seconds, holding memory
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:  # ended meanwhile
                pass
        self.proc.kill()
        self.proc.waitForFinished(max(MIN_REAP_MS, int(1000 * (end - time.monotonic()))))

    @Slot()
    def _stdout(self) -> None:
        self._out += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for raw in lines:
            text = raw.decode(errors="replace").strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "event" in obj:
                self.event.emit(obj)
            else:
                self.line.emit(text)

    @Slot()
    def _stderr(self) -> None:
        self._err += bytes(self.proc.readAllStandardError().data())
        *lines, self._err = self._err.replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            text = raw.decode(errors="replace").strip()
            if text:
                self.line.emit(text)

    @Slot(int, QProcess.ExitStatus)
    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._stdout()
        self._stderr()
        self.ended.emit(code if status == QProcess.ExitStatus.NormalExit else -1)
