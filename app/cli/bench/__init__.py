"""`python main.py bench [KIND]`: speed and memory, as JSON and a short table.

KIND picks the benchmark, one module each in this package: engine (default; engine.py), adapters (the cost of
each extra adapter, full and light; adapters.py), train (train.py), steady (the live loop's stabiliser; steady.py), framepath (the
frame path's rate and latency beyond a stand-in runner, the window's and stream's; framepath.py), remote (the engine here vs
behind serve-engine on loopback; remote.py), ui and endurance (the window; ui.py, which drives the window through
app/ui/bench.py, the only part that needs Qt). The window's kinds are imported only when they run and take
their options from here, so no other subcommand loads the window's package.
"""

from __future__ import annotations

import argparse
import importlib

from app.cli.options import add_model_arguments

KINDS = {"engine": "app.cli.bench.engine", "adapters": "app.cli.bench.adapters", "ui": "app.cli.bench.ui", "endurance": "app.cli.bench.ui",
         "train": "app.cli.bench.train", "steady": "app.cli.bench.steady", "framepath": "app.cli.bench.framepath",
         "remote": "app.cli.bench.remote"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from app.cli.bench import adapters, engine, framepath, remote, steady, train

    p.add_argument("kind", nargs="?", default="engine", choices=sorted(KINDS), help="what to measure (default engine)")
    add_model_arguments(p, model_required=False)
    p.add_argument("--frames", type=int, default=20, help="frames to time after warm-up (default 20)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    engine.add_arguments(p)
    adapters.add_arguments(p)
    train.add_arguments(p)
    steady.add_arguments(p)
    framepath.add_arguments(p)
    remote.add_arguments(p)
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
