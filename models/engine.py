"""The one-step SDXS engine: prepare once, then one short recipe per frame.

Per frame: control image -> ControlNet + UNet at the single timestep -> x0 -> tiny VAE decode -> image.
Everything that does not change between frames (prompt embeddings, noise, timestep, scheduler
coefficients, adapter placement) is prepared when it changes, not per frame.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.conditions import fit_square
from models.device import pick_device, pick_dtype
from models.errors import UserError, first_line
from models.loading import Adapter, BaseModel, load_adapter, load_base
from models.lora import LoraStack, parse_lora_arg
from models.options import STRENGTH, check_size
from models.transition import Transition

log = logging.getLogger(__name__)


@dataclass
class OneStep:
    """The scheduler's single step as linear maps, read off the scheduler itself (Euler, DDPM, LCM, ...):
    UNet input = k_in * noise, and x0 = a * noise + b * model_output."""

    timestep: torch.Tensor
    k_in: float
    a: float
    b: float

    @classmethod
    def from_scheduler(cls, scheduler) -> OneStep:
        def fresh():
            s = copy.deepcopy(scheduler)
            s.set_timesteps(1, device="cpu")
            return s, s.timesteps[0]

        s, t = fresh()
        init = float(s.init_noise_sigma)
        k_in = float(s.scale_model_input(torch.full((1, 1, 1, 1), init), t).flatten()[0])

        def out(sample: float, model_output: float) -> float:
            s, t = fresh()
            s.scale_model_input(torch.zeros(1, 1, 1, 1), t)  # some schedulers start their step index here
            x = torch.full((1, 1, 1, 1), sample)
            return float(s.step(torch.full((1, 1, 1, 1), model_output), t, x).prev_sample.flatten()[0])

        zero = out(0.0, 0.0)
        return cls(t, k_in, (out(1.0, 0.0) - zero) * init, out(0.0, 1.0) - zero)


@dataclass(frozen=True)
class Prepared:
    """The recipe's inputs besides the frame, made when a setting changes and shared by every frame until
    the next change; the eager recipe and the fast path (models.fast) both read this one value."""

    embeds: torch.Tensor  # prompt embeddings, (1, tokens, width), the engine's dtype
    unet_in: torch.Tensor  # the UNet's input k_in * noise, channels-last, the engine's dtype
    x0_noise: torch.Tensor  # the noise term of x0, a * noise, fp32
    scale: float  # control strength (ControlNet conditioning scale); 0 skips the adapter
    invert: bool  # flip the condition: the adapter wants white lines on black
    revision: int  # Engine.revision when this was made


@dataclass
class Timings:
    """Milliseconds of the last frame, by stage (filled when Engine.profile is on; total always)."""

    condition: float = 0.0
    unet: float = 0.0  # ControlNet + UNet
    decode: float = 0.0
    output: float = 0.0
    total: float = 0.0
    extra: dict = field(default_factory=dict)


class Engine:
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
        self.adapter: Adapter | None = None
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
        self.fast = "eager"
        self._fast_path = None
        self.backend = "torch"  # who runs CPU frames (models.openvino): torch or openvino
        self._openvino = None
        self._told_openvino_loras = False  # the notice that LoRA weight changes reconvert is given once
        self.set_adapter(adapter)

    @classmethod
    def load(cls, model: str, controlnet: str | None = None, device: str = "auto", dtype: str = "auto", progress=None,
             loras: Sequence[str] = ()) -> Engine:
        """Load a base model (and adapter, and LoRAs given as SPEC[:WEIGHT]) by spec straight into the chosen dtype."""
        dev = pick_device(device)
        dt = pick_dtype(dtype, dev)
        base = load_base(model, dt, progress)
        adapter = load_adapter(controlnet, dt, progress) if controlnet else None
        engine = cls(base, device, dtype, adapter)
        for arg in loras:
            engine.add_lora(*parse_lora_arg(arg), progress=progress)
        return engine

    # ---- preparation: runs only when something changes -------------------------------------------

    def _place(self, module):
        module = module.to(self.device, self.dtype).eval().requires_grad_(False)
        return module.to(memory_format=torch.channels_last)

    def set_adapter(self, adapter: Adapter | None) -> None:
        self.adapter = adapter
        self.controlnet = self._place(adapter.net) if adapter else None
        self.revision += 1
        if self._fast_path is not None:  # a new network needs new compiled code and graphs
            self.set_fast(self.fast)
        if self._openvino is not None:  # and new OpenVINO graphs (converted or read from the cache at the next frame)
            self._openvino.invalidate()

    def set_fast(self, mode: str = "auto", backend: str = "inductor") -> str:
        """Pick the per-frame path (models.fast): auto, eager, fused, graphs or compile. Returns the mode used."""
        from models.fast import FastPath, default_mode

        mode = default_mode(self.device) if mode == "auto" else mode
        self._fast_path = None if mode == "eager" else FastPath(self, mode, backend)
        self.fast = mode
        return mode

    def set_backend(self, backend: str = "torch", precision: str = "fp32", progress=None) -> str:
        """Pick who runs CPU frames (models.openvino): torch, openvino, or auto (OpenVINO where it measured
        faster here); converts now (progress(text) reports it). Returns the backend used."""
        from models.openvino import pick_backend

        self._openvino, self.backend = None, "torch"  # auto times torch's own step against OpenVINO
        self._openvino = pick_backend(self, backend, precision, progress)
        self.backend = "torch" if self._openvino is None else "openvino"
        self.revision += 1  # the two agree within 1/255, not exactly: render the frame again
        return self.backend

    def warm_up(self, frame: np.ndarray | None = None) -> None:
        """Run one frame now (compiling and capturing where the fast path does), so the first live frame is quick."""
        self.step(np.full((self._size, self._size, 3), 255, np.uint8) if frame is None else frame)

    def add_lora(self, spec: str, weight: float = 1.0, progress=None) -> str:
        """Load a LoRA (hub id, folder or file; models.lora) at a weight. Returns the name set_lora_weight takes."""
        name = self.loras.add(spec, weight, progress)
        self._weights_changed()
        if name in self.loras.on_text and self._prompt is not None:
            self.set_prompt(self._prompt, again=True)
        if self._fast_path is not None:  # new layers need new compiled code and graphs
            self.set_fast(self.fast)
        return name

    def remove_lora(self, name: str) -> None:
        """Take a LoRA (by name or spec) out; its layers go, so the fast path is built anew as after add_lora."""
        if self.loras.remove(name) and self._prompt is not None:
            self.set_prompt(self._prompt, again=True)
        self._weights_changed()
        if self._fast_path is not None:
            self.set_fast(self.fast)

    def set_lora_weight(self, name: str, weight: float) -> None:
        """Applies on the next frame: a fill of the buffer the layers (and a captured graph) read; nothing is rebuilt."""
        if weight == self.loras.weights.get(name):
            return
        if self.loras.set_weight(name, weight) and self._prompt is not None:
            self.set_prompt(self._prompt, again=True)
        self._weights_changed()

    def _weights_changed(self) -> None:
        """The UNet's effective weights changed (a LoRA added, removed or reweighted): the output changes, and
        OpenVINO's graphs, which bake the weights in, are converted again (or read from the cache)."""
        self.revision += 1
        if self._openvino is not None:
            if not self._told_openvino_loras:
                log.warning("OpenVINO bakes LoRA weights into its graphs: each new weight converts again; "
                            "use --backend torch for live LoRA sliders")
                self._told_openvino_loras = True
            self._openvino.invalidate()

    @property
    def lora_weights(self) -> dict[str, float]:
        return self.loras.weights

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
        return self._control_scale

    @control_scale.setter
    def control_scale(self, scale: float) -> None:
        if float(scale) != self._control_scale:
            self._control_scale = float(scale)
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
        invert = self.adapter is not None and self.adapter.info.inverted
        self._prepared = Prepared(embeds, unet_in, (noise * self.one_step.a).to(self.device), self._control_scale,
                                  invert, self.revision)
        self._shown_noise = noise
        return self._prepared

    # ---- per frame ----------------------------------------------------------------------------------

    def _lap(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @torch.inference_mode()
    def step(self, frame: np.ndarray) -> np.ndarray:
        """uint8 RGB control image (any size: centre-cropped and resized) -> uint8 RGB image (size x size).

        On the fast path a failure (compilers and graph capture fail in many ways) is logged once and the
        engine goes on with the eager recipe, which always works; the same for OpenVINO, then torch."""
        if self._openvino is not None:
            try:
                return self._openvino.step(frame)
            except UserError:
                raise
            except Exception as exc:
                log.warning("OpenVINO failed (%s); using torch", first_line(exc))
                self._openvino, self.backend = None, "torch"
        if self._fast_path is None:
            return self._eager(frame)
        t0 = time.perf_counter()
        try:
            out = self._fast_path.step(frame)
        except UserError:
            raise
        except Exception as exc:
            log.warning("fast path %s failed (%s); using the eager recipe", self.fast, first_line(exc))
            self.set_fast("eager")
            return self._eager(frame)
        self.timings = Timings(total=1000 * (time.perf_counter() - t0), extra={"fast": self.fast})
        return out

    def _eager(self, frame: np.ndarray) -> np.ndarray:
        p = self.prepared()
        prof = self.profile
        t0 = time.perf_counter()

        # 1. condition in: uint8 HWC on the host -> [0, 1] NCHW on the device, in the adapter's polarity
        cond = None
        use_control = self.controlnet is not None and p.scale != 0
        if use_control:
            img = fit_square(frame, self._size)
            cond = torch.from_numpy(img).to(self.device).permute(2, 0, 1)[None].to(self.dtype) / 255
            cond = (1 - cond if p.invert else cond).contiguous(memory_format=torch.channels_last)
        t1 = self._lap() if prof else t0

        # 2. ControlNet + UNet, one pass at the single timestep
        down = mid = None
        if use_control:
            down, mid = self.controlnet(
                p.unet_in, self.timestep, encoder_hidden_states=p.embeds, controlnet_cond=cond,
                conditioning_scale=p.scale, return_dict=False,
            )
        eps = self.unet(
            p.unet_in, self.timestep, encoder_hidden_states=p.embeds,
            down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False,
        )[0]
        t2 = self._lap() if prof else t1

        # 3. x0 from the model output (in fp32: the two terms nearly cancel), then the tiny decoder
        x0 = p.x0_noise + self.one_step.b * eps.float()
        image = self.vae.decode((x0 / self.vae_scale).to(self.dtype), return_dict=False)[0]
        t3 = self._lap() if prof else t2

        # 4. image out: [-1, 1] -> uint8 HWC, one copy back to the host
        out = ((image[0].float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        t4 = time.perf_counter()
        if prof:
            self.timings = Timings(*(1000 * d for d in (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)))
        else:
            self.timings = Timings(total=1000 * (t4 - t0))
        return out
