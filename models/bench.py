"""`python main.py bench [KIND]`: speed and memory, as JSON and a short table.

KIND picks the benchmark; each lives beside the code it measures and adds its own options:
engine (default, here), ui and endurance (app/bench.py), train (training/bench.py).
"""

from __future__ import annotations

import argparse
import importlib

from models.common_args import add_model_arguments

KINDS = {"engine": "models.bench_engine", "ui": "app.bench", "endurance": "app.bench", "train": "training.bench", "steady": "app.live.bench_steady"}  # other issues add theirs: "ui", "endurance", "train"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", default="engine", choices=sorted(KINDS), help="what to measure (default engine)")
    add_model_arguments(p, model_required=False)
    p.add_argument("--frames", type=int, default=20, help="frames to time after warm-up (default 20)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    for module in KINDS.values():
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(KINDS[args.kind]).run(args)
