"""Evidence for the demo model: held-out metrics, a held-out grid, and drawings made the way a person draws.

Metrics come from training/evaluate.py (edge F1 against the input sketch and against the target's edges,
PSNR, SSIM), each with the adapter (control scale 1) and with its effect removed (scale 0), plus a colour
error: the mean distance in CIELAB between 8 x 8 block averages of output and target (lower is better).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

# strokes as a person draws them on the 256 px canvas: (subject, shapes: polylines with closed?, circles, ellipses)
HUMAN = [
    ("house with a door", [([(60, 120), (128, 60), (196, 120)], False), ([(75, 115), (75, 200), (181, 200), (181, 115)], False),
                                 ([(115, 200), (115, 150), (142, 150), (142, 200)], False)]),
    ("sun", [("circle", (128, 128, 45))] + [([(128 + int(70 * np.cos(a)), 128 + int(70 * np.sin(a))),
                                                      (128 + int(100 * np.cos(a)), 128 + int(100 * np.sin(a)))], False)
                                                    for a in np.linspace(0, 2 * np.pi, 9)[:-1]]),
    ("tree", [("circle", (128, 95, 55)), ([(115, 150), (112, 215), (145, 215), (141, 150)], False)]),
    ("cat face", [("circle", (128, 140, 65)), ([(75, 105), (85, 45), (115, 80)], False), ([(141, 80), (171, 45), (181, 105)], False),
                    ("circle", (105, 125, 8)), ("circle", (151, 125, 8)), ([(120, 155), (128, 162), (136, 155)], False)]),
    ("fish", [("ellipse", (120, 128, 70, 40)), ([(190, 128), (230, 95), (230, 161), (190, 128)], False), ("circle", (85, 120, 6))]),
    ("apple", [("circle", (128, 140, 65)), ([(128, 78), (135, 45)], False), ([(135, 60), (165, 50), (150, 70), (135, 60)], False)]),
]


# colour pairs for the steering test: "a red X" against "a blue X" and so on, with the same sketch and noise
PAIRS = (("red", "blue"), ("yellow", "blue"), ("green", "red"))
GRID_COLOURS = ("red", "blue", "yellow")  # the drawn sketches' grid: the same sketch in these three colours


def subject(caption: str) -> str:
    """A training caption's subject: 'a red and blue flag of mongolia, flag' -> 'flag of mongolia'."""
    from training.demo.colour import PALETTE

    words = caption.split(",")[0].split()
    names = set(PALETTE) | {"brown", "and", "a"}
    while words and words[0] in names:
        words.pop(0)
    return " ".join(words) or "picture"


def steering(engine, examples: list[dict], seed: int = 0) -> tuple[dict, dict]:
    """Share of (held-out sketch, colour pair) cases where "a {c1} X" comes out with more of c1 and less of
    c2 than "a {c2} X" (training/demo/colour.py steered: CIELAB a*b* mean projected on each colour), per pair
    and overall; and the outputs per colour."""
    from training.demo.colour import steered
    from training.validation import render

    colours = sorted({c for pair in PAIRS for c in pair})
    outs = {c: render(engine, [dict(ex, caption=f"a {c} {subject(ex['caption'])}") for ex in examples], 256, seed)
            for c in colours}
    result = {}
    for a, b in PAIRS:
        result[f"{a}/{b}"] = float(np.mean([steered(x, y, (a, b)) for x, y in zip(outs[a], outs[b])]))
    result["share"] = float(np.mean([result[f"{a}/{b}"] for a, b in PAIRS]))
    result["sketches"] = len(examples)
    return result, outs


def drawn_examples(examples: list[dict]) -> list[dict]:
    """The held-out pictures with strokes drawn as a person draws them (training/demo/data.py human_strokes:
    uneven, jittered, simplified lines) in place of their stored conditions."""
    from training.demo.data import human_strokes

    return [dict(ex, condition=human_strokes(ex["image"], np.random.default_rng(1000 + i))) for i, ex in enumerate(examples)]


def draw_human(shapes: list, seed: int = 0, size: int = 256) -> np.ndarray:
    """Black strokes on white, 3 px wide with a little hand jitter, like the canvas draws them."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 255, np.uint8)

    def jitter(pts):
        p = np.array(pts, np.float32)
        return (p + rng.normal(0, 1.2, p.shape)).round().astype(np.int32)

    for shape in shapes:
        if shape[0] == "circle":
            x, y, r = shape[1]
            a = np.linspace(0, 2 * np.pi, 40)
            pts = np.stack([x + r * np.cos(a), y + r * np.sin(a)], 1)
            cv2.polylines(img, [jitter(pts)], False, (0, 0, 0), 3, cv2.LINE_AA)
        elif shape[0] == "ellipse":
            x, y, rx, ry = shape[1]
            a = np.linspace(0, 2 * np.pi, 40)
            pts = np.stack([x + rx * np.cos(a), y + ry * np.sin(a)], 1)
            cv2.polylines(img, [jitter(pts)], False, (0, 0, 0), 3, cv2.LINE_AA)
        else:
            pts, closed = shape
            dense = []  # a person's line wobbles along its length, not only at the corners
            for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
                for t in np.linspace(0, 1, 8, endpoint=False):
                    dense.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
            dense.append(pts[-1])
            cv2.polylines(img, [jitter(dense)], closed, (0, 0, 0), 3, cv2.LINE_AA)
    return img


def colour_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIELAB distance between 8 x 8 block averages (the colour layout, not the detail)."""
    def lab(x):
        small = cv2.resize(x, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        return cv2.cvtColor(small, cv2.COLOR_RGB2Lab)

    return float(np.linalg.norm(lab(a) - lab(b), axis=2).mean())


def colour_errors(images: list[tuple]) -> dict[str, float]:
    """Mean colour error of the adapter's pictures and of the scale-0 ones, from training.evaluate.evaluate's
    rows (example, trained, untrained). (The first edition's card had the two swapped.)"""
    return {name: float(np.mean([colour_error(row[idx], row[0]["image"]) for row in images]))
            for name, idx in (("trained", 1), ("untrained", 2))}


def run(base: str, adapter: str, heldout: Path, out: Path, limit: int = 64, seed: int = 0) -> dict:
    """Metrics (returned and written to out/metrics.json) and the two grids (PNG in out/)."""
    from models.engine import Engine
    from models.imageio import grid, write_rgb
    from training.data import TrainData, scan
    from training.evaluate import evaluate

    found = scan(heldout, "paired")
    data = TrainData(found.samples, "paired", 256)
    examples = [ex for i in range(len(data)) if (ex := data.load(i, None)) is not None][:limit]
    engine = Engine.load(base, adapter, "cpu", "float32")
    engine.set_size(256)
    means, images = evaluate(engine, examples, seed, 1.0)
    for name, value in colour_errors(images).items():
        means[name]["colour_error"] = value
    write_rgb(out / "heldout_grid.png", grid([[ex["condition"], tr, ex["image"]] for ex, tr, *_ in images[:6]], 128))
    drawn, _ = evaluate(engine, drawn_examples(examples), seed, 1.0)
    means["drawn"] = {"edge_f1": drawn["trained"]["edge_f1"], "edge_f1_scale0": drawn["untrained"]["edge_f1"]}
    means["steering"], _ = steering(engine, examples[:32], seed)
    from training.demo.base import vae_round_trip
    from training.demo.data import read_rows

    names = [r["file_name"] for r in read_rows(heldout)]
    vae, pictures, trips = vae_round_trip(engine.vae, heldout / "images", names[:limit])
    write_rgb(out / "vae_round_trip.png", grid([list(pictures[:8]), list(trips[:8])], 128))

    from training.evaluate import edge_f1

    rows, f1 = [], []
    for i, (what, shapes) in enumerate(HUMAN):
        drawing = draw_human(shapes, seed=i)
        row = [drawing]
        for colour in GRID_COLOURS:
            engine.set_prompt(f"a {colour} {what}")
            engine.control_scale = 1.0
            row.append(engine.step(drawing))
            f1.append(edge_f1(row[-1], drawing))
        engine.control_scale = 0.0
        row.append(engine.step(drawing))
        rows.append(row)
    means["drawn"]["canvas_edge_f1"] = float(np.mean(f1))
    write_rgb(out / "human_sketches.png", grid(rows, 128))

    speed = frame_time(base, adapter)
    result = {"images": len(examples), "size": 256, "seed": seed, **means, "vae_round_trip": vae, "speed": speed,
              "human_subjects": [p for p, _ in HUMAN],
              "grid_colours": list(GRID_COLOURS), "pairs": ["/".join(p) for p in PAIRS]}
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def frame_time(base: str, adapter: str, frames: int = 8) -> dict:
    """Median ms per 256 px frame (sketch in, image out) as the app runs it (dtype auto: bf16 where the CPU
    has it), with 1 and with 2 torch threads, and the machine's load average at the time (others' jobs slow it)."""
    import os

    import torch

    from models.device import dtype_name
    from models.engine import Engine

    threads = torch.get_num_threads()
    engine = Engine.load(base, adapter, "cpu", "auto")
    engine.set_size(256)
    engine.set_prompt("a red house")
    drawing = draw_human(HUMAN[0][1])
    out = {"dtype": dtype_name(engine.dtype), "load_average": round(os.getloadavg()[0], 1)}
    for n in (1, 2):
        torch.set_num_threads(n)
        times = []
        for _ in range(frames + 2):
            t0 = time.perf_counter()
            engine.step(drawing)
            times.append(1000 * (time.perf_counter() - t0))
        out[f"ms_{n}_threads"] = round(float(np.median(times[2:])), 1)
    torch.set_num_threads(threads)
    best = min(out["ms_1_threads"], out["ms_2_threads"])
    out["ms_per_frame"], out["fps"] = best, round(1000 / best, 1)
    return out
