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
    check_output(cfg)
    quiet_libraries()
    from models.errors import UserError
    from training.train import train

    try:
        return train(cfg)
    except UserError:
        raise
    except Exception as e:  # a disk that fills or turns read-only during the run: one line, no temporary leftovers
        why = _disk_failure(e, cfg.out)
        if why is None:
            raise
        raise UserError(f"training stopped: cannot write in --out {cfg.out!r}: {why}; complete checkpoints are kept "
                        "(free some space, then continue with --resume latest)") from None


def check_output(cfg: config.TrainConfig) -> None:
    """Before any model loads: --out can be made and written, with room for its checkpoints; --seed in range."""
    from models.errors import UserError
    from models.outfiles import check_folder
    from training.runs import check_space, estimate_adapter_params

    if not 0 <= cfg.seed < 2**32:  # accelerate seeds numpy with it, which takes 0 .. 2**32 - 1
        raise UserError(f"--seed {cfg.seed} must be between 0 and {2**32 - 1} for training")
    check_folder(cfg.out, f"--out {cfg.out!r}", create=True)
    from models.assets import DEMO_DIR

    base = DEMO_DIR if cfg.base == "demo" else cfg.base
    try:
        params = estimate_adapter_params(base, cfg.adapter)  # from a local UNet's safetensors header, no weights read
    except Exception:  # a hub id, or a header the loader will report in its own words
        params = None
    if params:
        check_space(cfg, params)


def _disk_failure(e: Exception, out: str) -> str | None:
    import os
    import shutil
    from pathlib import Path

    from models.outfiles import write_failure

    why = write_failure(e, out)
    if why is not None:
        folder = Path(out).expanduser()
        for leftover in [*folder.glob(f".tmp-*-{os.getpid()}"), *folder.glob(f".run.json.{os.getpid()}")]:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    return why
