"""Bad input: one line that names the value and the fix, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, argv):
    code = main.main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def gen(model, *extra, out="out.png"):
    return ["generate", "--model", model, "--prompt", "x", "--out", out, *extra]


def assert_one_line(code, err, *needles):
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture()
def png(tmp_path, sketch_image):
    from models.imageio import write_rgb

    return str(write_rgb(tmp_path / "sketch.png", sketch_image))


def test_missing_model_folder(capsys, tmp_path):
    missing = str(tmp_path / "no-such-model")
    assert_one_line(*run_cli(capsys, gen(missing, out=str(tmp_path / "o.png"))), missing, "folder")


def test_folder_that_is_not_a_model(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line(*run_cli(capsys, gen(str(tmp_path / "empty"), out=str(tmp_path / "o.png"))), "unet/config.json")


def test_corrupt_weights(capsys, tmp_path, tiny_base):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_base, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    out = tmp_path / "o.png"
    assert_one_line(*run_cli(capsys, gen(str(broken), out=str(out))), "UNet", "re-download")
    assert not out.exists()


def test_tokenizer_without_vocabulary_is_refused(capsys, tmp_path, tiny_base):
    broken = tmp_path / "notok"
    shutil.copytree(tiny_base, broken)
    for f in (broken / "tokenizer").iterdir():
        f.unlink()
    assert_one_line(*run_cli(capsys, gen(str(broken), out=str(tmp_path / "o.png"))), "tokenizer")


def write_vocab(folder: Path, tokens: list[str]) -> None:
    import json

    specials = ["<|startoftext|>", "<|endoftext|>"]
    (folder / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)  # it would win over vocab.json
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens + specials)}))
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")


def test_tokenizer_with_only_special_tokens_is_refused(capsys, tmp_path, tiny_base):
    empty = tmp_path / "emptytok"
    shutil.copytree(tiny_base, empty)
    write_vocab(empty, [])
    assert_one_line(*run_cli(capsys, gen(str(empty), out=str(tmp_path / "o.png"))), "tokenizer", "special")


def test_small_but_valid_tokenizer_is_accepted(capsys, tmp_path, tiny_base):
    """A model whose vocabulary is a few dozen tokens (letters, with a matching text encoder) is a real model."""
    small = tmp_path / "smalltok"
    shutil.copytree(tiny_base, small)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    write_vocab(small, letters + [c + "</w>" for c in letters])  # 54 tokens; the text encoder has 1000 rows
    out = tmp_path / "o.png"
    assert main.main(gen(str(small), "--size", "64", "--device", "cpu", out=str(out))) == 0, capsys.readouterr().err
    assert out.exists()
    from models.loading import load_tokenizer

    assert len(load_tokenizer(small, "small")) == 54  # the small vocabulary itself was read


def test_unsafe_pickle_adapter_is_refused_in_one_line(tmp_path, tiny_base, tiny_controlnet, png):
    """A .bin that holds more than tensors is never run; stderr is one line, without the libraries' notices."""
    import pickle

    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copy(Path(tiny_controlnet) / "config.json", evil / "config.json")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (evil / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps({"w": Payload()}))
    out = tmp_path / "o.png"
    r = subprocess.run([sys.executable, "main.py", *gen(tiny_base, "--controlnet", str(evil), "--image", png, out=str(out))],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    err = r.stderr.strip()
    assert r.returncode == 2 and "\n" not in err, err
    assert err.startswith("error: ") and "not a safe weights file" in err and "was not loaded" in err, err
    assert not marker.exists() and not out.exists()


def test_unreadable_or_non_image(capsys, tmp_path, tiny_base, tiny_controlnet):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for image, needle in ((str(tmp_path / "missing.png"), "does not exist"), (str(text), "not a readable image")):
        argv = gen(tiny_base, "--controlnet", tiny_controlnet, "--image", image, out=str(tmp_path / "o.png"))
        assert_one_line(*run_cli(capsys, argv), image, needle)


@pytest.mark.parametrize("size", ["100", "32", "0"])
def test_bad_size(capsys, tmp_path, tiny_base, size):
    assert_one_line(*run_cli(capsys, gen(tiny_base, "--size", size, out=str(tmp_path / "o.png"))), size, "multiple of 8")


def test_unknown_device_and_dtype(capsys, tmp_path, tiny_base):
    assert_one_line(*run_cli(capsys, gen(tiny_base, "--device", "tpu", out=str(tmp_path / "o.png"))), "tpu", "auto, cpu or cuda")
    assert_one_line(*run_cli(capsys, gen(tiny_base, "--dtype", "int4", out=str(tmp_path / "o.png"))), "int4", "float32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(capsys, tmp_path, tiny_base):
    assert_one_line(*run_cli(capsys, gen(tiny_base, "--device", "cuda", out=str(tmp_path / "o.png"))), "cuda", "--device cpu")


def test_controlnet_needs_image_and_out_needs_a_folder(capsys, tmp_path, tiny_base, tiny_controlnet, png):
    assert_one_line(*run_cli(capsys, gen(tiny_base, "--controlnet", tiny_controlnet, out=str(tmp_path / "o.png"))), "--image")
    bad_out = str(tmp_path / "nowhere" / "o.png")
    with_adapter = ("--controlnet", tiny_controlnet, "--image", png)
    assert_one_line(*run_cli(capsys, gen(tiny_base, *with_adapter, out=bad_out)), "does not exist")
    assert_one_line(*run_cli(capsys, gen(tiny_base, *with_adapter, out=str(tmp_path / "o.gif"))), ".png")


def test_image_without_an_adapter_is_not_ignored(capsys, tmp_path, tiny_base, tiny_controlnet, png):
    """It used to be dropped silently: a model without an obvious adapter says so; one with controlnet/ uses it."""
    out = tmp_path / "o.png"
    assert_one_line(*run_cli(capsys, gen(tiny_base, "--image", png, out=str(out))), "--image", "--controlnet")
    assert not out.exists()
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_base, bundle)
    shutil.copytree(tiny_controlnet, bundle / "controlnet")
    assert main.main(gen(str(bundle), "--image", png, "--size", "64", "--device", "cpu", out=str(out))) == 0
    assert "own adapter" in capsys.readouterr().out and out.exists()


def test_hub_id_offline_without_cache(tmp_path, png):
    """A real process, as a user runs it: one line on stderr, exit 2, no traceback."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [sys.executable, "main.py", *gen("IDKiro/sdxs-512-dreamshaper", out=str(tmp_path / "o.png"))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("error: ") and "IDKiro/sdxs-512-dreamshaper" in err and "cache" in err
    assert len(err.splitlines()) == 1, err


def test_control_scale_out_of_range_is_refused_before_loading(capsys, tmp_path, png):
    out = tmp_path / "o.png"
    argv = gen(str(tmp_path / "not-loaded"), "--image", png, "--controlnet", "x", "--control-scale", "5", out=str(out))
    assert_one_line(*run_cli(capsys, argv), "--control-scale 5", "between 0")
    assert not out.exists()
