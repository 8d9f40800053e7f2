"""SDXS Live's command line: real-time one-step diffusion from a sketch, a camera or a video.

    sdxs-live [window options]           the desktop app (or: python main.py from a checkout)
    sdxs-live SUBCOMMAND [options]       generate, bench, stream, train, install-desktop

Subcommand modules are imported only when used, and keep torch, diffusers and Qt imports inside their
run() functions, so the window and --help appear at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# module, one-line help. Each module has add_arguments(parser) and run(args) -> exit code.
SUBCOMMANDS = {
    "generate": ("app.cli.generate", "turn one control image (a sketch) and a prompt into an image"),
    "bench": ("app.cli.bench", "measure speed and memory (engine, ui, endurance, train)"),
    "stream": ("app.cli.stream", "the live loop without a window: camera or video in, MP4 out"),
    "train": ("app.cli.train", "train a control adapter for a frozen one-step model"),
    "install-desktop": ("app.cli.desktop", "add SDXS Live to the desktop's application menu"),
}
WINDOW = "app.cli.window"


def build_parser() -> argparse.ArgumentParser:
    prog = os.path.basename(sys.argv[0])  # main.py from a checkout, sdxs-live installed
    parser = argparse.ArgumentParser(prog="sdxs-live" if prog in ("__main__.py", "-c", "") else prog, description="SDXS Live: real-time one-step diffusion")
    _module(WINDOW).add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _module(module).add_arguments(p)
    return parser


def _module(name: str):
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    from models.errors import UserError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    module = SUBCOMMANDS[args.command][0] if args.command else WINDOW
    try:
        return int(_module(module).run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
