"""Runners: the ways a frame of the one recipe (models.recipe.Recipe) is run on a device.

Each runner is one file here with one class that subclasses Runner: `step(prepared, frame) -> image` runs
one frame (one condition image per adapter), `invalidate()` drops what was built from the networks (a captured graph, compiled or converted
code) after they changed. The engine keeps a chain of runners, fastest first with eager last, and goes down
it with one logged reason when a runner fails (Engine.step); `make_runner(kind, engine, ...)` builds one by name.

    chain: [backend runner (Engine.set_backend: OpenVINO)] + [torch's runner of Engine.fast] + [eager]

A runner reads engine.recipe (models.recipe.Recipe) and the Prepared tensors, and never bakes a strength or
polarity in: they are inputs. One that runs outside torch sets `backend` to its name, and `live_weights =
False` if it bakes the weights in (then a LoRA weight change invalidates it too).
"""

from __future__ import annotations

import importlib

import numpy as np

from models.conditions import fit_square
from models.errors import UserError
from models.recipe import Prepared, Timings

# kind -> the module in this package that builds it; a kind whose module has its own name needs no entry
FILES = {"graphs": "fused", "compile": "fused"}


class Runner:
    """One way of running Engine.recipe. Subclasses set `name` and implement step (and invalidate, if they
    build anything from the networks)."""

    name = "runner"  # its kind: what the log and Engine.fast say
    backend = "torch"  # who runs it: what Engine.backend says (torch, openvino)
    live_weights = True  # reads the networks' weights at every frame (torch); False: bakes them in (OpenVINO)

    def __init__(self) -> None:
        self.timings = Timings()  # the last frame's, read by the engine after each step

    def step(self, prepared: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB control images, one per adapter in the engine's order (any size; the runner fits them to
        prepared.size; Engine.frames makes the list) -> uint8 RGB image."""
        raise NotImplementedError

    def invalidate(self) -> None:
        """The networks changed (an adapter, a LoRA's layers or, for runners that bake them, its weight):
        whatever was built from them is made again at the next frame."""


def fit_frames(frames: list[np.ndarray] | np.ndarray, size: int, count: int) -> np.ndarray:
    """(count, size, size, 3) uint8: each adapter's condition image fitted to size (models.conditions.fit_square),
    an image shared by several adapters fitted once (a single array, or a list shorter than count: the last
    serves the rest)."""
    if isinstance(frames, np.ndarray):
        frames = [frames]
    out = np.empty((count, size, size, 3), np.uint8)
    done: dict[int, int] = {}
    for i in range(count):
        frame = frames[i] if i < len(frames) else frames[-1]
        if id(frame) in done:
            out[i] = out[done[id(frame)]]
        else:
            out[i] = fit_square(frame, size)
            done[id(frame)] = i
    return out


def make_runner(kind: str, engine, **options) -> Runner:
    """The runner of this kind for the engine: models/runners/<module>.py's make(engine, kind, **options).
    options are what Engine.set_fast passes every runner (backend: torch.compile's); a runner ignores the rest."""
    name = FILES.get(kind, kind)
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise  # the runner's own import failed: the caller's fallback says why
        raise UserError(f"unknown runner {kind!r}: no models/runners/{name}.py") from None
    return module.make(engine, kind, **options)
