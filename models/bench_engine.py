"""The engine benchmark (placeholder, being written)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compare-diffusers", action="store_true", help="also time diffusers' stock pipeline on the same frames")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
