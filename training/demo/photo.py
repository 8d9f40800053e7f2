"""Photo-like windows, and the build stage that teaches the demo base and its colour adapter to paint them.

The demo base learned from clip art: saturated colour on white paper. A camera frame is colour everywhere, dark
and dull as often as bright, over a background with its own colours and grain; given such a frame's colours as
hints (models.hints.frame_hints), the base and an adapter trained with it frozen still painted pink blobs on
white: the colour adapter alone, fine-tuned on nothing but photo-like windows, got no nearer than a colour error
of 30 on its own training windows (the sketch adapter alone: 61), because the frozen base had never painted a
dark field or a background. So this stage fine-tunes the base's UNet *with* the colour adapter (the sketch
adapter frozen beside them), on three kinds of batch, drawn at random in the shares of PhotoConfig.mix:

  photo      photo-like windows (`photo_like`), the colour adapter fed frame_hints of the window, as live;
  canvas     the clip-art windows with the trainer's own colour hints (models.hints.colour_hints), matched
             both to the pictures and to what the colour adapter and base painted before this stage;
  sketch     the clip-art windows with the sketch adapter alone, the target being what the base painted
             before this stage (its frozen copy, same noise, same prompt), so base and sketch adapter keep
             their pictures where nothing asks for colour (the sketch adapter is not retrained).

The loss is the trainer's own (training.objective.Objective, latent MSE) on the engine's one-step recipe; the
sketch batches' is the MSE to the frozen copy's x0 (matching the pictures themselves there let the sketch
adapter's pictures drift: held-out edge F1 with it alone 0.563 -> 0.514 in 2000 steps).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PAPER = 235  # a pixel with every channel at or above this, connected to the window's border, is paper
KINDS = ("photo", "canvas", "sketch")  # the batch kinds (module docstring)


@dataclass(kw_only=True)
class PhotoConfig:
    steps: int = 2000  # optimizer steps (each one batch of one kind)
    mix: tuple[float, float, float] = (0.5, 0.3, 0.2)  # shares of photo, canvas and sketch batches
    unet_lr: float = 1e-4  # the base UNet's AdamW learning rate
    adapter_lr: float = 3e-4  # the colour adapter's
    canvas_hold: float = 1.0  # weight of a canvas batch's second term, the MSE to the model before the stage (as
    # a sketch batch's is): the pictures alone softened the held-out pictures (sharpness with hints 0.87 -> 0.70)
    batch: int = 4  # windows per batch
    size: int = 128  # window side (the adapters' training windows: 128 px of the 256 px pictures)
    seed: int = 3  # batches, windows, noise
    threads: int = 1  # torch CPU threads


def paper(img: np.ndarray) -> np.ndarray:
    """bool (H, W): the white around the drawing (near-white pixels connected to the border)."""
    white = (img.min(axis=2) >= PAPER).astype(np.uint8)
    _, labels = cv2.connectedComponents(white, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge[edge > 0])


def _field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth field of 2-4 random colours (any value, mostly dull) with grain, float32 RGB."""
    hsv = np.stack([rng.uniform(0, 180, 4), rng.uniform(0, 200, 4), rng.uniform(15, 245, 4)], 1).astype(np.uint8)
    colours = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32)
    grid = colours[rng.integers(0, int(rng.integers(2, 5)), (3, 3))]
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, rng.uniform(3, 14), (h, w)).astype(np.float32), (0, 0), 0.8)
    return np.clip(field + grain[..., None], 0, 255)


def photo_like(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB -> uint8 RGB: the paper replaced by a coloured field with grain, then the whole picture darkened
    (value x 0.45-1) and dulled (saturation x 0.35-1) at random."""
    out = img.astype(np.float32)
    bg = paper(img)
    out[bg] = _field(*img.shape[:2], rng)[bg]
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= rng.uniform(0.35, 1.0)
    hsv[..., 2] *= rng.uniform(0.45, 1.0)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def write_photo_like(src: Path, dst: Path, seed: int = 0) -> int:
    """A copy of the paired folder src (images/, conditions/, metadata.jsonl) at dst with every image made
    photo_like (the conditions, the drawing's sketches, and the captions stay). Returns how many."""
    if (dst / "metadata.jsonl").exists():
        return sum(1 for _ in (dst / "images").iterdir())
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    shutil.copytree(src / "conditions", tmp / "conditions")
    shutil.copy(src / "metadata.jsonl", tmp / "metadata.jsonl")
    rng = np.random.default_rng(seed)
    n = 0
    for line in (src / "metadata.jsonl").read_text().splitlines():
        name = json.loads(line)["file_name"]
        img = cv2.imread(str(src / "images" / name))
        cv2.imwrite(str(tmp / "images" / name), np.ascontiguousarray(photo_like(img[..., ::-1], rng)[..., ::-1]))
        n += 1
    shutil.rmtree(dst, ignore_errors=True)
    tmp.replace(dst)
    return n


def _batch(data, kind: str, g: np.random.Generator, size: int) -> dict:
    """One batch of `kind` as collated tensors: photo windows get frame_hints (a live frame's hints)."""
    from models.hints import frame_hints
    from training.data import collate

    items = []
    while len(items) < size:
        ex = data.load(int(g.integers(len(data))), np.random.default_rng(int(g.integers(2**31))))
        if ex is None:
            continue
        if kind == "photo":
            ex["condition"] = frame_hints(ex["image"])
        ex["skipped"] = []
        items.append(ex)
    return collate(items)


def _held(objective, before, net, was, b: dict, noise, alone: bool):
    """A batch's loss against the model before the stage: `net` on the UNet being trained (objective) against
    `was` on the frozen copy of the base (before), same noise, prompt and conditions. alone: the sketch adapter by
    itself (net and was are both the frozen sketch adapter, so only the UNet learns); else the colour adapter on
    the batch's hints with the sketch adapter beside it."""
    import torch
    import torch.nn.functional as F

    text = objective.encode_text(b["caption"])
    cond, extra = (b["companions"][0], None) if alone else (b["condition"], b["companions"])  # None: no companion
    with torch.no_grad():
        want = before.predict_x0(was, noise, text, cond, extra)
    return F.mse_loss(objective.predict_x0(net, noise, text, cond, extra), want)


def train_photo(base: Path, sketch: Path, colour: Path, windows: Path, photos: Path, out: Path, cfg: PhotoConfig,
                log: Path | None = None) -> tuple[Path, Path]:
    """The joint fine-tune (module docstring): reads the base, the frozen sketch adapter, the colour adapter to
    start from, the clip-art windows and their photo-like copies; writes out/base (the base with the new UNet,
    fp16) and out/colour (the colour adapter, fp32, with its adapter.json). Returns the two folders."""
    import torch
    from diffusers import ControlNetModel

    from models.loading import AdapterInfo, load_base
    from training.data import TrainData, scan
    from training.demo.base import _log, drop_source_path
    from training.objective import LossWeights, Objective

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = load_base(str(base), torch.float32)
    sk = ControlNetModel.from_pretrained(sketch, torch_dtype=torch.float32)
    col = ControlNetModel.from_pretrained(colour, torch_dtype=torch.float32).train()
    col_was = ControlNetModel.from_pretrained(colour, torch_dtype=torch.float32).eval().requires_grad_(False)
    weights, cpu = LossWeights(latent=1.0, pixel=0.0), torch.device("cpu")
    objective = Objective(model, weights, cpu, torch.float32, False, [(sk, 1.0)])
    before = Objective(load_base(str(base), torch.float32), weights, cpu, torch.float32, False, [(sk, 1.0)])  # frozen
    unet = model.unet.requires_grad_(True).train()
    params = list(col.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW([{"params": col.parameters(), "lr": cfg.adapter_lr},
                             {"params": unet.parameters(), "lr": cfg.unet_lr}], weight_decay=1e-2)
    clip = TrainData(scan(windows, "colour-hints").samples, "colour-hints", cfg.size, 0.0, ("sketch",))
    photo = TrainData(scan(photos, "colour-hints").samples, "colour-hints", cfg.size, 0.0, ("sketch",))
    g = np.random.default_rng(cfg.seed)
    share = np.array(cfg.mix, np.float64) / sum(cfg.mix)
    latent = (cfg.batch, unet.config.in_channels, cfg.size // 8, cfg.size // 8)
    sums: dict[str, list[float]] = {k: [] for k in KINDS}
    t0 = time.time()
    for step in range(cfg.steps):
        kind = KINDS[int(g.choice(3, p=share))]
        b = _batch(photo if kind == "photo" else clip, kind, g, cfg.batch)
        noise = torch.randn(latent, generator=torch.Generator().manual_seed(int(g.integers(2**31))))
        if kind == "sketch":
            terms = {"loss": _held(objective, before, sk, sk, b, noise, alone=True)}
        else:
            terms = objective(col, b, noise)
            if kind == "canvas" and cfg.canvas_hold:
                terms["loss"] = terms["loss"] + cfg.canvas_hold * _held(objective, before, col, col_was, b, noise, alone=False)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sums[kind].append(terms["loss"].item())
        if step % 100 == 0 or step == cfg.steps - 1:
            mean = "  ".join(f"{k} {np.mean(v[-100:]):.4f}" for k, v in sums.items() if v)
            _log(f"photo step {step} latent loss {mean} {time.time() - t0:.0f}s", log)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp / "base")
    unet.eval().to(torch.float16).save_pretrained(tmp / "base" / "unet", safe_serialization=True)
    drop_source_path(tmp / "base" / "unet")
    col.eval().save_pretrained(tmp / "colour", safe_serialization=True)
    info = AdapterInfo.read(colour)
    info.extra = dict(info.extra, photo_stage={"steps": cfg.steps, "mix": dict(zip(KINDS, cfg.mix)),
                                               "unet_lr": cfg.unet_lr, "lr": cfg.adapter_lr, "seed": cfg.seed})
    info.write(tmp / "colour")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out / "base", out / "colour"
