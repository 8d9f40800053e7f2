"""Validation grids through the app's own engine: one row per example, condition | target | output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.imageio import grid, write_rgb
from models.loading import Adapter, AdapterInfo, BaseModel


def _copy(net: Any, device: torch.device):
    """A copy rebuilt from config and weights: the engine makes what it is given frozen, channels-last and of its
    dtype, which the training copy (or the objective's companion) must not become; the copy also leaves behind
    accelerate's autocast and fp32-output wrappers."""
    from diffusers import ControlNetModel

    frozen = ControlNetModel.from_config(net.config)
    frozen.load_state_dict(net.state_dict())
    return frozen.to(device)


def engine_for(base: BaseModel, net: Any, info: AdapterInfo, device: torch.device, dtype: torch.dtype,
               companions: Sequence[tuple[Any, AdapterInfo, float]] = ()):
    """An Engine over the (shared, frozen) base, copies of the frozen --with-adapter companions (net, info,
    strength) and a copy of the adapter being trained, last, at strength 1."""
    from models.device import dtype_name
    from models.engine import Engine

    where = "cpu" if device.type == "cpu" else str(device)  # accelerate's multi-CPU runs say cpu:RANK
    engine = Engine(base, where, dtype_name(dtype))
    adapters = [Adapter(_copy(n, device), i, Path("."), f"companion-{k}") for k, (n, i, _) in enumerate(companions)]
    engine.set_adapters([*adapters, Adapter(_copy(net, device), info, Path("."), "training")],
                        [s for _, _, s in companions] + [1.0])
    return engine


def render(engine: Any, examples: list[dict], size: int, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    """The engine's output for each example's conditions (its companions', then its own) and caption, with
    fixed noise and the adapter's (the last one's) strength at scale. The engine takes canvas-style input (black on white) and inverts it for white_on_black
    adapters, so conditions already drawn white on black go in inverted."""
    engine.set_size(size)
    engine.set_seed(seed)
    if engine.adapters:
        engine.set_adapter_strength(engine.adapters[-1].name, scale)
    outs = []
    for ex in examples:
        engine.set_prompt(ex["caption"])
        conds = [*ex.get("companions", []), ex["condition"]]
        frames = [255 - c if a.info.inverted else c for a, c in zip(engine.adapters, conds)]
        outs.append(engine.step(frames if len(frames) > 1 else frames[0] if frames else ex["condition"]))
    return outs


def validate(base: BaseModel, net: Any, info: AdapterInfo, examples: list[dict], path: Path,
             device: torch.device, dtype: torch.dtype, seed: int = 0,
             companions: Sequence[tuple[Any, AdapterInfo, float]] = ()) -> Path:
    """Render the examples with the current adapter (beside its companions) and write the grid PNG: per row the
    condition, the companions' conditions, the target and the output."""
    engine = engine_for(base, net, info, device, dtype, companions)
    outputs = render(engine, examples, info.resolution, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [[ex["condition"], *ex.get("companions", []), ex["image"], out] for ex, out in zip(examples, outputs)]
    return write_rgb(path, grid(rows))
