"""Does a trained adapter follow its condition? Metrics on held-out images, trained vs untrained.

    python -m training.evaluate --base M --adapter DIR --data HELD_OUT_DIR [--json FILE] [--grid FILE.png]
    python -m training.evaluate --base M --adapter A --compare B --data HELD_OUT_DIR   (A against B)

For every image: the condition is made as in training (the extractor named in adapter.json), then the
engine renders it twice with the same noise: with the adapter (control scale 1) and without it (scale 0,
which is exactly what the untrained adapter gives: diffusers zero-initialises its output convolutions).
  edge F1   Canny edges of the output vs Canny edges of the condition, matched within 2 px (precision/recall)
  edge F1 (target)  the same against the target's edges
  PSNR      to the target, in dB
  SSIM      to the target (grey, 11 px Gaussian window, the usual constants)
  sharpness      mean |Laplacian| of the grey output over that of the target, over all images (1.0 = as
                 sharp as the pictures; PSNR and SSIM favour blur, this does not)
  colourfulness  Hasler-Suesstrunk colourfulness of the output over that of the target, over all images
With --compare B, adapter B renders the same images with the same noise too ("compare" in the results), and
the grid shows condition | A | B | target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from models.errors import UserError


def edges(img: np.ndarray) -> np.ndarray:
    grey = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    return cv2.Canny(grey, 100, 200) > 0


def edge_f1(output: np.ndarray, target: np.ndarray, tolerance: int = 2) -> float:
    """F1 of output edges against target edges; an edge pixel counts as matched within `tolerance` px."""
    out_e, ref_e = edges(output), edges(target)
    if not ref_e.any() and not out_e.any():
        return 1.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
    near_ref = cv2.dilate(ref_e.astype(np.uint8), kernel) > 0
    near_out = cv2.dilate(out_e.astype(np.uint8), kernel) > 0
    precision = (out_e & near_ref).sum() / max(out_e.sum(), 1)
    recall = (ref_e & near_out).sum() / max(ref_e.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-9))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the grey images (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03)."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def sharpness(img: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey image: high-frequency energy, which blur takes away."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_64F)).mean())


def colourfulness(img: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003): spread and mean of the opponent channels rg and yb."""
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def metrics(output: np.ndarray, target: np.ndarray, condition: np.ndarray) -> dict[str, float]:
    return {"edge_f1": edge_f1(output, condition), "edge_f1_target": edge_f1(output, target),
            "psnr": psnr(output, target), "ssim": ssim(output, target),
            "sharpness": sharpness(output), "colourfulness": colourfulness(output)}


def summarise(rows: list[dict], targets: list[np.ndarray]) -> dict[str, float]:
    """Means over the images; sharpness and colourfulness as ratios of the means to the targets' means."""
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    for k, f in (("sharpness", sharpness), ("colourfulness", colourfulness)):
        out[k] = out[k] / max(float(np.mean([f(t) for t in targets])), 1e-9)
    return out


def evaluate(engine, examples: list[dict], seed: int = 0, scale: float = 1.0, compare=None) -> tuple[dict, list[tuple]]:
    """Mean metrics with the adapter (scale) and without (0), and with the `compare` engine's adapter when
    given; and the images for a grid (example, untrained, trained[, compare])."""
    from training.validation import render

    outputs = {"trained": render(engine, examples, engine.size, seed, scale),
               "untrained": render(engine, examples, engine.size, seed, 0.0)}
    if compare is not None:
        compare.set_size(engine.size)
        outputs["compare"] = render(compare, examples, engine.size, seed, scale)
    targets = [ex["image"] for ex in examples]
    means = {name: summarise([metrics(o, ex["image"], ex["condition"]) for o, ex in zip(outs, examples)], targets)
             for name, outs in outputs.items()}
    return means, list(zip(examples, *outputs.values()))


def grid(images: list[tuple], count: int) -> np.ndarray:
    """Rows of condition | target | untrained | trained, or with a compared adapter condition | trained |
    compare | target (models.imageio.grid lays them out)."""
    from models import imageio

    rows = []
    for ex, trained, untrained, *compare in images[:count]:
        rows.append([ex["condition"], trained, compare[0], ex["image"]] if compare else
                    [ex["condition"], ex["image"], untrained, trained])
    return imageio.grid(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="base model folder, hub id or demo")
    p.add_argument("--adapter", required=True, help="the trained adapter folder (with adapter.json)")
    p.add_argument("--data", required=True, help="held-out images, laid out as for training")
    p.add_argument("--compare", default=None, help="a second adapter folder to render the same images with the same noise")
    p.add_argument("--condition", default=None, help="how to make conditions from --data (default: adapter.json's; paired reads conditions/)")
    p.add_argument("--size", type=int, default=None, help="pixels (default: the adapter's training resolution)")
    p.add_argument("--limit", type=int, default=32, help="evaluate at most this many images (default 32)")
    p.add_argument("--scale", type=float, default=1.0, help="control scale of the trained run (default 1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16 (default float32)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--grid", default=None, help="write condition | target | untrained | trained rows (with --compare:"
                   " condition | adapter | compare | target) to this PNG")
    p.add_argument("--grid-rows", type=int, default=6, help="examples in the grid (default 6)")
    args = p.parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from models.loading import AdapterInfo
    from training.data import TrainData, scan

    info = AdapterInfo.read(Path(args.adapter))
    size = args.size or info.resolution
    condition = args.condition or info.condition
    found = scan(args.data, condition)
    data = TrainData(found.samples, condition, size)
    examples = [ex for i in range(len(data)) if (ex := data.load(i, None)) is not None][: args.limit]
    if not examples:
        raise UserError(f"--data {args.data!r}: no image decodes")

    import torch

    from models.engine import Engine
    from models.loading import quiet_libraries

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    engine = Engine.load(args.base, args.adapter, args.device, args.dtype)
    engine.set_size(size)
    compare = Engine.load(args.base, args.compare, args.device, args.dtype) if args.compare else None
    means, images = evaluate(engine, examples, args.seed, args.scale, compare)
    result = {"base": args.base, "adapter": args.adapter, "data": args.data, "images": len(examples), "size": size,
              "condition": condition, "scale": args.scale, **({"compare_adapter": args.compare} if compare else {}), **means}
    print(f"{len(examples)} held-out images at {size} px, condition {condition}")
    print(f"{'':10s} {'edge F1 (cond)':>14s} {'edge F1 (target)':>16s} {'PSNR dB':>8s} {'SSIM':>6s} {'sharp':>6s} {'colour':>6s}")
    for name in means:
        m = means[name]
        print(f"{name:10s} {m['edge_f1']:14.3f} {m['edge_f1_target']:16.3f} {m['psnr']:8.2f} {m['ssim']:6.3f}"
              f" {m['sharpness']:6.3f} {m['colourfulness']:6.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.grid:
        from models.imageio import write_rgb

        write_rgb(args.grid, grid(images, args.grid_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
