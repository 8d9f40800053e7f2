"""The fused runners: the recipe on static buffers (fused), captured as one CUDA graph per frame shape
(graphs), and compiled by torch.compile first (compile).

At batch 1 a frame is a few hundred small kernels, so launch overhead, not arithmetic, bounds the frame
rate on a big GPU. So: every per-frame input lives in a static device buffer (control image, prompt
embeddings, noise, strengths, polarity); pre- and post-processing run on the device inside the same
graph; the uint8 frame moves through pinned host memory with non-blocking copies; and the whole frame is
captured once as a CUDA graph and replayed. `compile` adds torch.compile (max-autotune, no inner CUDA
graphs) of the whole recipe, with its cache kept between runs. On a CPU, graphs and compile run without a
graph (fused is the CPU's fast path).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from models.errors import UserError
from models.recipe import Prepared, Recipe, Timings
from models.runners import Runner, fit_frames

KINDS = ("fused", "graphs", "compile")


def default_mode(device: torch.device) -> str:
    return "graphs" if device.type == "cuda" else "eager"


def enable_compile_cache() -> None:
    """Keep inductor's compiled kernels and autotuning results between runs."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sdxs-live" / "inductor"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
    import torch._inductor.config as cfg

    cfg.fx_graph_cache = True


class FusedRunner(Runner):
    """Runs a Recipe on static buffers. Build it with Engine.set_fast(mode)."""

    def __init__(self, mode: str = "fused", backend: str = "inductor"):
        super().__init__()
        if mode not in KINDS:
            raise UserError(f"unknown fast mode {mode!r}: use eager, {', '.join(KINDS)}")
        self.name, self.compiler = mode, backend
        if mode == "compile":
            torch.compile(torch.nn.Identity(), backend=backend)  # a compiler that is not there fails here, not later
        self.source: Recipe | None = None  # the recipe the buffers, graph and compiled code were made for
        self.held: Prepared | None = None  # the prepared inputs the static buffers hold
        self.graph = None

    def _build(self, recipe: Recipe, p: Prepared) -> None:
        """A new recipe (new networks): buffers, graph and compiled code are made again, from it."""
        self.source, self.recipe = recipe, recipe
        self.cuda = recipe.timestep.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        if self.name == "compile":
            enable_compile_cache()
            opts = dict(backend=self.compiler, dynamic=False)
            if self.compiler == "inductor":
                opts["mode"] = "max-autotune-no-cudagraphs" if self.cuda else "default"
                if not self.cuda:  # weights become constants, so oneDNN convolutions get pre-packed weights;
                    import torch._inductor.config as cfg  # not with LoRAs: their live weight would become one too

                    cfg.freezing = not p.loras
            self.recipe = torch.compile(recipe, **opts)
        self._shape_key = None  # (size, adapters): buffers and graph belong to one shape and adapter count
        self.graph = None

    # ---- static buffers ---------------------------------------------------------------------------------

    def _alloc(self, size: int, adapters: int, p: Prepared) -> None:
        dev, control = p.unet_in.device, adapters > 0
        self.frames = torch.zeros((adapters, size, size, 3), dtype=torch.uint8, device=dev) if control else None
        self.unet_in = torch.zeros_like(p.unet_in)
        self.x0_noise = torch.zeros_like(p.x0_noise)
        self.embeds = torch.zeros_like(p.embeds)
        self.strengths = torch.zeros_like(p.strengths) if control else None
        self.inverts = torch.zeros_like(p.inverts) if control else None
        pin = self.cuda
        self.host_in = torch.zeros((max(adapters, 1), size, size, 3), dtype=torch.uint8, pin_memory=pin)
        self.host_out = torch.zeros((size, size, 3), dtype=torch.uint8, pin_memory=pin)
        self.done = torch.cuda.Event() if self.cuda else None
        self.graph = None
        self.held = None

    def _refresh_inputs(self, p: Prepared) -> None:
        """Copy the prepared inputs into the static buffers when they changed (a fill: no new graph); a new
        strength of any adapter is such a fill."""
        if p == self.held:
            return
        self.unet_in.copy_(p.unet_in)
        self.x0_noise.copy_(p.x0_noise)
        self.embeds.copy_(p.embeds)
        if self.frames is not None:
            self.strengths.copy_(p.strengths)
            self.inverts.copy_(p.inverts)
        self.held = p

    def run(self) -> torch.Tensor:
        """One frame of the recipe on the static buffers only: what a graph captures."""
        return self.recipe(self.unet_in, self.embeds, self.x0_noise, self.frames, self.strengths, self.inverts)

    def _capture(self) -> None:
        """Warm up on a side stream (cuDNN autotuning, compilation), then capture one frame as a graph."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self.run()
        self.graph = graph

    # ---- per frame ------------------------------------------------------------------------------------------

    def step(self, recipe: Recipe, p: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        if recipe is not self.source:
            self._build(recipe, p)
        adapters = len(recipe.controlnets)
        if (p.size, adapters) != self._shape_key:
            self._alloc(p.size, adapters, p)
            self._shape_key = (p.size, adapters)
        self._refresh_inputs(p)
        if adapters:
            self.host_in.numpy()[...] = fit_frames(frames, p.size, adapters)
            self.frames.copy_(self.host_in, non_blocking=True)
        if self.cuda and self.name in ("graphs", "compile"):
            if self.graph is None:
                self._capture()
            self.graph.replay()
            out = self.out
        else:
            out = self.run()
        self.host_out.copy_(out, non_blocking=self.cuda)
        if self.cuda:
            self.done.record()
            self.done.synchronize()
        self.timings = Timings(total=1000 * (time.perf_counter() - t0), extra={"fast": self.name})
        return self.host_out.numpy().copy()


def make(kind: str, backend: str = "inductor", **options) -> FusedRunner:
    return FusedRunner(kind, backend)
