"""The trainer's parts: adapters, data folders, objective, metrics."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from models.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base(tiny_base):
    from models.loading import load_base

    return load_base(tiny_base)


@pytest.mark.parametrize("kind", ["full", "light"])
def test_adapter_starts_from_the_unet_and_changes_nothing_yet(base, kind, tmp_path):
    from diffusers import ControlNetModel

    from training.adapters import build_adapter

    net = build_adapter(base.unet, kind)
    ours, theirs = net.state_dict(), base.unet.state_dict()
    for k in ("conv_in.weight", "time_embedding.linear_1.weight", "down_blocks.0.resnets.0.conv1.weight",
              "down_blocks.2.resnets.0.conv2.weight", "down_blocks.0.downsamplers.0.conv.weight"):
        assert torch.equal(ours[k], theirs[k]), k
    has_attention = any("attentions" in k for k in ours)
    assert has_attention == (kind == "full")
    # zero-initialised outputs: the UNet's prediction is exactly what it is without the adapter
    h = 8
    x = torch.randn(1, 4, h, h)
    text = torch.randn(1, 77, base.unet.config.cross_attention_dim)
    cond = torch.rand(1, 3, 8 * h, 8 * h)
    with torch.no_grad():
        down, mid = net(x, 999, encoder_hidden_states=text, controlnet_cond=cond, return_dict=False)
        plain = base.unet(x, 999, encoder_hidden_states=text).sample
        ctrl = base.unet(x, 999, encoder_hidden_states=text, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid).sample
    assert torch.equal(plain, ctrl)
    net.save_pretrained(tmp_path / kind)
    again = ControlNetModel.from_pretrained(tmp_path / kind)
    assert list(again.config.down_block_types) == list(net.config.down_block_types)


def test_light_adapter_is_smaller(base):
    from training.adapters import build_adapter, count_params, gflops

    full, light = build_adapter(base.unet, "full"), build_adapter(base.unet, "light")
    assert count_params(light) < 0.7 * count_params(full)
    assert gflops(light, 64) < gflops(full, 64)


def write(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def test_scan_reads_captions_from_txt_and_metadata(tmp_path):
    from training.data import scan

    img = np.full((40, 50, 3), 200, np.uint8)
    for name in ("a.png", "b.jpg", "c.png"):
        write(tmp_path / name, img)
    (tmp_path / "a.txt").write_text("from a text file\n")
    rows = [{"file_name": "b.jpg", "text": "from metadata"}, {"file_name": "a.png", "text": "ignored: the .txt wins"}]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    found = scan(tmp_path, "sketch")
    assert [(s.image.name, s.caption) for s in found.samples] == [("a.png", "from a text file"), ("b.jpg", "from metadata"), ("c.png", "")]


def test_paired_folders_crop_both_alike(tmp_path):
    from training.data import TrainData, scan

    img = np.zeros((60, 90, 3), np.uint8)
    img[:, :45] = 255  # left half white
    write(tmp_path / "images" / "x.png", img)
    write(tmp_path / "conditions" / "x.png", cv2.resize(img, (45, 30)))  # smaller: stretched to the image
    write(tmp_path / "images" / "lonely.png", img)  # no condition: not a pair
    found = scan(tmp_path, "paired")
    assert [s.image.name for s in found.samples] == ["x.png"]
    data = TrainData(found.samples, "paired", 32)
    for seed in range(6):
        ex = data[(0, seed)]
        assert ex["image"].shape == ex["condition"].shape == (32, 32, 3)
        diff = np.abs(ex["image"].astype(int) - ex["condition"].astype(int))
        assert diff.mean() < 20  # same crop and flip on both


def test_items_are_deterministic_per_seed_and_vary_across_seeds(tmp_path):
    from training.data import TrainData, scan

    rng = np.random.default_rng(0)
    write(tmp_path / "n.png", rng.integers(0, 255, (50, 80, 3), dtype=np.uint8))
    data = TrainData(scan(tmp_path, "canny").samples, "canny", 32, caption_dropout=0.5)
    a, b = data[(0, 1)], data[(0, 1)]
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["condition"], b["condition"])
    assert len({data[(0, s)]["image"].tobytes() for s in range(8)}) > 1  # random crops and flips


def test_truncated_image_is_skipped_when_loaded(tmp_path):
    from training.data import TrainData, collate, scan

    good = np.full((40, 40, 3), 90, np.uint8)
    write(tmp_path / "a.png", good)
    write(tmp_path / "b.png", good)
    (tmp_path / "b.png").write_bytes((tmp_path / "b.png").read_bytes()[:40])  # valid header, no data
    found = scan(tmp_path, "grayscale")
    assert len(found.samples) == 2  # the header looks fine
    data = TrainData(found.samples, "grayscale", 32)
    batch = collate([data[(1, 0)], data[(0, 0)]])
    assert batch["image"].shape == (2, 3, 32, 32) and batch["skipped"] == [str(tmp_path / "b.png")]
    assert batch["image"].min() >= -1 and batch["condition"].max() <= 1


@pytest.mark.parametrize("layout", ["empty", "paired-missing", "no-images"])
def test_wrong_data_folders_are_one_line_errors(tmp_path, layout):
    from training.data import scan

    (tmp_path / "notes.txt").write_text("hello")
    condition = "paired" if layout == "paired-missing" else "canny"
    if layout == "no-images":
        (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(UserError) as e:
        scan(tmp_path, condition)
    assert "\n" not in str(e.value)


def test_objective_gradients_reach_only_the_adapter(base):
    from training.adapters import build_adapter
    from training.objective import LossWeights, Objective

    net = build_adapter(base.unet, "light")
    obj = Objective(base, LossWeights(feature=0.5), torch.device("cpu"), torch.float32, checkpointing=True)
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1, "condition": torch.rand(2, 3, 64, 64), "caption": ["a", ""]}
    terms = obj(net, batch, torch.randn(2, 4, 8, 8))
    assert set(terms) == {"latent", "pixel", "feature", "loss"} and torch.isfinite(terms["loss"])
    terms["loss"].backward()
    zero_convs = [net.controlnet_down_blocks[0].weight, net.controlnet_mid_block.weight]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in zero_convs)
    assert all(p.grad is None for p in base.unet.parameters())


def test_objective_x0_matches_the_engine(base):
    """With a zero adapter, the training prediction decodes to the engine's image for the same noise."""
    from models.engine import Engine
    from training.adapters import build_adapter
    from training.objective import LossWeights, Objective

    obj = Objective(base, LossWeights(), torch.device("cpu"), torch.float32, checkpointing=False)
    engine = Engine(base, "cpu", "float32")
    engine.set_size(64)
    engine.set_seed(5)
    expected = engine.step(np.zeros((64, 64, 3), np.uint8))
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        x0 = obj.predict_x0(build_adapter(base.unet, "full"), noise, obj.encode_text([""]), torch.zeros(1, 3, 64, 64))
        image = obj.decode(x0)
    ours = ((image[0] + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    assert np.abs(ours.astype(int) - expected).max() <= 1


def test_metrics_reward_agreement():
    from training.evaluate import edge_f1, psnr, ssim

    img = np.full((64, 64, 3), 255, np.uint8)
    cv2.rectangle(img, (16, 16), (48, 48), (0, 0, 0), 2)
    shifted = np.roll(img, 1, axis=1)  # within the 2 px tolerance
    elsewhere = np.full_like(img, 255)
    cv2.circle(elsewhere, (20, 44), 10, (0, 0, 0), 2)
    assert edge_f1(img, img) == 1.0 and edge_f1(shifted, img) > 0.9 and edge_f1(elsewhere, img) < 0.3
    assert psnr(img, img) == float("inf") and psnr(shifted, img) > psnr(elsewhere, img)
    assert ssim(img, img) == pytest.approx(1.0) and ssim(shifted, img) > ssim(elsewhere, img)


def test_adapter_condition_names_the_live_extractor():
    from training.config import TrainConfig, check
    from training.train import adapter_info

    cfg = TrainConfig("b", "d", "/tmp/nowhere-sdxs", condition="paired", adapter_condition="sketch")
    check(cfg)
    assert adapter_info(cfg, 7).condition == "sketch"
    with pytest.raises(UserError, match="adapter-condition"):
        check(TrainConfig("b", "d", "/tmp/nowhere-sdxs", adapter_condition="depth"))
