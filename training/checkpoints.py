"""Checkpoints that a kill never breaks: OUT/checkpoints/checkpoint-STEP/, written whole or not at all.

Each is written by accelerate's save_state (adapter, optimizer, LR schedule, RNG states) into a hidden
temporary folder, then state.json (the step), then manifest.json last: the size and SHA-256 of every file in
the folder (whatever wrote it: this module knows no fixed list), then the folder is renamed into place. A
folder counts as a checkpoint only with its state.json; leftovers of an interrupted write are ignored and
removed at the next save.

A checkpoint damaged afterwards is found before it is loaded: a file whose size or SHA-256 differs from its
manifest (NaN written over weights, flipped bytes in the optimizer state, a truncated copy), a file the manifest
lists that is gone. A checkpoint from before manifests is checked by its structure only: every .safetensors
file as long as its header says, every .bin a whole zip archive (what torch.save writes). `--resume latest`
then names the damaged one and takes the newest intact one before it; `--resume PATH` to a damaged one is a
one-line error that says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.errors import UserError
from models.outfiles import write_failure

NAME = re.compile(r"^checkpoint-(\d+)$")
STATE = "state.json"
MANIFEST = "manifest.json"  # {"files": {relative path: {"bytes": N, "sha256": HEX}}}, written last


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


def _safetensors_damage(path: Path) -> str | None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size:
                return f"is truncated ({size} bytes, its header alone says {n})"
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError):
        return "has no readable safetensors header"
    if size != 8 + n + end:
        return f"is truncated ({size} of {8 + n + end} bytes)" if size < 8 + n + end else f"has {size - 8 - n - end} bytes too many"
    return None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    """The size and SHA-256 of every file under folder (but the manifest), written atomically."""
    files = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    tmp = folder / f".{MANIFEST}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps({"files": files}, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)


def _manifest_damage(folder: Path) -> str | None:
    """What differs from the checkpoint's manifest, or None when everything it lists is as written."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
        listed = [(name, int(v["bytes"]), str(v["sha256"])) for name, v in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{MANIFEST} is unreadable"
    for name, size, digest in listed:
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        now = path.stat().st_size
        if now != size:
            return f"{name} is truncated ({now} of {size} bytes)" if now < size else f"{name} has {now - size} bytes too many"
        if sha256(path) != digest:
            return f"{name} does not match its checksum (its bytes changed since it was written)"
    return None


def damage(folder: Path) -> str | None:
    """What is wrong with a complete checkpoint's files ('model.safetensors does not match its checksum ...'),
    or None. With a manifest every file is checked by its SHA-256; an older checkpoint by its structure."""
    if (folder / MANIFEST).exists():
        return _manifest_damage(folder)
    for path in sorted(folder.rglob("*.safetensors")):
        why = _safetensors_damage(path)
        if why:
            return f"{path.relative_to(folder)} {why}"
    for path in sorted(folder.rglob("*.bin")):  # optimizer and LR schedule: torch.save's zip archives
        try:
            with zipfile.ZipFile(path) as z:
                z.infolist()
        except (OSError, zipfile.BadZipFile):
            return f"{path.relative_to(folder)} is truncated or damaged (not a whole torch archive)"
    return None


def pick_resume(spec: str | None, root: Path) -> tuple[Path | None, str]:
    """--resume latest|PATH -> (the checkpoint folder to load or None to start fresh, a note to print or "").
    latest skips damaged checkpoints, newest first, and the note names them; a damaged PATH is a UserError."""
    if not spec:
        return None, ""
    if spec == "latest":
        skipped = []
        for path in reversed(list_checkpoints(root)):
            why = damage(path)
            if why is None:
                return path, f"skipped damaged {', '.join(skipped)}" if skipped else ""
            skipped.append(f"{path.name} ({why})")
        if skipped:
            raise UserError(f"--resume latest: every checkpoint in {root} is damaged (newest: {skipped[0]}): "
                            "start again with another --out")
        return None, ""
    path = Path(spec).expanduser()
    if not path.is_dir():
        path = root / spec  # a bare checkpoint name
    if not complete(path):
        raise UserError(f"--resume {spec!r} is not a complete checkpoint folder (one with {STATE}): use latest or a checkpoint-N folder")
    why = damage(path)
    if why:
        raise UserError(f"--resume {spec!r}: the checkpoint is damaged: {why}; pick an older checkpoint or --resume latest")
    return path, ""


def resolve_resume(spec: str | None, root: Path) -> Path | None:
    """--resume latest|PATH -> the checkpoint folder to load, None to start fresh (pick_resume without its note)."""
    return pick_resume(spec, root)[0]


def save(accelerator: Any, root: Path, step: int, keep: int, extra: dict | None = None,
         also: Callable[[Path], Any] | None = None) -> Path:
    """Write checkpoint-STEP atomically, then delete all but the newest `keep`. Main process only.
    also(folder) writes more into the checkpoint before it counts as complete (the adapter in diffusers' format)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    if complete(final) and damage(final) is None:
        return final
    for leftover in root.glob(".tmp-checkpoint-*"):  # a write that was killed earlier
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = root / f".tmp-checkpoint-{step}-{os.getpid()}"
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        if also is not None:
            also(tmp)
        (tmp / STATE).write_text(json.dumps({"step": step, **(extra or {})}, indent=2) + "\n")
        write_manifest(tmp)  # last: every file above, whatever wrote it, by size and SHA-256
    except Exception as e:  # a full or read-only disk: nothing half-written stays, the previous checkpoint does
        why = write_failure(e, root)  # before the cleanup frees the room it measures
        shutil.rmtree(tmp, ignore_errors=True)
        if why is None:
            raise
        raise UserError(f"could not write checkpoint {final}: {why}; the previous checkpoint is kept: free some "
                        "space, then continue with --resume latest") from None
    if final.exists():  # an incomplete or damaged folder of that name: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final
