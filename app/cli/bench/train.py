"""`python main.py bench train`: peak GPU memory and step time of training, full and light adapters.

The real training step (accelerate with bf16 mixed precision, the adapter in fp32 under autocast, the frozen
base in bf16, gradient checkpointing on adapter, UNet and decoder, AdamW) on random batches, at batch 4 and
512 px by default, on a base in the SDXS layout with random weights (models.tiny) or a real one (--model).
Each adapter is measured with regression alone and with the adversarial term of each discriminator kind
(training/adversarial.py: generator term in the adapter's step, then the discriminator's own step); the
report gives the adversarial steps' time and peak memory as ratios to regression alone.
Peak memory is torch.cuda.max_memory_allocated over the timed steps, after the models are in place.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from models.errors import UserError
from training.config import ADAPTERS, DISCRIMINATORS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-layout", default="sdxs", choices=("sdxs", "tiny"), help="random base layout when --model is not given (default sdxs)")
    p.add_argument("--train-batch", type=int, default=4, help="batch size for bench train (default 4)")
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps per adapter after one warm-up (default 3)")
    p.add_argument("--train-no-checkpointing", action="store_true", help="bench train without gradient checkpointing")
    p.add_argument("--train-adversarial", default="unet,patch", help="discriminator kinds to measure beside regression alone, comma-separated, or none (default unet,patch)")


def random_base(layout: str):
    """A BaseModel in the SDXS layout with random weights, built in memory (nothing written)."""
    from models.loading import BaseModel
    from models.tiny import build_base

    parts = build_base(layout)
    return BaseModel(parts["unet"], parts["vae"], parts["text_encoder"], parts["tokenizer"], parts["scheduler"], Path("."), layout)


def measure(base, kind: str, size: int, batch: int, steps: int, accelerator, checkpointing: bool = True,
            discriminator: str | None = None) -> dict:
    """One adapter kind (with one discriminator kind, or none): parameters, GFLOPs per frame, step time and
    (on CUDA) peak memory."""
    import torch

    from training.adapters import build_adapter, count_params, gflops
    from training.adversarial import Adversary
    from training.objective import LossWeights, Objective

    device = accelerator.device
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision, torch.float32)
    net = build_adapter(base.unet, kind)
    params, flops = count_params(net), gflops(net, size)
    if checkpointing:
        net.enable_gradient_checkpointing()
    net.train()
    objective = Objective(base, LossWeights(), device, dtype, checkpointing)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5)
    net, optimizer = accelerator.prepare(net, optimizer)
    adversary = None
    if discriminator:
        adversary = Adversary(discriminator, objective, loss="hinge", lr=1e-4, r1=0.0, seed=0)
        adversary.disc, adversary.optimizer = accelerator.prepare(adversary.disc, adversary.optimizer)
    g = torch.Generator().manual_seed(0)
    h = size // 8
    batch_data = {"image": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
                  "condition": torch.rand(batch, 3, size, size, generator=g), "caption": [""] * batch}

    def step() -> float:
        kept: dict = {}
        terms = objective(net, batch_data, torch.randn(batch, base.unet.config.in_channels, h, h, generator=g), kept)
        if adversary:
            terms["loss"] = terms["loss"] + 0.1 * adversary.generator_loss(kept, g)
        accelerator.backward(terms["loss"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if adversary:  # the discriminator's own step, as the trainer takes it
            accelerator.backward(adversary.discriminator_loss(kept)["disc"])
            adversary.optimizer.step()
            adversary.optimizer.zero_grad(set_to_none=True)
        return float(terms["loss"].detach())

    cuda = device.type == "cuda"
    step()  # warm-up: kernels picked, optimizer state allocated
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    result = {"params_m": round(params / 1e6, 2), "gflops_per_frame": round(flops, 1),
              "step_s": round((time.perf_counter() - t0) / steps, 3), "loss": round(loss, 4)}
    if cuda:
        result["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gb"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    if adversary:
        result["disc_params_m"] = round(count_params(adversary.disc) / 1e6, 2)
        accelerator.free_memory(adversary.disc, adversary.optimizer)
    accelerator.free_memory(net, optimizer)
    if cuda:
        torch.cuda.empty_cache()
    return result


def run(args: argparse.Namespace) -> int:
    import torch
    from accelerate import Accelerator

    from models.device import pick_device
    from models.loading import quiet_libraries

    device = pick_device(args.device)
    if device.type != "cuda" and args.train_layout == "sdxs" and not args.model:
        raise UserError("bench train measures peak GPU memory and needs a CUDA GPU; on a CPU try --train-layout tiny --size 64")
    size = args.size or 512
    if size < 64 or size % 8:
        raise UserError(f"--size {size} must be a multiple of 8 and at least 64, for example 512")
    quiet_libraries()
    if args.model:
        from models.loading import load_base

        base = load_base(args.model, torch.float32)
    else:
        base = random_base(args.train_layout)
    accelerator = Accelerator(mixed_precision="bf16" if device.type == "cuda" else "no", cpu=device.type != "cuda")
    checkpointing = not args.train_no_checkpointing
    report = {"kind": "train", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "base": args.model or f"random {args.train_layout} layout", "size": size, "batch": args.train_batch,
              "mixed_precision": accelerator.mixed_precision, "gradient_checkpointing": checkpointing, "adapters": {}}
    kinds = [k for k in args.train_adversarial.split(",") if k and k != "none"]
    if any(k not in DISCRIMINATORS for k in kinds):
        raise UserError(f"--train-adversarial {args.train_adversarial!r}: use unet, patch, both as unet,patch, or none")
    for kind in ADAPTERS:
        report["adapters"][kind] = measure(base, kind, size, args.train_batch, args.train_steps, accelerator, checkpointing)
        for disc in kinds:
            r = measure(base, kind, size, args.train_batch, args.train_steps, accelerator, checkpointing, disc)
            ref = report["adapters"][kind]
            r["step_ratio"] = round(r["step_s"] / ref["step_s"], 2)
            if "peak_gb" in r:
                r["peak_ratio"] = round(r["peak_gb"] / ref["peak_gb"], 2)
            report["adapters"][f"{kind}+{disc}"] = r
    print(f"training at batch {args.train_batch}, {size} px, {accelerator.mixed_precision}, "
          f"checkpointing {'on' if checkpointing else 'off'}, {report['device']}")
    for kind, r in report["adapters"].items():
        mem = f", peak {r['peak_gb']:.2f} GB" if "peak_gb" in r else ""
        extra = f"  ({r['step_ratio']:.2f}x time" + (f", {r['peak_ratio']:.2f}x memory" if "peak_ratio" in r else "") + \
            " of regression alone)" if "step_ratio" in r else ""
        print(f"  {kind:11s} {r['params_m']:7.1f} M params, {r['gflops_per_frame']:6.1f} GFLOPs/frame, {r['step_s']:.3f} s/step{mem}{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0
