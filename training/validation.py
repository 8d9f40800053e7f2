"""Validation grids through the app's own engine: one row per example, condition | target | output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.imageio import write_rgb
from models.loading import Adapter, AdapterInfo, BaseModel

DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def engine_for(base: BaseModel, net: Any, info: AdapterInfo, device: torch.device, dtype: torch.dtype):
    """An Engine over the (shared, frozen) base and a copy of the adapter being trained: the engine makes
    what it is given frozen, channels-last and of its dtype, which the training copy must not become. The
    copy is rebuilt from config and weights, leaving behind accelerate's autocast and fp32-output wrappers."""
    from diffusers import ControlNetModel

    from models.engine import Engine

    frozen = ControlNetModel.from_config(net.config)
    frozen.load_state_dict(net.state_dict())
    frozen.to(device)
    where = "cpu" if device.type == "cpu" else str(device)  # accelerate's multi-CPU runs say cpu:RANK
    return Engine(base, where, DTYPE_NAMES[dtype], Adapter(frozen, info, Path("."), "training"))


def render(engine: Any, examples: list[dict], size: int, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    """The engine's output for each example's condition and caption, with fixed noise."""
    engine.set_size(size)
    engine.set_seed(seed)
    engine.control_scale = scale
    # the engine takes canvas-style input (black on white) and inverts it for white_on_black adapters,
    # so conditions already drawn white on black go in inverted
    invert = engine.adapter is not None and engine.adapter.info.polarity == "white_on_black"
    outs = []
    for ex in examples:
        engine.set_prompt(ex["caption"])
        outs.append(engine.step(255 - ex["condition"] if invert else ex["condition"]))
    return outs


def grid(examples: list[dict], outputs: list[np.ndarray]) -> np.ndarray:
    """Rows of condition | target | output, with a 4 px white gutter."""
    gap = 4
    rows = []
    for ex, out in zip(examples, outputs):
        cells = [ex["condition"], ex["image"], out]
        h = cells[0].shape[0]
        sep = np.full((h, gap, 3), 255, np.uint8)
        rows.append(np.concatenate([cells[0], sep, cells[1], sep, cells[2]], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def validate(base: BaseModel, net: Any, info: AdapterInfo, examples: list[dict], path: Path,
             device: torch.device, dtype: torch.dtype, seed: int = 0) -> Path:
    """Render the examples with the current adapter and write the grid PNG."""
    engine = engine_for(base, net, info, device, dtype)
    outputs = render(engine, examples, info.resolution, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_rgb(path, grid(examples, outputs))
