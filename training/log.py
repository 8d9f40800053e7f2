"""What a training run tells: a progress bar (or the JSON progress stream), train_log.jsonl, TensorBoard.

With `--progress jsonl` the trainer prints one JSON object per line on stdout, a public contract for tools
that drive it (the window's Train dialog is one); everything meant for people goes to stderr instead:

    {"event": "start", "step": 0, "steps": 1000, "out": "runs/canny"}
    {"event": "step", "step": 1, "steps": 1000, "loss": 0.41, "latent": 0.2, ..., "lr": 5e-05, "seconds_left": 812.0}
    {"event": "checkpoint", "step": 500, "path": "runs/canny/checkpoints/checkpoint-500"}
    {"event": "validation", "step": 500, "path": "runs/canny/validation/step-000500.png"}
    {"event": "collapse", "step": 612, "why": "...", "advice": "..."}
    {"event": "stopped", "step": 640}                      (Ctrl+C or SIGINT: a checkpoint was saved; exit code 130)
    {"event": "done", "step": 1000, "adapter": "runs/canny/adapter"}
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

PROGRESS = ("bar", "jsonl")  # the values of --progress
RECENT = 20  # steps the time-left estimate averages over


class Log:
    """Progress bar or JSON stream, train_log.jsonl and (when installed) TensorBoard, on the main process only."""

    def __init__(self, accelerator: Any, cfg: Any, start: int):
        from tqdm.auto import tqdm

        self.acc = accelerator
        self.main = accelerator.is_main_process
        self.jsonl = getattr(cfg, "progress", "bar") == "jsonl"
        self.steps = cfg.steps
        self.path = Path(cfg.out) / "train_log.jsonl"
        self.bar = tqdm(total=cfg.steps, initial=start, unit="step", disable=not self.main or self.jsonl,
                        dynamic_ncols=True)
        self.t0 = time.perf_counter()
        self._times: list[float] = [self.t0]  # when the recent steps ended
        if accelerator.trackers is not None and accelerator.log_with:
            accelerator.init_trackers("train", config={k: v for k, v in asdict(cfg).items() if v is not None})
        self.emit("start", step=start, steps=cfg.steps, out=str(cfg.out))

    def note(self, text: str) -> None:
        """A line for people: above the progress bar, or on stderr beside the JSON stream."""
        if self.main:
            print(text, file=sys.stderr, flush=True) if self.jsonl else self.bar.write(text)

    def emit(self, event: str, **fields: Any) -> None:
        """One object of the JSON progress stream (nothing without --progress jsonl)."""
        if self.main and self.jsonl:
            print(json.dumps({"event": event, **fields}), flush=True)

    def seconds_left(self, step: int) -> float | None:
        if len(self._times) < 2:
            return None
        per_step = (self._times[-1] - self._times[0]) / (len(self._times) - 1)
        return round(per_step * max(self.steps - step, 0), 1)

    def step(self, step: int, terms: dict[str, float], lr: float) -> None:
        if not self.main:
            return
        self._times = (self._times + [time.perf_counter()])[-RECENT - 1 :]
        self.bar.update(1)
        shown = {"loss": f"{terms['loss']:.4f}"}
        if "disc" in terms:  # both players of the adversarial game
            shown |= {"adv": f"{terms['adv_g']:.3f}", "disc": f"{terms['disc']:.3f}"}
        self.bar.set_postfix(**shown, lr=f"{lr:.1e}")
        rounded = {k: round(v, 6) for k, v in terms.items()}
        row = {"step": step, **rounded, "lr": lr, "seconds": round(time.perf_counter() - self.t0, 2)}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self.acc.log({f"train/{k}": v for k, v in terms.items()} | {"train/lr": lr}, step=step)
        self.emit("step", step=step, steps=self.steps, **rounded, lr=lr, seconds_left=self.seconds_left(step))

    def event(self, row: dict) -> None:
        """A line in train_log.jsonl that is not a step (a collapse, say), also on the progress stream."""
        if self.main:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            self.emit(**row)

    def close(self) -> None:
        self.bar.close()
