"""Regression alone against regression + adversarial, same steps and seed, on the demo base on a CPU.

    python -m bench.adversarial_data                          # the pictures (openclipart, as the demo builder)
    python -m bench.adversarial_evidence train NAME [NAME...]  # one run per variant, under build/adv/runs/NAME
    python -m bench.adversarial_evidence eval NAME [NAME...]   # held-out metrics of every run, JSON + grid

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
    "regression": {"adversarial_weight": 0.0},
    "unet": {"adversarial_weight": 0.1, "discriminator": "unet"},
    "unet-w0.5": {"adversarial_weight": 0.5, "discriminator": "unet"},
    "patch": {"adversarial_weight": 0.1, "discriminator": "patch"},
    "patch-w0.5": {"adversarial_weight": 0.5, "discriminator": "patch"},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.adversarial_evidence")
    p.add_argument("stage", choices=("train", "eval"))
    p.add_argument("names", nargs="+", help=f"variants: {', '.join(VARIANTS)}")
    p.add_argument("--work", default="build/adv")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=1000, help="regression-only steps before the adversarial term")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=131, help="held-out pictures to evaluate (default: all 131)")
    p.add_argument("--json", default="bench/results/train/adversarial-demo-cpu.json")
    p.add_argument("--grid", default="bench/results/train/adversarial-demo-grid.png")
    p.add_argument("--grid-with", default="unet", help="the adversarial run shown in the grid beside regression")
    args = p.parse_args(argv)
    if args.stage == "eval":
        return evaluate_runs(args)
    from models.loading import quiet_libraries
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


def evaluate_runs(args: argparse.Namespace) -> int:
    """Every run's adapter on the same held-out pictures with the same noise (training.evaluate's metrics),
    plus the base's own VAE round trip of the targets: the sharpest and most colourful any adapter can get."""
    import json

    import numpy as np
    import torch

    from models.engine import Engine
    from models.imageio import write_rgb
    from models.loading import load_adapter, quiet_libraries
    from training import evaluate
    from training.data import TrainData, scan
    from training.validation import render

    quiet_libraries()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    data = work / "data" / "heldout_colour" / "images"
    held = TrainData(scan(data, "sketch").samples, "sketch", 256)
    examples = [ex for i in range(len(held)) if (ex := held.load(i, None)) is not None][: args.limit]
    targets = [ex["image"] for ex in examples]
    engine = Engine.load("demo", None, "cpu", "float32")
    outputs = {}
    for name in args.names:
        engine.set_adapter(load_adapter(str(work / "runs" / name / "adapter")))
        outputs[name] = render(engine, examples, 256, seed=0)
    with torch.no_grad():  # the VAE round trip: encode and decode each target
        vae = engine.base.vae
        rt = []
        for t in targets:
            x = torch.from_numpy(t).permute(2, 0, 1)[None].float() / 127.5 - 1
            y = vae.decode(vae.encode(x).latents).sample.clamp(-1, 1)
            rt.append(((y[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy())
        outputs["vae_round_trip"] = rt
    result = {"base": "demo (assets/models/demo)", "data": str(data), "images": len(examples), "size": 256,
              "condition": "sketch", "seed": 0}
    for name, outs in outputs.items():
        result[name] = evaluate.summarise([evaluate.metrics(o, ex["image"], ex["condition"]) for o, ex in zip(outs, examples)], targets)
    for name in args.names:
        log = [json.loads(line) for line in (work / "runs" / name / "train_log.jsonl").read_text().splitlines()]
        steps = [r for r in log if "step" in r and "event" not in r]
        result[name]["train"] = {"steps": steps[-1]["step"], "seconds": steps[-1]["seconds"], **VARIANTS[name],
                                 "collapse": [r for r in log if r.get("event")]}
        last = steps[-200:]
        for k in ("latent", "adv_g", "disc", "disc_acc"):
            if k in last[-1]:
                result[name]["train"][f"last_200_mean_{k}"] = round(float(np.mean([r[k] for r in last if k in r])), 4)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(examples)} held-out pictures, sketch condition, 256 px")
    for name in outputs:
        m = result[name]
        print(f"{name:16s} sharpness {m['sharpness']:.3f} colourfulness {m['colourfulness']:.3f} edge F1 {m['edge_f1']:.3f}"
              f" SSIM {m['ssim']:.3f} PSNR {m['psnr']:.2f}")
    if args.grid and "regression" in outputs and args.grid_with in outputs:
        pick = np.linspace(0, len(examples) - 1, 6).round().astype(int)
        rows = [(examples[i], outputs["regression"][i], None, outputs[args.grid_with][i]) for i in pick]
        write_rgb(args.grid, evaluate.grid(rows, len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
