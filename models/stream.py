"""`python main.py stream`. (Placeholder until the desktop-app issue lands.)"""

from __future__ import annotations

import argparse

from models.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise UserError("stream is not built yet (desktop-app issue)")
