"""The adversarial term (training/adversarial.py) on tiny models: both networks learn, resume is exact, the
shipped adapter holds no discriminator, collapse is caught, bad values are one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from tests.test_training import ROOT, config, log_rows, make_images, weights

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base(tiny_base):
    from models.loading import load_base

    return load_base(tiny_base, torch.float32)


@pytest.mark.parametrize("kind", ["unet", "patch"])
@pytest.mark.parametrize("loss", ["hinge", "nonsaturating"])
def test_adversarial_term_is_finite_and_updates_both_networks(base, kind, loss):
    from training.adapters import build_adapter
    from training.adversarial import Adversary
    from training.objective import LossWeights, Objective

    torch.manual_seed(0)
    net = build_adapter(base.unet, "light")
    obj = Objective(base, LossWeights(pixel=0.0), torch.device("cpu"), torch.float32, checkpointing=False)
    adv = Adversary(kind, obj, loss=loss, lr=1e-3, r1=1.0, seed=0)
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1, "condition": torch.rand(2, 3, 64, 64), "caption": ["a", ""]}
    kept: dict = {}
    terms = obj(net, batch, torch.randn(2, 4, 8, 8), kept)
    g = adv.generator_loss(kept, torch.Generator().manual_seed(1))
    assert torch.isfinite(g)
    (terms["loss"] + 0.5 * g).backward()
    zero_conv = net.controlnet_down_blocks[0].weight
    assert zero_conv.grad is not None and zero_conv.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.disc.parameters())  # the generator's loss does not train the discriminator
    d_terms = adv.discriminator_loss(kept)
    assert all(torch.isfinite(v) for v in d_terms.values()) and d_terms["r1"] >= 0
    before = [p.detach().clone() for p in adv.disc.parameters()]
    d_terms["disc"].backward()
    adv.optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, adv.disc.parameters()))
    assert all(p.grad is None for p in base.unet.parameters()) and all(p.grad is None for p in base.vae.parameters())


ADV = dict(adversarial_weight=0.5, adversarial_warmup=1, r1_weight=0.1)


@pytest.fixture(scope="module")
def adversarial_run(tiny_base, tmp_path_factory):
    from training.train import train

    root = tmp_path_factory.mktemp("adv")
    data = make_images(root / "data")
    out = root / "out"
    assert train(config(tiny_base, data, out, **ADV)) == 0
    return data, out


def test_both_losses_are_logged_after_the_warm_up(adversarial_run):
    _, out = adversarial_run
    rows = log_rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert "disc" not in rows[0] and "adv_g" not in rows[0]  # step 1 is regression only
    for r in rows[1:]:
        assert all(np.isfinite(r[k]) for k in ("loss", "latent", "adv_g", "disc", "disc_real", "disc_fake", "disc_acc", "r1"))


def test_resume_with_the_adversarial_term_equals_an_uninterrupted_run(adversarial_run, tiny_base, tmp_path):
    from safetensors.torch import load_file

    from training.train import train

    data, ref = adversarial_run
    out = tmp_path / "out"
    assert train(config(tiny_base, data, out, steps=2, **ADV)) == 0
    assert train(config(tiny_base, data, out, steps=4, resume="latest", **ADV)) == 0
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]
    for k, v in weights(ref / "adapter").items():
        torch.testing.assert_close(weights(out / "adapter")[k], v, rtol=1e-4, atol=1e-6)
    ours = load_file(str(out / "checkpoints" / "checkpoint-4" / "model_1.safetensors"))  # the discriminator
    theirs = load_file(str(ref / "checkpoints" / "checkpoint-4" / "model_1.safetensors"))
    assert ours.keys() == theirs.keys() and len(ours) > 0
    for k in theirs:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-4, atol=1e-6)


def test_shipped_adapter_has_no_discriminator_and_loads_in_diffusers(adversarial_run, base):
    from diffusers import ControlNetModel

    from training.adapters import build_adapter

    _, out = adversarial_run
    net = ControlNetModel.from_pretrained(out / "adapter")
    assert set(weights(out / "adapter")) == set(build_adapter(base.unet, "full").state_dict())
    assert isinstance(net, ControlNetModel) and net.controlnet_down_blocks[0].weight.abs().sum() > 0


def test_a_collapsed_run_is_reported_and_not_saved_as_the_adapter(tiny_base, tmp_path):
    """A discriminator with a huge learning rate against a generator that barely listens wins outright."""
    from training.train import COLLAPSED, train

    data = make_images(tmp_path / "data")
    out = tmp_path / "out"
    cfg = config(tiny_base, data, out, steps=80, checkpoint_every=10, adversarial_weight=1e-6, adversarial_warmup=0,
                 disc_lr=1e-2, collapse_patience=3, discriminator="patch")
    assert train(cfg) == COLLAPSED
    event = [r for r in log_rows(out) if r.get("event") == "collapse"]
    assert len(event) == 1 and "discriminator wins outright" in event[0]["why"] and "--adversarial-weight" in event[0]["advice"]
    assert event[0]["step"] < 80 and not (out / "adapter").exists()


def test_collapse_watch_tells_a_healthy_game_from_a_lost_one():
    from training.adversarial import CollapseWatch

    healthy = CollapseWatch(patience=5)
    assert all(healthy.update({"disc_acc": 0.6 + 0.1 * (i % 2), "adv_g": 0.8, "disc_fake": -0.8}) is None for i in range(200))
    won = CollapseWatch(patience=5)
    found = [won.update({"disc_acc": 1.0, "adv_g": 1.5}) for _ in range(200)]
    assert found[0] is None and any(found) and "wins outright" in next(f for f in found if f)
    pushed_away = CollapseWatch(patience=5)  # accuracy below 0.99, yet the generated side is far past the margin
    assert any(pushed_away.update({"disc_acc": 0.9, "adv_g": 1.9, "disc_fake": -1.9}) for _ in range(200))
    diverged = CollapseWatch(patience=2)
    assert any(diverged.update({"disc_acc": 0.7, "adv_g": 500.0}) for _ in range(5))
    assert CollapseWatch(patience=1).update({"loss": 1.0}) is None  # regression-only steps are never a collapse


def test_sharpness_and_colourfulness_reward_crisp_colour():
    from training.evaluate import colourfulness, sharpness, summarise

    img = np.full((64, 64, 3), 255, np.uint8)
    cv2.rectangle(img, (16, 16), (48, 48), (220, 30, 30), -1)
    blurred = cv2.GaussianBlur(img, (9, 9), 3)
    grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert sharpness(blurred) < 0.5 * sharpness(img)
    assert colourfulness(grey) == pytest.approx(0.0) and colourfulness(img) > 20
    rows = [{"sharpness": sharpness(blurred), "colourfulness": colourfulness(grey)}]
    ratios = summarise(rows, [img])
    assert ratios["sharpness"] < 0.5 and ratios["colourfulness"] == pytest.approx(0.0)
    assert summarise([{"sharpness": sharpness(img), "colourfulness": colourfulness(img)}], [img]) == pytest.approx(
        {"sharpness": 1.0, "colourfulness": 1.0})


def test_evaluate_compares_two_adapters_on_the_same_noise(adversarial_run, tiny_base, tmp_path):
    from training.evaluate import main

    data, out = adversarial_run
    report = tmp_path / "eval.json"
    assert main(["--base", tiny_base, "--adapter", str(out / "adapter"), "--compare", str(out / "adapter"), "--data", str(data),
                 "--device", "cpu", "--limit", "2", "--json", str(report), "--grid", str(tmp_path / "grid.png")]) == 0
    result = json.loads(report.read_text())
    assert set(result["compare"]) == {"edge_f1", "edge_f1_target", "psnr", "ssim", "sharpness", "colourfulness"}
    assert result["compare"] == pytest.approx(result["trained"])  # the same adapter, the same noise
    assert cv2.imread(str(tmp_path / "grid.png")).shape[:2] == (2 * 64 + 4, 4 * 64 + 3 * 4)  # 4 px gutters


def test_bench_train_reports_the_adversarial_cost_as_ratios(tmp_path):
    report = tmp_path / "train.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "main.py", "bench", "train", "--train-layout", "tiny", "--size", "64", "--device", "cpu",
                        "--train-steps", "1", "--train-batch", "2", "--json", str(report)],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    adapters = json.loads(report.read_text())["adapters"]
    assert set(adapters) == {"full", "full+unet", "full+patch", "light", "light+unet", "light+patch"}
    for name in ("full+unet", "full+patch", "light+unet", "light+patch"):
        assert adapters[name]["step_ratio"] > 0 and adapters[name]["disc_params_m"] > 0
        assert np.isfinite(adapters[name]["loss"])
    assert "x time of regression alone" in r.stdout


def test_the_warm_up_defaults_to_a_third_of_the_run_and_can_be_switched_off():
    from models.errors import UserError
    from training.config import TrainConfig, adversarial_start, check

    cfg = TrainConfig("b", "d", "/tmp/nowhere-sdxs", steps=30)
    check(cfg)
    assert cfg.adversarial_weight > 0 and adversarial_start(cfg) == 10
    assert adversarial_start(TrainConfig("b", "d", "/tmp/nowhere-sdxs", steps=30, adversarial_warmup=0)) == 0
    check(TrainConfig("b", "d", "/tmp/nowhere-sdxs", steps=1, adversarial_weight=0.0, adversarial_warmup=5))  # off: no warm-up check
    with pytest.raises(UserError, match="--adversarial-warmup -3 must not be negative"):
        check(TrainConfig("b", "d", "/tmp/nowhere-sdxs", adversarial_warmup=-3))


def test_a_resumed_run_keeps_the_warm_up_it_started_with(tiny_base, tmp_path):
    """The default warm-up is a third of --steps as first given; extending the run does not move it."""
    from training.train import train

    data = make_images(tmp_path / "data")
    out = tmp_path / "out"
    assert train(config(tiny_base, data, out, steps=3, adversarial_warmup=None)) == 0  # starts after step 1
    assert train(config(tiny_base, data, out, steps=6, adversarial_warmup=None, resume="latest")) == 0  # 6 // 3 would be 2
    assert [("adv_g" in r) for r in log_rows(out)] == [False, True, True, True, True, True]
