"""The stand-in runner: a frame of a given cost without a network, for tests and the frame-path benchmark.

It sleeps `cost_ms` (releasing the GIL, as a runner waiting on its device does) and returns a deterministic
picture: the first condition image fitted to the frame size and tinted (one SIMD pass) by a colour read off the prepared
inputs, so the picture follows the input, the prompt, the seed and the strengths as a real one does, while
the real Engine around it (settings, adapters, preparation, change detection) runs as it always does:

    engine = models.tiny.tiny_engine(cost_ms=6.0)     # or Engine(...).use_runner(StandInRunner(cost_ms=6.0))

It keeps what the latest step got (frames, strengths) and how many steps it ran, for tests to read.
"""

from __future__ import annotations

import time
import zlib

import cv2
import numpy as np

from models.conditions import fit_square
from models.recipe import Prepared, Recipe, Timings
from models.runners import Runner


class StandInRunner(Runner):
    name = "standin"
    backend = "standin"

    def __init__(self, cost_ms: float = 0.0):
        super().__init__()
        self.cost_ms = float(cost_ms)  # what a frame costs, in milliseconds (slept)
        self.steps = 0  # frames run so far
        self.last_frames: list[np.ndarray] = []  # the latest step's condition image per adapter, as given
        self.last_strengths: list[float] = []  # the latest step's strength per adapter
        self._tint: tuple[Prepared | None, tuple] = (None, (1.0, 1.0, 1.0, 0.0))

    def tint(self, p: Prepared) -> tuple[float, float, float, float]:
        """Per-channel factors (0.6..1) made from the prepared inputs (the same for equal ones)."""
        if self._tint[0] is not p:
            parts = [t.detach().flatten()[:256].float().cpu().numpy().tobytes() for t in (p.x0_noise, p.embeds[:, 1:])]
            parts.append(np.asarray(p.scales, np.float32).tobytes())
            self._tint = (p, (*(0.6 + 0.4 * (zlib.crc32(b) % 1000) / 999 for b in parts), 0.0))  # moderate colours
        return self._tint[1]

    def step(self, recipe: Recipe, p: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        self.last_frames, self.last_strengths = list(frames), list(p.scales)
        out = cv2.multiply(fit_square(frames[0], p.size), self.tint(p), dtype=cv2.CV_8U)  # one SIMD pass
        left = self.cost_ms / 1000 - (time.perf_counter() - t0)
        if left > 0:
            time.sleep(left)
        self.steps += 1
        self.timings = Timings(total=1000 * (time.perf_counter() - t0))
        return out


def make(kind: str = "standin", cost_ms: float = 0.0, **options) -> StandInRunner:
    return StandInRunner(cost_ms)
