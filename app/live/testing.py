"""Stand-ins for tests and the app's benchmarks: an engine that needs no model, a video that stands in for a
camera, and a frame counter for recorded files. Nothing in the live pipeline itself uses these."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models import conditions


@dataclass
class FakeAdapter:
    info: Any  # a models.loading.AdapterInfo
    spec: str = "fake"  # the spec it was "loaded" by
    name: str = ""  # unique in its engine; "" = the spec

    def __post_init__(self) -> None:
        self.name = self.name or self.spec


class FakeEngine:
    """Sleeps `delay` seconds, then returns a tinted copy of the first condition (so the output follows the input),
    with the real engine's interface (app.live.loop.EngineLike). It keeps a real adapter list with strengths:
    `demo` (or colour=True at the start) gives demo-sketch and demo-colour (condition colour-hints), a spec with
    "colour" in it a colour-hint adapter, any other spec an adapter of `condition`. last_frames and
    last_strengths hold what the latest step got: one condition image and one strength per adapter."""

    def __init__(self, delay: float = 0.0, size: int = 256, condition: str = "sketch", polarity: str = "black_on_white",
                 colour: bool = False):
        from models.loading import AdapterInfo
        from models.transition import Transition

        self.delay = delay
        self.profile = False
        self.timings: dict = {}
        self.device = "fake"
        self.dtype = "none"
        self.size = size
        self.native_size = size
        self.seed = 0
        self.prompt = ""
        self.info = AdapterInfo(condition=condition, polarity=polarity)  # what use_adapter gives a new adapter
        self.adapters: list[FakeAdapter] = []
        self._strengths: dict[str, float] = {}
        self._scale = 0.8  # what control_scale gives adapters added by use_adapter and set_adapter
        self.set_adapter(FakeAdapter(self.info))
        if colour:
            self.add_adapter("demo-colour", 0.8)
        self.last_frames: list[np.ndarray] = []  # the latest step's condition image per adapter
        self.last_strengths: list[float] = []  # the latest step's strength per adapter (its own, or the step's)
        self.transition = Transition(0.0)  # set as the loop sets it; a tint follows no glide
        self.gliding = False
        self.fast = "eager"
        self.backend = "torch"
        self.lora_weights: dict[str, float] = {}
        self.lora_specs: dict[str, str] = {}
        self.steps = 0

    @property
    def revision(self) -> Any:
        """Changes whenever something that changes the output does (the real engine counts instead)."""
        return (self.prompt, self.seed, self.size, tuple(self._strengths.items()), tuple(id(a) for a in self.adapters))

    @property
    def adapter(self) -> FakeAdapter | None:
        return self.adapters[0] if self.adapters else None

    @property
    def control_scale(self) -> float:
        return self._strengths[self.adapters[0].name] if self.adapters else self._scale

    @control_scale.setter
    def control_scale(self, scale: float) -> None:
        self._scale = float(scale)
        self._strengths = dict.fromkeys(self._strengths, float(scale))

    @property
    def adapter_strengths(self) -> dict[str, float]:
        return dict(self._strengths)

    @property
    def adapter_specs(self) -> dict[str, str]:
        return {a.name: a.spec for a in self.adapters}

    def _made(self, spec: str) -> list[FakeAdapter]:
        from models.loading import AdapterInfo

        specs = ["demo-sketch", "demo-colour"] if spec == "demo" else [spec]
        return [FakeAdapter(AdapterInfo(condition="colour-hints") if "colour" in s else self.info, s) for s in specs]

    def _append(self, adapter: FakeAdapter, strength: float) -> str:
        from models.options import check_strength

        base, n = adapter.name, 2
        while adapter.name in self._strengths:
            adapter.name, n = f"{base}-{n}", n + 1
        self.adapters.append(adapter)
        self._strengths[adapter.name] = check_strength(float(strength), f"adapter {adapter.name!r}: strength")
        return adapter.name

    def add_adapter(self, spec: str, strength: float = 1.0, progress: Any = None) -> list[str]:
        return [self._append(a, strength) for a in self._made(spec)]

    def remove_adapter(self, name: str) -> None:
        del self._strengths[self._known(name)]
        self.adapters = [a for a in self.adapters if a.name != name]

    def set_adapter_strength(self, name: str, strength: float) -> None:
        from models.options import check_strength

        self._strengths[self._known(name)] = check_strength(float(strength), f"adapter {name!r}: strength")

    def _known(self, name: str) -> str:
        from models.errors import UserError

        if name not in self._strengths:
            raise UserError(f"no adapter named {name!r} is loaded (loaded: {', '.join(self._strengths) or 'none'})")
        return name

    def set_prompt(self, prompt: str) -> None:
        self.prompt = prompt

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def set_size(self, size: int) -> None:
        from models.options import check_size

        self.size = check_size(size)

    def set_adapter(self, adapter: Any) -> None:
        self.adapters, self._strengths = [], {}
        if adapter is not None:
            self._append(adapter, self._scale)

    def use_adapter(self, spec: str | None, progress: Any = None) -> None:
        self.adapters, self._strengths = [], {}
        for a in self._made(spec) if spec else []:
            self._append(a, self._scale)

    def set_fast(self, mode: str = "auto") -> str:
        return self.fast  # one way to run a tint

    def set_backend(self, backend: str = "torch", precision: str = "fp32", progress: Any = None) -> str:
        return self.backend

    def warm_up(self) -> None:
        self.step(np.full((self.size, self.size, 3), 255, np.uint8))

    def add_lora(self, spec: str, weight: float = 1.0, progress: Any = None) -> str:
        from models.errors import UserError

        raise UserError(f"LoRA {spec!r}: this engine takes no LoRAs")

    def remove_lora(self, name: str) -> None:
        self.lora_weights.pop(name, None)
        self.lora_specs.pop(name, None)

    def set_lora_weight(self, name: str, weight: float) -> None:
        from models.errors import UserError

        raise UserError(f"no LoRA named {name!r} is loaded (loaded: none)")

    def step(self, frame: np.ndarray | list[np.ndarray], strengths: list[float | None] | None = None) -> np.ndarray:
        from models.errors import UserError

        t0 = time.perf_counter()
        n = max(1, len(self.adapters))
        frames = [frame] * n if isinstance(frame, np.ndarray) else list(frame)
        if len(frames) != n or (strengths is not None and len(strengths) != len(self.adapters)):
            raise UserError(f"{len(frames)} condition images for {len(self.adapters)} adapters: pass one per adapter")
        own = list(self._strengths.values())
        self.last_frames = frames
        self.last_strengths = [own[i] if strengths is None or strengths[i] is None else float(strengths[i])
                               for i in range(len(own))]
        if self.delay:
            time.sleep(self.delay)
        img = conditions.fit_square(frames[0], self.size).astype(np.float32)
        tint = np.array([1.0, 0.55 + 0.45 * ((self.seed % 7) / 6), 0.35], np.float32)
        self.steps += 1
        self.timings = {"total": 1000 * (time.perf_counter() - t0)}
        return np.ascontiguousarray((img * tint).clip(0, 255).astype(np.uint8))


def write_test_video(path: str | Path, frames: int = 12, size: int = 96, fps: float = 24.0) -> Path:
    """A small mp4v video of a moving circle: stands in for a camera where there is none."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for i in range(frames):
        img = np.full((size, size, 3), 235, np.uint8)
        cx = int(size * (0.2 + 0.6 * i / max(frames - 1, 1)))
        cv2.circle(img, (cx, size // 2), size // 5, (40, 80, 200), -1)
        cv2.rectangle(img, (4, 4), (size - 5, size - 5), (0, 0, 0), 2)
        writer.write(img)
    writer.release()
    return path


def count_frames(path: str | Path) -> int:
    """Frames OpenCV can actually decode from a video file (reads them all)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.read()[0]:
            n += 1
    finally:
        cap.release()
    return n
