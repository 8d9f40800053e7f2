"""Smooth changes: a new prompt blends from the old embeddings to the new, a new seed moves the noise along
a great circle (slerp), over `seconds`, so a live picture glides instead of jumping.

The engine draws its targets as before (embeddings per prompt, noise per seed) and asks a Transition,
once per frame, what to show on the way to them. A change in the middle of a glide starts the next glide
from where the picture is, not from the old end. Noise is slerped, not mixed linearly: a straight line
between two Gaussian draws passes through noise of too small a norm (a grey, washed-out picture halfway),
the great circle keeps the norm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return torch.lerp(a, b, t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two tensors seen as vectors; linear where they are nearly parallel."""
    af, bf = a.double().flatten(), b.double().flatten()
    cos = float(torch.dot(af, bf) / (af.norm() * bf.norm()).clamp_min(1e-12))
    omega = math.acos(max(-1.0, min(1.0, cos)))
    if omega < 1e-4:
        return lerp(a, b, t)
    s = math.sin(omega)
    return (math.sin((1 - t) * omega) / s * af + math.sin(t * omega) / s * bf).view(a.shape).to(a.dtype)


def ease(p: float) -> float:
    """Smoothstep: starts and ends gently, monotone in between."""
    p = min(max(p, 0.0), 1.0)
    return p * p * (3 - 2 * p)


class Glide:
    """Follows one target tensor: the target itself when it is still, a mix on the way after it changed."""

    def __init__(self, mix: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]):
        self.mix = mix
        self._from: torch.Tensor | None = None  # where the running glide started (None: still)
        self._to: torch.Tensor | None = None  # the target it goes to
        self._shown: torch.Tensor | None = None  # what the last frame used
        self._start = 0.0
        self.progress = 1.0  # 0..1 along the running glide; 1 when still

    @property
    def active(self) -> bool:
        return self._from is not None

    def follow(self, target: torch.Tensor, now: float, seconds: float) -> torch.Tensor:
        if target is not self._to:  # a new target (the engine makes a new tensor per prompt and per seed)
            glide = seconds > 0 and self._shown is not None and self._shown.shape == target.shape
            self._from = self._shown if glide else None
            self._to, self._start = target, now
        shown = target
        self.progress = 1.0
        if self._from is not None:
            p = (now - self._start) / seconds if seconds > 0 else 1.0
            if p >= 1:
                self._from = None
            else:
                self.progress = max(p, 0.0)
                shown = self.mix(self._from, target, ease(p))
        self._shown = shown
        return shown


class Transition:
    """The prompt and seed glides of one engine. `clock` gives seconds: wall time live, video time in stream."""

    def __init__(self, seconds: float = 0.0, clock: Callable[[], float] = time.perf_counter):
        self.seconds = float(seconds)  # how long a change takes; 0 jumps
        self.clock = clock
        self.embeds = Glide(lerp)
        self.noise = Glide(slerp)

    @property
    def active(self) -> bool:
        """True while a glide runs: every frame differs, even for a still input."""
        return self.embeds.active or self.noise.active

    @property
    def stamp(self) -> tuple | None:
        """Where the running glides are, as a value (each one's start and progress); None when still. Two frames
        with equal settings and equal stamps show the same picture."""
        if not self.active:
            return None
        return tuple((g._start, g.progress) if g.active else None for g in (self.embeds, self.noise))

    @property
    def progress(self) -> float:
        """0..1 along the slower of the running glides (1 when still): what the window can show."""
        return min(self.embeds.progress, self.noise.progress)

    def __call__(self, embeds: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings, noise) for this frame on the way to the targets."""
        now = self.clock()
        return self.embeds.follow(embeds, now, self.seconds), self.noise.follow(noise, now, self.seconds)
