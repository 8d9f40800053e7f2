"""What the worker needs to load a model besides the request (app.live.session.ModelRequest): the download progress that reaches the window (and
can cancel), and the CPU core left to the GUI."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from models.errors import Cancelled

if TYPE_CHECKING:
    from models.engine import Engine


def leave_a_core(engine: Engine) -> None:
    """On the CPU, run torch on all cores but one: the GUI thread and the camera need one, and OpenMP
    threads that wait for a busy core spin (on a busy 2-core machine 2 threads took 800 ms a frame where
    1 thread took 150 ms). OMP_NUM_THREADS, when set, wins."""
    import os

    if str(engine.device) != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))


def progress_class(worker: Any, cancel: threading.Event):
    """A tqdm class for huggingface_hub downloads that reports to the worker's progress signal and stops
    the download (by raising) once cancel is set. Partial files stay in the cache, so a retry resumes.
    worker: app.ui.worker.Worker (its progress signal)."""
    from tqdm.auto import tqdm as base

    class QtProgress(base):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)

        def display(self, *args, **kwargs) -> None:  # draw nothing on the terminal
            pass

        def update(self, n: float | None = 1) -> bool | None:
            if cancel.is_set():
                raise Cancelled()  # through the hub client and the loader, to load's handler
            out = super().update(n)
            worker.progress.emit(str(self.desc or "Downloading"), float(self.n), float(self.total or 0))
            return out

    return QtProgress
