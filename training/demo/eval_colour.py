"""Evidence for the demo's colour-hint adapter: does it put the hinted colours where they go, on top of the
sketch adapter, without losing the drawing; and does it keep a photo's colours (keep-colours)?

Both adapters run in one models.recipe.Recipe (each adapter's residuals times its strength, summed); "sketch
alone" is the same recipe with the colour adapter's strength at 0, so the two differ in nothing else.

1. Held-out colour pictures, hints sampled as in training (models.hints.colour_hints on the picture, a
   generator per picture from (seed, index)), prompt = the picture's caption:
     hue error     mean CIELAB hue-angle difference (degrees) between output and target inside the hinted
                   regions, where the target has a clear colour (chroma >= MIN_CHROMA); lower is better
     edge F1       against the sketch (training/evaluate.py)
     sharpness, colourfulness   of the outputs as shares of the targets' (training/evaluate.py summarise)
2. The six canvas drawings (training/demo/eval.py HUMAN) with hand-placed colour blobs (BLOBS), prompt
   "a {subject}" with no colour word, the colour layer on its way as the canvas sends it (Fill shapes on, the
   default: models.hints.fill_shapes grows each blob to the shape it sits in): hue error against the blob
   colours inside the blobs, edge F1 against the drawing, sharpness and colourfulness as shares of the sketch
   adapter's alone; and the hue error and edge F1 with the blobs sent as painted (Fill shapes off).
3. Keep colours: scikit-image's sample photos (read out of its wheel, never installed) through the `sketch`
   extractor -> sketch adapter alone, and + the colour adapter fed models.hints.frame_hints(photo) at
   strength KEEP: colour error (training/demo/eval.py colour_error, CIELAB distance of 8 x 8 block means)
   between photo and output, and edge F1 against the sketch.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

MIN_CHROMA = 15.0  # CIELAB chroma below which a target pixel has no hue to match (grey, black, white)
SWEEP = (0.5, 1.5, 2.0)  # other colour-adapter strengths the hue error and edge F1 are also given at
KEEP = 1.0  # the colour adapter's strength for a live (photo) source: LiveSettings.keep_colours' default
SKIMAGE_WHEEL = "scikit-image==0.26.0"
PHOTOS = (("astronaut.png", "a person"), ("chelsea.png", "a cat"), ("coffee.png", "a cup"), ("rocket.jpg", "a rocket"))

# hand-placed colour on each canvas drawing (HUMAN's order): ("circle", (x, y, r), rgb) filled, or
# ("stroke", [(x, y), ...], width, rgb), on the 256 px canvas, the way a person dabs colour in
RED, BLUE, YELLOW, GREEN, BROWN, ORANGE = (220, 30, 30), (40, 90, 220), (245, 200, 20), (40, 170, 60), (120, 70, 30), (240, 140, 40)
BLOBS = [
    [("stroke", [(92, 108), (128, 80), (164, 108)], 10, RED), ("circle", (128, 178, 9), BLUE),
     ("circle", (95, 160, 10), YELLOW), ("circle", (165, 160, 10), YELLOW)],
    [("circle", (128, 128, 26), YELLOW), ("stroke", [(110, 110), (146, 146)], 8, ORANGE)],
    [("circle", (128, 95, 28), GREEN), ("stroke", [(128, 160), (128, 205)], 12, BROWN)],
    [("circle", (128, 150, 24), ORANGE), ("stroke", [(85, 100), (88, 70)], 8, ORANGE), ("stroke", [(170, 100), (168, 70)], 8, ORANGE)],
    [("circle", (120, 128, 22), BLUE), ("stroke", [(200, 128), (222, 112)], 8, BLUE)],
    [("circle", (128, 140, 30), RED), ("stroke", [(140, 62), (155, 57)], 6, GREEN)],
]


def draw_blobs(blobs: list, size: int = 256) -> np.ndarray:
    """The colour layer: the blobs on white."""
    img = np.full((size, size, 3), 255, np.uint8)
    for kind, where, *rest in blobs:
        if kind == "circle":
            x, y, r = where
            cv2.circle(img, (x, y), r, rest[0], -1, cv2.LINE_AA)
        else:
            cv2.polylines(img, [np.array(where, np.int32)], False, rest[1], rest[0], cv2.LINE_AA)
    return img


def hinted(hints: np.ndarray) -> np.ndarray:
    """bool (H, W): where the hints put colour (white is no hint)."""
    from models.hints import WHITE

    return hints.min(axis=2) < WHITE


def _lab(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


def hue_error(output: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """Mean CIELAB hue-angle difference (degrees, 0..180) of output against reference over the mask's pixels
    where the reference has a clear colour, and how many pixels that was (nan, 0 when none)."""
    o, r = _lab(output), _lab(reference)
    sel = mask & (np.hypot(r[..., 1], r[..., 2]) >= MIN_CHROMA)
    if not sel.any():
        return float("nan"), 0
    d = np.arctan2(o[..., 2], o[..., 1]) - np.arctan2(r[..., 2], r[..., 1])
    d = np.abs((d + np.pi) % (2 * np.pi) - np.pi)
    return float(np.degrees(d[sel]).mean()), int(sel.sum())


def overlay(sketch: np.ndarray, hints: np.ndarray) -> np.ndarray:
    """The sketch with the hints under its lines, as the canvas shows its two layers."""
    out = np.where(hinted(hints)[..., None], hints, 255).astype(np.uint8)
    return np.minimum(out, sketch)


class Pair:
    """The demo base with the sketch adapter and the colour adapter in one Recipe (float32, CPU)."""

    def __init__(self, base: str, sketch: Path, colour: Path, size: int = 256):
        import torch
        from diffusers import ControlNetModel

        from models.engine import Engine
        from models.recipe import Recipe

        self.engine = Engine.load(base, str(sketch), "cpu", "float32")
        self.engine.set_size(size)
        net = ControlNetModel.from_pretrained(colour, torch_dtype=torch.float32).eval().requires_grad_(False)
        e = self.engine
        self.recipe = Recipe(e.unet, e.vae, [e.controlnet, net], e.one_step, e.vae_scale).eval()

    def __call__(self, prompt: str, sketch: np.ndarray, hints: np.ndarray, colour: float, seed: int = 0) -> np.ndarray:
        """One 256 px picture: the sketch adapter at 1 and the colour adapter at `colour` (0: the sketch alone)."""
        import torch

        e = self.engine
        e.set_seed(seed)
        e.set_prompt(prompt)
        p = e.prepared()
        frames = torch.from_numpy(np.stack([sketch, hints]))
        with torch.no_grad():
            out = self.recipe(p.unet_in, p.embeds, p.x0_noise, frames, torch.tensor([1.0, colour]), torch.zeros(2))
        return out.cpu().numpy()


def _pooled(rows: list[dict], key: str) -> float:
    """Pixel-weighted mean hue error over the pictures that had hinted coloured pixels."""
    n = sum(r[key + "_px"] for r in rows)
    return float(sum(r[key] * r[key + "_px"] for r in rows if r[key + "_px"]) / n) if n else float("nan")


def sweep(pair: Pair, cases: list[tuple], seed: int) -> dict[str, dict]:
    """Hue error (pooled) and edge F1 at the SWEEP strengths, for (prompt, sketch, hints, reference) cases."""
    from training.evaluate import edge_f1

    out = {}
    for strength in SWEEP:
        rows = []
        for prompt, sketch, hints, reference in cases:
            image = pair(prompt, sketch, hints, strength, seed)
            h, n = hue_error(image, reference, hinted(hints))
            rows.append({"hue": h, "hue_px": n, "f1": edge_f1(image, sketch)})
        out[f"{strength:g}"] = {"hue_error": _pooled(rows, "hue"), "edge_f1": float(np.mean([r["f1"] for r in rows]))}
    return out


def heldout(pair: Pair, folder: Path, limit: int, seed: int) -> tuple[dict, list]:
    from models.hints import colour_hints
    from training.data import TrainData, scan
    from training.evaluate import colourfulness, edge_f1, sharpness

    data = TrainData(scan(folder, "paired").samples, "paired", 256)
    examples = [ex for i in range(len(data)) if (ex := data.load(i, None)) is not None][:limit]
    rows, shown, cases = [], [], []
    for i, ex in enumerate(examples):
        hints = colour_hints(ex["image"], np.random.default_rng([seed, i]))
        cases.append((ex["caption"], ex["condition"], hints, ex["image"]))
        alone = pair(ex["caption"], ex["condition"], hints, 0.0, seed)
        both = pair(ex["caption"], ex["condition"], hints, 1.0, seed)
        mask = hinted(hints)
        (ha, na), (hb, _) = hue_error(alone, ex["image"], mask), hue_error(both, ex["image"], mask)
        rows.append({"hue_alone": ha, "hue_alone_px": na, "hue_hints": hb, "hue_hints_px": na,
                     "f1_alone": edge_f1(alone, ex["condition"]), "f1_hints": edge_f1(both, ex["condition"]),
                     "sharp_alone": sharpness(alone), "sharp_hints": sharpness(both),
                     "colour_alone": colourfulness(alone), "colour_hints": colourfulness(both),
                     "sharp_target": sharpness(ex["image"]), "colour_target": colourfulness(ex["image"])})
        if na and len(shown) < 6:
            shown.append([ex["condition"], overlay(ex["condition"], hints), alone, both, ex["image"]])
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    result = {"images": len(rows), "with_hints": sum(1 for r in rows if r["hue_alone_px"]),
              "hue_error_alone": _pooled(rows, "hue_alone"), "hue_error_hints": _pooled(rows, "hue_hints"),
              "edge_f1_alone": mean("f1_alone"), "edge_f1_hints": mean("f1_hints")}
    for name in ("alone", "hints"):
        result[f"sharpness_{name}"] = mean(f"sharp_{name}") / mean("sharp_target")
        result[f"colourfulness_{name}"] = mean(f"colour_{name}") / mean("colour_target")
    result["strengths"] = sweep(pair, cases, seed)
    return result, shown


def canvas(pair: Pair, seed: int) -> tuple[dict, list]:
    from models.hints import fill_shapes
    from training.demo.eval import HUMAN, draw_human
    from training.evaluate import colourfulness, edge_f1, sharpness

    rows, shown, cases = [], [], []
    for i, ((what, shapes), blobs) in enumerate(zip(HUMAN, BLOBS)):
        drawing, painted = draw_human(shapes, seed=i), draw_blobs(blobs)
        hints = fill_shapes(drawing, painted)  # what the canvas sends with Fill shapes on
        cases.append((f"a {what}", drawing, hints, painted))
        alone = pair(f"a {what}", drawing, hints, 0.0, seed)
        both = pair(f"a {what}", drawing, hints, 1.0, seed)
        dabs = pair(f"a {what}", drawing, painted, 1.0, seed)
        mask = hinted(painted)  # measured inside the blobs as painted, either way
        (ha, na), (hb, _), (hd, _) = (hue_error(x, painted, mask) for x in (alone, both, dabs))
        rows.append({"hue_alone": ha, "hue_alone_px": na, "hue_hints": hb, "hue_hints_px": na, "hue_dabs": hd,
                     "hue_dabs_px": na, "f1_alone": edge_f1(alone, drawing), "f1_hints": edge_f1(both, drawing),
                     "f1_dabs": edge_f1(dabs, drawing), "sharp": sharpness(both) / max(sharpness(alone), 1e-9),
                     "colour": colourfulness(both) / max(colourfulness(alone), 1e-9)})
        shown.append([drawing, overlay(drawing, painted), alone, both, dabs])
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {"drawings": len(rows), "subjects": [w for w, _ in HUMAN], "fill_shapes": True,
            "hue_error_alone": _pooled(rows, "hue_alone"), "hue_error_hints": _pooled(rows, "hue_hints"),
            "edge_f1_alone": mean("f1_alone"), "edge_f1_hints": mean("f1_hints"),
            "dabs_as_painted": {"hue_error": _pooled(rows, "hue_dabs"), "edge_f1": mean("f1_dabs")},
            "sharpness_vs_alone": mean("sharp"), "colourfulness_vs_alone": mean("colour"),
            "strengths": sweep(pair, cases, seed)}, shown


def photos(cache: Path) -> list[tuple[str, str, np.ndarray]]:
    """(name, prompt, 256 px centre-cropped RGB photo) for PHOTOS, read out of the scikit-image wheel
    (downloaded with pip into cache when missing; the package is never installed or imported)."""
    from models.imageio import decode_rgb
    from training.data import resize_short
    from training.demo.data import pip_wheel

    out = []
    with zipfile.ZipFile(pip_wheel(cache, SKIMAGE_WHEEL)) as z:
        for name, prompt in PHOTOS:
            img = resize_short(decode_rgb(np.frombuffer(z.read(f"skimage/data/{name}"), np.uint8)), 256)
            y, x = (img.shape[0] - 256) // 2, (img.shape[1] - 256) // 2
            out.append((name.split(".")[0], prompt, np.ascontiguousarray(img[y : y + 256, x : x + 256])))
    return out


def keep_colours(pair: Pair, cache: Path, seed: int) -> tuple[dict, list]:
    from models.conditions import sketch
    from models.hints import frame_hints
    from training.demo.eval import colour_error
    from training.evaluate import edge_f1

    per, shown, other = {}, [], {f"{s:g}": [] for s in SWEEP}
    for name, prompt, photo in photos(cache):
        lines, hints = sketch(photo), frame_hints(photo)
        alone = pair(prompt, lines, hints, 0.0, seed)
        both = pair(prompt, lines, hints, KEEP, seed)
        per[name] = {"colour_error_alone": colour_error(alone, photo), "colour_error_keep": colour_error(both, photo),
                     "edge_f1_alone": edge_f1(alone, lines), "edge_f1_keep": edge_f1(both, lines)}
        shown.append([photo, lines, hints, alone, both])
        for s in SWEEP:
            image = pair(prompt, lines, hints, s, seed)
            other[f"{s:g}"].append((colour_error(image, photo), edge_f1(image, lines)))
    mean = lambda k: float(np.mean([v[k] for v in per.values()]))  # noqa: E731
    keys = ("colour_error_alone", "colour_error_keep", "edge_f1_alone", "edge_f1_keep")
    strengths = {k: {"colour_error": float(np.mean([e for e, _ in v])), "edge_f1": float(np.mean([f for _, f in v]))}
                 for k, v in other.items()}
    return {"photos": list(per), "strength": KEEP, **{k: mean(k) for k in keys}, "per_photo": per,
            "strengths": strengths}, shown


def run(base: str, sketch: Path, colour: Path, heldout_dir: Path, out: Path, work: Path, limit: int = 64,
        seed: int = 0) -> dict:
    """The colour adapter's numbers (returned; the caller puts them in metrics.json) and three grids in out/:
    colour_hints_heldout.png (sketch | sketch + hints | output | output with hints | target),
    colour_hints_canvas.png (sketch | sketch + blobs | output alone | with the blobs filled | with them as painted), keep_colours.png (frame | sketch | hints | sketch adapter | sketch + colour hints)."""
    from models.imageio import grid, write_rgb

    pair = Pair(base, sketch, colour)
    result = {"seed": seed, "min_chroma": MIN_CHROMA}
    result["heldout"], rows = heldout(pair, heldout_dir, limit, seed)
    write_rgb(out / "colour_hints_heldout.png", grid(rows, 96))
    result["canvas"], rows = canvas(pair, seed)
    write_rgb(out / "colour_hints_canvas.png", grid(rows, 96))
    result["keep_colours"], rows = keep_colours(pair, work / "wheels", seed)
    write_rgb(out / "keep_colours.png", grid(rows, 96))
    h, c, k = result["heldout"], result["canvas"], result["keep_colours"]
    result["targets"] = {
        "heldout_hue_error_at_most_half": h["hue_error_hints"] <= 0.5 * h["hue_error_alone"],
        "heldout_edge_f1_drop_at_most_0.02": h["edge_f1_alone"] - h["edge_f1_hints"] <= 0.02,
        "heldout_sharpness_at_least_0.7": h["sharpness_hints"] >= 0.7,
        "heldout_colourfulness_at_least_0.7": h["colourfulness_hints"] >= 0.7,
        "canvas_hue_error_at_most_half": c["hue_error_hints"] <= 0.5 * c["hue_error_alone"],
        "canvas_edge_f1_drop_at_most_0.02": c["edge_f1_alone"] - c["edge_f1_hints"] <= 0.02,
        "photos_colour_error_at_most_half": k["colour_error_keep"] <= 0.5 * k["colour_error_alone"],
        "photos_edge_f1_drop_at_most_0.02": k["edge_f1_alone"] - k["edge_f1_keep"] <= 0.02,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m training.demo.eval_colour`: the colour adapter's numbers and grids without a rebuild."""
    import argparse
    import json

    import torch

    from models.assets import DEMO_DIR
    from training.demo.data import ROOT, colour_rows, write_subset

    p = argparse.ArgumentParser(prog="python -m training.demo.eval_colour", description=main.__doc__)
    p.add_argument("--colour", type=Path, default=DEMO_DIR / "colour_adapter", help="the colour-hint adapter folder")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "demo", help="the demo builder's --work (held-out pictures, wheels)")
    p.add_argument("--out", type=Path, default=DEMO_DIR, help="where the grids go")
    p.add_argument("--limit", type=int, default=64, help="held-out pictures")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    from models.errors import UserError
    from models.loading import quiet_libraries

    quiet_libraries()
    torch.set_num_threads(args.threads)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        if not (args.colour / "config.json").is_file():
            raise UserError(f"--colour {str(args.colour)!r} holds no config.json: pass a colour-hint adapter's folder")
    except (OSError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = args.work / "data"  # the held-out colour pictures, as the builder's evaluate stage takes them
    heldout = write_subset(data / "heldout", data / "heldout_colour", colour_rows(data / "heldout"))
    result = run("demo", DEMO_DIR / "adapter", args.colour, heldout, args.out, args.work, args.limit)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
