"""Several adapters at once in the engine and on the command line: diffusers' multi-ControlNet meaning,
live strengths that never rebuild a runner, the adapter list's names, and the checks before anything loads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import main
from models.errors import UserError
from models.imageio import read_rgb, write_rgb

SIZE = 96


@pytest.fixture(scope="module")
def second_controlnet(tiny_dir):
    """Another tiny adapter (other random weights, so its residuals differ from the first's)."""
    from models.tiny import save_controlnet

    folder = tiny_dir / "controlnet-b"
    if not (folder / "config.json").exists():
        save_controlnet(folder, tiny_dir / "base", "tiny", seed=5)
    return str(folder)


@pytest.fixture(scope="module")
def two(tiny_base, tiny_controlnet, second_controlnet):
    """A float32 CPU engine with two adapters at 64 px."""
    from models.engine import Engine

    e = Engine.load(tiny_base, [f"{tiny_controlnet}:0.6", f"{second_controlnet}:1.3"], "cpu", "float32")
    e.set_size(64)
    e.set_prompt("a cat")
    return e


def colour_image(size: int = 128) -> np.ndarray:
    """A second condition, unlike the sketch: colour blocks on white."""
    img = np.full((size, size, 3), 255, np.uint8)
    img[10:60, 20:90] = (220, 40, 30)
    img[70:120, 50:110] = (30, 90, 200)
    return img


def maxdiff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def reference(base, controlnets, images, prompt, seed, scales, size=SIZE):
    """diffusers' own StableDiffusionControlNetPipeline with a list of ControlNets (MultiControlNetModel)."""
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    nets = [ControlNetModel.from_pretrained(c) for c in controlnets]
    pipe = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=nets, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt, image=[Image.fromarray(i) for i in images], controlnet_conditioning_scale=list(scales),
               num_inference_steps=1, guidance_scale=0, height=size, width=size, output_type="np",
               generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return (out * 255).round().astype(np.uint8)


def generate(tmp_path, base, controlnets, images, prompt, seed, scales, size=SIZE):
    """Run the real `generate` command with --controlnet SPEC:STRENGTH and --image once per adapter."""
    argv = ["generate", "--model", base, "--prompt", prompt, "--seed", str(seed), "--size", str(size),
            "--device", "cpu", "--dtype", "float32", "--out", str(tmp_path / "out.png"), "--overwrite"]
    for c, s in zip(controlnets, scales):
        argv += ["--controlnet", f"{c}:{s}"]
    for i, img in enumerate(images):
        argv += ["--image", str(write_rgb(tmp_path / f"in{i}.png", img))]
    assert main.main(argv) == 0
    return read_rgb(tmp_path / "out.png")


def test_generate_with_two_adapters_equals_the_multi_controlnet_pipeline(tmp_path, tiny_base, tiny_controlnet,
                                                                        second_controlnet, sketch_image):
    from models.conditions import fit_square

    nets = [tiny_controlnet, second_controlnet]
    images = [fit_square(sketch_image, SIZE), fit_square(colour_image(), SIZE)]
    ours = generate(tmp_path, tiny_base, nets, images, "a red fox", 7, (0.6, 1.4))
    ref = reference(tiny_base, nets, images, "a red fox", 7, (0.6, 1.4))
    assert ours.shape == ref.shape == (SIZE, SIZE, 3)
    assert maxdiff(ours, ref) <= 2
    # a mix-up would fail: the strengths swapped, the images swapped, or one adapter alone each move it far more
    assert maxdiff(ours, generate(tmp_path, tiny_base, nets, images, "a red fox", 7, (1.4, 0.6))) > 10
    assert maxdiff(ours, generate(tmp_path, tiny_base, nets, images[::-1], "a red fox", 7, (0.6, 1.4))) > 10
    assert maxdiff(ours, generate(tmp_path, tiny_base, nets, images, "a red fox", 7, (0.6, 0.0))) > 10


def test_one_image_serves_every_adapter_and_a_count_mismatch_is_one_line_before_loading(tmp_path, capsys,
                                                                                      tiny_controlnet):
    img = str(write_rgb(tmp_path / "a.png", np.full((64, 64, 3), 255, np.uint8)))
    argv = ["generate", "--model", "/nonexistent/model", "--controlnet", tiny_controlnet, "--controlnet",
            tiny_controlnet, "--controlnet", tiny_controlnet, "--image", img, "--image", img, "--out",
            str(tmp_path / "o.png")]
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 --image for 3 adapters" in err[0] and "one --image per adapter" in err[0]
    for bad, says in ((f"{tiny_controlnet}:2.5", "strength 2.5 must be between 0"),
                      (f"{tiny_controlnet}:strong", "the strength 'strong' is not a number")):
        assert main.main(["generate", "--model", "/nonexistent/model", "--controlnet", bad, "--image", img,
                          "--out", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err


def test_stream_checks_keep_colours_before_loading(tmp_path, capsys):
    from app.live.testing import write_test_video

    video = write_test_video(tmp_path / "v.mp4", frames=3)
    for value in ("-0.5", "2.5", "nan"):
        assert main.main(["stream", "--model", "/nonexistent/model", "--controlnet", "demo", "--input", str(video),
                          "--out", str(tmp_path / "o.mp4"), "--keep-colours", value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--keep-colours" in err[0] and "between 0" in err[0], err


def test_a_list_of_frames_and_per_adapter_strengths_on_every_runner(two, sketch_image):
    """One frame serves both adapters; a list gives each its own; every runner gives the eager image."""
    e = two
    other = colour_image()
    e.set_fast("eager")
    both = e.step([sketch_image, other])
    assert maxdiff(both, e.step([sketch_image, sketch_image])) > 5  # the second adapter's image counts
    assert np.array_equal(e.step(sketch_image), e.step([sketch_image, sketch_image]))
    for kind in ("fused", "graphs"):
        e.set_fast(kind)
        assert maxdiff(e.step([sketch_image, other]), both) <= 1
    e.set_fast("eager")
    with pytest.raises(UserError, match="3 condition images for 2 adapters"):
        e.step([sketch_image] * 3)


def test_strength_moves_never_rebuild_the_fused_runner(two, sketch_image, monkeypatch):
    """Many strength moves on two adapters: each frame follows its strengths (the eager image at those
    strengths), and the fused runner allocates, builds and captures nothing again, on the same recipe."""
    from models.runners.fused import FusedRunner

    e = two
    calls = {"_alloc": 0, "_build": 0, "_capture": 0}
    for name in calls:
        real = getattr(FusedRunner, name)

        def counted(self, *a, _real=real, _name=name, **kw):
            calls[_name] += 1
            return _real(self, *a, **kw)

        monkeypatch.setattr(FusedRunner, name, counted)
    e.set_fast("fused")
    e.step(sketch_image)  # the first frame allocates the buffers
    made = dict(calls)
    recipe = e.recipe
    a, b = (ad.name for ad in e.adapters)
    rng = np.random.default_rng(0)
    outs = []
    for i in range(12):
        sa, sb = (round(float(v), 2) for v in rng.uniform(0, 2, 2))
        e.set_adapter_strength(a, sa)
        e.set_adapter_strength(b, sb)
        out = e.step([sketch_image, colour_image()])
        outs.append(out)
        if i % 4 == 0:  # the frame follows the strengths: the plain recipe at the same strengths agrees
            assert maxdiff(out, e.eager([sketch_image, colour_image()])) <= 1
    e.step([sketch_image, colour_image()], strengths=[None, 0.0])  # a per-frame strength (keep colours) too
    assert calls == made and e.recipe is recipe and e.fast == "fused"
    assert max(maxdiff(outs[0], o) for o in outs[1:]) > 5
    e.set_fast("eager")


def test_adapter_list_names_strengths_and_control_scale(two, tiny_controlnet):
    e = two
    a, b = list(e.adapter_strengths)
    e.set_adapter_strength(a, 0.6)  # as loaded (other tests of the module move them)
    e.set_adapter_strength(b, 1.3)
    assert e.adapter_strengths == {a: 0.6, b: 1.3} and e.adapter is e.adapters[0] and e.control_scale == 0.6
    settings, recipe = e.settings, e.recipe
    e.set_adapter_strength(b, 1.3)  # unchanged: the same value
    assert e.settings == settings
    e.set_adapter_strength(b, 0.2)
    assert e.settings != settings and e.settings.strengths == (0.6, 0.2) and e.recipe is recipe
    with pytest.raises(UserError, match="must be between 0"):
        e.set_adapter_strength(a, 2.5)
    with pytest.raises(UserError, match="no adapter named 'x'"):
        e.set_adapter_strength("x", 1.0)
    added = e.add_adapter(tiny_controlnet, 0.9)
    assert added == [f"{a}-2"] and list(e.adapter_specs.values())[-1] == tiny_controlnet
    assert len(e.recipe.controlnets) == 3 and e.recipe is not recipe
    e.control_scale = 0.5  # every adapter's at once
    assert set(e.adapter_strengths.values()) == {0.5}
    e.remove_adapter(added[0])
    e.set_adapter_strength(a, 0.6)
    e.set_adapter_strength(b, 1.3)
    assert len(e.adapters) == len(e.recipe.controlnets) == 2


def test_demo_is_the_demos_two_adapters_where_the_colour_one_is_built(tmp_path, monkeypatch, tiny_controlnet):
    """`demo` expands to demo-sketch and demo-colour (when colour_adapter/config.json exists), loaded for real."""
    import models.loading as loading
    from models.loading import AdapterInfo, expand_adapter_spec, load_adapters

    demo = tmp_path / "demo"
    shutil.copytree(tiny_controlnet, demo / "adapter")
    monkeypatch.setattr(loading, "DEMO_DIR", demo)
    assert expand_adapter_spec("demo") == ["demo-sketch"]
    with pytest.raises(UserError, match="colour-hint adapter is not built"):
        load_adapters("demo-colour")
    shutil.copytree(tiny_controlnet, demo / "colour_adapter")
    AdapterInfo(condition="colour-hints").write(demo / "colour_adapter")
    adapters = load_adapters("demo")
    assert [a.name for a in adapters] == ["demo-sketch", "demo-colour"]
    assert [a.colour_hints for a in adapters] == [False, True]
    assert expand_adapter_spec("some/folder") == ["some/folder"]


def test_openvino_takes_every_adapters_strength_as_a_graph_input(two, sketch_image, tmp_path, monkeypatch):
    """Two adapters on OpenVINO: the frame follows each strength (torch's image within 1/255) and a strength
    move neither converts nor compiles again."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from models import openvino as ovpath
    from models.runners.openvino import OpenVINORunner

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # never the user's cache
    e = two
    a, b = list(e.adapter_strengths)
    frames = [sketch_image, colour_image()]
    e.set_fast("eager")
    e.set_adapter_strength(a, 0.6)
    e.set_adapter_strength(b, 1.3)
    first = e.step(frames)
    e.set_adapter_strength(a, 1.5)
    e.set_adapter_strength(b, 0.0)
    second = e.step(frames)
    e.set_adapter_strength(a, 0.6)
    e.set_adapter_strength(b, 1.3)
    assert e.set_backend("openvino") == "openvino"
    work = {"convert": 0, "compile": 0}
    real_convert, real_compile = ovpath.convert, ovpath.compile_graph

    def convert(*args, **kw):
        work["convert"] += 1
        return real_convert(*args, **kw)

    def compile_graph(*args, **kw):
        work["compile"] += 1
        return real_compile(*args, **kw)

    monkeypatch.setattr(ovpath, "convert", convert)
    monkeypatch.setattr(ovpath, "compile_graph", compile_graph)
    assert isinstance(e.runners[0], OpenVINORunner)
    try:
        assert maxdiff(e.step(frames), first) <= 1
        e.set_adapter_strength(a, 1.5)
        e.set_adapter_strength(b, 0.0)
        assert maxdiff(e.step(frames), second) <= 1 and maxdiff(first, second) > 5
        assert e.backend == "openvino" and work == {"convert": 0, "compile": 0}
    finally:
        e.set_backend("torch")
        e.set_adapter_strength(a, 0.6)
        e.set_adapter_strength(b, 1.3)


def test_bench_adapters_times_engines_with_each_count_of_each_kind(tmp_path, tiny_base, capsys):
    import json

    out = tmp_path / "a.json"
    assert main.main(["bench", "adapters", "--model", tiny_base, "--size", "64", "--device", "cpu", "--dtype",
                      "float32", "--frames", "1", "--max-adapters", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert {name: row["adapters"] for name, row in r["rows"].items()} == {
        "0": 0, "full 1": 1, "full 2": 2, "light 1": 1, "light 2": 2}
    assert r["rows"]["0"]["ratio"] == 1.0 and all(row["frame_ms"]["median"] > 0 for row in r["rows"].values())
    assert r["adapter_params"]["full"] > r["adapter_params"]["light"] > 0
    assert r["config"]["dtype"] == "float32" and "cpu" in r["machine"]
    assert "x base" in capsys.readouterr().out


def test_stream_feeds_a_colour_hint_adapter_the_frames_own_colours(tmp_path, tiny_base, tiny_controlnet,
                                                                   second_controlnet):
    """`stream` with a line adapter and a colour-hint adapter: --keep-colours 0 leaves the colour adapter out
    (the line adapter alone gives the same picture), a strength feeds it hints and changes the picture."""
    import cv2

    from app.live.testing import write_test_video
    from models.loading import AdapterInfo

    colour = tmp_path / "colour"
    shutil.copytree(second_controlnet, colour)
    AdapterInfo(condition="colour-hints").write(colour)
    video = write_test_video(tmp_path / "in.mp4", frames=2, size=96)

    def stream(controlnets, keep):
        out = tmp_path / f"out-{len(controlnets)}-{keep}.mp4"
        argv = ["stream", "--model", tiny_base, "--input", str(video), "--out", str(out), "--size", "64",
                "--keep-colours", keep, "--steady", "off", "--device", "cpu", "--dtype", "float32"]
        for c in controlnets:
            argv += ["--controlnet", c]
        assert main.main(argv) == 0
        cap = cv2.VideoCapture(str(out))
        ok, frame = cap.read()
        cap.release()
        assert ok
        return frame

    lines_only = stream([tiny_controlnet], "1")
    off = stream([tiny_controlnet, str(colour)], "0")
    on = stream([tiny_controlnet, str(colour)], "1.5")
    assert maxdiff(off, lines_only) <= 8  # the same picture (up to the video codec)
    assert maxdiff(on, off) > 20


def test_eager_leaves_out_an_adapter_at_strength_zero_with_the_same_image(two, sketch_image):
    """An adapter at 0 adds zeros: eager does not run it (keep colours 0 costs nothing) and gives the image the
    fused runner, which runs every adapter, gives."""
    e = two
    a, b = list(e.adapter_strengths)
    ran = [0, 0]
    hooks = [net.register_forward_hook(lambda *_, i=i: ran.__setitem__(i, ran[i] + 1))
             for i, net in enumerate(e.controlnets)]
    try:
        e.set_adapter_strength(b, 0.0)
        e.set_fast("eager")
        skipped = e.step([sketch_image, colour_image()])
        assert ran == [1, 0]
        e.set_fast("fused")
        full = e.step([sketch_image, colour_image()])
        assert ran == [2, 1] and maxdiff(skipped, full) <= 1
        e.set_fast("eager")
        e.step([sketch_image, colour_image()], strengths=[None, 0.7])  # this frame only: it runs
        assert ran == [3, 2]
    finally:
        for h in hooks:
            h.remove()
        e.set_fast("eager")
        e.set_adapter_strength(b, 1.3)
