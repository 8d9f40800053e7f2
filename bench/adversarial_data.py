"""Data for the adversarial-objective evidence (bench/results/train/): a subset of openclipart, rendered
and split exactly as the demo builder does (training/demo/data.py), in colour only.

    python -m bench.adversarial_data [--work build/adv] [--train 1200]

Writes WORK/data/train, WORK/data/heldout (paired layout), WORK/data/adapter128 (4000 windows of 128 px
from the colour training pictures, as the demo adapter trains on) and WORK/data/heldout_colour (its
images/ folder holds .txt captions too, for `--condition sketch`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.demo import data as demo_data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.adversarial_data")
    p.add_argument("--work", default="build/adv", help="work folder (default build/adv)")
    p.add_argument("--train", type=int, default=1200, help="training SVGs to render (every held-out one is rendered)")
    args = p.parse_args(argv)
    data = Path(args.work) / "data"
    svg_dir = demo_data.ensure_openclipart()
    svgs = sorted(svg_dir.rglob("*.svg"))
    names = {svg: "__".join(svg.relative_to(svg_dir).with_suffix("").parts) + ".png" for svg in svgs}
    held = [s for s in svgs if demo_data.held_out(names[s])]
    rest = [s for s in svgs if not demo_data.held_out(names[s])]
    every = max(1, len(rest) // args.train)
    keep = set(held + rest[::every][: args.train])
    # demo_data.render renders everything under the SVG folder it is given: a folder of links to our subset
    subset = Path(args.work) / "svg"
    for svg in keep:
        link = subset / svg.relative_to(svg_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(svg)
    items = demo_data.render(data, 256, svg_dir=subset)
    counts = demo_data.write_split(data, items)
    train_rows = demo_data.colour_rows(data / "train")
    held_rows = demo_data.colour_rows(data / "heldout")
    if not (data / "adapter128" / "metadata.jsonl").exists():
        demo_data.write_crops(data, train_rows)
    held = demo_data.write_subset(data / "heldout", data / "heldout_colour", held_rows)
    for r in held_rows:  # captions beside the pictures, so images/ alone serves with any --condition
        (held / "images" / r["file_name"]).with_suffix(".txt").write_text(r["text"] + "\n")
    print(f"rendered {len(items)}: {counts}; colour: {len(train_rows)} train, {len(held_rows)} held out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
