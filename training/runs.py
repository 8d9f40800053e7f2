"""Training runs on disk, for tools that drive the trainer (the window's Train dialog): what a run folder holds,
how far it got, and the command line that starts or resumes it.

A run folder (the trainer's --out) holds run.json (the TrainConfig it was started with, written before the first
step), checkpoints/checkpoint-N/, validation/step-N.png, train_log.jsonl and, once finished, adapter/.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from models.errors import UserError
from training import checkpoints
from training.config import TrainConfig

RUN_FILE = "run.json"


@dataclass(frozen=True, kw_only=True)
class Run:
    """One run folder as found on disk."""

    folder: Path  # the run's --out
    config: TrainConfig  # what it was started with
    step: int  # the newest complete checkpoint's step (0: none yet)
    finished: bool  # adapter/ holds the result of all config.steps
    modified: float  # time of the newest checkpoint or adapter (seconds since the epoch)

    @property
    def adapter(self) -> Path | None:
        """The folder to load in the app: the finished adapter, or None while only checkpoints exist."""
        folder = self.folder / "adapter"
        return folder if (folder / "config.json").exists() else None

    def label(self) -> str:
        state = "finished" if self.finished else f"stopped at step {self.step} of {self.config.steps}"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.modified))
        return f"{self.folder.name}: {self.config.condition}, {self.config.adapter}, {state}, {when}"


def write_run(cfg: TrainConfig) -> Path:
    """run.json in the run folder, atomically (the trainer calls this before its first step)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{RUN_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({k: v for k, v in asdict(cfg).items() if k not in ("resume", "progress")}, indent=2) + "\n")
    os.replace(tmp, out / RUN_FILE)
    return out / RUN_FILE


def read_run(folder: str | Path) -> Run | None:
    """The run in folder, or None when it holds no run.json (not a run, or from an older trainer)."""
    folder = Path(folder).expanduser()
    try:
        data = json.loads((folder / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in data.items() if k in known})
    cfg.with_adapters = tuple(cfg.with_adapters)  # a JSON list
    found = checkpoints.list_checkpoints(folder / "checkpoints")
    step = checkpoints.read_step(found[-1]) if found else 0
    info = folder / "adapter" / "adapter.json"
    trained = 0
    if info.exists():
        try:
            trained = int(json.loads(info.read_text()).get("steps_trained", 0))
        except (OSError, ValueError, TypeError):
            trained = 0
    stamps = [p.stat().st_mtime for p in [*found[-1:], info] if p.exists()] or [(folder / RUN_FILE).stat().st_mtime]
    return Run(folder=folder, config=cfg, step=max(step, trained), finished=trained >= cfg.steps, modified=max(stamps))


def find_runs(root: str | Path) -> list[Run]:
    """The run in root itself and in its direct subfolders, newest first."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    runs = [r for f in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if (r := read_run(f)) is not None]
    return sorted(runs, key=lambda r: r.modified, reverse=True)


def train_argv(cfg: TrainConfig, progress: bool = True) -> list[str]:
    """The `train` subcommand's arguments for cfg (resume included), as `python main.py train ...` takes them."""
    defaults = TrainConfig("", "", "")
    argv = ["train"]
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.name == "progress":
            continue
        if f.name in ("base", "data", "out"):
            argv += [flag, str(value)]
        elif f.name == "with_adapters":
            argv += [a for spec in value for a in ("--with-adapter", str(spec))]
        elif isinstance(getattr(defaults, f.name), bool):
            argv += [flag] if value else []
        elif value is not None and value != getattr(defaults, f.name):
            argv += [flag, str(value)]
    return argv + (["--progress", "jsonl"] if progress else [])


def sizes(*numbers: float) -> list[str]:
    """Byte counts in words, in one unit (GB, MB or KB, by the largest) and with enough decimals that unequal
    numbers never read the same ('0.0 GB free, but ... need about 0.0 GB')."""
    top = max(numbers)
    unit, scale = next(((u, 2**k) for u, k in (("GB", 30), ("MB", 20), ("KB", 10)) if top >= 2**k), ("bytes", 1))
    for places in range(0 if scale == 1 else 1, 6):
        words = [f"{n / scale:.{places}f} {unit}" for n in numbers]
        if len(set(words)) == len(set(numbers)):
            return words
    return [f"{int(n)} bytes" for n in numbers]


def check_space(cfg: TrainConfig, adapter_params: float) -> None:
    """Refuse a run whose checkpoints would not fit on the output disk (each: weights + AdamW's two moments).
    A resumed run already has some on that disk: the oldest are deleted as new ones come, so it needs room for
    the ones still to come, at least one."""
    import shutil

    from training.checkpoints import list_checkpoints

    out = Path(cfg.out).expanduser()
    probe = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    each = adapter_params * 4 * 4  # fp32 weights, exp_avg, exp_avg_sq, the adapter in diffusers' format
    have = len(list_checkpoints(out / "checkpoints")) if cfg.resume else 0
    more = max(1, cfg.keep_checkpoints + 1 - have)  # one more than kept is on disk while the newest is written
    need = each * more
    free = shutil.disk_usage(probe).free
    if free < need:
        free_words, need_words, each_words = sizes(free, need, each)
        kept = f" ({have} already there)" if have else ""
        raise UserError(f"--out {cfg.out!r}: its disk has {free_words} free, but {more} more checkpoint{'s' * (more != 1)} of "
                        f"this adapter{kept} need about {need_words} ({each_words} each): free space, lower "
                        "--keep-checkpoints or pick another disk")


ADAPTER_SHARE = {"full": 186.6 / 315.7, "light": 76.1 / 315.7}  # adapter parameters per UNet parameter (SDXS layout)


def estimate_adapter_params(base_folder: str | Path, kind: str) -> float | None:
    """Parameters of a `kind` adapter for the base in base_folder, from its UNet's safetensors header (no weights
    read); None where the UNet weights are not a local safetensors file."""
    from safetensors import safe_open

    files = sorted((Path(base_folder).expanduser() / "unet").glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                n = 1
                for d in f.get_slice(key).get_shape():
                    n *= d
                total += n
    return total * ADAPTER_SHARE.get(kind, 1.0)
