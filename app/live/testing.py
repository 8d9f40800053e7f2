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
    spec: str = "fake"


class FakeEngine:
    """Sleeps `delay` seconds, then returns a tinted copy of the condition (so the output follows the input),
    with the real engine's interface (app.live.loop.EngineLike)."""

    def __init__(self, delay: float = 0.0, size: int = 256, condition: str = "sketch", polarity: str = "black_on_white"):
        from models.loading import AdapterInfo
        from models.transition import Transition

        self.delay = delay
        self.control_scale = 0.8
        self.profile = False
        self.timings: dict = {}
        self.device = "fake"
        self.dtype = "none"
        self.size = size
        self.native_size = size
        self.seed = 0
        self.prompt = ""
        self.info = AdapterInfo(condition=condition, polarity=polarity)  # what use_adapter gives a new adapter
        self.adapter = FakeAdapter(self.info)
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
        return (self.prompt, self.seed, self.size, self.control_scale, id(self.adapter))

    def set_prompt(self, prompt: str) -> None:
        self.prompt = prompt

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def set_size(self, size: int) -> None:
        from models.options import check_size

        self.size = check_size(size)

    def set_adapter(self, adapter: Any) -> None:
        self.adapter = adapter

    def use_adapter(self, spec: str | None, progress: Any = None) -> None:
        self.adapter = FakeAdapter(self.info, spec) if spec else None

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

    def step(self, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        img = conditions.fit_square(frame, self.size).astype(np.float32)
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
