"""The fast path: the same one-step recipe with static buffers, run as one CUDA graph per frame shape.

At batch 1 a frame is a few hundred small kernels, so launch overhead, not arithmetic, bounds the frame
rate on a big GPU. So: every per-frame input lives in a static device buffer (control image, prompt
embeddings, noise, control scale, polarity); pre- and post-processing run on the device inside the same
graph; the uint8 frame moves through pinned host memory with non-blocking copies; and the whole frame is
captured once as a CUDA graph and replayed. `compile` adds torch.compile (max-autotune, no inner CUDA
graphs) with its cache kept between runs. Anything that fails falls back to the eager recipe.

Modes: eager (Engine's plain recipe), fused (static buffers, no graph: the CPU's fast path), graphs
(fused + a CUDA graph), compile (graphs + torch.compile).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from models.conditions import fit_square
from models.errors import UserError

MODES = ("auto", "eager", "fused", "graphs", "compile")
log = logging.getLogger(__name__)


def default_mode(device: torch.device) -> str:
    return "graphs" if device.type == "cuda" else "eager"


def enable_compile_cache() -> None:
    """Keep inductor's compiled kernels and autotuning results between runs."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sdxs-live" / "inductor"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
    import torch._inductor.config as cfg

    cfg.fx_graph_cache = True


class FastPath:
    """Runs an Engine's recipe on static buffers. Build it with Engine.set_fast(mode)."""

    def __init__(self, engine, mode: str, backend: str = "inductor"):
        if mode not in MODES[2:]:
            raise UserError(f"unknown fast mode {mode!r}: use {', '.join(MODES)}")
        self.engine = engine
        self.mode = mode
        self.cuda = engine.device.type == "cuda"
        self.unet, self.controlnet, self.decode = engine.unet, engine.controlnet, engine.vae.decode
        if mode == "compile":
            enable_compile_cache()
            opts = dict(backend=backend, dynamic=False)
            if backend == "inductor":
                opts["mode"] = "max-autotune-no-cudagraphs" if self.cuda else "default"
                if not self.cuda:  # weights become constants, so oneDNN convolutions get pre-packed weights;
                    import torch._inductor.config as cfg  # not with LoRAs: their live weight would become one too

                    cfg.freezing = not engine.loras.names
            self.unet = torch.compile(engine.unet, **opts)
            self.controlnet = torch.compile(engine.controlnet, **opts) if engine.controlnet is not None else None
            self.decode = torch.compile(engine.vae.decode, **opts)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        self._shape_key = None  # (size, with control): buffers and graph belong to one shape
        self._revision = None  # the engine revision whose prepared inputs the static buffers hold
        self.graph = None

    # ---- static buffers ---------------------------------------------------------------------------------

    def _alloc(self, size: int, control: bool, p) -> None:
        e, dev = self.engine, self.engine.device
        self.frame_in = torch.zeros((size, size, 3), dtype=torch.uint8, device=dev)
        self.unet_in = torch.zeros_like(p.unet_in)
        self.x0_noise = torch.zeros_like(p.x0_noise)
        self.embeds = torch.zeros_like(p.embeds)
        self.scale = torch.zeros((), dtype=e.dtype, device=dev)
        self.invert = torch.zeros((), dtype=e.dtype, device=dev)
        self.control = control
        pin = self.cuda
        self.host_in = torch.zeros((size, size, 3), dtype=torch.uint8, pin_memory=pin)
        self.host_out = torch.zeros((size, size, 3), dtype=torch.uint8, pin_memory=pin)
        self.done = torch.cuda.Event() if self.cuda else None
        self.graph = None
        self._revision = None

    def _refresh_inputs(self, p) -> None:
        """Copy the engine's prepared inputs (models.engine.Prepared) into the static buffers when they changed."""
        if p.revision == self._revision:
            return
        self.unet_in.copy_(p.unet_in)
        self.x0_noise.copy_(p.x0_noise)
        self.embeds.copy_(p.embeds)
        self.scale.fill_(p.scale)
        self.invert.fill_(1.0 if p.invert else 0.0)
        self._revision = p.revision

    # ---- the recipe, on static buffers only ---------------------------------------------------------------

    def recipe(self) -> torch.Tensor:
        e = self.engine
        # 1. condition: uint8 HWC -> [0, 1] NCHW in the adapter's polarity (|1 - c| inverts, |0 - c| keeps)
        down = mid = None
        if self.control:
            c = self.frame_in.permute(2, 0, 1)[None].to(e.dtype) / 255
            c = (self.invert - c).abs().contiguous(memory_format=torch.channels_last)
            # 2. ControlNet at scale 1, scaled here by a buffer, so a new strength needs no new graph
            down, mid = self.controlnet(self.unet_in, e.timestep, encoder_hidden_states=self.embeds,
                                        controlnet_cond=c, conditioning_scale=1.0, return_dict=False)
            down = [d * self.scale for d in down]
            mid = mid * self.scale
        eps = self.unet(self.unet_in, e.timestep, encoder_hidden_states=self.embeds,
                        down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False)[0]
        # 3. x0 and decode
        x0 = self.x0_noise + e.one_step.b * eps.float()
        image = self.decode((x0 / e.vae_scale).to(e.dtype), return_dict=False)[0]
        # 4. to uint8 HWC, still on the device
        return ((image[0].float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()

    def _capture(self) -> None:
        """Warm up on a side stream (cuDNN autotuning, compilation), then capture one frame as a graph."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.recipe()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self.recipe()
        self.graph = graph

    # ---- per frame ------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self, frame: np.ndarray) -> np.ndarray:
        e = self.engine
        p = e.prepared()
        control = e.controlnet is not None
        if (e.size, control) != self._shape_key:
            self._alloc(e.size, control, p)
            self._shape_key = (e.size, control)
        self._refresh_inputs(p)
        if control:
            self.host_in.numpy()[...] = fit_square(frame, e.size)
            self.frame_in.copy_(self.host_in, non_blocking=True)
        if self.cuda and self.mode in ("graphs", "compile"):
            if self.graph is None:
                self._capture()
            self.graph.replay()
            out = self.out
        else:
            out = self.recipe()
        self.host_out.copy_(out, non_blocking=self.cuda)
        if self.cuda:
            self.done.record()
            self.done.synchronize()
        return self.host_out.numpy().copy()
