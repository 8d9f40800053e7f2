"""`python main.py train`: turn a folder of images into a control adapter for a frozen one-step model.

    python main.py train --base demo --data photos/ --out runs/canny --condition canny --steps 2000
    accelerate launch main.py train --base IDKiro/sdxs-512-dreamshaper --data photos/ --out runs/x ...
"""

from __future__ import annotations

import argparse

from training import config


def add_arguments(p: argparse.ArgumentParser) -> None:
    config.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from models.loading import quiet_libraries

    cfg = config.from_args(args)
    quiet_libraries()
    from training.train import train

    return train(cfg)
