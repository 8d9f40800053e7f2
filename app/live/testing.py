"""Stand-ins for tests and the app's benchmarks: the real engine on tiny parts with a stand-in runner of a
given cost, a video that stands in for a camera, and a frame counter for recorded files. Nothing in the live
pipeline itself uses these."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def stand_in(size: int = 64, delay: float = 0.0, adapters: tuple[str, ...] = ("fake",), condition: str = "sketch",
             polarity: str = "black_on_white", colour: bool = False):
    """The real engine (models.engine.Engine) on tiny parts whose frames cost `delay` seconds on a stand-in
    runner (models.tiny.tiny_engine, models.runners.standin): its picture follows the input, prompt, seed and
    strengths. It starts with one adapter named "fake" of this condition and polarity; colour=True adds the demo's colour-hint adapter (demo-colour) after `adapters`. The runner,
    engine.runners[0], keeps the latest step's frames and strengths and counts steps."""
    from models.tiny import tiny_engine

    specs = (*adapters, "demo-colour") if colour else adapters
    return tiny_engine(size, 1000 * delay, specs, condition, polarity)


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
