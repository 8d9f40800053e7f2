"""The one-step SDXS engine: prepare once, then one short recipe per frame.

Per frame: control image -> ControlNet + UNet at the single timestep -> x0 -> tiny VAE decode -> image,
written once as a module (models.recipe.Recipe) that a chain of runners (models.runners: OpenVINO, fused,
CUDA graphs, compile, eager) runs. The engine's state is a value: `settings` (models.recipe.Settings: prompt,
seed, size, strengths, LoRA weights, the recipe, the backend) says everything the picture depends on besides
the frame; `prepare(settings)` is the pure step that turns it into the frame's inputs (prompt embeddings,
noise terms, strengths), and `prepared()` keeps that value while the settings compare equal. No counter is
kept by hand: a change is a different value.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from models.adapter_list import AdapterList
from models.device import pick_device, pick_dtype
from models.loading import Adapter, BaseModel, load_adapters, load_base
from models.lora import LoraStack, parse_lora_arg
from models.options import STRENGTH, check_size, parse_adapter_arg
from models.recipe import OneStep, Prepared, Recipe, Settings, Timings
from models.runners import Runner
from models.runners.chain import Chain
from models.transition import Transition

log = logging.getLogger(__name__)
CACHED = 8  # prompt embeddings and noises kept by value (a transition follows its target by identity)


class Engine(AdapterList):
    """Turns a uint8 RGB control image into a uint8 RGB image, one UNet pass per frame."""

    def __init__(self, base: BaseModel, device: str = "auto", dtype: str = "auto", adapter: Adapter | None = None,
                 adapters_from: Callable[..., list[Adapter]] = load_adapters):
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.base = base
        self.unet = self._place(base.unet)
        self.vae = self._place(base.vae)
        self.text_encoder = base.text_encoder.to(self.device, self.dtype).eval()
        self.one_step = OneStep.from_scheduler(base.scheduler)
        self.adapters_from = adapters_from  # (spec, dtype, progress) -> adapters: models.loading's, or tiny ones in tests
        self.adapters: list[Adapter] = []  # the control adapters in order; each frame has one condition image per adapter
        self.loras = LoraStack(self.unet, self.text_encoder, base.spec)  # LoRA styles, each with a live weight
        self.transition = Transition(0.0)  # prompt and seed changes glide over transition.seconds (0: jump)
        self.recipe = self._recipe()  # the one-step recipe every runner runs; made anew when the networks change
        self._chosen = Settings(size=base.native_size)  # prompt, seed, size, strengths as the setters left them
        self._default_strength = STRENGTH  # what set_adapter and use_adapter give
        self._chain = Chain()  # the runners (models.runners.chain)
        self._cache: dict[tuple, torch.Tensor] = {}  # ("text", prompt, text LoRAs) / ("noise", seed, size) -> tensor
        self._prepared: Prepared | None = None
        self.set_adapter(adapter)

    @classmethod
    def load(cls, model: str, controlnet: str | Sequence[str] | None = None, device: str = "auto", dtype: str = "auto",
             progress=None, loras: Sequence[str] = ()) -> Engine:
        """Load a base model (and adapters given as SPEC[:STRENGTH], one or a list, and LoRAs given as
        SPEC[:WEIGHT]) by spec straight into the chosen dtype."""
        args = [controlnet] if isinstance(controlnet, str) else list(controlnet or ())
        wanted = [parse_adapter_arg(a) for a in args]  # every bad strength before anything loads
        engine = cls(load_base(model, pick_dtype(dtype, pick_device(device)), progress), device, dtype)
        for spec, strength in wanted:
            engine.add_adapter(spec, strength, progress)
        for arg in loras:
            engine.add_lora(*parse_lora_arg(arg), progress=progress)
        return engine

    # ---- the state: one value ----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """Everything the picture depends on besides the frame, as one value (equal: the same picture)."""
        return dataclasses.replace(self._chosen, loras=tuple(self.loras.weights.items()), recipe=self.recipe,
                                   backend=self.backend)

    def _place(self, module):
        module = module.to(self.device, self.dtype).eval().requires_grad_(False)
        return module.to(memory_format=torch.channels_last)

    def _recipe(self) -> Recipe:
        sources = (self.base.path, *(a.path for a in self.adapters))
        return Recipe(self.unet, self.vae, [a.net for a in self.adapters], self.one_step, self.vae_scale,
                      sources).to(self.device)

    @property
    def vae_scale(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 1.0) or 1.0)

    def set_scheduler(self, scheduler) -> None:
        """Take the single step from another scheduler (DDPM, LCM, ...) than the checkpoint's own."""
        self.one_step = OneStep.from_scheduler(scheduler)
        self.recipe = self._recipe()

    @property
    def prompt(self) -> str:
        return self._chosen.prompt

    def set_prompt(self, prompt: str) -> None:
        """Encoded when a frame first needs it, then kept (by prompt and the text encoder's LoRA weights)."""
        self._chosen = dataclasses.replace(self._chosen, prompt=str(prompt))

    @property
    def seed(self) -> int:
        return self._chosen.seed

    def set_seed(self, seed: int) -> None:
        self._chosen = dataclasses.replace(self._chosen, seed=int(seed))

    @property
    def size(self) -> int:
        return self._chosen.size

    def set_size(self, size: int) -> None:
        self._chosen = dataclasses.replace(self._chosen, size=check_size(size))

    @property
    def native_size(self) -> int:
        """The size the base model was trained at."""
        return self.base.native_size

    # ---- who runs the frames -----------------------------------------------------------------------

    @property
    def runners(self) -> list[Runner]:
        """The chain step() tries in order: the backend's runner, torch's runner of the fast kind, eager."""
        return self._chain.runners

    @property
    def backend(self) -> str:
        """Who runs the frames: torch, or the first runner's backend (openvino, standin)."""
        return self._chain.backend

    @property
    def fast(self) -> str:
        """The kind of torch's runner: eager, fused, graphs or compile."""
        return self._chain.torch.name

    @property
    def profile(self) -> bool:
        """Time each stage of a frame (the eager runner; others time the whole frame)."""
        return self._chain.eager.profile

    @profile.setter
    def profile(self, on: bool) -> None:
        self._chain.eager.profile = bool(on)

    @property
    def timings(self) -> Timings:
        """The last frame's milliseconds, by stage."""
        return self._chain.timings

    def set_fast(self, mode: str = "auto", backend: str = "inductor") -> str:
        """Pick torch's runner (models.runners): auto, eager, fused, graphs or compile. Returns the kind used."""
        return self._chain.set_fast(mode, backend, self.device)

    def set_backend(self, backend: str = "torch", precision: str = "fp32", progress=None) -> str:
        """Pick who runs CPU frames: torch, openvino, or auto (OpenVINO where it measured faster here); converts
        now (progress(text) reports it). Returns the backend used."""
        from models.runners.openvino import pick

        self._chain.first = None  # auto times torch's own step against OpenVINO
        self._chain.first = pick(backend, precision, self.recipe, self.prepare(self.settings), self.prepare, self.step,
                                 progress)
        return self.backend

    def use_runner(self, runner: Runner | None) -> Engine:
        """Run frames on this runner first (a stand-in of given cost: models.runners.standin); None: torch's."""
        self._chain.first = runner
        return self

    def warm_up(self, frame: np.ndarray | None = None) -> None:
        """Run one frame now (compiling and capturing where the runner does), so the first live frame is quick.
        The frame is not shown, so a prompt or seed set afterwards does not glide from it (models.transition)."""
        shown, self.transition = self.transition, Transition(0.0, self.transition.clock)
        try:
            self.step(np.full((self.size, self.size, 3), 255, np.uint8) if frame is None else frame)
        finally:
            self.transition = shown

    # ---- LoRAs ---------------------------------------------------------------------------------------

    def add_lora(self, spec: str, weight: float = 1.0, progress=None) -> str:
        """Load a LoRA (hub id, folder or file; models.lora) at a weight. Returns the name set_lora_weight takes."""
        name = self.loras.add(spec, weight, progress)
        self.recipe = self._recipe()  # new layers: compiled code and graphs are made again
        return name

    def remove_lora(self, name: str) -> None:
        """Take a LoRA (by name or spec) out; its layers go, so runners build anew as after add_lora."""
        self.loras.remove(name)
        self.recipe = self._recipe()

    def set_lora_weight(self, name: str, weight: float) -> None:
        """Applies on the next frame: a fill of the buffer the layers (and a captured graph) read; nothing is
        rebuilt on torch (OpenVINO bakes weights in and converts again)."""
        if weight != self.loras.weights.get(name):
            self.loras.set_weight(name, weight)

    @property
    def lora_weights(self) -> dict[str, float]:
        return self.loras.weights

    @property
    def lora_specs(self) -> dict[str, str]:
        """name -> the spec each LoRA was added by, in the order added."""
        return dict(self.loras.specs)

    # ---- preparation: a pure step from the settings ------------------------------------------------

    @property
    def gliding(self) -> bool:
        """True while a prompt or seed transition runs (each frame differs even for a still input)."""
        return self.transition.active

    def _kept(self, key: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor for this key, made once and kept (the same object while kept: transitions follow identity)."""
        if key not in self._cache:
            if len(self._cache) >= CACHED:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = make()
        return self._cache[key]

    @torch.inference_mode()
    def _targets(self, s: Settings) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompt's own embeddings and the seed's fp32 noise (drawn as diffusers draws it) for these settings."""
        def text() -> torch.Tensor:
            tok = self.base.tokenizer
            ids = tok(s.prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids
            return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

        def noise() -> torch.Tensor:
            g = torch.Generator("cpu").manual_seed(s.seed)
            shape = (1, int(self.unet.config.in_channels), s.size // 8, s.size // 8)
            return torch.randn(shape, generator=g, dtype=torch.float32)

        on_text = tuple((n, w) for n, w in s.loras if n in self.loras.on_text)
        return (self._kept(("text", s.prompt, on_text), text),
                self._kept(("noise", s.seed, s.size), noise))

    def _made(self, s: Settings, embeds: torch.Tensor, noise: torch.Tensor, scales: tuple[float, ...],
              glide=None) -> Prepared:
        one = s.recipe.one_step
        unet_in = (noise * one.k_in).to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
        n = len(scales)
        inverts = [float(a.info.inverted) for a in self.adapters]
        return Prepared(s, scales, glide, embeds, unet_in, (noise * one.a).to(self.device),
                        torch.tensor(scales, dtype=torch.float32, device=self.device).reshape(n),
                        torch.tensor(inverts, dtype=torch.float32, device=self.device).reshape(n))

    def prepare(self, settings: Settings) -> Prepared:
        """The frame's inputs for these settings (as `settings` makes them; another prompt, seed or strength
        replaced in it): a pure step, equal settings give equal inputs, and the engine is not changed."""
        return self._made(settings, *self._targets(settings), settings.strengths)

    def prepared(self, strengths: Sequence[float | None] | None = None) -> Prepared:
        """This frame's inputs: the same value as before while the settings, this frame's strengths (step's
        strengths=) and where a transition is (models.transition) compare equal."""
        s = self.settings
        scales = self._scales(strengths)
        embeds, noise = self.transition(*self._targets(s))
        p = self._prepared
        if p is None or (p.settings, p.scales, p.glide) != (s, scales, self.transition.stamp):
            p = self._prepared = self._made(s, embeds, noise, scales, self.transition.stamp)
        return p

    # ---- per frame ----------------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self, frame: np.ndarray | Sequence[np.ndarray],
             strengths: Sequence[float | None] | None = None) -> np.ndarray:
        """uint8 RGB control image (any size: centre-cropped and resized), or a list of one per adapter in
        self.adapters' order -> uint8 RGB image (size x size). strengths: for this frame only, one per adapter
        (None keeps its own strength), such as the live loop's keep-colours strength for a colour-hint adapter.

        The first runner of the chain (models.runners.chain) runs the frame; one that fails is logged once
        with its reason and dropped, and the next runs the same frame; eager, last, always works."""
        frames = self.frames(frame)
        return self._chain.run(self.recipe, self.prepared(strengths), frames)

    @torch.inference_mode()
    def eager(self, frame: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """One frame on the eager runner whatever the chain, with stage timings when profile is on."""
        runner = self._chain.eager
        out = runner.step(self.recipe, self.prepared(), self.frames(frame))
        self._chain.timings = runner.timings
        return out
