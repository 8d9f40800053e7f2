"""The eager runner: the recipe called stage by stage, as written. Always works, so it ends every chain."""

from __future__ import annotations

import time

import numpy as np
import torch

from models.recipe import Prepared, Recipe, Timings
from models.runners import Runner, fit_frames


class EagerRunner(Runner):
    name = "eager"

    def __init__(self, profile: bool = False):
        super().__init__()
        self.profile = profile  # time each stage (synchronising the device between them); else only the total

    def step(self, recipe: Recipe, p: Prepared, frames: list[np.ndarray]) -> np.ndarray:
        device, prof = recipe.timestep.device, self.profile

        def lap() -> float:
            if prof and device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter()

        t0 = time.perf_counter()

        # 1. condition in: uint8 HWC on the host -> the device, one image per adapter; none when every strength
        # is 0, which skips the adapters (the recipe would add zeros: the same image, slower)
        n = len(recipe.controlnets)
        cond = torch.from_numpy(fit_frames(frames, p.size, n)).to(device) if p.active and n else None
        only = [i for i, v in enumerate(p.scales) if v != 0]  # an adapter at 0 adds zeros: left out, the same image
        only = None if len(only) == n else only
        t1 = lap() if prof else t0

        # 2-3. ControlNet + UNet at the single timestep, then x0
        x0 = recipe.x0(p.unet_in, p.embeds, p.x0_noise, cond, p.strengths, p.inverts, only)
        t2 = lap() if prof else t1

        # 4. the tiny decoder
        image = recipe.decode(x0)
        t3 = lap() if prof else t2

        # 5. image out: uint8 HWC, one copy back to the host
        out = recipe.to_uint8(image).cpu().numpy()
        t4 = time.perf_counter()
        if prof:
            self.timings = Timings(*(1000 * d for d in (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)))
        else:
            self.timings = Timings(total=1000 * (t4 - t0))
        return out


def make(kind: str = "eager", **options) -> EagerRunner:
    return EagerRunner()
