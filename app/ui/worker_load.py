"""What the worker needs to load a model: the request, the download progress that reaches the window (and
can cancel), and the CPU core left to the GUI."""

from __future__ import annotations

import threading
from dataclasses import dataclass
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


@dataclass
class LoadRequest:
    """What to load in the worker."""

    model: str  # base model spec: folder, hub id or demo
    controlnet: str | tuple[str, ...] | None = None  # adapter spec, or several as SPEC[:STRENGTH]; None or () for none
    device: str = "auto"  # auto, cpu or cuda
    dtype: str = "auto"  # auto, float32, bfloat16 or float16
    fast: str = "auto"  # torch's runner (models.runners): auto is CUDA graphs on a GPU, eager on a CPU
    backend: str = "torch"  # who runs CPU frames (models.openvino): torch, auto or openvino
    precision: str = "fp32"  # OpenVINO's precision: fp32 or int8

    @property
    def adapters(self) -> tuple[str, ...]:
        """The adapters as SPEC[:STRENGTH] each, in order."""
        c = self.controlnet
        return (c,) if isinstance(c, str) else tuple(c or ())


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
