"""What a training run is made of, loaded and prepared by accelerate: the accelerator, the frozen base and
its objective, the adapter being trained (fresh or --init-adapter) and its optimizer and schedule, the frozen
--with-adapter companions, the discriminator when there is one. training/train.py runs the loop over them."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.errors import UserError, first_line
from models.loading import AdapterInfo, load_base
from training.adapters import build_adapter
from training.adversarial import Adversary
from training.config import TrainConfig
from training.objective import LossWeights, Objective

WEIGHT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Parts:
    """What a training step works with, prepared by accelerate."""

    accelerator: Any  # accelerate's Accelerator: processes, precision, gradient accumulation
    net: Any  # the adapter being trained
    optimizer: Any  # the adapter's AdamW
    schedule: Any  # its learning-rate schedule
    objective: Objective  # the frozen base and the regression losses
    adversary: Adversary | None = None  # the discriminator and its optimizer, when --adversarial-weight > 0


def make_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this torch build or machine has no CUDA GPU; use --device cpu or auto")
    out = Path(cfg.out)
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    return Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation,
        mixed_precision=cfg.mixed_precision,
        cpu=cfg.device == "cpu",
        log_with="tensorboard" if tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )


def make_optimizer(cfg: TrainConfig, net: torch.nn.Module, processes: int):
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-2)
    name = "constant_with_warmup" if cfg.lr_schedule == "constant" else cfg.lr_schedule
    # accelerate steps a prepared schedule once per process, hence the factor (as diffusers' scripts do)
    schedule = get_scheduler(name, optimizer, num_warmup_steps=cfg.lr_warmup * processes,
                             num_training_steps=cfg.steps * processes)
    return optimizer, schedule


def build_parts(cfg: TrainConfig, accelerator: Any) -> Parts:
    """The frozen base, the fresh adapter and its optimizer, and the discriminator when there is one, prepared."""
    weight_dtype = WEIGHT_DTYPES.get(accelerator.mixed_precision, torch.float32)
    base = load_base(cfg.base, torch.float32)
    net = build_adapter(base.unet, cfg.adapter, cfg.seed) if cfg.init_adapter is None else load_init(cfg.init_adapter)
    if cfg.gradient_checkpointing:
        net.enable_gradient_checkpointing()
    net.train()
    weights = LossWeights(cfg.latent_weight, cfg.pixel_weight, cfg.lpips_weight, cfg.feature_weight)
    objective = Objective(base, weights, accelerator.device, weight_dtype, cfg.gradient_checkpointing, load_companions(cfg))
    optimizer, schedule = make_optimizer(cfg, net, accelerator.num_processes)
    net, optimizer, schedule = accelerator.prepare(net, optimizer, schedule)
    adversary = None
    if cfg.adversarial_weight > 0:  # prepared after the adapter: checkpoints hold it as model_1, optimizer_1
        adversary = Adversary(cfg.discriminator, objective, loss=cfg.adversarial_loss, lr=cfg.disc_lr,
                              r1=cfg.r1_weight, seed=cfg.seed)
        adversary.disc, adversary.optimizer = accelerator.prepare(adversary.disc, adversary.optimizer)
    return Parts(accelerator, net, optimizer, schedule, objective, adversary)


def load_init(spec: str):
    """--init-adapter: the adapter to fine-tune, in fp32 (its kind is whatever it was trained as)."""
    from diffusers import ControlNetModel

    from training.config import companion

    return ControlNetModel.from_pretrained(companion(spec)[0], torch_dtype=torch.float32)


def companion_conditions(cfg: TrainConfig) -> tuple[str, ...]:
    """The condition each --with-adapter companion reads (its adapter.json), in order."""
    from training.config import companion

    return tuple(AdapterInfo.read(companion(spec)[0]).condition for spec in cfg.with_adapters)


def load_companions(cfg: TrainConfig) -> list[tuple[Any, float]]:
    """The frozen --with-adapter ControlNets (float32; the objective moves them) with their strengths."""
    from diffusers import ControlNetModel

    from training.config import companion

    out = []
    for spec in cfg.with_adapters:
        folder, strength = companion(spec)
        try:
            net = ControlNetModel.from_pretrained(folder, torch_dtype=torch.float32)
        except Exception as e:  # damaged weights, or not a ControlNet
            raise UserError(f"--with-adapter {spec!r}: {folder} does not load as a ControlNet ({first_line(e, 120)})") from None
        out.append((net.requires_grad_(False).eval(), strength))
    return out
