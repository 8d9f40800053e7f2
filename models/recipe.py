"""The one-step recipe, written once: condition -> ControlNet + UNet at the single step -> x0 -> tiny decoder.

Every runner (models.runners: eager, fused, CUDA graphs, compile, OpenVINO) runs, captures, compiles or
traces this one module, and the trainer (training.objective) calls the same module on a batch, with
gradients (nanoGPT's one forward), so polarity, strength and x0 are done one way, here. Everything that
does not change between frames (prompt embeddings, noise terms, strengths) comes in as a tensor made by
Engine.prepared(); nothing per frame is a Python number baked into the module, so a captured graph or a
traced model takes a new strength or polarity as an input, without being made again.

    Recipe.forward(unet_in, embeds, x0_noise, frames=None, strengths=None, inverts=None) -> image
      unet_in    (1, C, h, w)      the UNet's input k_in * noise, channels-last; its dtype is the dtype every stage runs in
      embeds     (1, tokens, width) prompt embeddings, same dtype
      x0_noise   (1, C, h, w) fp32 the noise term of x0, a * noise
      frames     (adapters, size, size, 3) uint8 RGB, one condition image per adapter (fitted to size by the runner)
      strengths  (adapters,) fp32   adapter i's residuals are scaled by strengths[i]; the adapters' scaled
                                    residuals are summed (diffusers' multi-ControlNet); 0 for all = the base model
      inverts    (adapters,) fp32   1 flips adapter i's condition (it was trained on white lines on black), 0 keeps it
      image      (size, size, 3) uint8 RGB on the module's device
    frames, strengths and inverts are None (or the module holds no adapters) for the text-only model.

The stages are methods too (x0, decode, to_uint8), for runners that time them (eager with Engine.profile)
or split them into two graphs (OpenVINO converts x0 and decode separately). Under them is the batched core
the trainer calls: predict (conditions as (B, 3, H, W) floats in [0, 1], already in each adapter's polarity)
-> x0 (B, C, h, w), and images (x0 -> (B, 3, H, W) in [-1, 1]).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


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
class Settings:
    """Everything the picture depends on besides the frame, as one value: equal settings, the same picture.
    The engine prepares a frame's inputs from it (Engine.prepare) and keeps them while it compares equal."""

    prompt: str = ""  # the prompt as encoded (styles already applied)
    seed: int = 0  # the noise's seed
    size: int = 512  # output size in pixels
    strengths: tuple[float, ...] = ()  # each adapter's strength (conditioning scale), in the recipe's order
    loras: tuple[tuple[str, float], ...] = ()  # (name, weight) of each LoRA, in the order added
    recipe: Any = field(default=None, repr=False)  # the Recipe (compared by identity: new networks, a new recipe)
    backend: str = "torch"  # who runs the frames: the backends agree within 1/255, not exactly


@dataclass(frozen=True)
class Prepared:
    """The recipe's inputs besides the frame, made by a pure step from Settings and shared by every frame
    while they compare equal; every runner reads this one value (the tensors are Recipe.forward's inputs).
    Two Prepared compare equal when they were made from equal settings at the same point of a transition."""

    settings: Settings  # what it was made from
    scales: tuple[float, ...]  # this frame's strengths as numbers (the settings' or step(strengths=...)'s)
    glide: Any = None  # where a running transition is (models.transition.Transition.stamp); None when still
    embeds: torch.Tensor = field(default=None, compare=False)  # prompt embeddings, (1, tokens, width), the engine's dtype
    unet_in: torch.Tensor = field(default=None, compare=False)  # the UNet's input k_in * noise, channels-last
    x0_noise: torch.Tensor = field(default=None, compare=False)  # the noise term of x0, a * noise, fp32
    strengths: torch.Tensor = field(default=None, compare=False)  # (adapters,) fp32 on the device: scales as a tensor
    inverts: torch.Tensor = field(default=None, compare=False)  # (adapters,) fp32 on the device: 1 flips a condition

    @property
    def size(self) -> int:
        """Output size in pixels."""
        return self.settings.size

    @property
    def active(self) -> bool:
        """An adapter is loaded and some strength is not 0; eager skips the adapters otherwise (same image)."""
        return any(v != 0 for v in self.scales)

    @property
    def loras(self) -> tuple[tuple[str, float], ...]:
        """(name, weight) of each LoRA: runners that bake weights in (OpenVINO) key their graphs on it."""
        return self.settings.loras

    @property
    def scale(self) -> float:
        """The first adapter's strength as a number (0 without an adapter), for code that reports it."""
        return self.scales[0] if self.scales else 0.0

    @property
    def invert(self) -> bool:
        """Whether the first adapter's condition is flipped."""
        return bool(self.inverts.numel() and self.inverts[0] > 0.5)


@dataclass
class Timings:
    """Milliseconds of the last frame, by stage (filled when Engine.profile is on; total always)."""

    condition: float = 0.0
    unet: float = 0.0  # ControlNet + UNet
    decode: float = 0.0
    output: float = 0.0
    total: float = 0.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """The stages that were timed (non-zero), ms by name: what the live loop reports."""
        return {k: float(v) for k, v in vars(self).items() if isinstance(v, (int, float)) and v}


class Recipe(nn.Module):
    """One frame of one-step diffusion with control adapters; the inputs are described in the module docstring."""

    def __init__(self, unet: nn.Module, vae: nn.Module, controlnets: Sequence[nn.Module], one_step: OneStep,
                 vae_scale: float, sources: Sequence = ()):
        super().__init__()
        self.unet = unet  # the name stays "unet": OpenVINO's int8 keeps layers by name (unet.up_blocks...)
        self.vae = vae  # only its decoder runs
        self.controlnets = nn.ModuleList(controlnets)  # zero or more, in the order of Engine.adapters
        self.register_buffer("timestep", one_step.timestep.clone(), persistent=False)  # moves with .to(device)
        self.one_step = one_step  # the scheduler's single step (k_in and a are applied to the noise when prepared)
        self.b = float(one_step.b)  # x0's model-output coefficient: fixed by the scheduler, so a constant here
        self.vae_scale = float(vae_scale)
        # the folders the weights were read from: the base model's, then each adapter's (OpenVINO reads fp32 copies)
        self.sources = tuple(sources)

    def forward(self, unet_in, embeds, x0_noise, frames=None, strengths=None, inverts=None) -> torch.Tensor:
        x0 = self.x0(unet_in, embeds, x0_noise, frames, strengths, inverts)  # 1-3. condition, ControlNets + UNet, x0
        return self.to_uint8(self.decode(x0))  # 4-5. tiny decoder, then uint8 HWC (still on the device)

    def x0(self, unet_in, embeds, x0_noise, frames=None, strengths=None, inverts=None, only=None) -> torch.Tensor:
        """The denoised latent (fp32) of this frame. only: the indices of the adapters to run (eager leaves out
        those at strength 0, whose residuals would add zeros); None runs them all, as a graph must."""
        conds = None if frames is None else [self.condition(frames[i], inverts[i], unet_in.dtype)
                                             for i in range(len(self.controlnets))]
        return self.predict(unet_in, embeds, x0_noise, conds, strengths, only)

    @staticmethod
    def condition(frame: torch.Tensor, invert: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """uint8 HWC -> (1, 3, H, W) in [0, 1], flipped where invert is 1: |1 - c| flips, |0 - c| keeps (no branch)."""
        c = frame.permute(2, 0, 1)[None].to(dtype) / 255
        return (invert - c).abs().contiguous(memory_format=torch.channels_last)

    def predict(self, unet_in, embeds, x0_noise, conds=None, strengths=None, only=None) -> torch.Tensor:
        """The batched core, frames and training alike: unet_in (B, C, h, w), embeds (B, tokens, width), x0_noise
        (B, C, h, w) fp32, conds one (B, 3, H, W) in [0, 1] per adapter (in its polarity) -> x0 (B, C, h, w) fp32."""
        down, mid = self.residuals(unet_in, embeds, conds, strengths, only)
        eps = self.unet(unet_in, self.timestep, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid, return_dict=False)[0]
        return x0_noise + self.b * eps.float()  # in fp32: the two terms nearly cancel

    def residuals(self, unet_in, embeds, conds, strengths, only=None):
        """Each adapter's residuals times its strength, summed; (None, None) without adapters."""
        down = mid = None
        if conds is None:
            return down, mid
        for i, net in enumerate(self.controlnets):
            if only is not None and i not in only:
                continue
            # at scale 1, then times a tensor: a new strength is a new input, never a new graph
            d, m = net(unet_in, self.timestep, encoder_hidden_states=embeds, controlnet_cond=conds[i],
                       conditioning_scale=1.0, return_dict=False)
            d, m = [r * strengths[i] for r in d], m * strengths[i]
            down = d if down is None else [a + r for a, r in zip(down, d)]  # several adapters add up (diffusers' sum)
            mid = m if mid is None else mid + m
        return down, mid

    def images(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 (B, C, h, w) -> the tiny decoder's images (B, 3, H, W) in [-1, 1] (not clamped), fp32."""
        dtype = next(self.vae.parameters()).dtype  # the decoder's own (a trace casts the whole module to fp32)
        return self.vae.decode((x0 / self.vae_scale).to(dtype), return_dict=False)[0].float()

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 -> (size, size, 3) float image in [0, 255] of the first in the batch, not yet rounded."""
        return ((self.images(x0)[0] + 1) * 127.5).clamp(0, 255).permute(1, 2, 0)

    @staticmethod
    def to_uint8(image: torch.Tensor) -> torch.Tensor:
        return image.round().to(torch.uint8).contiguous()
