"""`python main.py train-data`: make WebDataset shards from a folder, and check any --data before training.

    python main.py train-data pack photos/ shards/ --shard-size 1000
    python main.py train-data check shards/shard-{000000..000011}.tar --condition canny --grid check.png
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.config import CONDITIONS

    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pack = sub.add_parser("pack", help="write WebDataset shards from a folder of images (captions, paired conditions)")
    pack.add_argument("folder", help="a training folder (images + .txt captions or metadata.jsonl; images/ + conditions/)")
    pack.add_argument("out", help="the folder for the shards (shard-000000.tar, ...)")
    pack.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    check = sub.add_parser("check", help="read a --data value: samples, sizes, unreadable ones, a grid of conditions")
    check.add_argument("data", help="what train's --data takes: a folder, a dataset, Parquet files or shards")
    check.add_argument("--condition", default="canny", choices=CONDITIONS, help="the condition the trainer makes (default canny)")
    check.add_argument("--resolution", type=int, default=512, help="the training crop size (default 512)")
    for name in ("image", "caption", "condition"):
        check.add_argument(f"--{name}-column", default=None, help=f"as train's --{name}-column")
    check.add_argument("--limit", type=int, default=1000, help="samples decoded for sizes and damage (default 1000; all are counted)")
    check.add_argument("--grid", default="data-check.png", help="the picture of examples: image | condition (default data-check.png)")
    check.add_argument("--grid-count", type=int, default=8, help="examples in the grid (default 8)")


def run(args: argparse.Namespace) -> int:
    return pack(args) if args.action == "pack" else check(args)


def pack(args: argparse.Namespace) -> int:
    from training.shards import pack as write

    written = write(args.folder, args.out, args.shard_size)
    for path, count, size in written:
        print(f"{path}: {count} samples, {size / 2**20:.2f} MB")
    total = sum(c for _, c, _ in written)
    print(f"{total} samples in {len(written)} shards; train with --data '{args.out}/shard-{{000000..{len(written) - 1:06d}}}.tar'")
    return 0


def check(args: argparse.Namespace) -> int:
    import numpy as np

    from models.errors import UserError
    from models.outfiles import check_folder
    from training import feed, shards
    from training.config import TrainConfig

    if args.resolution < 64 or args.resolution % 8:
        raise UserError(f"--resolution {args.resolution} must be a multiple of 8 and at least 64, for example 512")
    check_folder(str(__import__("pathlib").Path(args.grid).expanduser().parent), f"--grid {args.grid!r}", create=True)
    cfg = TrainConfig("", args.data, "", condition=args.condition, resolution=args.resolution, caption_dropout=0.0,
                      image_column=args.image_column, caption_column=args.caption_column,
                      condition_column=args.condition_column)
    found, maker = feed.open_data(cfg)
    sizes, bad, examples, total = [], list(found.unreadable), [], 0
    want = maker.paired or bool(maker.companions)
    if found.kind == "shards":
        cols = feed.columns(cfg)
        for url in found.urls:
            for sample in shards.raw_samples(url):
                total += 1
                if total > args.limit:
                    continue
                item = shards.decode_sample(sample, cols, want)
                _take(item, f"{url}#{sample.get('__key__')}", maker, sizes, bad, examples, args.grid_count, total)
    else:
        total = len(maker)
        for i in range(min(total, args.limit)):
            _take(maker.decode(i), maker.name(i), maker, sizes, bad, examples, args.grid_count, i)
    print(f"{args.data}: {found.kind}, {total} samples" + (f" in {len(found.urls)} shards" if found.urls else "")
          + (", paired conditions" if found.paired else ""))
    if sizes:
        hw = np.array(sizes)
        print(f"sizes (first {len(sizes)} decoded): {hw[:, 1].min()}-{hw[:, 1].max()} x {hw[:, 0].min()}-{hw[:, 0].max()} px "
              f"(median {int(np.median(hw[:, 1]))} x {int(np.median(hw[:, 0]))}); "
              f"{int((hw.min(axis=1) < args.resolution).sum())} smaller than --resolution {args.resolution} (scaled up)")
    print(f"unreadable: {len(set(bad))}" + (f" (first: {bad[0]})" if bad else ""))
    if examples:
        path = _grid(examples, args.grid)
        print(f"grid of {len(examples)} examples (image | {args.condition} condition the trainer makes): {path}")
    else:
        print("no example decodes: nothing to show", file=sys.stderr)
        return 1
    return 0


def _take(item, name, maker, sizes, bad, examples, count, index) -> None:
    if item is None:
        bad.append(name)
        return
    sizes.append(item[0].shape[:2])
    if len(examples) < count:
        ex = maker.example(*item, None, index)
        if ex is None:
            bad.append(name)
        else:
            examples.append(ex)


def _grid(examples: list[dict], out: str) -> str:
    """Rows of image | condition (| each companion's), 4 px white gaps, captions not drawn."""
    import cv2
    import numpy as np

    rows = []
    for ex in examples:
        tiles = [ex["image"], ex["condition"], *ex.get("companions", [])]
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        row = [t for tile in tiles for t in (tile, gap)][:-1]
        rows += [np.concatenate(row, axis=1), np.full((4, sum(r.shape[1] for r in row), 3), 255, np.uint8)]
    sheet = np.concatenate(rows[:-1], axis=0)
    cv2.imwrite(out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
