"""Transitions: prompt and seed changes glide through frames between the endpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from models.transition import Transition, slerp

pytestmark = pytest.mark.usefixtures("one_thread")


def dist(a, b):
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_slerp_keeps_the_noise_norm_and_its_endpoints():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm() / a.norm() - 1) < 0.05  # a straight line would be ~0.71 of the norm halfway
    assert abs(torch.lerp(a, b, 0.5).norm() / a.norm() - 1) > 0.2


@pytest.mark.parametrize("fast", ["eager", "fused"])
@pytest.mark.parametrize("change", ["prompt", "seed"])
def test_a_change_glides_between_the_endpoints(engine, sketch_image, fast, change):
    now = [0.0]
    engine.set_fast(fast)
    engine.transition = Transition(1.0, clock=lambda: now[0])
    engine.set_prompt("a cat")
    engine.set_seed(1)
    start = engine.step(sketch_image)
    if change == "prompt":
        engine.set_prompt("a blue house at night")
    else:
        engine.set_seed(2)
    frames = []
    for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5):
        now[0] = t
        frames.append(engine.step(sketch_image))
        assert engine.gliding == (t < 1.0)
    end = frames[-1]
    assert dist(frames[0], start) == 0 and dist(frames[-2], end) == 0  # starts where it was, lands on the target
    to_start = [dist(f, start) for f in frames[:-1]]
    to_end = [dist(f, end) for f in frames[:-1]]
    assert all(x < y for x, y in zip(to_start, to_start[1:])), to_start
    assert all(x > y for x, y in zip(to_end, to_end[1:])), to_end
    assert min(dist(f, start) for f in frames[1:5]) > 0 and min(dist(f, end) for f in frames[1:5]) > 0
    engine.transition = Transition(0.0)
    engine.set_fast("eager")


def test_zero_seconds_jumps(engine, sketch_image):
    engine.transition = Transition(0.0)
    engine.set_prompt("a cat")
    a = engine.step(sketch_image)
    engine.set_prompt("a dog")
    b = engine.step(sketch_image)
    engine.set_prompt("a cat")
    assert not engine.gliding and dist(engine.step(sketch_image), a) == 0 and dist(b, a) > 0


def test_live_loop_renders_a_still_input_while_it_glides(engine, sketch_image):
    now = [0.0]
    loop = LiveLoop(engine, LiveSettings(prompt="a cat", seed=1, strength=0.8, size=64, transition=1.0))
    engine.transition.clock = lambda: now[0]
    first = loop.process(Frame(sketch_image, 0.0, True))
    loop.apply(LiveSettings(prompt="a dog", seed=1, strength=0.8, size=64, transition=1.0))
    results = []
    for t in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5):  # the glide starts with the first frame after the change
        now[0] = t
        results.append(loop.process(Frame(sketch_image, t, True)))
    assert [r.reused for r in results] == [False] * 5 + [True]
    assert [r.glide for r in results] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]  # what the window can show
    assert len({r.output.tobytes() for r in results[:5]} | {first.output.tobytes()}) == 6
    engine.transition = Transition(0.0)
