"""The fused runners (models/runners/fused.py) give the eager recipe's images; on a CPU only what runs there is checked.
CUDA graphs and inductor on a GPU are measured by bench/gpu.sh and checked by the opt-in GPU test below."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from models.engine import Engine


def frames(sketch_image):
    return [sketch_image, 255 - sketch_image, np.roll(sketch_image, 9, axis=1)]


def eager_outputs(engine, inputs):
    engine.set_fast("eager")
    return [engine.step(f) for f in inputs]


def assert_close(a, b, tol):
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= tol


def test_auto_is_eager_on_cpu(engine):
    assert engine.set_fast("auto") == "eager"


def test_fused_equals_eager_and_follows_every_setting(engine, sketch_image):
    inputs = frames(sketch_image)
    ref = eager_outputs(engine, inputs)
    engine.set_fast("fused")
    for f, r in zip(inputs, ref):
        assert_close(engine.step(f), r, 1)
    # strength, seed, prompt and size changes reach the static buffers without rebuilding anything by hand
    for change in (lambda e: setattr(e, "control_scale", 0.3), lambda e: e.set_seed(11),
                   lambda e: e.set_prompt("a boat"), lambda e: e.set_size(72)):
        before = engine.step(inputs[0])
        change(engine)
        fused = engine.step(inputs[0])
        eager = engine.eager(inputs[0])  # the eager runner, same settings
        assert engine.fast == "fused"
        assert_close(fused, eager, 1)
        changed = fused.shape != before.shape or np.abs(fused.astype(int) - before).max() > 5
        assert changed, "the change reached the fused path"
    engine.set_fast("eager")
    engine.set_size(64)
    engine.set_seed(0)
    engine.control_scale = 0.8


def test_compiled_graph_equals_eager(engine, sketch_image):
    """torch.compile traces the whole recipe (aot_eager backend here: inductor's CPU compile takes minutes)."""
    inputs = frames(sketch_image)
    ref = eager_outputs(engine, inputs)
    engine.set_fast("compile", backend="aot_eager")
    for f, r in zip(inputs, ref):
        assert_close(engine.step(f), r, 1)
    engine.set_fast("eager")


def test_failed_fast_path_falls_back_to_eager(engine, sketch_image):
    engine.set_fast("fused")
    engine.runners[0].run = lambda: (_ for _ in ()).throw(RuntimeError("no graphs here"))
    engine.warm_up(sketch_image)
    assert engine.fast == "eager"
    assert engine.step(sketch_image).shape == (64, 64, 3)
    engine.set_fast("fused")  # a frame, not only the warm-up, falls back the same way (one piece of code)
    engine.runners[0].run = lambda: (_ for _ in ()).throw(RuntimeError("no graphs here"))
    ref = eager_outputs(engine, [sketch_image])[0]
    engine.set_fast("fused")
    engine.runners[0].run = lambda: (_ for _ in ()).throw(RuntimeError("no graphs here"))
    assert_close(engine.step(sketch_image), ref, 0)
    assert engine.fast == "eager"


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and os.environ.get("SDXS_GPU_TESTS")), reason="opt-in GPU test")
def test_cuda_graphs_match_eager_in_fp16(tiny_base, tiny_controlnet, sketch_image):
    e = Engine.load(tiny_base, tiny_controlnet, "cuda", "float16")
    e.set_size(64)
    e.set_prompt("a lighthouse")
    inputs = frames(sketch_image)
    ref = eager_outputs(e, inputs)
    for mode in ("graphs", "compile"):
        e.set_fast(mode)
        for f, r in zip(inputs, ref):
            assert_close(e.step(f), r, 3)
