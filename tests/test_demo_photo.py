"""The demo builder's photo stage (training/demo/photo.py): photo-like windows and the joint fine-tune, on tiny
models."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from tests.test_training_colour import paired_data

pytestmark = pytest.mark.usefixtures("one_thread")


def clip_art() -> np.ndarray:
    img = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(img, (32, 32), 14, (220, 40, 40), -1)
    cv2.circle(img, (32, 32), 14, (0, 0, 0), 2)
    return img


def test_photo_like_paints_the_paper_and_keeps_the_drawing_where_it_is():
    from training.demo.photo import paper, photo_like

    img = clip_art()
    bg = paper(img)
    assert bg[0, 0] and not bg[32, 32] and 0.5 < bg.mean() < 0.9
    rng = np.random.default_rng(1)
    outs = [photo_like(img, rng) for _ in range(8)]
    for out in outs:
        assert out.shape == img.shape and out.dtype == np.uint8
        assert out[bg].min(axis=1).mean() < 235  # no white paper left
        disc = out[28:37, 28:37].reshape(-1, 3).astype(int)  # still red, however dark or dull
        assert (disc[:, 0] >= disc[:, 1]).all() and (disc[:, 0] >= disc[:, 2]).all()
    assert len({o[bg].mean().round() for o in outs}) > 4  # a different field each time
    assert min(o[bg].mean() for o in outs) < 120  # and dark ones among them


def test_write_photo_like_keeps_conditions_and_captions_and_is_reused(tmp_path):
    from training.demo.photo import write_photo_like

    src = paired_data(tmp_path / "src")
    assert write_photo_like(src, tmp_path / "dst", seed=0) == 4
    dst = tmp_path / "dst"
    assert (dst / "metadata.jsonl").read_text() == (src / "metadata.jsonl").read_text()
    for name in ("p0.png", "p3.png"):
        assert (dst / "conditions" / name).read_bytes() == (src / "conditions" / name).read_bytes()
        assert not np.array_equal(cv2.imread(str(dst / "images" / name)), cv2.imread(str(src / "images" / name)))
    stamp = (dst / "images" / "p0.png").stat().st_mtime_ns
    assert write_photo_like(src, dst, seed=5) == 4 and (dst / "images" / "p0.png").stat().st_mtime_ns == stamp


def test_the_sketch_batches_start_at_zero_loss_and_the_stage_writes_a_base_and_an_adapter(tiny_base, tiny_controlnet, tmp_path):
    """The sketch batches' target is the base before the stage: at the start their loss is exactly 0 (the copy is
    the model). After the stage the new base loads as a diffusers pipeline (UNet in fp16, changed), the colour
    adapter as a ControlNet with its adapter.json naming colour-hints and the stage's settings."""
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    from models.loading import AdapterInfo, load_base
    from training.data import TrainData, scan
    from training.demo.photo import PhotoConfig, _batch, _held, train_photo, write_photo_like
    from training.objective import LossWeights, Objective

    windows = paired_data(tmp_path / "windows")
    photos = tmp_path / "photos"
    write_photo_like(windows, photos)
    sketch, colour = tmp_path / "sketch", tmp_path / "colour"
    shutil.copytree(tiny_controlnet, sketch)
    shutil.copytree(tiny_controlnet, colour)
    AdapterInfo(condition="colour-hints", resolution=64, base_model="tiny").write(colour)

    model = load_base(tiny_base, torch.float32)
    sk = ControlNetModel.from_pretrained(sketch)
    objective = Objective(model, LossWeights(pixel=0.0), torch.device("cpu"), torch.float32, False, [(sk, 1.0)])
    before = Objective(load_base(tiny_base, torch.float32), LossWeights(pixel=0.0), torch.device("cpu"), torch.float32,
                       False, [(sk, 1.0)])
    data = TrainData(scan(windows, "colour-hints").samples, "colour-hints", 64, 0.0, ("sketch",))
    b = _batch(data, "sketch", np.random.default_rng(0), 2)
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert _held(objective, before, sk, sk, b, noise, alone=True).item() == 0.0 and objective.companions == [(sk, 1.0)]
    col = ControlNetModel.from_pretrained(colour)
    assert _held(objective, before, col, ControlNetModel.from_pretrained(colour), b, noise, alone=False).item() == 0.0
    photo = _batch(TrainData(scan(photos, "colour-hints").samples, "colour-hints", 64, 0.0, ("sketch",)), "photo",
                   np.random.default_rng(0), 2)
    assert photo["condition"].shape == (2, 3, 64, 64) and photo["condition"].min() < 0.9  # frame hints cover it

    cfg = PhotoConfig(steps=4, mix=(1, 1, 1), batch=2, size=64, unet_lr=1e-3)
    base, adapter = train_photo(tiny_base, sketch, colour, windows, photos, tmp_path / "run", cfg)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=ControlNetModel.from_pretrained(adapter),
                                                             safety_checker=None)
    from safetensors.torch import load_file

    stored = load_file(str(base / "unet" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}
    before = dict(model.unet.named_parameters())
    assert any(not torch.equal(p.float(), before[k].half().float()) for k, p in pipe.unet.named_parameters())
    info = AdapterInfo.read(adapter)
    assert info.condition == "colour-hints" and info.extra["photo_stage"]["steps"] == 4
    assert not (tmp_path / "run.tmp").exists()
    assert "_name_or_path" not in (base / "unet" / "config.json").read_text()  # no path of the building machine


def test_the_card_tells_the_photo_stage_from_its_times_and_the_numbers_before_it():
    from training.demo.card_colour import _photo

    assert _photo({}, None) == ""
    side = {"hue_error_hints": 28.3, "edge_f1_hints": 0.61, "edge_f1_alone": 0.563}
    before = {"heldout": side, "canvas": {"edge_f1_hints": 0.715, "edge_f1_alone": 0.725},
              "keep_colours": {"colour_error_keep": 32.3, "colour_error_alone": 51.5}}
    text = _photo({"photo": {"seconds": 360, "steps": 1234, "mix": [0.5, 0.3, 0.2], "unet_lr": 5e-5}}, before)
    assert "1234 steps (6 min)" in text and "learning rate 5e-05" in text
    assert "50% of the batches photo-like" in text and "30% clip-art windows" in text and "20% the sketch adapter alone" in text
    assert "photos' colour error 32.3 (alone 51.5)" in text and "canvas edge F1 0.715 (alone 0.725)" in text
