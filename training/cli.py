"""`python main.py train`. (Placeholder until the training issue lands.)"""

from __future__ import annotations

import argparse

from models.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise UserError("train is not built yet (training issue)")
