"""`python main.py`: the window. (Placeholder until the desktop-app issue lands.)"""

from __future__ import annotations

import argparse

from models.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="base model: hub id, folder or demo")
    p.add_argument("--controlnet", default=None, help="control adapter: hub id, folder or demo")


def run(args: argparse.Namespace) -> int:
    raise UserError("the window is not built yet (desktop-app issue): use `python main.py generate ...` for now")
