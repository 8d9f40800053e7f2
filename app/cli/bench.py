"""`python main.py bench [KIND]`: speed and memory, as JSON and a short table.

KIND picks the benchmark: engine (default; models/bench.py), ui and endurance (the window; app/ui/bench.py),
train (training/bench.py), steady (the live loop's stabiliser; app/live/bench_steady.py). Each kind's module is imported only when it runs; the window's benchmarks take
their options from here, so no other subcommand loads the window's package.
"""

from __future__ import annotations

import argparse
import importlib

from app.cli.options import add_model_arguments

KINDS = {"engine": "models.bench", "ui": "app.ui.bench", "endurance": "app.ui.bench", "train": "training.bench",
         "steady": "app.live.bench_steady"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from app.live import bench_steady as steady
    from models import bench as engine
    from training import bench as train

    p.add_argument("kind", nargs="?", default="engine", choices=sorted(KINDS), help="what to measure (default engine)")
    add_model_arguments(p, model_required=False)
    p.add_argument("--frames", type=int, default=20, help="frames to time after warm-up (default 20)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    engine.add_arguments(p)
    train.add_arguments(p)
    steady.add_arguments(p)
    p.add_argument("--ui-seconds", type=float, default=5.0, help="ui: how long to draw (default 5)")
    p.add_argument("--ui-delay", type=float, default=0.5, help="ui: seconds the stand-in engine takes per frame (default 0.5)")
    p.add_argument("--endurance-warmup", type=int, default=500, help="endurance: frames before the first memory reading (default 500)")


def run(args: argparse.Namespace) -> int:
    from models.errors import UserError
    from models.outfiles import check_file, write_failure

    if args.json:  # before anything is measured: the folder (made if missing) takes a file and has room
        check_file(args.json, f"--json {args.json!r}", need=2**20, create_folder=True)
    try:
        return importlib.import_module(KINDS[args.kind]).run(args)
    except UserError:
        raise
    except OSError as e:  # the results could not be written after the run: one line
        why = write_failure(e, args.json) if args.json else None
        if why is None:
            raise
        raise UserError(f"cannot write --json {args.json!r}: {why}") from None
