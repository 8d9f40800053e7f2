"""WebDataset shards: read as a stream (the webdataset library's tar reader), split between processes and
loader workers, resumable; and `pack`, which writes them from a folder.

A sample is the files of one key in a tar: KEY.png (or .jpg, .jpeg, .webp, .bmp: the picture), KEY.txt (the
caption) and KEY.condition.png (a paired condition). --image-column, --caption-column and --condition-column
name other extensions.

The stream: epoch e visits the shards in an order seeded by (seed, e); stream s of S (S = processes x loader
workers) reads every S-th of them, through a shuffle buffer of --shuffle-buffer samples seeded by (seed, e, s).
Each process's items carry the stream's read position; a checkpoint keeps, per epoch, how many samples of each
shard were read (data_state.json). A resumed run, with any number of processes, skips what was read: no sample is
trained twice before the epoch ends, and what sat in a shuffle buffer at the checkpoint is not trained in that
epoch. Memory holds the shuffle buffer and one batch, however many shards there are.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import UserError
from models.imageio import decode_rgb

IMAGE_KEYS = ("png", "jpg", "jpeg", "webp", "bmp", "image")
CAPTION_KEYS = ("txt", "caption", "text")
CONDITION_KEYS = ("condition.png", "condition.jpg", "conditioning_image.png", "conditioning_image.jpg")
DONE = -1  # a shard read to its end, in data_state.json


def raw_samples(url: str):
    """One shard's samples as dicts of raw bytes ({"__key__", "png", "txt", ...}), in the order of the tar."""
    from webdataset.tariterators import tarfile_samples

    return tarfile_samples([{"url": url}])


def _get(sample: dict, given: str | None, keys: tuple[str, ...]) -> Any:
    if given is not None:
        return sample.get(given)
    return next((sample[k] for k in keys if k in sample), None)


def decode_sample(sample: dict, columns: Any, want_condition: bool) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """A raw sample -> (image, condition or None, caption), or None when its picture is missing or damaged."""
    raw = _get(sample, columns.image, IMAGE_KEYS)
    img = decode_rgb(np.frombuffer(raw, np.uint8)) if raw is not None else None
    if img is None:
        return None
    cond = None
    if want_condition:
        raw = _get(sample, columns.condition, CONDITION_KEYS)
        cond = decode_rgb(np.frombuffer(raw, np.uint8)) if raw is not None else None
    text = _get(sample, columns.caption, CAPTION_KEYS)
    return img, cond, text.decode("utf-8", "replace").strip() if isinstance(text, bytes) else ""


def plan(n: int, seed: int, epoch: int, stream: int, streams: int, state: dict) -> list[int]:
    """The shards stream `stream` of `streams` reads in `epoch`: the epoch's seeded order, less those read to
    the end before (state: data_state's offsets), every streams-th."""
    done = state.get(str(epoch), {})
    order = np.random.default_rng([seed, epoch]).permutation(n)
    left = [int(i) for i in order if done.get(str(int(i)), 0) != DONE]
    return left[stream::streams]


class ShardStream(torch.utils.data.IterableDataset):
    """Training examples from shards, endless (epoch after epoch), for one process; loader workers split it."""

    def __init__(self, urls: list[str], maker: Any, columns: Any, seed: int, rank: int, world: int, workers: int,
                 buffer: int, state: dict | None = None):
        self.urls, self.maker, self.columns, self.seed = urls, maker, columns, seed
        self.rank, self.world, self.workers, self.buffer = rank, world, max(workers, 1), max(buffer, 1)
        self.state = state or {}  # {"epoch": {"shard": samples read or DONE}} from data_state.json

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        stream = self.rank * self.workers + (info.id if info is not None else 0)
        streams = self.world * self.workers
        epoch = min((int(e) for e in self.state), default=0)
        want = self.maker.paired or bool(self.maker.companions)
        bad: list[str] = []  # damaged samples since the last item: named in the next one's "skipped"
        while True:
            shards = plan(len(self.urls), self.seed, epoch, stream, streams, self.state)
            rng = np.random.default_rng([self.seed, epoch, stream])
            buffer: list = []
            pos = (stream, epoch, 0, 0)
            for k, shard in enumerate(shards):
                skip = max(self.state.get(str(epoch), {}).get(str(shard), 0), 0)
                read = skip
                for sample in itertools.islice(raw_samples(self.urls[shard]), skip, None):
                    read += 1
                    buffer.append((shard, read, sample))
                    if len(buffer) >= self.buffer:
                        ex = self._item(buffer.pop(int(rng.integers(len(buffer)))), want, (stream, epoch, k, read), bad)
                        if ex is not None:
                            yield ex
                pos = (stream, epoch, k + 1, 0)  # this shard is read to its end
            while buffer:
                ex = self._item(buffer.pop(int(rng.integers(len(buffer)))), want, pos, bad)
                if ex is not None:
                    yield ex
            epoch += 1

    def _item(self, entry: tuple, want: bool, position: tuple, bad: list[str]) -> dict | None:
        shard, index, sample = entry
        seed = int(np.random.SeedSequence([self.seed, shard, index]).generate_state(1)[0]) & 0x7FFFFFFF
        rng = np.random.default_rng(seed)
        found = decode_sample(sample, self.columns, want)
        ex = self.maker.example(*found, rng) if found is not None else None
        if ex is None:  # a damaged or missing picture: skipped, and named with the next example
            bad.append(f"{self.urls[shard]}#{sample.get('__key__')}")
            return None
        skipped = bad[:]
        bad.clear()
        return ex | {"skipped": skipped, "seed": seed, "position": position}


def merge(state: dict, positions: list[tuple], n: int, seed: int, streams: int) -> dict:
    """The data state after training up to `positions` (each stream's last (stream, epoch, k, read)): per epoch,
    the shards read to their end (DONE) and how far into the one each stream was reading."""
    out = {e: dict(v) for e, v in state.items()}
    start = min((int(e) for e in state), default=0)
    for stream, epoch, k, read in positions:
        for e in range(start, epoch + 1):
            shards = plan(n, seed, e, stream, streams, state)
            upto = len(shards) if e < epoch else k
            row = out.setdefault(str(e), {})
            for shard in shards[:upto]:
                row[str(shard)] = DONE
            if e == epoch and k < len(shards) and read:
                row[str(shards[k])] = read
    if positions and len(positions) == streams:  # every stream is past the epochs before its lowest: forget them
        low = min(p[1] for p in positions)
        out = {e: v for e, v in out.items() if int(e) >= low}
    return out


def pack(folder: str, out: str, shard_size: int, condition: str = "canny") -> list[tuple[Path, int, int]]:
    """A folder (training/data.py's layouts) -> OUT/shard-NNNNNN.tar with shard_size samples each: the files as
    they are (no re-encoding), the caption as .txt, a paired condition as .condition.EXT. Returns (path, samples,
    bytes) per shard."""
    from webdataset import TarWriter

    from training.data import scan

    if shard_size < 1:
        raise UserError(f"--shard-size {shard_size} must be at least 1")
    found = scan(folder, condition)
    dest = Path(out).expanduser()
    if dest.exists() and any(dest.glob("shard-*.tar")):
        raise UserError(f"{out!r} already holds shards: pick an empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for n, start in enumerate(range(0, len(found.samples), shard_size)):
        path = dest / f"shard-{n:06d}.tar"
        chunk = found.samples[start : start + shard_size]
        with TarWriter(str(path), encoder=False, mtime=0) as tar:
            for i, s in enumerate(chunk):
                row = {"__key__": f"{start + i:09d}", s.image.suffix.lower().lstrip("."): s.image.read_bytes(),
                       "txt": s.caption.encode("utf-8"), "json": json.dumps({"file_name": s.image.name}).encode()}
                if s.condition is not None:
                    row["condition" + s.condition.suffix.lower()] = s.condition.read_bytes()
                tar.write(row)
        written.append((path, len(chunk), path.stat().st_size))
    return written
