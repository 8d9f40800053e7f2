"""Is OpenVINO int8 good enough to offer? int8 against fp32 on the trained demo model, where quality means something.

    python -m training.openvino_eval [--model demo --controlnet demo] [--size 256] [--json FILE]

Inputs the calibration never saw: the held-out sketches shipped in the demo's heldout_grid.png (its first
column) and the person-like drawings of training/demo/eval.py, each with the drawings' prompts and two seeds.
Every one is rendered by torch fp32, OpenVINO fp32 and OpenVINO int8 (models.openvino) with the same noise.
Reported: PSNR of int8 (and of OpenVINO fp32) against torch fp32, edge F1 of each output against its sketch
(training/evaluate.py), and whether int8 passes the bar: PSNR >= 30 dB and an edge F1 drop <= 0.02.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PSNR_FLOOR = 30.0  # dB, int8 against fp32
F1_DROP = 0.02  # the most edge F1 against the sketch may fall
HELDOUT_PROMPTS = ("a dragonfly", "a dinosaur", "a monkey face", "a wooden house", "a round logo", "a folder of papers")  # the grid's rows


def heldout_sketches(cell: int = 128, gap: int = 4) -> list[np.ndarray]:
    """The input sketches of the demo's held-out grid (rows of sketch | output | target, 128 px cells)."""
    from models.assets import DEMO_DIR
    from models.imageio import read_rgb

    grid = read_rgb(str(DEMO_DIR / "heldout_grid.png"))
    step = (grid.shape[1] + gap) / 3  # the stored grid is a little smaller than 3 cells and 2 gutters: scale
    side = step * cell / (cell + gap)
    rows = round((grid.shape[0] + step - side) / step)
    return [np.ascontiguousarray(grid[round(i * step): round(i * step + side), :round(side)]) for i in range(rows)]


def cases(size: int) -> list[tuple[str, np.ndarray, str, int]]:
    """(name, sketch at size px, prompt, seed) for every held-out sketch and human drawing, seeds 0 and 1."""
    import cv2

    from training.demo.eval import HUMAN, draw_human

    sketches = [(f"heldout{i}", cv2.resize(s, (size, size), interpolation=cv2.INTER_CUBIC), HELDOUT_PROMPTS[i % 6])
                for i, s in enumerate(heldout_sketches())]
    sketches += [(f"human{i}", draw_human(shapes, seed=i, size=256), f"a {p}") for i, (p, shapes) in enumerate(HUMAN)]
    return [(n, cv2.resize(s, (size, size)) if s.shape[0] != size else s, p, seed) for n, s, p in sketches for seed in (0, 1)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="demo")
    p.add_argument("--controlnet", default="demo")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--json", default=None, help="write the numbers here")
    args = p.parse_args(argv)

    from models.engine import Engine
    from models.loading import quiet_libraries
    from models.runners.openvino import OpenVINORunner
    from training.evaluate import edge_f1, psnr

    quiet_libraries()
    engine = Engine.load(args.model, args.controlnet, "cpu", "float32")
    engine.set_size(args.size)
    engine.control_scale = 1.0
    paths = {"openvino_fp32": OpenVINORunner("fp32", prepare=engine.prepare),
             "openvino_int8": OpenVINORunner("int8", prepare=engine.prepare)}
    for path in paths.values():
        path.prepare(engine.recipe, engine.prepared())
    rows = []
    for name, sketch, prompt, seed in cases(args.size):
        engine.set_prompt(prompt)
        engine.set_seed(seed)
        ref = engine.eager(sketch)
        row = {"case": name, "seed": seed, "prompt": prompt, "edge_f1": {"torch_fp32": edge_f1(ref, sketch)}, "psnr_vs_torch_fp32": {}}
        for key, path in paths.items():
            out = path.step(engine.recipe, engine.prepared(), [sketch])
            row["edge_f1"][key] = edge_f1(out, sketch)
            row["psnr_vs_torch_fp32"][key] = psnr(out, ref)
        rows.append(row)

    def mean(field: str, key: str) -> float:
        return float(np.mean([min(r[field][key], 99.0) for r in rows]))  # identical images: inf, counted as 99 dB

    f1 = {k: mean("edge_f1", k) for k in ("torch_fp32", *paths)}
    result = {
        "model": args.model, "controlnet": args.controlnet, "size": args.size, "cases": len(rows),
        "psnr_int8_vs_fp32_db": mean("psnr_vs_torch_fp32", "openvino_int8"),
        "psnr_openvino_fp32_vs_torch_db": mean("psnr_vs_torch_fp32", "openvino_fp32"),
        "edge_f1": f1, "edge_f1_drop_int8": f1["torch_fp32"] - f1["openvino_int8"],
        "bar": {"psnr_db_at_least": PSNR_FLOOR, "edge_f1_drop_at_most": F1_DROP}, "rows": rows,
    }
    result["int8_passes"] = result["psnr_int8_vs_fp32_db"] >= PSNR_FLOOR and result["edge_f1_drop_int8"] <= F1_DROP
    print(f"{len(rows)} cases at {args.size} px: int8 vs fp32 PSNR {result['psnr_int8_vs_fp32_db']:.1f} dB "
          f"(OpenVINO fp32 vs torch {result['psnr_openvino_fp32_vs_torch_db']:.1f} dB); edge F1 torch {f1['torch_fp32']:.3f}, "
          f"OpenVINO fp32 {f1['openvino_fp32']:.3f}, int8 {f1['openvino_int8']:.3f}: "
          f"{'passes' if result['int8_passes'] else 'fails'} the bar (>= {PSNR_FLOOR} dB, drop <= {F1_DROP})")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
