"""The runner chain an engine runs its frames on: a backend runner (OpenVINO, or any runner given with
Engine.use_runner), torch's runner of the `fast` kind, and eager, which always works, last.

A runner that fails (compilers, graph capture and converters fail in many ways) is logged once with its
reason and dropped, and the next runs the same frame. A UserError is the user's to fix and goes up as it is.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from models.errors import UserError, first_line
from models.recipe import Prepared, Recipe, Timings
from models.runners import Runner, make_runner
from models.runners.eager import EagerRunner

log = logging.getLogger(__name__)


class Chain:
    """The runners, tried in order; `run` goes down the chain on a failure."""

    def __init__(self) -> None:
        self.first: Runner | None = None  # the backend's runner (OpenVINO, a stand-in), or None: torch's first
        self.eager = EagerRunner()  # ends every chain
        self.torch: Runner = self.eager  # torch's runner of the fast kind
        self.compiler = "inductor"  # torch.compile's backend for the compile runner
        self.timings = Timings()  # the last frame's, by the runner that ran it

    @property
    def runners(self) -> list[Runner]:
        chain = [self.first] if self.first is not None else []
        chain.append(self.torch)
        if self.torch is not self.eager:
            chain.append(self.eager)
        return chain

    @property
    def backend(self) -> str:
        """Who runs the frames: torch, or the first runner's backend (openvino, standin)."""
        return self.runners[0].backend

    def set_fast(self, mode: str, backend: str, device: torch.device) -> str:
        """Pick torch's runner: auto, eager, fused, graphs or compile. Returns the kind used."""
        from models.runners.fused import default_mode

        mode = default_mode(device) if mode == "auto" else mode
        if (mode, backend) == (self.torch.name, self.compiler):
            return mode  # already so: keep what it has captured or compiled
        runner: Runner = self.eager
        if mode != "eager":
            try:
                runner = make_runner(mode, backend=backend)
            except UserError:
                raise
            except Exception as exc:  # a runner whose library is missing or broken here: the chain goes on without it
                log.warning("torch %s unavailable (%s); using torch eager", mode, first_line(exc))
        self.torch, self.compiler = runner, backend
        return runner.name

    def run(self, recipe: Recipe, p: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        """One frame on the first runner that does not fail."""
        while True:
            runner, *rest = self.runners
            try:
                out = runner.step(recipe, p, frames)
            except UserError:
                raise
            except Exception as exc:
                if not rest:
                    raise
                self.drop(runner)
                log.warning("%s failed (%s); using %s", title(runner), first_line(exc), title(rest[0]))
                continue
            self.timings = runner.timings
            return out

    def drop(self, runner: Runner) -> None:
        """Take a failed runner out for good (until set_fast or set_backend asks for it again)."""
        if runner is self.first:
            self.first = None
        else:
            self.torch = self.eager


def title(runner: Runner) -> str:
    """How the log names a runner: "openvino", "torch fused", "torch eager"."""
    return runner.name if runner.name == runner.backend else f"{runner.backend} {runner.name}"
