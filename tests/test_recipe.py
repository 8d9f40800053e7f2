"""The one recipe (models/recipe.py) against diffusers, every runner (models/runners/) against eager, the
runner chain's fallback, the engine's state as a value, and the live loop's engine protocol (app.live.loop.EngineLike)."""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from models.conditions import fit_square
from models.runners import make_runner
from tests.test_engine import maxdiff, reference


def recipe_inputs(engine, image):
    p = engine.prepared()
    frames = torch.from_numpy(fit_square(image, engine.size))[None]
    return p, (p.unet_in, p.embeds, p.x0_noise, frames, p.strengths, p.inverts)


def test_recipe_module_equals_the_controlnet_pipeline(tiny_base, tiny_controlnet, sketch_image):
    """The module itself, called once, is diffusers' one-step ControlNet pipeline; a new strength is a new
    tensor input of the same module, not a new module."""
    from models.engine import Engine

    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32")
    e.set_size(64)
    e.set_seed(4)
    e.set_prompt("a lighthouse")
    image = np.array(Image.fromarray(sketch_image).resize((64, 64)))
    recipe = e.recipe
    outs = {}
    for scale in (0.6, 1.3):
        e.control_scale = scale
        p, inputs = recipe_inputs(e, image)
        assert p.strengths.dtype == torch.float32 and p.strengths.tolist() == [pytest.approx(scale)]
        with torch.inference_mode():
            outs[scale] = recipe(*inputs).numpy()
        assert e.recipe is recipe
        ref = reference(tiny_base, tiny_controlnet, image, "a lighthouse", 4, scale, size=64)
        assert outs[scale].dtype == np.uint8 and maxdiff(outs[scale], ref) <= 2
    assert maxdiff(outs[0.6], outs[1.3]) > 10  # the strength input reaches the picture


def test_recipe_without_adapters_equals_the_text_pipeline(tiny_base):
    from models.engine import Engine

    e = Engine.load(tiny_base, None, "cpu", "float32")
    e.set_size(64)
    e.set_seed(3)
    e.set_prompt("a castle")
    p = e.prepared()
    assert p.strengths.numel() == 0 and not p.active
    with torch.inference_mode():
        out = e.recipe(p.unet_in, p.embeds, p.x0_noise).numpy()
    assert maxdiff(out, reference(tiny_base, None, None, "a castle", 3, 1.0, size=64)) <= 2


def test_two_adapters_add_their_scaled_residuals(engine, sketch_image):
    """Several adapters mean what diffusers' multi-ControlNet means: each adapter's
    residuals times its strength, summed. The same adapter twice at strengths a and b is it once at a + b."""
    from models.recipe import Recipe

    e = engine
    once = e.recipe
    twice = Recipe(e.unet, e.vae, [e.controlnet, e.controlnet], e.one_step, e.vae_scale)
    e.control_scale = 1.0
    p, (unet_in, embeds, x0_noise, frames, _, inverts) = recipe_inputs(e, sketch_image)
    with torch.inference_mode():
        a = once(unet_in, embeds, x0_noise, frames, torch.tensor([1.0]), inverts).numpy()
        b = twice(unet_in, embeds, x0_noise, frames.expand(2, -1, -1, -1), torch.tensor([0.3, 0.7]), inverts.expand(2)).numpy()
        c = once(unet_in, embeds, x0_noise, frames, torch.tensor([0.3]), inverts).numpy()
    assert maxdiff(a, b) <= 1 and maxdiff(a, c) > 10


@pytest.mark.parametrize("kind, options", [("fused", {}), ("graphs", {}), ("compile", {"backend": "aot_eager"})])
def test_each_runner_gives_the_eager_frame(engine, sketch_image, kind, options):
    """Each runner made by name runs the one module; on a CPU graphs runs without a graph, compile with
    aot_eager (inductor takes minutes here)."""
    runner = make_runner(kind, **options)
    assert runner.name == kind
    for frame in (sketch_image, 255 - sketch_image):
        eager = engine.eager(frame)
        with torch.inference_mode():
            out = runner.step(engine.recipe, engine.prepared(), [frame])
        assert out.shape == eager.shape == (64, 64, 3) and maxdiff(out, eager) <= 1


def test_a_runner_is_one_new_file(engine, sketch_image, tmp_path, monkeypatch):
    """A runner module dropped into models/runners/ (here a folder added to the package's path) is picked by
    its name: nothing else names it."""
    import models.runners

    (tmp_path / "plain.py").write_text(
        "from models.conditions import fit_square\n"
        "import torch\n"
        "from models.runners import Runner\n\n\n"
        "class PlainRunner(Runner):\n"
        "    name = 'plain'\n\n"
        "    def step(self, recipe, p, frames):\n"
        "        frames = torch.from_numpy(fit_square(frames[0], p.size))[None] if p.active else None\n"
        "        return recipe(p.unet_in, p.embeds, p.x0_noise, frames, p.strengths, p.inverts).numpy()\n\n\n"
        "def make(kind, **options):\n"
        "    return PlainRunner()\n")
    monkeypatch.setattr(models.runners, "__path__", [*models.runners.__path__, str(tmp_path)])
    try:
        assert engine.set_fast("plain") == "plain" and [r.name for r in engine.runners] == ["plain", "eager"]
        assert maxdiff(engine.step(sketch_image), engine.eager(sketch_image)) == 0
    finally:
        engine.set_fast("eager")


def test_a_runner_that_fails_falls_back_with_one_reason(engine, sketch_image, caplog):
    """A real failure: torch.compile's tvm backend is named but not installed here, so the first frame fails
    to compile; the chain logs one line and eager runs the same frame."""
    pytest.importorskip("torch._dynamo")
    try:
        import tvm  # noqa: F401

        pytest.skip("tvm is installed here")
    except ImportError:
        pass
    ref = engine.eager(sketch_image)
    assert engine.set_fast("compile", backend="tvm") == "compile"
    with caplog.at_level(logging.WARNING, logger="models.runners.chain"):
        out = engine.step(sketch_image)
        again = engine.step(sketch_image)
    notes = [r.getMessage() for r in caplog.records if r.name == "models.runners.chain"]
    assert len(notes) == 1 and notes[0].startswith("torch compile failed (") and notes[0].endswith("; using torch eager")
    assert "\n" not in notes[0] and engine.fast == "eager" and engine.backend == "torch"
    assert maxdiff(out, ref) == 0 and maxdiff(again, ref) == 0


def test_a_runner_that_cannot_be_built_is_one_reason_too(engine, sketch_image, caplog):
    from models.errors import UserError

    with caplog.at_level(logging.WARNING, logger="models.runners.chain"):
        assert engine.set_fast("compile", backend="no-such-compiler") == "eager"
    notes = [r.getMessage() for r in caplog.records if r.name == "models.runners.chain"]
    assert len(notes) == 1 and "torch compile unavailable" in notes[0] and "no-such-compiler" in notes[0]
    assert engine.step(sketch_image).shape == (64, 64, 3)
    with pytest.raises(UserError, match="unknown runner 'warp'"):  # a kind nobody wrote is the user's to fix
        engine.set_fast("warp")


def protocol_members() -> dict[str, object]:
    from app.live.loop import EngineLike

    names = {n for n in vars(EngineLike) if not n.startswith("_")} | set(EngineLike.__annotations__)
    return {n: vars(EngineLike).get(n) for n in sorted(names)}


def loop_uses() -> set[str]:
    """The members the live loop reads or calls on its engine (e.X, engine.X, self.engine.X in app/live/loop.py)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / "app/live/loop.py").read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            v = node.value
            if (isinstance(v, ast.Name) and v.id in ("e", "engine")) or (
                    isinstance(v, ast.Attribute) and v.attr == "engine"):
                used.add(node.attr)
    return used


def test_the_loops_protocol_is_what_the_loop_uses_and_the_engine_has_it(engine):
    """EngineLike lists exactly what the live loop uses of an engine; the real engine has every member, and
    every method takes the protocol's parameters."""
    members = protocol_members()
    assert set(members) == loop_uses()
    assert "revision" not in members and "lora_specs" not in members
    for name, declared in members.items():
        assert hasattr(engine, name), f"Engine lacks {name}"
        if inspect.isfunction(declared):
            wanted = [p for p in inspect.signature(declared).parameters if p != "self"]
            have = inspect.signature(getattr(engine, name)).parameters
            assert all(p in have for p in wanted), f"Engine.{name} takes {list(have)}, not {wanted}"


def test_the_engines_state_is_a_value(engine, sketch_image):
    """What a frame needs is prepared from the settings value and kept while it compares equal: the same
    Prepared for equal settings, a new one for any change, and equal ones again when a setting comes back."""
    e = engine
    e.set_seed(1)
    scale, prompt = e.control_scale, e.prompt
    first, settings = e.prepared(), e.settings
    assert e.prepared() is first and e.settings == settings
    e.set_seed(1)  # setting the same value is no change
    assert e.prepared() is first
    changes = [lambda: e.set_seed(2), lambda: e.set_prompt("a dog"), lambda: setattr(e, "control_scale", 0.45),
               lambda: e.set_size(72)]
    seen = [settings]
    for change in changes:
        change()
        assert e.settings not in seen and e.prepared() != first
        seen.append(e.settings)
    e.set_seed(1), e.set_prompt(prompt), setattr(e, "control_scale", scale), e.set_size(64)
    assert e.settings == settings and e.prepared() == first
    assert e.prepare(e.settings) == first  # the pure step: equal settings, an equal value
    assert torch.equal(e.prepare(e.settings).unet_in, first.unet_in)
    recipe = e.recipe
    e.set_adapter(e.adapter)  # the same adapter again: new networks' recipe, so a new value
    assert e.recipe is not recipe and e.settings != settings
    assert e.prepared(strengths=[0.3]) != e.prepared() and e.prepared(strengths=[0.3]).scales == (0.3,)


def test_no_revision_counter_and_no_import_loop():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [*root.glob("models/**/*.py"), *root.glob("app/**/*.py")]:
        text = path.read_text()
        assert not re.search(r"revision\s*\+=", text), path
    import ast

    tree = ast.parse((root / "models/openvino.py").read_text())  # the runners import it, never the other way
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert "models.recipe" in imported and not any(m and m.startswith("models.runners") for m in imported)


def test_the_test_engine_is_the_real_engine_on_a_stand_in_runner(sketch_image):
    """models.tiny.tiny_engine: the real Engine on tiny parts; its stand-in runner costs what it is told and
    follows the frame, the prompt, the seed and the strengths."""
    import time

    from models.engine import Engine
    from models.runners.standin import StandInRunner
    from models.tiny import tiny_engine

    e = tiny_engine(size=64, cost_ms=20.0, adapters=("demo",))
    runner = e.runners[0]
    assert type(e) is Engine and isinstance(runner, StandInRunner) and e.backend == "standin"
    assert list(e.adapter_strengths) == ["demo-sketch", "demo-colour"] and e.adapters[1].colour_hints
    t = time.perf_counter()
    a = e.step(sketch_image)
    assert time.perf_counter() - t >= 0.02 and runner.steps == 1 and a.shape == (64, 64, 3)
    assert np.array_equal(e.step(sketch_image), a)  # deterministic
    assert not np.array_equal(e.step(255 - sketch_image), a)  # follows the frame
    for change in (lambda: e.set_seed(9), lambda: e.set_prompt("a boat")):
        change()
        assert not np.array_equal(e.step(sketch_image), a)
    e.step([sketch_image, sketch_image], strengths=[None, 0.25])
    assert runner.last_strengths == [0.8, 0.25] and len(runner.last_frames) == 2


def test_no_probes_on_the_engine():
    """Callers use the protocol instead of asking the engine what it has."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for rel in ("app/live/loop.py", "app/live/styles.py", "app/ui/worker.py", "app/ui/panel/styles.py"):
        text = (root / rel).read_text()
        assert not re.search(r"(hasattr|getattr)\((self\.)?(loop\.)?(engine|e)\b", text), rel


def test_open_engine_warms_up_once_and_the_warm_up_is_not_shown(tiny_base, tiny_controlnet, sketch_image):
    """One message for the warm-up; a prompt set after it does not glide from the warm-up's empty prompt."""
    from models.opening import EngineOptions, open_engine

    said = []
    e = open_engine(EngineOptions(model=tiny_base, controlnets=(tiny_controlnet,), size=64, device="cpu", dtype="float32",
                                  fast="fused"), say=said.append)
    assert e.fast == "fused" and e.size == 64 and sum(s.startswith("Warming up the fused path") for s in said) == 1
    e.transition.seconds = 30.0
    e.set_prompt("a cat")
    e.step(sketch_image)
    assert not e.gliding


@pytest.mark.parametrize("field, value, says", [("size", 100, "size 100"), ("fast", "warp", "--fast 'warp'"),
                                                ("device", "tpu", "unknown device 'tpu'"), ("dtype", "fp8", "unknown dtype")])
def test_bad_engine_options_are_one_line_before_anything_loads(field, value, says):
    from models.errors import UserError
    from models.opening import EngineOptions, open_engine

    with pytest.raises(UserError, match=says):
        open_engine(EngineOptions(model="/nonexistent/model", **{field: value}))  # the model is never looked for
