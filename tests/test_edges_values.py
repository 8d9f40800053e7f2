"""Values at the edges: each bounded and checked before any model loads, in one line; library noise kept off
the terminal. Where the terminal itself is the point (FFmpeg's and torch's own lines), a real subprocess."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from app.live.testing import count_frames, write_test_video
from tests.checks import one_line

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def cli(*argv: str | bytes) -> tuple[int, str]:
    r = subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True, timeout=600, env=ENV)
    return r.returncode, r.stderr.decode("utf-8", "replace")


@pytest.fixture()
def no_model(monkeypatch):
    from models.engine import Engine

    def loaded(*a, **k):
        raise AssertionError("a model was loaded before the check")

    monkeypatch.setattr(Engine, "load", loaded)


def gen(model: str, out: Path, *extra: str) -> list[str]:
    return ["generate", "--model", model, "--size", "64", "--device", "cpu", "--out", str(out), *extra]


def test_size_has_an_upper_bound(capsys, tmp_path, tiny_base, no_model):
    one_line(main.main(gen(tiny_base, tmp_path / "o.png", "--size", "100000")), capsys.readouterr().err, "100000", "at most 2048")
    one_line(main.main(["stream", "--model", tiny_base, "--input", "camera:0", "--out", str(tmp_path / "o.mp4"),
                        "--size", "100000"]), capsys.readouterr().err, "at most 2048")


def test_any_whole_seed_works_modulo_2_to_the_64(tmp_path, tiny_base):
    pictures = {}
    for seed in ("0", str(2**64), "-1", str(2**64 - 1), str(10**40)):
        out = tmp_path / f"s{len(pictures)}.png"
        assert main.main(gen(tiny_base, out, "--seed", seed)) == 0
        pictures[seed] = cv2.imread(str(out))
    assert np.array_equal(pictures["0"], pictures[str(2**64)])
    assert np.array_equal(pictures["-1"], pictures[str(2**64 - 1)])
    assert not np.array_equal(pictures["0"], pictures["-1"])


def test_schedule_seeds_are_checked_before_the_first_frame(tmp_path, tiny_base, capsys, no_model):
    video = write_test_video(tmp_path / "in.mp4", frames=3, size=64, fps=10)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 a city\n1 seed=12x\n")
    code = main.main(["stream", "--model", tiny_base, "--input", str(video), "--out", str(tmp_path / "o.mp4"), "--schedule", str(bad)])
    one_line(code, capsys.readouterr().err, "line 2", "seed=12x")
    assert not (tmp_path / "o.mp4").exists()


def test_huge_schedule_seed_streams_to_the_end(tmp_path, tiny_base, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=4, size=64, fps=10)
    sched = tmp_path / "s.txt"
    sched.write_text(f"0 a city seed={2**64 + 5}\n0.2 seed=-{10**30}\n")
    out = tmp_path / "o.mp4"
    assert main.main(["stream", "--model", tiny_base, "--size", "64", "--input", str(video), "--out", str(out), "--schedule", str(sched)]) == 0
    assert count_frames(out) == 4


def test_prompt_that_is_not_utf8(capsys, tmp_path, tiny_base, no_model):
    """argv keeps undecodable bytes as lone surrogates (surrogateescape): that is what main() receives."""
    argv = gen(tiny_base, tmp_path / "o.png", "--prompt", "caf" + b"\xe9 au lait".decode("utf-8", "surrogateescape"))
    one_line(main.main(argv), capsys.readouterr().err, "--prompt", "not valid UTF-8", "0xe9")
    argv = ["stream", "--model", tiny_base, "--input", "camera:0", "--out", str(tmp_path / "o.mp4"), "--prompt", "\udcff"]
    one_line(main.main(argv), capsys.readouterr().err, "--prompt", "0xff")


def test_prompt_bytes_from_a_real_shell(tmp_path, tiny_base):
    code, err = cli(*gen(tiny_base, tmp_path / "o.png", "--prompt", b"\xff\xfe sketch"))
    one_line(code, err, "not valid UTF-8", "0xff")


@pytest.fixture()
def model_copy(tmp_path, tiny_base):
    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    return folder


@pytest.mark.parametrize("rel, value", [
    ("vae/config.json", []),
    ("unet/config.json", [1, 2]),
    ("text_encoder/config.json", "x"),
    ("scheduler/scheduler_config.json", None),
])
def test_config_files_of_the_wrong_shape(capsys, tmp_path, model_copy, rel, value):
    (model_copy / rel).write_text(json.dumps(value))
    one_line(main.main(gen(str(model_copy), tmp_path / "o.png")), capsys.readouterr().err, rel.split("/")[1], "not a JSON object")


@pytest.mark.parametrize("name", ["logging", 5, "AutoencoderKL", "NoSuchScheduler"])
def test_scheduler_class_that_is_no_scheduler(capsys, tmp_path, model_copy, name):
    path = model_copy / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "_class_name": name}))
    one_line(main.main(gen(str(model_copy), tmp_path / "o.png")), capsys.readouterr().err, "scheduler_config.json")


def test_controlnet_config_of_the_wrong_shape_names_the_file(capsys, tmp_path, tiny_base, tiny_controlnet, sketch_image):
    from models.imageio import write_rgb

    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_controlnet, adapter)
    (adapter / "config.json").write_text("[1, 2]")
    png = write_rgb(tmp_path / "s.png", sketch_image)
    code = main.main(gen(tiny_base, tmp_path / "o.png", "--controlnet", str(adapter), "--image", str(png)))
    err = capsys.readouterr().err
    one_line(code, err, "config.json", "a list")
    assert "connect" not in err and "huggingface" not in err.lower()
    (adapter / "config.json").write_text((Path(tiny_controlnet) / "config.json").read_text())
    (adapter / "adapter.json").write_text("[]")
    one_line(main.main(gen(tiny_base, tmp_path / "o.png", "--controlnet", str(adapter), "--image", str(png))),
             capsys.readouterr().err, "adapter.json")


def test_lora_weight_that_is_no_number_names_the_weight(capsys, tmp_path, tiny_base, no_model):
    one_line(main.main(gen(tiny_base, tmp_path / "o.png", "--lora", "X:abc")), capsys.readouterr().err, "'abc'", "not a number")
    one_line(main.main(["stream", "--model", tiny_base, "--input", "camera:0", "--out", str(tmp_path / "o.mp4"),
                        "--lora", "style:1e999"]), capsys.readouterr().err, "weight")


def test_text_file_named_mp4_is_refused_before_the_model_without_ffmpeg_lines(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    # a model folder that does not exist: the input's error must come first, as the check runs before any load
    code, err = cli("stream", "--model", str(tmp_path / "no-model"), "--input", str(fake), "--out", str(tmp_path / "o.mp4"))
    one_line(code, err, "notes.mp4", "not a video")
    assert "moov" not in err and "@ 0x" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


def test_training_folder_of_truncated_pngs(tmp_path, tiny_base):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        ok, buf = cv2.imencode(".png", np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        (data / f"{i}.png").write_bytes(buf.tobytes()[:300])
    out = tmp_path / "run"
    code, err = cli("train", "--base", tiny_base, "--data", str(data), "--out", str(out), "--resolution", "64", "--device", "cpu")
    one_line(code, err, "none of its 3 images decodes", "0.png")
    assert "WARN" not in err and not out.exists()  # no OpenCV lines; nothing written, no run.json


def test_raw_pickle_lora_is_one_line_without_torch_warnings(tmp_path, tiny_base):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    evil = tmp_path / "style.bin"
    evil.write_bytes(pickle.dumps({"unet.down.lora_A.weight": Payload()}, protocol=4))
    code, err = cli(*gen(tiny_base, tmp_path / "o.png", "--lora", str(evil)))
    one_line(code, err, "style.bin")
    assert "Warning" not in err
