"""Validation grids through the app's own engine: one row per example, condition | target | output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.imageio import grid, write_rgb
from models.loading import Adapter, AdapterInfo, BaseModel


def engine_for(base: BaseModel, net: Any, info: AdapterInfo, device: torch.device, dtype: torch.dtype):
    """An Engine over the (shared, frozen) base and a copy of the adapter being trained: the engine makes
    what it is given frozen, channels-last and of its dtype, which the training copy must not become. The
    copy is rebuilt from config and weights, leaving behind accelerate's autocast and fp32-output wrappers."""
    from diffusers import ControlNetModel

    from models.device import dtype_name
    from models.engine import Engine

    frozen = ControlNetModel.from_config(net.config)
    frozen.load_state_dict(net.state_dict())
    frozen.to(device)
    where = "cpu" if device.type == "cpu" else str(device)  # accelerate's multi-CPU runs say cpu:RANK
    return Engine(base, where, dtype_name(dtype), Adapter(frozen, info, Path("."), "training"))


def render(engine: Any, examples: list[dict], size: int, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    """The engine's output for each example's condition and caption, with fixed noise."""
    engine.set_size(size)
    engine.set_seed(seed)
    engine.control_scale = scale
    # the engine takes canvas-style input (black on white) and inverts it for white_on_black adapters,
    # so conditions already drawn white on black go in inverted
    invert = engine.adapter is not None and engine.adapter.info.inverted
    outs = []
    for ex in examples:
        engine.set_prompt(ex["caption"])
        outs.append(engine.step(255 - ex["condition"] if invert else ex["condition"]))
    return outs


def validate(base: BaseModel, net: Any, info: AdapterInfo, examples: list[dict], path: Path,
             device: torch.device, dtype: torch.dtype, seed: int = 0) -> Path:
    """Render the examples with the current adapter and write the grid PNG."""
    engine = engine_for(base, net, info, device, dtype)
    outputs = render(engine, examples, info.resolution, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_rgb(path, grid([[ex["condition"], ex["image"], out] for ex, out in zip(examples, outputs)]))
