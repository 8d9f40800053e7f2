"""The trainer end to end on tiny models, a few 64 px steps on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


def make_images(folder: Path, n: int = 5, seed: int = 0) -> Path:
    """Coloured discs on white with captions, plus one file that is not an image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.full((72, 88, 3), 255, np.uint8)
        colour = tuple(int(c) for c in rng.integers(0, 200, 3))
        cv2.circle(img, (int(rng.integers(25, 60)), 36), int(rng.integers(10, 25)), colour, -1)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
        (folder / f"img{i}.txt").write_text("a disc")
    (folder / "broken.png").write_bytes(b"this is not a png")
    return folder


def config(base: str, data: Path, out: Path, **kw):
    from training.config import TrainConfig, check

    opts = dict(resolution=64, batch_size=2, steps=4, lr=1e-3, lr_warmup=0, checkpoint_every=1, keep_checkpoints=2,
                validate_every=0, validation_images=2, workers=0, device="cpu", seed=3,
                adversarial_warmup=1)  # fixed, so that runs of other lengths start the adversarial term alike
    opts.update(kw)
    cfg = TrainConfig(base, str(data), str(out), **opts)
    check(cfg)
    return cfg


def log_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


@pytest.fixture(scope="module")
def straight_run(tiny_base, tmp_path_factory):
    """Four steps in one go: the reference the other tests compare with."""
    from training.train import train

    root = tmp_path_factory.mktemp("train")
    data = make_images(root / "data")
    out = root / "out"
    assert train(config(tiny_base, data, out)) == 0
    return data, out


def test_loss_is_finite_and_logged_per_step(straight_run):
    _, out = straight_run
    rows = log_rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r[k]) for r in rows for k in ("loss", "latent", "pixel"))
    assert (out / "validation" / "step-000004.png").exists()  # the final grid, through the engine


def test_checkpoints_rotate_to_the_last_k(straight_run):
    from training.checkpoints import list_checkpoints, read_step

    _, out = straight_run
    kept = list_checkpoints(out / "checkpoints")
    assert [p.name for p in kept] == ["checkpoint-3", "checkpoint-4"]
    assert read_step(kept[-1]) == 4
    assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"} <= {p.name for p in kept[-1].iterdir()}


def test_final_adapter_loads_in_diffusers_and_runs_in_the_engine(straight_run, tiny_base, tmp_path):
    from diffusers import ControlNetModel

    from models.engine import Engine
    from models.loading import AdapterInfo, load_adapter

    _, out = straight_run
    folder = out / "adapter"
    net = ControlNetModel.from_pretrained(folder)
    assert net.config.mid_block_type == "UNetMidBlock2DCrossAttn"
    info = AdapterInfo.read(folder)
    assert (info.condition, info.polarity, info.resolution, info.base_model) == ("canny", "black_on_white", 64, tiny_base)
    assert info.extra["steps_trained"] == 4 and info.extra["training"]["lr"] == 1e-3
    # it learned something: its output convolutions are no longer all zero
    assert net.controlnet_down_blocks[0].weight.abs().sum() > 0
    engine = Engine.load(tiny_base, str(folder), device="cpu", dtype="float32")
    engine.set_size(64)
    frame = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(frame, (32, 32), 15, (0, 0, 0), 2)
    with_adapter = engine.step(frame)
    engine.control_scale = 0.0
    without = engine.step(frame)
    assert with_adapter.shape == (64, 64, 3) and with_adapter.dtype == np.uint8
    assert np.abs(with_adapter.astype(int) - without).max() > 0
    assert load_adapter(str(folder)).info.condition == "canny"


def test_final_adapter_runs_in_the_diffusers_controlnet_pipeline_as_in_our_engine(straight_run, tiny_base):
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline
    from PIL import Image

    from models.engine import Engine

    _, out = straight_run
    frame = np.full((64, 64, 3), 255, np.uint8)
    cv2.rectangle(frame, (12, 12), (50, 40), (0, 0, 0), 2)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(
        tiny_base, controlnet=ControlNetModel.from_pretrained(out / "adapter"), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("a disc", image=Image.fromarray(frame), num_inference_steps=1, guidance_scale=0, height=64, width=64,
               controlnet_conditioning_scale=1.0, output_type="np", generator=torch.Generator().manual_seed(2)).images[0]
    engine = Engine.load(tiny_base, str(out / "adapter"), device="cpu", dtype="float32")
    engine.set_size(64)
    engine.set_seed(2)
    engine.set_prompt("a disc")
    engine.control_scale = 1.0
    ours = engine.step(frame)
    assert np.abs(ours.astype(int) - (ref * 255).round().astype(int)).max() <= 2


def test_corrupt_image_is_skipped_and_counted(straight_run, capsys):
    from training.data import scan

    data, _ = straight_run
    found = scan(data, "canny")
    assert len(found.samples) == 5 and [p.name for p in found.unreadable] == ["broken.png"]


def test_resume_continues_the_step_count_exactly(straight_run, tiny_base, tmp_path):
    """Two steps, stop, resume up to four: same log steps and the same weights as four in one go."""
    from training.train import train

    data, ref = straight_run
    out = tmp_path / "out"
    assert train(config(tiny_base, data, out, steps=2)) == 0
    assert train(config(tiny_base, data, out, steps=4, resume="latest")) == 0
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]
    ours, theirs = weights(out / "adapter"), weights(ref / "adapter")
    for k in theirs:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-4, atol=1e-6)


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one_usable(straight_run, tiny_base, tmp_path):
    from training import checkpoints
    from training.train import train

    data, _ = straight_run
    out = tmp_path / "out"
    assert train(config(tiny_base, data, out, steps=2)) == 0
    root = out / "checkpoints"

    class KilledWhileWriting:
        """save_state that has written part of its files when the process dies."""

        def save_state(self, path, **kw):
            Path(path).mkdir(parents=True)
            (Path(path) / "model.safetensors").write_bytes(b"half a file")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoints.save(KilledWhileWriting(), root, 3, keep=2)
    assert checkpoints.resolve_resume("latest", root).name == "checkpoint-2"
    (root / "checkpoint-9").mkdir()  # renamed by hand, no state.json: not a checkpoint
    assert checkpoints.resolve_resume("latest", root).name == "checkpoint-2"
    assert train(config(tiny_base, data, out, steps=3, resume="latest")) == 0
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3]
    assert not list(root.glob(".tmp-*"))  # the leftover was cleaned up by the next save


def test_ctrl_c_saves_a_checkpoint_and_exits(straight_run, tiny_base, tmp_path):
    """Ctrl+C in a terminal (SIGINT to the trainer's process): the step finishes, a checkpoint is saved, exit 130."""
    from training.checkpoints import list_checkpoints
    from training.train import Stop

    data, _ = straight_run
    out = tmp_path / "out"
    argv = ["train", "--base", tiny_base, "--data", str(data), "--out", str(out), "--resolution", "64", "--batch-size", "2",
            "--steps", "400", "--lr-warmup", "0", "--checkpoint-every", "1000", "--validate-every", "0",
            "--workers", "0", "--device", "cpu", "--threads", "1", "--progress", "jsonl"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "main.py", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "step" and event["step"] >= 2:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130
    stopped = [json.loads(x) for x in rest.splitlines() if '"stopped"' in x][0]["step"]
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [f"checkpoint-{stopped}"]
    assert not (out / "adapter").exists()
    before = signal.getsignal(signal.SIGINT)
    with Stop():
        pass
    assert signal.getsignal(signal.SIGINT) is before  # the trainer's handler is put back


def test_existing_checkpoints_need_resume(straight_run, tiny_base):
    from models.errors import UserError

    data, out = straight_run
    with pytest.raises(UserError, match="--resume latest"):
        config(tiny_base, data, out)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/no/such/folder"], "is not a folder"),
        (["--resolution", "60"], "multiple of 8"),
        (["--adversarial-weight", "-1"], "--adversarial-weight -1.0 must not be negative"),
        (["--adversarial-weight", "0.1", "--adversarial-warmup", "10", "--steps", "5"], "not shorter than the run"),
        (["--adversarial-weight", "0.1", "--disc-lr", "0"], "--disc-lr 0.0 must be positive"),
    ],
)
def test_bad_arguments_give_one_line_errors(args, message, tiny_base, tmp_path):
    data = make_images(tmp_path / "data", n=1)
    argv = ["--base", tiny_base, "--data", str(data), "--out", str(tmp_path / "out"), *args]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "main.py", "train", *argv], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_evaluate_compares_trained_with_scale_zero(straight_run, tiny_base, tmp_path):
    from training.evaluate import main

    data, out = straight_run
    report = tmp_path / "eval.json"
    assert main(["--base", tiny_base, "--adapter", str(out / "adapter"), "--data", str(data), "--device", "cpu",
                 "--limit", "2", "--json", str(report), "--grid", str(tmp_path / "grid.png")]) == 0
    result = json.loads(report.read_text())
    assert result["images"] == 2 and result["condition"] == "canny"
    for name in ("trained", "untrained"):
        assert set(result[name]) == {"edge_f1", "edge_f1_target", "psnr", "ssim", "sharpness", "colourfulness"}
    assert result["trained"] != result["untrained"]  # the adapter changed the output
    assert cv2.imread(str(tmp_path / "grid.png")).shape[:2] == (2 * 64 + 4, 4 * 64 + 3 * 4)
