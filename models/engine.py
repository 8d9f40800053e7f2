"""The one-step SDXS engine: prepare once, then one short recipe per frame.

Per frame: control image -> ControlNet + UNet at the single timestep -> x0 -> tiny VAE decode -> image,
written once as a module (models.recipe.Recipe) that a chain of runners (models.runners: OpenVINO, fused,
CUDA graphs, compile, eager) runs. Everything that does not change between frames (prompt embeddings, noise,
timestep, scheduler coefficients, adapter placement, strengths) is prepared when it changes, not per frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from models.adapter_list import AdapterList
from models.device import pick_device, pick_dtype
from models.errors import UserError, first_line
from models.loading import Adapter, BaseModel, load_base
from models.lora import LoraStack, parse_lora_arg
from models.options import STRENGTH, check_size, parse_adapter_arg
from models.recipe import OneStep, Prepared, Recipe, Timings
from models.runners import Runner, make_runner
from models.runners.eager import EagerRunner
from models.transition import Transition

log = logging.getLogger(__name__)


class Engine(AdapterList):
    """Turns a uint8 RGB control image into a uint8 RGB image, one UNet pass per frame."""

    def __init__(self, base: BaseModel, device: str = "auto", dtype: str = "auto", adapter: Adapter | None = None):
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.base = base
        self.unet = self._place(base.unet)
        self.vae = self._place(base.vae)
        self.text_encoder = base.text_encoder.to(self.device, self.dtype).eval()
        self.tokenizer = base.tokenizer
        self.one_step = OneStep.from_scheduler(base.scheduler)
        self.timestep = self.one_step.timestep.to(self.device)
        self.vae_scale = float(getattr(self.vae.config, "scaling_factor", 1.0) or 1.0)
        self.latent_channels = int(self.unet.config.in_channels)
        self.profile = False
        self.timings = Timings()
        self.adapters: list[Adapter] = []  # the control adapters in order; each frame has one condition image per adapter
        self.controlnets: list = []  # their networks on this engine's device and dtype, in the same order
        self._strengths: dict[str, float] = {}  # adapter name -> its strength (conditioning scale), 0..2
        self._override: tuple[float, ...] | None = None  # this frame's strengths from step(strengths=...), if any
        self.revision = 0  # bumped by every change that changes the output: the one "did it change?" key
        self._control_scale = STRENGTH
        self._prompt: str | None = None
        self._seed = 0
        self._size = base.native_size
        self._noise: torch.Tensor | None = None  # fp32 noise of the seed and size in _noise_key
        self._noise_key: tuple[int, int] | None = None
        self._prepared: Prepared | None = None
        self._target_embeds: torch.Tensor | None = None  # the prompt's own embeddings; a transition shows others on the way
        self._shown_noise: torch.Tensor | None = None  # the noise the current Prepared was made from
        self.transition = Transition(0.0)  # prompt and seed changes glide over transition.seconds (0: jump)
        self.loras = LoraStack(self.unet, self.text_encoder, base.spec)  # LoRA styles, each with a live weight
        self.recipe: Recipe | None = None  # the one-step recipe every runner runs; made anew with the adapter
        # the runner chain (models.runners), tried in order: a backend runner (OpenVINO), torch's runner of
        # the `fast` kind, and eager, which always works, last
        self._openvino: Runner | None = None
        self.backend = "torch"  # who runs the frames: torch, or the first runner's backend (openvino)
        self._eager_runner = EagerRunner(self)
        self._torch_runner: Runner = self._eager_runner
        self._compiler = "inductor"  # torch.compile's backend for the compile runner
        self._told_openvino_loras = False  # the notice that LoRA weight changes reconvert is given once
        self.set_adapter(adapter)

    @classmethod
    def load(cls, model: str, controlnet: str | Sequence[str] | None = None, device: str = "auto", dtype: str = "auto",
             progress=None, loras: Sequence[str] = ()) -> Engine:
        """Load a base model (and adapters given as SPEC[:STRENGTH], one or a list, and LoRAs given as
        SPEC[:WEIGHT]) by spec straight into the chosen dtype."""
        dev = pick_device(device)
        dt = pick_dtype(dtype, dev)
        args = [controlnet] if isinstance(controlnet, str) else list(controlnet or ())
        wanted = [parse_adapter_arg(a) for a in args]  # every bad strength before anything loads
        base = load_base(model, dt, progress)
        engine = cls(base, device, dtype)
        for spec, strength in wanted:
            engine.add_adapter(spec, strength, progress)
        for arg in loras:
            engine.add_lora(*parse_lora_arg(arg), progress=progress)
        return engine

    # ---- preparation: runs only when something changes -------------------------------------------

    def _place(self, module):
        module = module.to(self.device, self.dtype).eval().requires_grad_(False)
        return module.to(memory_format=torch.channels_last)

    def set_scheduler(self, scheduler) -> None:
        """Take the single step from another scheduler (DDPM, LCM, ...) than the checkpoint's own."""
        self.one_step = OneStep.from_scheduler(scheduler)
        self.timestep = self.one_step.timestep.to(self.device)
        self._noise_key = None  # k_in and a are applied to the noise when it is prepared
        self._new_recipe()

    def _new_recipe(self) -> None:
        """The networks of the recipe changed (adapter, scheduler, LoRA layers): every runner builds anew."""
        self.recipe = Recipe(self.unet, self.vae, self.controlnets, self.one_step, self.vae_scale).to(self.device)
        self._override = None  # per-frame strengths were for the adapters before
        self.revision += 1
        for runner in self.runners:  # compiled code, graphs, OpenVINO's conversion: made again at the next frame
            runner.invalidate()

    @property
    def runners(self) -> list[Runner]:
        """The chain step() tries in order: the backend's runner, torch's runner of the fast kind, eager."""
        chain = [self._openvino] if self._openvino is not None else []
        chain.append(self._torch_runner)
        if self._torch_runner is not self._eager_runner:
            chain.append(self._eager_runner)
        return chain

    @property
    def fast(self) -> str:
        """The kind of torch's runner: eager, fused, graphs or compile."""
        return self._torch_runner.name

    def set_fast(self, mode: str = "auto", backend: str = "inductor") -> str:
        """Pick torch's runner (models.runners): auto, eager, fused, graphs or compile. Returns the kind used."""
        from models.runners.fused import default_mode

        mode = default_mode(self.device) if mode == "auto" else mode
        if (mode, backend) == (self.fast, self._compiler):
            return mode  # already so: keep what it has captured or compiled
        runner = self._eager_runner
        if mode != "eager":
            try:
                runner = make_runner(mode, self, backend=backend)
            except UserError:
                raise
            except Exception as exc:  # a runner whose library is missing or broken here: the chain goes on without it
                log.warning("torch %s unavailable (%s); using torch eager", mode, first_line(exc))
        self._torch_runner, self._compiler = runner, backend
        return runner.name

    def set_backend(self, backend: str = "torch", precision: str = "fp32", progress=None) -> str:
        """Pick who runs CPU frames (models.openvino): torch, openvino, or auto (OpenVINO where it measured
        faster here); converts now (progress(text) reports it). Returns the backend used."""
        from models.openvino import pick_backend

        self._openvino = None  # auto times torch's own step against OpenVINO
        self._openvino = pick_backend(self, backend, precision, progress)
        self.backend = self.runners[0].backend
        self.revision += 1  # the two agree within 1/255, not exactly: render the frame again
        return self.backend

    def warm_up(self, frame: np.ndarray | None = None) -> None:
        """Run one frame now (compiling and capturing where the runner does), so the first live frame is quick.
        The frame is not shown, so a prompt or seed set afterwards does not glide from it (models.transition)."""
        shown, self.transition = self.transition, Transition(0.0, self.transition.clock)
        try:
            self.step(np.full((self._size, self._size, 3), 255, np.uint8) if frame is None else frame)
        finally:
            self.transition = shown

    def add_lora(self, spec: str, weight: float = 1.0, progress=None) -> str:
        """Load a LoRA (hub id, folder or file; models.lora) at a weight. Returns the name set_lora_weight takes."""
        name = self.loras.add(spec, weight, progress)
        self._layers_changed()
        if name in self.loras.on_text and self._prompt is not None:
            self.set_prompt(self._prompt, again=True)
        return name

    def remove_lora(self, name: str) -> None:
        """Take a LoRA (by name or spec) out; its layers go, so runners build anew as after add_lora."""
        if self.loras.remove(name) and self._prompt is not None:
            self.set_prompt(self._prompt, again=True)
        self._layers_changed()

    def set_lora_weight(self, name: str, weight: float) -> None:
        """Applies on the next frame: a fill of the buffer the layers (and a captured graph) read; nothing is rebuilt."""
        if weight == self.loras.weights.get(name):
            return
        if self.loras.set_weight(name, weight) and self._prompt is not None:
            self.set_prompt(self._prompt, again=True)
        self._weights_changed()

    def _layers_changed(self) -> None:
        """A LoRA's layers came or went: compiled code and graphs are made again (models.runners)."""
        self._weights_changed()
        self._new_recipe()

    def _weights_changed(self) -> None:
        """The UNet's effective weights changed (a LoRA added, removed or reweighted): the output changes, and
        runners that bake the weights in (OpenVINO's graphs) are made again (or read from the cache); torch's
        runners read a LoRA's weight from a buffer at every frame, so a new weight rebuilds nothing there."""
        self.revision += 1
        for runner in self.runners:
            if runner.live_weights:
                continue
            if not self._told_openvino_loras:
                log.warning("OpenVINO bakes LoRA weights into its graphs: each new weight converts again; "
                            "use --backend torch for live LoRA sliders")
                self._told_openvino_loras = True
            runner.invalidate()

    @property
    def lora_weights(self) -> dict[str, float]:
        return self.loras.weights

    @property
    def lora_specs(self) -> dict[str, str]:
        """name -> the spec each LoRA was added by, in the order added."""
        return dict(self.loras.specs)

    @property
    def gliding(self) -> bool:
        """True while a prompt or seed transition runs (each frame differs even for a still input)."""
        return self.transition.active

    @torch.inference_mode()
    def set_prompt(self, prompt: str, again: bool = False) -> None:
        """Encode the prompt once; later frames reuse the embeddings (again: encode anew, after a text-encoder LoRA changed)."""
        if prompt == self._prompt and not again:
            return
        ids = self.tokenizer(
            prompt, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        self._target_embeds = self.text_encoder(ids.to(self.device))[0].to(self.dtype)
        self._prompt = prompt
        self.revision += 1

    @property
    def prompt(self) -> str | None:
        return self._prompt

    @property
    def size(self) -> int:
        return self._size

    @property
    def native_size(self) -> int:
        """The size the base model was trained at."""
        return self.base.native_size

    def set_size(self, size: int) -> None:
        if check_size(size) != self._size:
            self._size = size
            self.revision += 1

    @property
    def seed(self) -> int:
        return self._seed

    def set_seed(self, seed: int) -> None:
        if int(seed) != self._seed:
            self._seed = int(seed)
            self.revision += 1

    @property
    def control_scale(self) -> float:
        """The first adapter's strength (without adapters, the one set_adapter and use_adapter give)."""
        return self._strengths[self.adapters[0].name] if self.adapters else self._control_scale

    @control_scale.setter
    def control_scale(self, scale: float) -> None:
        """Every adapter's strength at once (and the one set_adapter and use_adapter give)."""
        scale = float(scale)
        self._control_scale = scale
        if any(v != scale for v in self._strengths.values()):
            self._strengths = dict.fromkeys(self._strengths, scale)
            self.revision += 1

    def prepared(self) -> Prepared:
        """This frame's inputs besides the condition: the same value as before unless a setting changed (prompt,
        seed, size, strength, adapter, LoRA) or a transition is on its way (models.transition)."""
        if self._target_embeds is None:
            self.set_prompt("")
        if self._noise_key != (self._seed, self._size):  # fixed noise per seed and size, drawn as diffusers draws it
            h = self._size // 8
            g = torch.Generator("cpu").manual_seed(self._seed)
            self._noise = torch.randn((1, self.latent_channels, h, h), generator=g, dtype=torch.float32)
            self._noise_key = (self._seed, self._size)
        embeds, noise = self.transition(self._target_embeds, self._noise)
        p = self._prepared
        if p is not None and p.revision == self.revision and embeds is p.embeds and noise is self._shown_noise:
            return p
        if p is not None and p.revision == self.revision:
            self.revision += 1  # a step of a running transition: the output changes though no setting did
        unet_in = (noise * self.one_step.k_in).to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
        adapters = self.adapters  # in the order of recipe.controlnets
        scales = self._override or tuple(self._strengths[a.name] for a in adapters)
        strengths = torch.tensor(scales, dtype=torch.float32, device=self.device).reshape(len(adapters))
        inverts = torch.tensor([float(a.info.inverted) for a in adapters], dtype=torch.float32, device=self.device)
        active = any(v != 0 for v in scales)
        self._prepared = Prepared(embeds, unet_in, (noise * self.one_step.a).to(self.device), strengths, inverts,
                                  active, self._size, self.revision, tuple(float(v) for v in scales))
        self._shown_noise = noise
        return self._prepared

    # ---- per frame ----------------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self, frame: np.ndarray | Sequence[np.ndarray],
             strengths: Sequence[float | None] | None = None) -> np.ndarray:
        """uint8 RGB control image (any size: centre-cropped and resized), or a list of one per adapter in
        self.adapters' order -> uint8 RGB image (size x size). strengths: for this frame only, one per adapter
        (None keeps its own strength), such as the live loop's keep-colours strength for a colour-hint adapter.

        The first runner of the chain (self.runners) runs the frame. One that fails (compilers, graph capture
        and converters fail in many ways) is logged once with its reason and dropped, and the next runs the
        same frame; eager, last, always works. A UserError is the user's to fix and goes up as it is."""
        frames = self.frames(frame)
        self._set_override(strengths)
        p = self.prepared()
        while True:
            runner, *rest = self.runners
            try:
                out = runner.step(p, frames)
            except UserError:
                raise
            except Exception as exc:
                if not rest:
                    raise
                self._drop(runner)
                log.warning("%s failed (%s); using %s", _title(runner), first_line(exc), _title(rest[0]))
                continue
            self.timings = runner.timings
            return out

    def _drop(self, runner: Runner) -> None:
        """Take a failed runner out of the chain for good (until set_fast or set_backend asks for it again)."""
        if runner is self._openvino:
            self._openvino = None
        else:
            self._torch_runner = self._eager_runner
        self.backend = self.runners[0].backend

    @torch.inference_mode()
    def _eager(self, frame: np.ndarray) -> np.ndarray:
        """One frame on the eager runner whatever the chain, with stage timings when profile is on."""
        out = self._eager_runner.step(self.prepared(), self.frames(frame))
        self.timings = self._eager_runner.timings
        return out


def _title(runner: Runner) -> str:
    """How the log names a runner: "openvino", "torch fused", "torch eager"."""
    return runner.name if runner.name == runner.backend else f"{runner.backend} {runner.name}"
