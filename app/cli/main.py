"""SDXS Live's command line: real-time one-step diffusion from a sketch, a camera or a video.

    sdxs-live [window options]           the desktop app (or: python main.py from a checkout)
    sdxs-live SUBCOMMAND [options]       generate, bench, stream, serve-engine, train, train-data, install-desktop

-v shows debug lines too, -q only warnings and errors (before or after the subcommand; or SDXS_LOG=debug|info|warning).

Subcommand modules are imported only when used, and keep torch, diffusers and Qt imports inside their
run() functions, so the window and --help appear at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn

# module, one-line help. Each module has add_arguments(parser) and run(args) -> exit code.
SUBCOMMANDS = {
    "generate": ("app.cli.generate", "turn one control image (a sketch) and a prompt into an image"),
    "bench": ("app.cli.bench", "measure speed and memory (engine, train, steady, framepath, remote, ui, endurance)"),
    "stream": ("app.cli.stream", "the live loop without a window: camera or video in, MP4 out"),
    "serve-engine": ("app.cli.serve_engine", "run the engine for clients on other machines (WebRTC, a browser page)"),
    "train": ("app.cli.train", "train a control adapter for a frozen one-step model"),
    "train-data": ("app.cli.train_data", "make WebDataset shards from a folder, or check training data"),
    "install-desktop": ("app.cli.desktop", "add SDXS Live to the desktop's application menu"),
}
WINDOW = "app.cli.window"


def build_parser() -> argparse.ArgumentParser:
    prog = os.path.basename(sys.argv[0])  # main.py from a checkout, sdxs-live installed
    parser = argparse.ArgumentParser(prog="sdxs-live" if prog in ("__main__.py", "-c", "") else prog, description="SDXS Live: real-time one-step diffusion")
    _module(WINDOW).add_arguments(parser)
    add_log_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _module(module).add_arguments(p)
        add_log_flags(p)
    return parser


def add_log_flags(p: argparse.ArgumentParser) -> None:
    """-v / -q, before or after the subcommand. Absent unless given (main reads 0), so a subcommand's
    parser does not undo a -v given before the subcommand."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="show debug lines too")
    group.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS, help="show only warnings and errors")


def _module(name: str):
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    from app.cli.logs import configure
    from models.errors import UserError

    args = build_parser().parse_args(argv)
    module = SUBCOMMANDS[args.command][0] if args.command else WINDOW
    try:
        configure(getattr(args, "verbose", 0), getattr(args, "quiet", 0))
        return int(_module(module).run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130



def entry(argv: list[str] | None = None) -> NoReturn:
    """The process's entry point (main.py, the sdxs-live command): main(), then a quick exit.

    By the time main() returns every file is finished, every sink closed and the settings synced; what is left
    is the interpreter's teardown, which with torch, diffusers and Qt loaded collects every model object one by
    one: 2-6 s on 2 busy cores, after a window that already closed or a stream that printed its summary. So
    flush what was said and leave at once (os._exit skips only that teardown)."""
    code = main(argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
