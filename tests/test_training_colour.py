"""The colour-hints condition and frozen companion adapters (--with-adapter), on tiny models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")


def paired_data(root: Path, n: int = 4, seed: int = 0) -> Path:
    """images/ (coloured discs and boxes on white) + conditions/ (their outlines) + metadata.jsonl."""
    (root / "images").mkdir(parents=True)
    (root / "conditions").mkdir()
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        img = np.full((64, 64, 3), 255, np.uint8)
        cv2.circle(img, (int(rng.integers(20, 44)), 30), 16, tuple(int(c) for c in rng.integers(0, 200, 3)), -1)
        cv2.rectangle(img, (5, 48), (40, 62), tuple(int(c) for c in rng.integers(0, 200, 3)), -1)
        cond = np.full_like(img, 255)
        cond[cv2.Canny(img, 50, 150) > 0] = 0
        cv2.imwrite(str(root / "images" / f"p{i}.png"), img)
        cv2.imwrite(str(root / "conditions" / f"p{i}.png"), cond)
        rows.append({"file_name": f"p{i}.png", "text": "a disc and a box"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def companion_dir(tiny_controlnet, tmp_path_factory):
    """The tiny ControlNet as a sketch adapter (adapter.json beside its weights)."""
    from models.loading import AdapterInfo

    folder = tmp_path_factory.mktemp("companion") / "sketch"
    shutil.copytree(tiny_controlnet, folder)
    AdapterInfo(condition="sketch", resolution=64, base_model="tiny").write(folder)
    return folder


def config(base: str, data: Path, out: Path, **kw):
    from training.config import TrainConfig, check

    opts = dict(condition="colour-hints", resolution=64, batch_size=2, steps=3, lr=1e-3, lr_warmup=0,
                checkpoint_every=2, keep_checkpoints=2, validate_every=0, validation_images=1, workers=0,
                device="cpu", seed=3, adversarial_weight=0.0, pixel_weight=0.0)
    opts.update(kw)
    cfg = TrainConfig(base, str(data), str(out), **opts)
    check(cfg)
    return cfg


def test_hints_are_made_from_the_target_and_reproducible_per_item_seed(tmp_path):
    from training.data import TrainData, scan

    data = paired_data(tmp_path / "d")
    found = scan(data, "colour-hints")
    assert all(s.condition is not None for s in found.samples)  # the paired layout is read for companions
    ds = TrainData(found.samples, "colour-hints", 64)
    seeds = range(40)
    first = [ds[(1, s)]["condition"] for s in seeds]
    again = [ds[(1, s)]["condition"] for s in seeds]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert len({a.tobytes() for a in first}) > 10  # another seed, other hints
    ex = ds[(1, 5)]
    hinted = ex["condition"].min(axis=2) < 245
    assert any(h.any() for h in (a.min(axis=2) < 245 for a in first))
    if hinted.any():  # hints carry the picture's own colours where they sit (within the blur's reach)
        assert np.abs(ex["condition"][hinted].astype(int) - ex["image"][hinted].astype(int)).mean() < 60
    assert np.array_equal(ds.load(0, None)["condition"], ds.load(0, None)["condition"])  # validation: fixed


def test_companions_see_the_paired_condition_or_their_own_extractor(tmp_path):
    from training.data import TrainData, collate, scan

    data = paired_data(tmp_path / "d")
    found = scan(data, "colour-hints")
    ds = TrainData(found.samples, "colour-hints", 64, companions=("sketch",))
    ex = ds[(0, 7)]
    paired = cv2.cvtColor(cv2.imread(str(found.samples[0].condition)), cv2.COLOR_BGR2RGB)
    flip = np.array_equal(ex["companions"][0], paired[:, ::-1])
    assert flip or np.array_equal(ex["companions"][0], paired)
    batch = collate([ds[(0, 1)], ds[(1, 2)]])
    assert batch["companions"][0].shape == (2, 3, 64, 64) and batch["companions"][0].max() <= 1
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in (data / "images").glob("*.png"):
        shutil.copy(p, flat / p.name)
    own = TrainData(scan(flat, "colour-hints").samples, "colour-hints", 64, companions=("sketch",))
    from models.conditions import sketch

    ex = own[(0, 7)]
    assert np.array_equal(ex["companions"][0], sketch(ex["image"]))


def test_colour_hint_run_with_a_frozen_companion_trains_and_saves(tiny_base, companion_dir, tmp_path):
    from diffusers import ControlNetModel
    from safetensors.torch import load_file

    from models.loading import AdapterInfo
    from training.data import collate
    from training.parts import build_parts, make_accelerator
    from training.train import load_data, micro_step, train

    data = paired_data(tmp_path / "d")
    before = load_file(str(companion_dir / "diffusion_pytorch_model.safetensors"))
    cfg = config(tiny_base, data, tmp_path / "out", with_adapters=(f"{companion_dir}:0.8",))
    assert train(cfg) == 0
    out = tmp_path / "out" / "adapter"
    net = ControlNetModel.from_pretrained(out)  # diffusers' format
    assert AdapterInfo.read(out).condition == "colour-hints"
    assert json.loads((out / "adapter.json").read_text())["training"]["with_adapters"] == [f"{companion_dir}:0.8"]
    fresh = load_file(str(out / "diffusion_pytorch_model.safetensors"))
    assert any(k.startswith("controlnet_down_blocks") and v.abs().sum() > 0 for k, v in fresh.items())  # it learned
    assert net.config.block_out_channels
    # the validation grid runs the companion beside the adapter: hints | companion's condition | target | output
    from models.imageio import read_rgb

    (sheet,) = (tmp_path / "out" / "validation").glob("*.png")
    assert read_rgb(sheet).shape[:2] == (64, 4 * 64 + 3 * 4)

    # in memory: steps move the trained adapter only; the companion counts (strength 0 changes the loss)
    cfg = config(tiny_base, data, tmp_path / "out2", with_adapters=(f"{companion_dir}:1.0",))
    _, dataset, _ = load_data(cfg)
    parts = build_parts(cfg, make_accelerator(cfg))
    (frozen, strength), = parts.objective.companions
    assert strength == 1.0 and not any(p.requires_grad for p in frozen.parameters())
    batch = collate([dataset[(0, 1)], dataset[(1, 2)]])
    start = {k: v.clone() for k, v in parts.net.state_dict().items()}
    for micro in range(2):
        micro_step(cfg, parts, batch, micro, adversarial=False)
    assert all(torch.equal(frozen.state_dict()[k].float(), v.float()) for k, v in before.items())
    assert any(not torch.equal(start[k], v) for k, v in parts.net.state_dict().items())
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        on = parts.objective(parts.net, batch, noise)["loss"]
        parts.objective.companions[0] = (frozen, 0.0)
        off = parts.objective(parts.net, batch, noise)["loss"]
    assert not torch.isclose(on, off)


@pytest.mark.parametrize("spec, message", [
    ("/no/such/adapter", "is not an adapter folder"),
    ("{companion}:abc", "is not a number"),
    ("{companion}:3", r"must be between 0 \(off\) and 2"),
])
def test_bad_companions_are_one_line_errors(spec, message, tiny_base, companion_dir, tmp_path):
    from models.errors import UserError

    data = paired_data(tmp_path / "d")
    with pytest.raises(UserError, match=message) as e:
        config(tiny_base, data, tmp_path / "out", with_adapters=(spec.format(companion=companion_dir),))
    assert "\n" not in str(e.value)


def test_with_adapter_flag_repeats_and_round_trips_through_run_json(tiny_base, companion_dir, tmp_path):
    import argparse

    from training.config import add_arguments, from_args
    from training.runs import read_run, train_argv, write_run

    data = paired_data(tmp_path / "d")
    p = argparse.ArgumentParser()
    add_arguments(p)
    argv = ["--base", tiny_base, "--data", str(data), "--out", str(tmp_path / "o"), "--condition", "colour-hints",
            "--with-adapter", str(companion_dir), "--with-adapter", f"{companion_dir}:0.5"]
    cfg = from_args(p.parse_args(argv))
    assert cfg.with_adapters == (str(companion_dir), f"{companion_dir}:0.5")
    assert train_argv(cfg, progress=False).count("--with-adapter") == 2
    write_run(cfg)
    assert read_run(tmp_path / "o").config.with_adapters == cfg.with_adapters
