"""The OpenVINO runner: the recipe's two stages (models.recipe.Recipe.x0 and .decode) traced into OpenVINO
graphs (models.openvino: conversion, cache, int8, settings) and run on the CPU in the recipe's dtype.

The graphs bake the networks' weights in (LoRA weights included), so a new recipe (adapter, LoRA layers),
LoRA weight (prepared.loras) or size converts again (or reads the cache) at the next frame; prompt, seed,
strength and polarity are graph inputs. `pick` is what Engine.set_backend calls: this runner, or None for torch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from models import openvino as ov_graphs
from models.conditions import sketch_frames
from models.errors import UserError, first_line
from models.options import PRECISIONS
from models.recipe import Prepared, Recipe, Settings, Timings
from models.runners import Runner, fit_frames

log = logging.getLogger(__name__)


class OpenVINORunner(Runner):
    name = "openvino"
    backend = "openvino"
    live_weights = False  # the graphs hold the weights: a LoRA weight change converts again

    def __init__(self, precision: str = "fp32", progress: Callable[[str], None] | None = None,
                 prepare: Callable[[Settings], Prepared] | None = None):
        super().__init__()
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
        self.precision, self.progress = precision, progress
        self.prepare_inputs = prepare  # settings -> Prepared (Engine.prepare): int8's calibration inputs
        self.threads = torch.get_num_threads()
        self.config: dict = {}  # the CPU plugin's settings the graphs were compiled with
        self._built = None  # (recipe, size, loras) the compiled graphs belong to
        self._held: Prepared | None = None  # the Prepared whose inputs self._inputs holds
        self._inputs: list[np.ndarray] = []
        self._told = False  # the notice that LoRA weight changes reconvert is given once

    def prepare(self, recipe: Recipe, p: Prepared) -> None:
        """Convert (or read from the cache) and compile the two graphs for this recipe, size and LoRA weights."""
        built = (recipe, p.size, p.loras)
        if built == self._built:
            return
        if self._built is not None and self._built[0] is recipe and self._built[2] != p.loras and not self._told:
            log.warning("OpenVINO bakes LoRA weights into its graphs: each new weight converts again; "
                        "use --backend torch for live LoRA sliders")
            self._told = True
        adapters = len(recipe.controlnets)
        control = adapters > 0
        # LoRA weights live in 0-d tensors outside the state dicts; the graphs bake them in, so they are part of the key
        weights = ov_graphs.fingerprint(recipe.unet, *(recipe.controlnets or [None])) + "".join(
            f";{n}={w:g}" for n, w in sorted(p.loras))
        common = {"size": p.size, "timestep": float(recipe.timestep), "b": recipe.b}
        names = ov_graphs.FRAME_INPUTS if control else ov_graphs.FRAME_INPUTS[:3]
        example = ov_graphs.frame_inputs(p, None, adapters)
        dtype = next(recipe.unet.parameters()).dtype
        source = None  # the fp32 recipe to trace, made once and only on a cache miss

        def traced():
            nonlocal source
            if source is None:
                source = ov_graphs.full_precision(recipe)
            return source

        frame_key = {**common, "graph": "frame", "weights": weights, "control": control if adapters < 2 else adapters}
        model = ov_graphs.cached({**frame_key, "precision": "fp32"},
                                 lambda: ov_graphs.convert(ov_graphs.Stage(traced(), "x0"), example, names),
                                 self.progress, "ControlNet + UNet")
        if self.precision == "int8":
            fp32_model = model

            def int8():
                if self.progress:
                    self.progress("Quantizing for OpenVINO int8 (calibration frames)...")
                return ov_graphs.quantize(fp32_model, calibration_inputs(self.prepare_inputs, p.settings, adapters))

            model = ov_graphs.cached({**frame_key, "precision": "int8", "calibration": 4}, int8, self.progress,
                                     "int8 ControlNet + UNet")
        self.config = ov_graphs.compile_config(ov_graphs.inference_precision(dtype), self.threads)
        self.frame = ov_graphs.compile_graph(model, self.config)
        x0 = self.frame.infer(example)[0]
        decoder = ov_graphs.cached({**common, "graph": "decode", "weights": ov_graphs.fingerprint(recipe.vae),
                                    "scale": recipe.vae_scale},
                                   lambda: ov_graphs.convert(ov_graphs.Stage(traced(), "decode"), [x0], ("x0",)),
                                   self.progress, "decoder")
        self.decode = ov_graphs.compile_graph(decoder, self.config)
        self._built, self._held = built, None

    @property
    def label(self) -> str:
        """What the readouts say: "openvino int8", else the precision the graphs compute in ("openvino bf16")."""
        hint = self.config.get("INFERENCE_PRECISION_HINT", "f32")
        return f"openvino {'int8' if self.precision == 'int8' else {'f32': 'fp32'}.get(hint, hint)}"

    def step(self, recipe: Recipe, p: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB control images, one per adapter -> uint8 RGB image, one frame of the recipe on OpenVINO.
        Strengths are graph inputs: a new one (of any adapter) is a new input, never a conversion."""
        self.prepare(recipe, p)
        adapters = len(recipe.controlnets)
        t0 = time.perf_counter()
        if p != self._held:
            self._inputs = ov_graphs.frame_inputs(p, frames, adapters)
            self._held = p
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


def make(kind: str = "openvino", precision: str = "fp32", progress: Callable[[str], None] | None = None,
         prepare: Callable[[Settings], Prepared] | None = None, **options) -> OpenVINORunner:
    return OpenVINORunner(precision, progress, prepare)


def calibration_inputs(prepare: Callable[[Settings], Prepared], settings: Settings, adapters: int,
                       count: int = 24) -> list[list[np.ndarray]]:
    """Frame-graph inputs the way the model meets them: sketches (a circle moving along a line, as in
    models.conditions.sketch_frames, also mirrored and upside down), CALIBRATION_PROMPTS, seeds 0.. and
    strengths 0.5-1, each prepared from these settings by the engine's pure step (the engine is not touched)."""
    sketches = sketch_frames(max(2, count // 3), settings.size)
    sketches = [s for img in sketches for s in (img, img[:, ::-1], img[::-1])]
    prompts = ov_graphs.CALIBRATION_PROMPTS
    out = []
    for i in range(count):
        scale = 0.5 + 0.5 * (i % 3) / 2
        s = dataclasses.replace(settings, prompt=prompts[i % len(prompts)], seed=i, strengths=(scale,) * adapters)
        out.append(ov_graphs.frame_inputs(prepare(s), [sketches[i % len(sketches)]], adapters))
    return out


def pick(backend: str, precision: str, recipe: Recipe, prepared: Prepared, prepare: Callable[[Settings], Prepared],
         torch_step: Callable[[np.ndarray], np.ndarray], progress: Callable[[str], None] | None = None):
    """The OpenVINO runner for this recipe, or None for torch. openvino: always where it can run; auto: on a CPU,
    where it measured faster than torch (torch_step, the engine's own) at load. What cannot run gets a one-line
    notice and torch."""
    device = recipe.timestep.device
    if not ov_graphs.wanted(backend, precision, device):
        return None
    try:
        runner = OpenVINORunner(precision, progress, prepare)
        runner.prepare(recipe, prepared)
    except UserError:
        raise
    except Exception as exc:  # the converter fails in many ways: torch keeps working
        log.warning("OpenVINO conversion failed (%s); using torch", first_line(exc))
        return None
    if backend == "auto":
        ours, theirs = measure(torch_step, lambda f: runner.step(recipe, prepared, [f]), prepared.size)
        if theirs >= ours:
            log.info("OpenVINO %.0f ms vs torch %.0f ms a frame: using torch", theirs, ours)
            return None
        log.info("OpenVINO %.0f ms vs torch %.0f ms a frame: using OpenVINO", theirs, ours)
    return runner


def measure(torch_step: Callable, openvino_step: Callable, size: int, frames: int = 3) -> tuple[float, float]:
    """Fastest ms of a few frames on torch and on OpenVINO, one warm-up each, taken in turns, so that a
    machine that gets busier or quieter meanwhile weighs on both alike."""
    frame = sketch_frames(1, size)[0]
    steps = (torch_step, openvino_step)
    times: tuple[list[float], list[float]] = ([], [])
    with torch.inference_mode():
        for step in steps:
            step(frame)
        for i in range(2 * frames):
            which = (i + i // 2) % 2  # torch, OpenVINO, OpenVINO, torch, ...
            t = time.perf_counter()
            steps[which](frame)
            times[which].append(1000 * (time.perf_counter() - t))
    return min(times[0]), min(times[1])
