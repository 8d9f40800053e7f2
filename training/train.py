"""Train a control adapter for a frozen one-step base model (the shape of diffusers' train_controlnet.py).

    train(cfg): check data -> accelerator -> models -> optimizer -> resume -> loop -> final adapter/

Runs as it is (`python main.py train ...`) or under `accelerate launch main.py train ...` for several
GPUs; accelerate handles mixed precision, gradient accumulation and the processes.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import sys
import warnings
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import UserError, first_line
from models.loading import AdapterInfo
from training import checkpoints, feed
from training.adapters import count_params
from training.adversarial import ADVICE, CollapseWatch
from training.config import TrainConfig, adversarial_start
from training.feed import Feed, Found, load_data
from training.log import Log
from training.parts import Parts, build_parts, make_accelerator
from training.runs import write_run
from training.validation import validate

COLLAPSED = 3  # exit code of a run stopped because its adversarial game collapsed


@dataclass
class TrainState:
    """What the loop carries from step to step, and what train() reports after it."""

    step: int = 0  # optimizer steps done (a resumed run starts at its checkpoint's)
    skipped: set[str] = field(default_factory=set)  # unreadable images met so far, by path
    collapse: str = ""  # why the adversarial game collapsed, when it did


class Stop:
    """Ctrl+C asks the loop to stop after the current step (a second one stops at once)."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (tests driving train() from a thread)
            self._old = None
        return self

    def _handle(self, _signum, _frame):
        self.requested = True
        print("\nstopping after this step to save a checkpoint (Ctrl+C again stops at once)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, self._old or signal.default_int_handler)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def noise_for(batch: dict, shape: tuple) -> torch.Tensor:
    """Fresh noise per sample, yet the same on a resumed run and with any number of processes: each example's
    from its own seed (the one that picked its crop)."""
    return torch.stack([torch.randn(shape[1:], generator=torch.Generator().manual_seed(int(
        np.random.SeedSequence([s, 1]).generate_state(1)[0]))) for s in batch["seeds"]])


def generator_for(cfg: TrainConfig, micro: int, rank: int, stream: int) -> torch.Generator:
    """A generator seeded by (seed, micro-step, process, stream): stream 1 the noise, 2 the discriminator's."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, micro, rank, stream]).generate_state(1)[0]))


def adapter_info(cfg: TrainConfig, step: int) -> AdapterInfo:
    kind = cfg.adapter  # a fine-tuned adapter (--init-adapter) keeps the kind it was trained as
    if cfg.init_adapter is not None:
        from training.config import companion

        kind = AdapterInfo.read(companion(cfg.init_adapter, "--init-adapter")[0]).extra.get("adapter", "unknown")
    extra = {"adapter": kind, "steps_trained": step, "training": asdict(cfg)}
    return AdapterInfo(condition=cfg.adapter_condition or cfg.condition, polarity=cfg.polarity, resolution=cfg.resolution, base_model=cfg.base, extra=extra)


def save_adapter(net: torch.nn.Module, info: AdapterInfo, folder: Path) -> Path:
    """Diffusers weights + config + adapter.json, written beside and renamed into place."""
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    net.save_pretrained(tmp, safe_serialization=True)
    info.write(tmp)
    if folder.exists():
        old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
        os.replace(folder, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def resume(accelerator: Any, cfg: TrainConfig) -> tuple[int, str]:
    """Load the checkpoint --resume names (if any) into the prepared objects; returns its step and what to say."""
    path, note = checkpoints.pick_resume(cfg.resume, Path(cfg.out) / "checkpoints")  # damaged ones are named, skipped
    if path is None:
        return 0, f"--resume {cfg.resume}: no checkpoint in {cfg.out}/checkpoints yet, starting from step 0" if cfg.resume else ""
    step = checkpoints.read_step(path)
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notice on a hostile file: said in one line below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            accelerator.load_state(str(path))
    except Exception as e:  # another adapter kind or base layout, or damaged or unsafe files
        text = str(e)
        if isinstance(e, pickle.UnpicklingError) or "Weights only load failed" in text:
            raise UserError(f"checkpoint {path} is unsafe or damaged: a file in it holds objects that only run as code "
                            "when loaded (refused, nothing was run); pick an older checkpoint or another --out") from None
        if isinstance(e, (EOFError, zipfile.BadZipFile)) or "PytorchStreamReader" in text or "deserializ" in text:
            raise UserError(f"checkpoint {path} is damaged ({first_line(e, 120)}): pick an older checkpoint") from None
        raise UserError(f"checkpoint {path} does not fit this run ({first_line(e, 160)}): use the same --base and --adapter, or another --out") from None
    for schedule in accelerator._schedulers:  # stepped once per process per step: a run resumed with another
        schedule.scheduler.last_epoch = step * accelerator.num_processes  # number of processes keeps its place
    return step, (f"{note}; " if note else "") + f"resumed from {path} at step {step}"


def describe(cfg: TrainConfig, parts: Parts, log: Log, found: Found, stream: Feed, examples: int) -> None:
    """Say what will happen: the data, the adapter and the processes, the objective, the adversarial term."""
    accelerator = parts.accelerator
    log.note(f"data ({found.kind}): {stream.note()} from {cfg.data}" + (f", {len(found.unreadable)} unreadable skipped"
             f" (first: {Path(found.unreadable[0]).name})" if found.unreadable else "") + f"; {examples} for validation"
             + (" (held out)" if cfg.holdout else ""))
    log.note(f"adapter: {cfg.adapter}, {count_params(accelerator.unwrap_model(parts.net)) / 1e6:.2f} M trainable parameters; "
             f"{accelerator.num_processes} process(es) on {accelerator.device}, {accelerator.mixed_precision} precision")
    if parts.objective.note:
        log.note(parts.objective.note)
    for spec in cfg.with_adapters:
        paired = found.paired
        log.note(f"frozen companion adapter {spec}: its residuals are added to the trained one's; it sees "
                 + ("the data's paired conditions" if paired else "its own condition made from each picture"))
    if parts.adversary:
        log.note(f"adversarial: {cfg.discriminator} discriminator ({count_params(accelerator.unwrap_model(parts.adversary.disc)) / 1e6:.2f} M), "
                 f"{cfg.adversarial_loss} loss, weight {cfg.adversarial_weight}, from step {adversarial_start(cfg)}")


def train(cfg: TrainConfig) -> int:
    """Run the whole training; returns the exit code (0 done, 130 stopped by Ctrl+C after saving)."""
    # 1. data first: a wrong folder fails in one line before any model loads
    found, dataset, examples = load_data(cfg)

    # 2. accelerator, frozen base, adapter, optimizer
    from accelerate.utils import set_seed

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = make_accelerator(cfg)
    cfg = replace(cfg, mixed_precision=accelerator.mixed_precision)  # what accelerate chose, for adapter.json
    set_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        write_run(cfg)  # what the run was started with: tools (the Train dialog) resume it from this
    picked = checkpoints.resolve_resume(cfg.resume, out / "checkpoints")
    stream = Feed(cfg, found, dataset, feed.read_state(picked), checkpoints.read_step(picked) if picked else 0,
                  accelerator.process_index, accelerator.num_processes)  # enough shards: checked before the model loads
    parts = build_parts(cfg, accelerator)

    # 3. resume, then say what will happen
    step, resumed = resume(accelerator, cfg)
    if cfg.adversarial_warmup is None:  # a third of the run as first started: a run resumed with more --steps keeps it
        saved = checkpoints.read_state(checkpoints.resolve_resume(cfg.resume, out / "checkpoints")) if step else {}
        cfg = replace(cfg, adversarial_warmup=saved.get("adversarial_start", adversarial_start(cfg)))
    log = Log(accelerator, cfg, step)
    if resumed:
        log.note(resumed)
    describe(cfg, parts, log, found, stream, len(examples))

    # 4. the loop
    state = TrainState(step=step, skipped=set(found.unreadable))
    try:
        code = loop(cfg, parts, stream, examples, log, state)
    finally:
        log.close()
    step = state.step
    if code == 130:
        log.emit("stopped", step=step)

    # 5. the adapter, in diffusers' format, with its adapter.json
    if accelerator.is_main_process and code == 0:
        folder = save_adapter(accelerator.unwrap_model(parts.net), adapter_info(cfg, step), out / "adapter")
        log.note(f"adapter saved to {folder} after {step} steps ({len(state.skipped)} unreadable images skipped)")
        log.emit("done", step=step, adapter=str(folder))
    elif accelerator.is_main_process and code == COLLAPSED:
        print(f"the adversarial game collapsed at step {step}: {state.collapse}; no adapter saved. {ADVICE}", file=sys.stderr)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # closes trackers and, in a multi-process run, the process group: last
    return code


def loop(cfg: TrainConfig, parts: Parts, stream: Feed, examples: list[dict], log: Log, state: TrainState) -> int:
    """Optimizer steps until cfg.steps; checkpoints, validation grids and Ctrl+C along the way. Returns the exit
    code: 0 done, 130 stopped by Ctrl+C (after a checkpoint), COLLAPSED."""
    accelerator = parts.accelerator
    if state.step >= cfg.steps:
        log.note(f"already at step {state.step} of {cfg.steps}: nothing to train")
        return 0
    micro = state.step * cfg.gradient_accumulation
    loader = stream.loader()
    sums: dict[str, float] = {}
    watch = CollapseWatch(cfg.collapse_patience)
    info = adapter_info(cfg, state.step)
    with Stop() as stop:
        for batch in loader:
            terms = micro_step(cfg, parts, batch, micro, adversarial=parts.adversary is not None and state.step >= adversarial_start(cfg))
            micro += 1
            stream.advance(batch)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / cfg.gradient_accumulation
            new = set(batch["skipped"]) - state.skipped
            if new:
                state.skipped |= new
                log.note(f"skipped {len(new)} unreadable example(s), {len(state.skipped)} in all: {sorted(new)[0]}")
            if not accelerator.sync_gradients:
                continue
            state.step = step = state.step + 1
            sums = mean_over_processes(accelerator, sums)
            if not np.isfinite(sums["loss"]):
                raise UserError(f"the loss became {sums['loss']} at step {step}: lower --lr or use --mixed-precision bf16")
            log.step(step, sums, parts.schedule.get_last_lr()[0])
            why = watch.update(sums)
            sums = {}
            if why:  # not saved as the final adapter: say so, with what to change
                state.collapse = why
                log.event({"step": step, "event": "collapse", "why": why, "advice": ADVICE})
                log.note(f"step {step}: the adversarial game collapsed: {why}. {ADVICE}")
                return COLLAPSED  # and no checkpoint of the collapsed state: the last one before it stays
            if _stop_requested(accelerator, stop):
                save_checkpoint(cfg, parts, log, step, stream)
                log.note(f"stopped at step {step}; continue with --resume latest")
                return 130
            if step % cfg.checkpoint_every == 0 or step >= cfg.steps:
                save_checkpoint(cfg, parts, log, step, stream)
            if (cfg.validate_every and step % cfg.validate_every == 0) or step >= cfg.steps:
                validation_grid(cfg, parts, examples, info, log, step)
            if step >= cfg.steps:
                return 0
    return 0


def micro_step(cfg: TrainConfig, parts: Parts, batch: dict, micro: int, adversarial: bool) -> dict[str, torch.Tensor]:
    """One micro-batch: the adapter's losses (with the adversarial term once it has started) and, at the end of
    an accumulation, its optimizer step; then the discriminator's step on the same batch. Returns the terms."""
    accelerator, net, adversary = parts.accelerator, parts.net, parts.adversary
    latent = (cfg.batch_size, parts.objective.unet.config.in_channels, cfg.resolution // 8, cfg.resolution // 8)
    with accelerator.accumulate(*([net, adversary.disc] if adversarial else [net])):
        kept: dict = {}
        terms = parts.objective(net, batch, noise_for(batch, latent), kept)
        if adversarial:
            terms["adv_g"] = adversary.generator_loss(kept, generator_for(cfg, micro, accelerator.process_index, 2))
            terms["loss"] = terms["loss"] + cfg.adversarial_weight * terms["adv_g"]
        accelerator.backward(terms["loss"])
        if accelerator.sync_gradients and cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
        parts.optimizer.step()
        parts.schedule.step()
        parts.optimizer.zero_grad(set_to_none=True)
        if adversarial:  # then the discriminator, on the same batch, against the adapter's output
            terms |= adversary.discriminator_loss(kept)
            accelerator.backward(terms["disc"])
            adversary.optimizer.step()
            adversary.optimizer.zero_grad(set_to_none=True)
    return terms


def mean_over_processes(accelerator: Any, sums: dict[str, float]) -> dict[str, float]:
    """The step's loss terms as the mean over processes, not rank 0's share (as they are with one process)."""
    if accelerator.num_processes == 1:
        return sums
    keys = sorted(sums)
    mean = accelerator.reduce(torch.tensor([sums[k] for k in keys], device=accelerator.device), "mean")
    return dict(zip(keys, mean.tolist()))


def save_checkpoint(cfg: TrainConfig, parts: Parts, log: Log, step: int, stream: Feed | None = None) -> None:
    """A rotating checkpoint (accelerate's state, the adversarial start, the data stream's position, the adapter in
    diffusers' format too: any checkpoint can be used in the app as it is), written by the main process only;
    every process waits for it."""
    accelerator = parts.accelerator
    position = stream.state(accelerator) if stream is not None else None  # every process: shards gather positions
    if accelerator.is_main_process:
        def adapter(folder: Path) -> None:
            save_adapter(accelerator.unwrap_model(parts.net), adapter_info(cfg, step), folder / "adapter")
            if position is not None:
                feed.write_state(folder, position)

        path = checkpoints.save(accelerator, Path(cfg.out) / "checkpoints", step, cfg.keep_checkpoints,
                                {"adversarial_start": adversarial_start(cfg)}, also=adapter)
        log.note(f"step {step}: checkpoint {path}")
        log.emit("checkpoint", step=step, path=str(path))
    accelerator.wait_for_everyone()


def validation_grid(cfg: TrainConfig, parts: Parts, examples: list[dict], info: AdapterInfo, log: Log, step: int) -> None:
    """A grid of the validation examples through the real inference path (main process only)."""
    accelerator = parts.accelerator
    if accelerator.is_main_process and examples:
        from training.config import companion

        companions = [(net, AdapterInfo.read(companion(spec)[0]), strength)
                      for spec, (net, strength) in zip(cfg.with_adapters, parts.objective.companions)]
        path = validate(parts.objective.base, accelerator.unwrap_model(parts.net), info, examples,
                        Path(cfg.out) / "validation" / f"step-{step:06d}.png", accelerator.device, parts.objective.dtype,
                        cfg.seed, companions)
        log.note(f"step {step}: validation grid {path}")
        log.emit("validation", step=step, path=str(path))


def _stop_requested(accelerator: Any, stop: Stop) -> bool:
    """Every process must agree to stop at the same step, or the others would wait forever."""
    if accelerator.num_processes == 1:
        return stop.requested
    flag = torch.tensor([1.0 if stop.requested else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
