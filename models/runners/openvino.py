"""The OpenVINO runner: the recipe's two stages (models.recipe.Recipe.x0 and .decode) traced into OpenVINO
graphs (models.openvino: conversion, cache, int8, settings) and run on the CPU in the engine's dtype.

The graphs bake the networks' weights in (LoRA weights included), so a new adapter, LoRA or weight converts
again (or reads the cache) at the next frame; prompt, seed, strength and polarity are graph inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from models import openvino as ov_graphs
from models.errors import UserError
from models.options import PRECISIONS
from models.recipe import Prepared, Timings
from models.runners import Runner, fit_frames


class OpenVINORunner(Runner):
    name = "openvino"
    backend = "openvino"
    live_weights = False  # the graphs hold the weights: a LoRA weight change converts again

    def __init__(self, engine, precision: str = "fp32", progress: Callable[[str], None] | None = None):
        super().__init__()
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
        self.engine, self.precision, self.progress = engine, precision, progress
        self.threads = torch.get_num_threads()
        self.config: dict = {}  # the CPU plugin's settings the graphs were compiled with
        self._key = None  # (size, with adapter, weights) the compiled graphs belong to
        self._revision = None  # the Prepared revision whose inputs self._inputs holds
        self._inputs: list[np.ndarray] = []

    def invalidate(self) -> None:
        """The networks or their weights changed: convert (or read the cache) at the next frame."""
        self._key = None

    def prepare(self) -> None:
        """Convert (or read from the cache) and compile the two graphs for the engine's size, adapter and weights."""
        e = self.engine
        adapters = len(e.adapters)
        control = adapters > 0
        # LoRA weights live in 0-d tensors outside the state dicts; the graphs bake them in, so they are part of the key
        weights = ov_graphs.fingerprint(e.unet, *(e.controlnets or [None])) + "".join(
            f";{n}={w:g}" for n, w in sorted(e.lora_weights.items()))
        key = (e.size, adapters, weights)
        if key == self._key:
            return
        common = {"size": e.size, "timestep": float(e.timestep), "b": e.one_step.b}
        names = ov_graphs.FRAME_INPUTS if control else ov_graphs.FRAME_INPUTS[:3]
        example = ov_graphs.frame_inputs(e.prepared(), None, adapters)
        source = None  # the fp32 recipe to trace, made once and only on a cache miss

        def recipe():
            nonlocal source
            if source is None:
                source = ov_graphs.full_precision(e)
            return source

        frame_key = {**common, "graph": "frame", "weights": weights, "control": control if adapters < 2 else adapters}
        model = ov_graphs.cached({**frame_key, "precision": "fp32"},
                                 lambda: ov_graphs.convert(ov_graphs.Stage(recipe(), "x0"), example, names),
                                 self.progress, "ControlNet + UNet")
        if self.precision == "int8":
            fp32_model = model

            def int8():
                if self.progress:
                    self.progress("Quantizing for OpenVINO int8 (calibration frames)...")
                return ov_graphs.quantize(fp32_model, ov_graphs.calibration_inputs(e))

            model = ov_graphs.cached({**frame_key, "precision": "int8", "calibration": 4}, int8, self.progress,
                                     "int8 ControlNet + UNet")
        self.config = ov_graphs.compile_config(ov_graphs.inference_precision(e.dtype), self.threads)
        self.frame = ov_graphs.compile_graph(model, self.config)
        x0 = self.frame.infer(example)[0]
        decoder = ov_graphs.cached({**common, "graph": "decode", "weights": ov_graphs.fingerprint(e.vae), "scale": e.vae_scale},
                                   lambda: ov_graphs.convert(ov_graphs.Stage(recipe(), "decode"), [x0], ("x0",)),
                                   self.progress, "decoder")
        self.decode = ov_graphs.compile_graph(decoder, self.config)
        self._key, self._revision = key, None

    @property
    def label(self) -> str:
        """What the readouts say: "openvino int8", else the precision the graphs compute in ("openvino bf16")."""
        hint = self.config.get("INFERENCE_PRECISION_HINT", "f32")
        return f"openvino {'int8' if self.precision == 'int8' else {'f32': 'fp32'}.get(hint, hint)}"

    def step(self, p: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB control images, one per adapter -> uint8 RGB image, one frame of the recipe on OpenVINO.
        Strengths are graph inputs: a new one (of any adapter) is a new input, never a conversion."""
        adapters = len(self.engine.adapters)
        if self._key is None or self._key[:2] != (p.size, adapters):
            self.prepare()
        t0 = time.perf_counter()
        if p.revision != self._revision:
            self._inputs = ov_graphs.frame_inputs(p, frames, adapters)
            self._revision = p.revision
        elif adapters:
            self._inputs[3] = fit_frames(frames, p.size, adapters)
        t1 = time.perf_counter()
        x0 = self.frame.infer(self._inputs)[0]
        t2 = time.perf_counter()
        image = self.decode.infer([x0])[0]
        t3 = time.perf_counter()
        out = np.rint(image).astype(np.uint8)  # half to even, as the recipe's torch.round
        t4 = time.perf_counter()
        self.timings = Timings(*(1000 * d for d in (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)),
                               extra={"backend": self.label})
        return out


def make(engine, kind: str = "openvino", precision: str = "fp32", progress: Callable[[str], None] | None = None,
         **options) -> OpenVINORunner:
    return OpenVINORunner(engine, precision, progress)
