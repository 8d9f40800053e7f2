"""The trainer's data, whatever --data is (training/sources.py): read and checked before any model loads, the
validation examples, the loader for this process, and the stream position a checkpoint keeps.

The position is saved as data_state.json in each checkpoint folder: {"kind": "map", "seen": N} for a folder or a
dataset (examples consumed, all processes together: EpochBatches continues from there), {"kind": "shards",
"offsets": {...}} for shards (training/shards.py merge). A checkpoint without it (an older trainer's) resumes a
map-style stream at step x gradient accumulation x batch size x processes.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.errors import UserError
from training import data, shards, sources
from training.config import TrainConfig

STATE_FILE = "data_state.json"


@dataclass(kw_only=True)
class Found:
    """What --data holds, as far as it was read before training."""

    kind: str  # folder, dataset or shards (training/sources.py KINDS)
    count: int | None  # examples (None for shards: not counted before reading them all)
    unreadable: list[str] = field(default_factory=list)  # examples found damaged so far, by name
    paired: bool = False  # the data has paired conditions
    urls: list[str] = field(default_factory=list)  # the shards, for shards


def columns(cfg: TrainConfig) -> sources.Columns:
    return sources.Columns(image=cfg.image_column, caption=cfg.caption_column, condition=cfg.condition_column)


def companion_conditions(cfg: TrainConfig) -> tuple[str, ...]:
    from training.parts import companion_conditions as conditions

    return conditions(cfg)


def open_data(cfg: TrainConfig) -> tuple[Found, data.TrainData]:
    """--data opened and checked (a one-line UserError when it is wrong), and its TrainData (for shards: the
    example maker, with no samples of its own)."""
    kind = sources.kind(cfg.data)
    given = [f"--{n}-column" for n in ("image", "caption", "condition") if getattr(cfg, f"{n}_column") is not None]
    if kind == "folder" and given:
        raise UserError(f"{given[0]} names a column, but --data {cfg.data!r} is a folder of images: drop it, or pass a "
                        "dataset (save_to_disk folder, Parquet files) or shards")
    if kind == "folder":
        scan = data.scan(cfg.data, cfg.condition)
        found = Found(kind=kind, count=len(scan.samples), unreadable=[str(p) for p in scan.unreadable],
                      paired=scan.samples[0].condition is not None)
        return found, data.TrainData(scan.samples, cfg.condition, cfg.resolution, cfg.caption_dropout, companion_conditions(cfg))
    if kind == "dataset":
        records = sources.DatasetRecords(sources.open_dataset(cfg.data), cfg.data, columns(cfg), cfg.condition)
        if not len(records):
            raise UserError(f"--data {cfg.data!r} has no rows: point it at your training data")
        bad = sources.first_decodable(records, cfg.data)
        found = Found(kind=kind, count=len(records), unreadable=bad, paired=records.paired)
        return found, data.TrainData(records, cfg.condition, cfg.resolution, cfg.caption_dropout, companion_conditions(cfg))
    urls = sources.shard_urls(cfg.data)
    maker = data.TrainData([], cfg.condition, cfg.resolution, cfg.caption_dropout, companion_conditions(cfg))
    found = Found(kind=kind, count=None, urls=urls)
    first = next(iter(shards.raw_samples(urls[0])), None)  # the first shard opens and holds what the flags name
    if first is None:
        raise UserError(f"--data {cfg.data!r}: its first shard {urls[0]} holds no samples: pack the shards again")
    cols = columns(cfg)
    names = sorted(k for k in first if not k.startswith("__"))
    for flag, given, keys in (("--image-column", cols.image, shards.IMAGE_KEYS), ("--caption-column", cols.caption, ()),
                              ("--condition-column", cols.condition, shards.CONDITION_KEYS if cfg.condition == "paired" else ())):
        if (given is not None and given not in first) or (given is None and keys and not any(k in first for k in keys)):
            raise UserError(f"{flag} {given or keys[0]!r}: the samples of {urls[0]} hold {', '.join(names)}: "
                            f"name the file extension with {flag}")
    found.paired = any(k in first for k in ((cols.condition,) if cols.condition else shards.CONDITION_KEYS))
    return found, maker


def load_data(cfg: TrainConfig) -> tuple[Found, data.TrainData, list[dict]]:
    """The data opened, the dataset, and the validation examples (left out of training with --holdout)."""
    found, dataset = open_data(cfg)
    if found.kind == "shards":
        examples = stream_examples(found.urls, dataset, columns(cfg), cfg.validation_images)
        if cfg.holdout:
            raise UserError("--holdout takes the first pictures of a folder or dataset; with shards, pack the validation "
                            "pictures into shards of their own and drop --holdout")
        return found, dataset, examples
    examples = []
    for i in range(len(dataset)):  # the first that decode, centre-cropped, with their captions
        if len(examples) == cfg.validation_images:
            break
        ex = dataset.load(i, None)
        if ex is not None:
            examples.append(ex)
    if cfg.holdout:
        if len(dataset) <= len(examples):
            raise UserError(f"--holdout leaves no training images ({len(dataset)} in all): add images or drop --holdout")
        dataset.samples = dataset.samples[len(examples):]  # validation takes the first ones
        found.count = len(dataset)
    return found, dataset, examples


def stream_examples(urls: list[str], maker: data.TrainData, cols: sources.Columns, count: int) -> list[dict]:
    """The first `count` samples of the first shards that decode, centre-cropped."""
    want = maker.paired or bool(maker.companions)
    out = []
    for url in urls:
        for i, sample in enumerate(shards.raw_samples(url)):
            if len(out) == count:
                return out
            found = shards.decode_sample(sample, cols, want)
            ex = maker.example(*found, None, i) if found is not None else None
            if ex is not None:
                out.append(ex)
    return out


def read_state(checkpoint: Path | None) -> dict:
    if checkpoint is None or not (checkpoint / STATE_FILE).is_file():
        return {}
    try:
        return json.loads((checkpoint / STATE_FILE).read_text())
    except (OSError, ValueError):
        raise UserError(f"{checkpoint / STATE_FILE} is damaged: resume from another checkpoint") from None


def _ignore_sigint(_worker_id: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the training process handles Ctrl+C and saves


class Feed:
    """This process's batches and the stream position they reach."""

    def __init__(self, cfg: TrainConfig, found: Found, dataset: data.TrainData, saved: dict, step: int, rank: int, world: int):
        self.cfg, self.found, self.dataset, self.rank, self.world = cfg, found, dataset, rank, world
        self.per_micro = cfg.batch_size * world  # examples per micro-step, all processes together
        if found.kind == "shards":
            same = saved.get("kind") == "shards" and saved.get("shards") == len(found.urls)
            self.offsets = saved.get("offsets", {}) if same else {}  # other shards than the checkpoint's: a new epoch
            streams = world * max(cfg.workers, 1)
            if len(found.urls) < streams:
                raise UserError(f"--data {cfg.data!r} has {len(found.urls)} shard(s) for {world} process(es) x "
                                f"{max(cfg.workers, 1)} loader worker(s): write at least {streams} shards (a smaller "
                                "--shard-size) or lower --workers")
            self.positions: dict[int, tuple] = {}
        else:
            self.seen = int(saved["seen"]) if saved.get("kind") == "map" else step * cfg.gradient_accumulation * self.per_micro

    def note(self) -> str:
        if self.found.kind == "shards":
            return f"{len(self.found.urls)} shards, streamed by {self.world * max(self.cfg.workers, 1)} reader(s)"
        return f"{len(self.dataset)} examples, {self.seen // len(self.dataset)} epoch(s) done"

    def loader(self):
        cfg = self.cfg
        common = dict(num_workers=cfg.workers, worker_init_fn=_ignore_sigint if cfg.workers else None,
                      persistent_workers=cfg.workers > 0)
        if self.found.kind == "shards":
            stream = shards.ShardStream(self.found.urls, self.dataset, columns(cfg), cfg.seed, self.rank, self.world,
                                        cfg.workers, cfg.shuffle_buffer, self.offsets)
            return torch.utils.data.DataLoader(stream, batch_size=cfg.batch_size, collate_fn=data.collate, **common)
        sampler = data.EpochBatches(len(self.dataset), cfg.batch_size, cfg.seed, self.seen, self.rank, self.world)
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, collate_fn=data.collate, **common)

    def advance(self, batch: dict) -> None:
        """A micro-batch was trained."""
        if self.found.kind == "shards":
            self.positions[batch["position"][0]] = tuple(batch["position"])
        else:
            self.seen += self.per_micro

    def state(self, accelerator: Any) -> dict:
        """The position to save (every process calls this: shards gather the streams' positions)."""
        if self.found.kind != "shards":
            return {"kind": "map", "seen": self.seen, "examples": len(self.dataset)}
        positions = list(self.positions.values())
        if self.world > 1:
            from accelerate.utils import gather_object

            positions = gather_object(positions)
        streams = self.world * max(self.cfg.workers, 1)
        offsets = shards.merge(self.offsets, [tuple(p) for p in positions], len(self.found.urls), self.cfg.seed, streams)
        return {"kind": "shards", "offsets": offsets, "shards": len(self.found.urls)}


def write_state(folder: Path, state: dict) -> None:
    (folder / STATE_FILE).write_text(json.dumps(state) + "\n")
