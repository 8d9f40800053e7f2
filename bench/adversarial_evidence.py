"""Regression alone against regression + adversarial, same steps and seed, on the demo base on a CPU.

    python -m bench.adversarial_data                          # the pictures (openclipart, as the demo builder)
    python -m bench.adversarial_evidence train NAME [NAME...]  # one run per variant, under build/adv/runs/NAME
    python -m training.evaluate --base demo --adapter build/adv/runs/regression/adapter \\
        --compare build/adv/runs/unet/adapter --data build/adv/data/heldout_colour --condition sketch ...

Every variant trains the demo's own adapter recipe (light, paired 128 px windows, batch 4, lr 3e-4, latent
loss) for the same steps with the same seed; the adversarial ones switch their term on after a warm-up of
regression-only steps, so they share the regression run's first steps exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

VARIANTS = {  # name -> the training options beyond the common recipe
    "regression": {},
    "unet": {"adversarial_weight": 0.1, "discriminator": "unet"},
    "unet-w0.5": {"adversarial_weight": 0.5, "discriminator": "unet"},
    "patch": {"adversarial_weight": 0.1, "discriminator": "patch"},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.adversarial_evidence")
    p.add_argument("stage", choices=("train",))
    p.add_argument("names", nargs="+", help=f"variants: {', '.join(VARIANTS)}")
    p.add_argument("--work", default="build/adv")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=1000, help="regression-only steps before the adversarial term")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    from models.common_args import quiet_libraries
    from training.config import TrainConfig, check
    from training.train import train

    quiet_libraries()
    for name in args.names:
        out = Path(args.work) / "runs" / name
        resume = "latest" if any((out / "checkpoints").glob("checkpoint-*")) else None
        cfg = TrainConfig(
            base="demo", data=str(Path(args.work) / "data" / "adapter128"), out=str(out), condition="paired",
            adapter_condition="sketch", adapter="light", resolution=128, batch_size=4, steps=args.steps, lr=3e-4,
            lr_warmup=20, pixel_weight=0.0, checkpoint_every=500, keep_checkpoints=1, validate_every=0,
            validation_images=0, resume=resume, device="cpu", workers=0, threads=args.threads, seed=0,
            adversarial_warmup=args.warmup, **VARIANTS[name])
        check(cfg)
        t0 = time.time()
        code = train(cfg)
        print(f"{name}: exit {code} after {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
