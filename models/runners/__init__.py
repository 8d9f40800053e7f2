"""Runners: the ways a frame of the one recipe (models.recipe.Recipe) is run on a device.

Each runner is one file here with one class that subclasses Runner: `step(recipe, prepared, frames) -> image`
runs one frame of that recipe (one condition image per adapter) with those prepared inputs. A runner is
given everything it needs and never reads the engine: what it builds from the networks (a captured graph,
compiled or converted code) it keys on the recipe it was given (a new adapter, LoRA layer or scheduler is a
new Recipe) and, where it bakes weights in, on prepared.loras. The engine keeps a chain of runners, fastest
first with eager last, and goes down it with one logged reason when a runner fails (Engine.step);
`make_runner(kind, ...)` builds one by name.

    chain: [backend runner (Engine.set_backend: OpenVINO; Engine.use_runner: any)] + [torch's runner of Engine.fast] + [eager]

No strength or polarity is baked in: they are inputs. A runner that runs outside torch sets `backend` to
its name, and `live_weights = False` if it bakes the weights in.
"""

from __future__ import annotations

import importlib

import numpy as np

from models.conditions import fit_frames
from models.errors import UserError
from models.recipe import Prepared, Recipe, Timings

__all__ = ["Runner", "fit_frames", "make_runner"]

# kind -> the module in this package that builds it; a kind whose module has its own name needs no entry
FILES = {"graphs": "fused", "compile": "fused"}


class Runner:
    """One way of running a Recipe. Subclasses set `name` and implement step."""

    name = "runner"  # its kind: what the log and Engine.fast say
    backend = "torch"  # who runs it: what Engine.backend says (torch, openvino)
    live_weights = True  # reads the networks' weights at every frame (torch); False: bakes them in (OpenVINO)

    def __init__(self) -> None:
        self.timings = Timings()  # the last frame's, read by the engine after each step

    def step(self, recipe: Recipe, prepared: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB control images, one per adapter in the recipe's order (any size; the runner fits them to
        prepared.size; Engine.frames makes the list) -> uint8 RGB image (prepared.size square)."""
        raise NotImplementedError


def make_runner(kind: str, **options) -> Runner:
    """The runner of this kind: models/runners/<module>.py's make(kind, **options). options are what
    Engine.set_fast passes every runner (backend: torch.compile's); a runner ignores the rest."""
    name = FILES.get(kind, kind)
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise  # the runner's own import failed: the caller's fallback says why
        raise UserError(f"unknown runner {kind!r}: no models/runners/{name}.py") from None
    return module.make(kind, **options)
