"""The README's picture of a transition: frames of a seed glide and a prompt glide on the demo model.

    python bench/transition_strip.py assets/transition-strip.jpg

Each row is one change, shown at the frames a live picture passes through over `--transition` seconds
(the engine's own Transition, on a stepped clock); the first and last frames are the endpoints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.conditions import sketch_frames  # noqa: E402
from models.engine import Engine  # noqa: E402
from models.imageio import write_rgb  # noqa: E402
from models.transition import Transition  # noqa: E402

STEPS = 7


def glide(engine: Engine, frame: np.ndarray, change) -> list[np.ndarray]:
    now = [0.0]
    engine.transition = Transition(1.0, clock=lambda: now[0])
    engine.step(frame)
    change(engine)
    out = []
    for i in range(STEPS):
        now[0] = i / (STEPS - 1)
        out.append(engine.step(frame))
    return out


def main(out: str) -> None:
    engine = Engine.load("demo", "demo", "cpu", "float32")
    engine.control_scale = 0.35  # a light hand on the sketch, so the noise and the prompt show
    engine.set_size(256)
    frame = sketch_frames(1, 256)[0]
    rows = []
    engine.set_prompt("a red flower, nature")
    engine.set_seed(1)
    rows.append(glide(engine, frame, lambda e: e.set_seed(7)))
    rows.append(glide(engine, frame, lambda e: e.set_prompt("a blue car, transport")))
    small = [np.concatenate([f[::2, ::2] for f in row], axis=1) for row in rows]  # 128 px per frame
    gap = np.full((4, small[0].shape[1], 3), 255, np.uint8)
    print(write_rgb(out, np.concatenate([small[0], gap, small[1]], axis=0)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "assets/transition-strip.jpg")
