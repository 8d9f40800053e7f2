"""One way to open an engine from the options every command and the window share.

    options = EngineOptions(model="demo", controlnets=("demo",), device="cpu", fast="fused")
    engine = open_engine(options, say=print)

The order is the same everywhere: check what can be checked before anything loads, load the model, the
adapter and the LoRAs, set the size, pick who runs the frames (OpenVINO converts here), pick torch's runner,
then warm it up with one message, so the first live frame is quick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.errors import UserError
from models.options import BACKENDS, FAST, PRECISIONS, check_device, check_dtype, check_size, parse_adapter_arg

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """What to open; the fields are the shared command-line options (app.cli.options.add_model_arguments)."""

    model: str  # base model: hub id, folder or demo
    controlnets: tuple[str, ...] = ()  # control adapters as SPEC[:STRENGTH] (hub id, folder, demo); () for text only
    size: int | None = None  # output size in pixels, a multiple of 8; None: the model's own
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    dtype: str = "auto"  # auto, float32, bfloat16 or float16
    fast: str = "auto"  # torch's runner (models.runners): auto, eager, fused, graphs or compile
    backend: str = "torch"  # who runs CPU frames: torch, auto or openvino (models.openvino)
    precision: str = "fp32"  # OpenVINO's precision: fp32 or int8
    loras: tuple[str, ...] = ()  # LoRA styles as SPEC[:WEIGHT] (models.lora.parse_lora_arg); a bad one stops the open

    @property
    def controlnet(self) -> str | None:
        """The first adapter's spec (without its strength), or None: for callers that know one adapter."""
        return parse_adapter_arg(self.controlnets[0])[0] if self.controlnets else None

    def check(self) -> EngineOptions:
        """A UserError naming the bad value and the fix, for anything wrong that is known before loading."""
        if isinstance(self.controlnets, str):  # a str would be read letter by letter
            raise UserError(f"controlnets {self.controlnets!r} must be a tuple of SPEC[:STRENGTH], like ('demo',)")
        for arg in self.controlnets:
            parse_adapter_arg(arg)
        if self.size is not None:
            check_size(self.size)
        check_device(self.device)
        check_dtype(self.dtype)
        for flag, value, allowed in (("--fast", self.fast, FAST), ("--backend", self.backend, BACKENDS),
                                     ("--precision", self.precision, PRECISIONS)):
            if value not in allowed:
                raise UserError(f"{flag} {value!r} is not offered: use {', '.join(allowed)}")
        return self


def open_engine(options: EngineOptions, progress: Any = None, say: Callable[[str], None] | None = None,
                before_warm_up: Callable[[Any], None] | None = None):
    """Load and set up an Engine (models.engine) as options say; returns it warmed up.

    progress: a tqdm class for downloads (the window's shows a dialog); say(text): the steps worth telling
    (OpenVINO's conversion, the warm-up), by default the log; before_warm_up(engine): what the caller adds
    before the runner is warmed up (the window restores its remembered LoRAs there, leniently)."""
    from models.engine import Engine
    from models.loading import quiet_libraries

    say = say or log.info
    options.check()
    quiet_libraries()
    engine = Engine.load(options.model, options.controlnets, options.device, options.dtype, progress, options.loras)
    engine.set_size(options.size or engine.base.native_size)
    if before_warm_up is not None:
        before_warm_up(engine)
    engine.set_backend(options.backend, options.precision, progress=say)
    if engine.set_fast(options.fast) != "eager":
        say(f"Warming up the {engine.fast} path (the first run compiles; later runs read the cache)...")
        engine.warm_up()
    return engine
