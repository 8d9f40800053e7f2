"""Training options: one dataclass, its command-line flags, and the checks that run before any model loads."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from models.errors import UserError
from models.options import COLOUR_HINTS, POLARITIES, check_device, parse_adapter_arg
from training.log import PROGRESS

CONDITIONS = ("canny", "sketch", "grayscale", "blur", COLOUR_HINTS, "paired")  # colour-hints: models/hints.py colour_hints
ADAPTERS = ("full", "light")  # the adapter kinds training/adapters.py builds
DISCRIMINATORS = ("unet", "patch")  # the discriminator kinds training/adversarial.py builds
ADVERSARIAL_LOSSES = ("hinge", "nonsaturating")  # the losses training/adversarial.py computes


@dataclass
class TrainConfig:
    base: str  # the frozen base model: folder, hub id or demo
    data: str  # training data: a folder of images, a Hugging Face dataset or WebDataset shards (training/sources.py)
    out: str  # output folder: checkpoints/, validation/, logs/, train_log.jsonl, adapter/
    image_column: str | None = None  # a dataset's column (or a shard's file extension) of the pictures (default: image, or its first image column; png, jpg, ... in shards)
    caption_column: str | None = None  # the column (extension) of the captions, used as prompts (default: text, caption or prompt; txt in shards)
    condition_column: str | None = None  # the column (extension) of paired conditions (default: conditioning_image, condition, ...; condition.png in shards)
    shuffle_buffer: int = 1000  # samples each shard stream shuffles within (shards only)
    condition: str = "canny"  # what the adapter is conditioned on: canny, sketch, grayscale, blur, colour-hints (each picture's own colours as flat shapes, strokes, blobs or dots, models.hints) or paired
    adapter_condition: str | None = None  # the extractor adapter.json names for live input (default: --condition; for paired data the one your conditions resemble)
    polarity: str = "black_on_white"  # how lines are drawn in the conditions (built-in extractors draw black on white)
    with_adapters: tuple[str, ...] = ()  # frozen companion adapters "FOLDER[:STRENGTH]" (or demo-sketch) whose residuals are added to the trained one's, each fed the data's paired condition, else its own condition made from the picture (repeat the flag)
    init_adapter: str | None = None  # start from this adapter's weights (a folder with a diffusers ControlNet, or demo-sketch) instead of a fresh one of --adapter's kind: fine-tune an adapter you have
    adapter: str = "full"  # full (the UNet's encoder + a mid block) or light (no attention, slimmer)
    resolution: int = 512  # training crop size in pixels, a multiple of 8
    batch_size: int = 4  # examples per device per micro-step
    gradient_accumulation: int = 1  # micro-steps per optimizer step
    steps: int = 1000  # optimizer steps in all (a resumed run continues up to this number)
    lr: float = 5e-5  # AdamW learning rate
    lr_schedule: str = "constant"  # constant, linear or cosine (diffusers' get_scheduler), after warm-up
    lr_warmup: int = 50  # steps of linear warm-up
    max_grad_norm: float = 1.0  # gradient clipping
    mixed_precision: str | None = None  # no, fp16 or bf16 (unset: accelerate launch's setting, else no)
    gradient_checkpointing: bool = False  # recompute activations of ControlNet, UNet and decoder in the backward pass
    latent_weight: float = 1.0  # loss weight: x0 latent vs the target's latent
    pixel_weight: float = 1.0  # loss weight: decoded x0 vs the target image
    lpips_weight: float = 0.0  # loss weight: LPIPS (needs the lpips package and its weights locally)
    feature_weight: float = 0.0  # loss weight: frozen UNet encoder features
    adversarial_weight: float = 0.1  # loss weight: the adversarial term (0: off; see training/adversarial.py and the README's evidence)
    discriminator: str = "patch"  # patch (PatchGAN on image + condition) or unet (heads on the frozen UNet's encoder features)
    adversarial_loss: str = "hinge"  # hinge or nonsaturating
    adversarial_warmup: int | None = None  # regression-only steps before the adversarial term and the discriminator start (default: a third of --steps)
    disc_lr: float = 1e-4  # the discriminator's AdamW learning rate
    r1_weight: float = 0.0  # R1 penalty on the discriminator's gradient at real samples (0: off)
    collapse_patience: int = 50  # steps the discriminator may win outright (or the generator diverge) before the run stops as collapsed
    caption_dropout: float = 0.1  # chance of training an example with the empty prompt
    checkpoint_every: int = 500  # steps between checkpoints
    keep_checkpoints: int = 3  # checkpoints kept (the oldest are deleted)
    validate_every: int = 250  # steps between validation grids (0: only at the end)
    validation_images: int = 4  # examples in each validation grid (the first ones by file name)
    holdout: bool = False  # leave the validation examples out of training
    resume: str | None = None  # latest or a checkpoint folder
    seed: int = 0  # seeds the adapter's fresh parts, batches, crops, noise and validation
    workers: int = 2  # data loader processes (0: load in the training process)
    device: str = "auto"  # auto, cpu or cuda (accelerate launch picks the GPU of each process)
    threads: int = 0  # CPU threads for torch (0: torch's default)
    progress: str = "bar"  # bar (a progress bar for people) or jsonl (one JSON object per line on stdout, for tools)


FLAGS = {  # field -> help text beyond the dataclass comment, where the flag needs an example
    "base": "base model: folder, hub id (IDKiro/sdxs-512-dreamshaper) or demo",
    "data": "folder of images (+ .txt captions or metadata.jsonl; images/ + conditions/ for paired), a Hugging Face "
            "dataset (save_to_disk folder, .parquet files, hub id) or WebDataset shards (shards/train-{000000..000099}.tar)",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    defaults = TrainConfig("", "", "")
    comments = _comments()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = FLAGS.get(f.name, comments.get(f.name, ""))
        default = getattr(defaults, f.name)
        if f.name in ("base", "data", "out"):
            p.add_argument(flag, required=True, help=help_text)
        elif f.name == "with_adapters":
            p.add_argument("--with-adapter", dest=f.name, action="append", default=[], metavar="FOLDER[:STRENGTH]",
                           help=help_text)
        elif isinstance(default, bool):
            p.add_argument(flag, action="store_true", help=help_text)
        else:
            kind = {"int": int, "float": float}.get(type(default).__name__) or (int if str(f.type).startswith("int") else str)
            choices = {"condition": CONDITIONS, "adapter": ADAPTERS, "mixed_precision": ("no", "fp16", "bf16"),
                       "lr_schedule": ("constant", "linear", "cosine"), "discriminator": DISCRIMINATORS,
                       "adversarial_loss": ADVERSARIAL_LOSSES, "polarity": POLARITIES, "progress": PROGRESS}
            p.add_argument(flag, type=kind, default=default, choices=choices.get(f.name),
                           help=f"{help_text} (default {default})" if default is not None else help_text)


def _comments() -> dict[str, str]:
    """The dataclass's field comments, which double as the flags' help."""
    import inspect

    out = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        if ":" in line and "#" in line:
            name = line.split(":", 1)[0].strip()
            out[name] = line.split("#", 1)[1].strip()
    return out


def from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    cfg.with_adapters = tuple(cfg.with_adapters or ())
    check(cfg)
    return cfg


def adversarial_start(cfg: TrainConfig) -> int:
    """The step the adversarial term starts at: --adversarial-warmup, else a third of the run (the measured
    recipe: the adapter first learns to follow the condition, then to look like the pictures)."""
    return cfg.steps // 3 if cfg.adversarial_warmup is None else cfg.adversarial_warmup


def check(cfg: TrainConfig) -> None:
    """Reject bad values in one line each, before anything heavy happens."""
    if cfg.resolution < 64 or cfg.resolution % 8:
        raise UserError(f"--resolution {cfg.resolution} must be a multiple of 8 and at least 64, for example 512")
    positive = {"batch-size": cfg.batch_size, "gradient-accumulation": cfg.gradient_accumulation, "steps": cfg.steps,
                "checkpoint-every": cfg.checkpoint_every, "keep-checkpoints": cfg.keep_checkpoints,
                "shuffle-buffer": cfg.shuffle_buffer}
    for name, value in positive.items():
        if value < 1:
            raise UserError(f"--{name} {value} must be at least 1")
    if not cfg.lr > 0:
        raise UserError(f"--lr {cfg.lr} must be positive, for example 5e-5")
    if not 0 <= cfg.caption_dropout <= 1:
        raise UserError(f"--caption-dropout {cfg.caption_dropout} must be between 0 and 1")
    for name in ("latent_weight", "pixel_weight", "lpips_weight", "feature_weight", "validate_every", "lr_warmup",
                 "workers", "validation_images", "max_grad_norm", "threads", "adversarial_weight", "r1_weight"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} {getattr(cfg, name)} must not be negative")
    if cfg.latent_weight + cfg.pixel_weight + cfg.lpips_weight + cfg.feature_weight <= 0:
        raise UserError("all loss weights are 0: give --latent-weight or --pixel-weight a positive value")
    if cfg.adversarial_warmup is not None and cfg.adversarial_warmup < 0:
        raise UserError(f"--adversarial-warmup {cfg.adversarial_warmup} must not be negative")
    if cfg.adversarial_weight > 0:
        if adversarial_start(cfg) >= cfg.steps:
            raise UserError(f"--adversarial-warmup {cfg.adversarial_warmup} is not shorter than the run (--steps {cfg.steps}): "
                            "the adversarial term would never start; lower it or raise --steps")
        if not cfg.disc_lr > 0:
            raise UserError(f"--disc-lr {cfg.disc_lr} must be positive, for example 1e-4")
        if cfg.collapse_patience < 1:
            raise UserError(f"--collapse-patience {cfg.collapse_patience} must be at least 1")
        if cfg.discriminator not in DISCRIMINATORS or cfg.adversarial_loss not in ADVERSARIAL_LOSSES:
            raise UserError(f"--discriminator {cfg.discriminator!r} / --adversarial-loss {cfg.adversarial_loss!r}: "
                            f"use {' or '.join(DISCRIMINATORS)}, and {' or '.join(ADVERSARIAL_LOSSES)}")
    if cfg.adapter_condition is not None and cfg.adapter_condition not in CONDITIONS:
        raise UserError(f"--adapter-condition {cfg.adapter_condition!r}: use one of {', '.join(CONDITIONS)}")
    check_device(cfg.device)
    for spec in cfg.with_adapters:
        companion(spec)
    if cfg.init_adapter is not None:
        companion(cfg.init_adapter, "--init-adapter")  # the same check: a folder with config.json and weights
    out = Path(cfg.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {cfg.out!r} is a file: pass a folder")
    if not cfg.resume and any((out / "checkpoints").glob("checkpoint-*")):
        raise UserError(f"--out {cfg.out!r} already holds checkpoints: pass --resume latest to continue, or another --out")


def companion(text: str, flag: str = "--with-adapter") -> tuple[Path, float]:
    """`--with-adapter FOLDER[:STRENGTH]` -> (folder, strength), checked before anything loads: a folder with
    a diffusers ControlNet (config.json) and its adapter.json. `demo-sketch` is the demo model's sketch adapter."""
    from models.assets import DEMO_DIR

    spec, strength = parse_adapter_arg(text, flag)  # 0..2, as the engine's strengths
    folder = DEMO_DIR / "adapter" if spec == "demo-sketch" else Path(spec).expanduser()
    if not (folder / "config.json").is_file() or not (folder / "adapter.json").is_file():
        raise UserError(f"{flag} {text!r}: {folder} is not an adapter folder (config.json + adapter.json); "
                        "pass a trained adapter's folder, like runs/sketch/adapter, or demo-sketch")
    return folder, strength
