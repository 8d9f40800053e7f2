"""The OpenVINO path (models/openvino.py, run by models/runners/openvino.py) gives the torch engine's images within 1/255 on the tiny models,
follows every per-frame setting without reconverting, caches its graphs, and falls back to torch on a failure."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install -r requirements.txt installs it)")

from main import main  # noqa: E402
from models import openvino as ovpath  # noqa: E402
from models.errors import UserError  # noqa: E402
from models.imageio import read_rgb, write_rgb  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """One cache folder for the module (conversions are shared, as between two starts), never the user's."""
    root = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root))
        yield root / "sdxs-live" / "openvino"


def torch_outputs(engine, inputs):
    engine.use_runner(None)
    return [engine.step(f) for f in inputs]


def assert_close(a, b, tol=1):
    assert a.shape == b.shape and a.dtype == np.uint8 and np.abs(a.astype(int) - b.astype(int)).max() <= tol


def entries(cache):
    return sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) if cache.exists() else []


def test_fp32_equals_torch_and_follows_every_setting(engine, sketch_image, cache):
    inputs = [sketch_image, 255 - sketch_image, np.roll(sketch_image, 9, axis=1)]
    ref = torch_outputs(engine, inputs)
    said = []
    assert engine.set_backend("openvino", progress=said.append) == "openvino"
    assert any("Converting for OpenVINO" in s for s in said)
    for f, r in zip(inputs, ref):
        assert_close(engine.step(f), r)
    assert engine.timings.extra["backend"] == "openvino fp32" and engine.timings.unet > 0
    converted = entries(cache)
    assert len(converted) == 2  # ControlNet + UNet, and the decoder
    ov = engine.runners[0]
    for change in (lambda e: setattr(e, "control_scale", 0.3), lambda e: e.set_seed(11), lambda e: e.set_prompt("a boat")):
        before = ov.step(engine.recipe, engine.prepared(), inputs[:1])
        change(engine)
        after = ov.step(engine.recipe, engine.prepared(), inputs[:1])
        assert_close(after, torch_outputs(engine, inputs[:1])[0])
        engine.use_runner(ov)
        assert np.abs(after.astype(int) - before).max() > 5, "the change reached the OpenVINO graph"
    assert entries(cache) == converted, "prompt, seed and strength are graph inputs: nothing was converted again"
    engine.set_backend("torch")
    engine.set_seed(0)
    engine.set_prompt("a cat")
    engine.control_scale = 0.8


def test_second_start_reads_the_cache_and_a_new_adapter_or_size_converts(engine, sketch_image, cache):
    engine.set_backend("openvino")
    first = entries(cache)
    said = []
    engine.set_backend("openvino", progress=said.append)
    assert not said and entries(cache) == first
    adapter = engine.adapter
    try:
        ref = torch_outputs(engine, [sketch_image])[0]
        engine.set_backend("openvino")
        engine.set_adapter(None)  # the UNet alone: a graph of its own, made at the next frame
        ref_plain = torch_outputs(engine, [sketch_image])[0]
        engine.set_backend("openvino")
        assert_close(engine.step(sketch_image), ref_plain)
        assert len(entries(cache)) == len(first) + 1
        engine.set_adapter(adapter)
        assert_close(engine.step(sketch_image), ref)  # back to the adapter: read from the cache
        assert len(entries(cache)) == len(first) + 1
        engine.set_size(72)
        assert_close(engine.step(sketch_image), torch_outputs(engine, [sketch_image])[0])
        assert len(entries(cache)) == len(first) + 3
    finally:
        engine.set_adapter(adapter)
        engine.set_size(64)
        engine.set_backend("torch")


def test_fingerprint_sees_any_weight_change(engine):
    import torch

    before = ovpath.fingerprint(engine.unet, engine.controlnet)
    assert ovpath.fingerprint(engine.unet, engine.controlnet) == before
    w = engine.unet.conv_in.weight
    with torch.no_grad():
        w[0, 0, 0, 0] += 1e-3  # what merging a LoRA does, at a much smaller scale
        changed = ovpath.fingerprint(engine.unet, engine.controlnet)
        w[0, 0, 0, 0] -= 1e-3
    assert changed != before
    assert ovpath.fingerprint(engine.unet, None) != before


def test_a_failure_falls_back_to_torch_with_one_notice(engine, sketch_image, caplog):
    ref = torch_outputs(engine, [sketch_image])[0]
    engine.set_backend("openvino")

    class Broken:
        def infer(self, inputs):
            raise RuntimeError("Exception from src/inference: device lost\nsecond line")

    engine.runners[0].frame = Broken()  # what a failing inference raises, without breaking OpenVINO itself
    with caplog.at_level(logging.WARNING, logger="models.runners.chain"):
        out = engine.step(sketch_image)
    assert_close(out, ref, 0)
    assert engine.backend == "torch"
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "using torch" in notes[0] and "\n" not in notes[0]


def test_auto_picks_a_backend_that_gives_the_same_image(engine, sketch_image):
    ref = torch_outputs(engine, [sketch_image])[0]
    assert engine.set_backend("auto") in ("torch", "openvino")
    assert_close(engine.step(sketch_image), ref)
    engine.set_backend("torch")


def test_int8_and_bad_names_are_one_line_errors(engine):
    with pytest.raises(UserError, match="CPU with OpenVINO"):
        engine.set_backend("torch", "int8")
    with pytest.raises(UserError, match="unknown backend"):
        engine.set_backend("onnx")
    if not ovpath.INT8_SHIPPED:
        with pytest.raises(UserError) as err:
            engine.set_backend("openvino", "int8")
        assert "\n" not in str(err.value) and "fp32" in str(err.value)


@pytest.mark.skipif(not ovpath.INT8_SHIPPED, reason="int8 is refused (below the quality bar on the demo model)")
def test_int8_quantizes_once_and_runs(engine, sketch_image, cache):
    pytest.importorskip("nncf", reason="nncf (int8) is not installed")
    ref = torch_outputs(engine, [sketch_image])[0]
    assert engine.set_backend("openvino", "int8") == "openvino"
    out = engine.step(sketch_image)
    assert out.shape == ref.shape and engine.timings.extra["backend"] == "openvino int8"
    assert np.abs(out.astype(int) - ref).mean() < 40  # random tiny weights cannot judge quality: only that it is an image of this model
    n = len(entries(cache))
    said = []
    engine.set_backend("openvino", "int8", progress=said.append)
    assert not said and len(entries(cache)) == n  # the int8 graph is cached like the fp32 one
    engine.set_backend("torch")


def test_generate_with_openvino_writes_the_torch_image(tmp_path, tiny_base, tiny_controlnet, sketch_image, capsys):
    sketch = write_rgb(tmp_path / "sketch.png", sketch_image)
    outs = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / f"{backend}.png"
        argv = ["generate", "--model", tiny_base, "--controlnet", tiny_controlnet, "--image", str(sketch), "--size", "64",
                "--device", "cpu", "--dtype", "float32", "--prompt", "a cat", "--backend", backend, "--out", str(out)]
        assert main(argv) == 0
        outs[backend] = read_rgb(out)
    assert "openvino fp32" in capsys.readouterr().out
    assert_close(outs["openvino"], outs["torch"])


def test_window_converts_in_the_worker_and_says_so(qtbot, tmp_path, tiny_base, tiny_controlnet):
    import torch
    from PySide6.QtCore import QPointF

    from app.ui.panel.modelpick import Choice
    from app.ui.session.settings import open_settings
    from app.ui.window import MainWindow, StartOptions

    threads = torch.get_num_threads()
    w = MainWindow(open_settings(str(tmp_path / "settings.ini")), None)
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice(tiny_base, tiny_controlnet), "sketch", "a test", 64))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None and not w.pipeline.is_busy, timeout=60000)
    said = []
    w.pipeline.busy.connect(said.append)
    w.panel.device.setCurrentText("cpu")
    w.panel.backend.setCurrentText("openvino")
    w.load_from_panel()
    assert w.pipeline.is_busy  # the GUI thread returned at once: the conversion runs in the worker
    qtbot.waitUntil(lambda: w.pipeline.info.get("backend") == "openvino" and not w.pipeline.is_busy, timeout=120000)
    assert any("Converting for OpenVINO" in s for s in said)
    assert "OpenVINO" in w.panel.readout.text()
    frames = w.pipeline.frames
    w.canvas.stroke_to(QPointF(20, 20), start=True)
    w.canvas.stroke_to(QPointF(200, 150))
    w.canvas.end_stroke()
    qtbot.waitUntil(lambda: w.pipeline.frames > frames, timeout=30000)
    assert w.pipeline.worker.loop.engine.backend == "openvino"
    w.close()
    torch.set_num_threads(threads)


def test_a_lora_weight_change_reaches_the_openvino_graphs(tmp_path, tiny_base, tiny_controlnet, sketch_image, caplog):
    """LoRA weights live outside the state dicts; OpenVINO bakes them in, so a change must convert again (with
    one notice), never reuse graphs of the old weight."""
    from models.engine import Engine
    from tests.tiny_lora import save_lora

    lora = save_lora(tiny_base, tmp_path / "style.safetensors", "kohya", seed=3, text=False)
    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32", loras=[f"{lora}:1.0"])
    e.set_size(64)
    e.set_prompt("a cat")
    name = next(iter(e.lora_weights))
    e.set_backend("openvino")
    outs = {}
    with caplog.at_level(logging.WARNING):
        for w in (1.0, 0.0, 1.0):
            e.set_lora_weight(name, w)
            outs.setdefault(w, []).append(e.step(sketch_image))
    assert sum("bakes LoRA weights" in r.message for r in caplog.records) == 1
    assert np.abs(outs[1.0][0].astype(int) - outs[0.0][0]).max() > 3  # the weight reached the picture
    assert_close(outs[1.0][0], outs[1.0][1], 0)  # and the cache gives back the weight-1 graphs
    e.set_lora_weight(name, 0.0)
    assert_close(outs[0.0][0], torch_outputs(e, [sketch_image])[0])  # equal to torch at that weight


def test_bf16_converts_from_the_files_full_precision_weights(tiny_base, tiny_controlnet, sketch_image):
    """A bf16 engine's graphs are traced from fp32 copies whose weights are the files' own (the engine's lost
    their low bits), LoRA layers and all, and run in OpenVINO's bf16 where the CPU computes it natively."""
    import openvino
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    from models.engine import Engine

    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "bfloat16")
    e.set_size(64)
    e.set_prompt("a cat")
    fp32 = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32")
    fp32.set_size(64)
    fp32.set_prompt("a cat")
    assert ovpath.full_precision(fp32.recipe) is fp32.recipe  # an fp32 engine is traced as it is
    recipe = ovpath.full_precision(e.recipe)
    files = UNet2DConditionModel.from_pretrained(tiny_base, subfolder="unet").state_dict()
    assert all(torch.equal(recipe.unet.state_dict()[k], v) for k, v in files.items())
    assert not all(torch.equal(e.unet.state_dict()[k].float(), v) for k, v in files.items())  # bf16 did round them
    net = ControlNetModel.from_pretrained(tiny_controlnet).state_dict()
    assert all(torch.equal(recipe.controlnets[0].state_dict()[k], v) for k, v in net.items())
    assert next(e.unet.parameters()).dtype == torch.bfloat16  # the engine's own networks are left as they were

    ref = fp32.step(sketch_image)
    assert e.set_backend("openvino") == "openvino"
    out = e.step(sketch_image)
    native = "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert e.timings.extra["backend"] == ("openvino bf16" if native else "openvino fp32")
    assert np.abs(out.astype(int) - ref).mean() < 3  # bf16's rounding, not another picture
    e.unet.conv_in.bias.data += 1  # weights changed in memory (as a trainer would): no longer the files'
    kept = ovpath.full_precision(e.recipe)
    assert torch.equal(kept.unet.conv_in.bias, e.unet.conv_in.bias.float())


def test_bench_int8_on_the_cpu_with_openvino_runs_as_generate_does(tmp_path, tiny_base, tiny_controlnet, capsys):
    """Issue 32: bench opened its engine with torch first and refused the very flags it names as the fix."""
    pytest.importorskip("nncf", reason="nncf (int8) is not installed")
    import json

    report = tmp_path / "b.json"
    argv = ["bench", "--model", tiny_base, "--controlnet", tiny_controlnet, "--size", "64", "--frames", "1", "--warmup", "1",
            "--device", "cpu", "--dtype", "float32", "--backend", "openvino", "--precision", "int8", "--json", str(report)]
    assert main(argv) == 0, capsys.readouterr().err
    rows = json.loads(report.read_text())["backends"]
    assert rows["openvino_int8"]["precision"] == "int8" and rows["openvino_fp32"]["precision"] == "fp32"


def test_bench_int8_without_openvino_is_refused_before_loading(tiny_base, capsys, monkeypatch):
    from models.engine import Engine

    monkeypatch.setattr(Engine, "load", lambda *a, **k: pytest.fail("a model was loaded before the check"))
    code = main(["bench", "--model", tiny_base, "--device", "cpu", "--precision", "int8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "--backend openvino" in err and "\n" not in err
