"""Checkpoints that a kill never breaks: OUT/checkpoints/checkpoint-STEP/, written whole or not at all.

Each is written by accelerate's save_state (adapter, optimizer, LR schedule, RNG states) into a hidden
temporary folder, then state.json (the step) is written last, then the folder is renamed into place. A
folder counts as a checkpoint only with its state.json; leftovers of an interrupted write are ignored and
removed at the next save.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.errors import UserError

NAME = re.compile(r"^checkpoint-(\d+)$")
STATE = "state.json"


def complete(folder: Path) -> bool:
    return folder.is_dir() and (folder / STATE).is_file()


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := NAME.match(p.name)) and complete(p)]
    return [p for _, p in sorted(found)]


def read_state(folder: Path) -> dict:
    """The checkpoint's state.json: its step and what the run settled when it began (the adversarial start)."""
    try:
        state = json.loads((folder / STATE).read_text())
        int(state["step"])
        return state
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"checkpoint {folder} is incomplete or damaged (no readable {STATE}): pick another one") from None


def read_step(folder: Path) -> int:
    return int(read_state(folder)["step"])


def resolve_resume(spec: str | None, root: Path) -> Path | None:
    """--resume latest|PATH -> the checkpoint folder to load, None to start fresh."""
    if not spec:
        return None
    if spec == "latest":
        found = list_checkpoints(root)
        return found[-1] if found else None
    path = Path(spec).expanduser()
    if not path.is_dir():
        path = root / spec  # a bare checkpoint name
    if not complete(path):
        raise UserError(f"--resume {spec!r} is not a complete checkpoint folder (one with {STATE}): use latest or a checkpoint-N folder")
    return path


def save(accelerator: Any, root: Path, step: int, keep: int, extra: dict | None = None,
         also: Callable[[Path], Any] | None = None) -> Path:
    """Write checkpoint-STEP atomically, then delete all but the newest `keep`. Main process only.
    also(folder) writes more into the checkpoint before it counts as complete (the adapter in diffusers' format)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    if complete(final):
        return final
    for leftover in root.glob(".tmp-checkpoint-*"):  # a write that was killed earlier
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = root / f".tmp-checkpoint-{step}-{os.getpid()}"
    accelerator.save_state(str(tmp), safe_serialization=True)
    if also is not None:
        also(tmp)
    (tmp / STATE).write_text(json.dumps({"step": step, **(extra or {})}, indent=2) + "\n")
    if final.exists():  # an incomplete folder of that name (no state.json): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final
