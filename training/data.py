"""Training data: a folder of images (conditions made on the fly) or paired conditions/ + images/.

    DATA/*.png [+ same-name .txt captions | metadata.jsonl with file_name and text]     --condition canny, ...
    DATA/images/*.png + DATA/conditions/*.png (same names) [+ captions as above]      --condition paired
                                                                                       (or any other: then the
      conditions/ feed the frozen --with-adapter companions and the condition is made from the image)

--condition colour-hints makes each example's hints from its target crop with models.hints.colour_hints and a
generator seeded from the item's own seed (so an item's hints are the same on every run; validation examples
use their index).

Scanning checks names and file signatures, and decodes images in order only until one decodes (so a folder
of damaged or truncated files is a one-line error before any model loads, and a large folder is still quick);
an image that fails to decode later is skipped then (another one takes its place) and counted. Batches come from
EpochBatches: every example once per epoch in a seeded order, split between processes, and a resumed run (with
any number of processes) continues the same stream. Other formats (Hugging Face datasets, WebDataset shards):
training/sources.py and training/shards.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.conditions import extractor
from models.errors import UserError
from models.hints import colour_hints
from models.imageio import decode_rgb
from models.options import COLOUR_HINTS

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class Sample:
    """One training example on disk."""

    image: Path  # the target image
    condition: Path | None  # the paired condition image; None when the condition is made from the image
    caption: str  # the prompt ("" when there is none)


@dataclass
class Scan:
    """What a data folder holds."""

    samples: list[Sample]  # readable-looking examples, sorted by name
    unreadable: list[Path]  # files with an image name that no decoder recognises


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


def _captions(folders: list[Path]) -> dict[str, str]:
    """file name -> caption, from metadata.jsonl (Hugging Face imagefolder: file_name and text or caption)."""
    out: dict[str, str] = {}
    for folder in folders:
        meta = folder / "metadata.jsonl"
        if not meta.exists():
            continue
        try:
            text = meta.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{meta} is not valid UTF-8 text (byte {e.start}): save it as UTF-8") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out[Path(row["file_name"]).name] = str(row.get("text", row.get("caption", "")))
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{meta} line {n} is not a JSON object with file_name and text: fix that line") from None
    return out


def _caption(image: Path, meta: dict[str, str]) -> str:
    txt = image.with_suffix(".txt")
    if txt.exists():
        return txt.read_text(encoding="utf-8", errors="replace").strip()
    return meta.get(image.name, "")


def scan(data: str | Path, condition: str) -> Scan:
    """List the examples of a data folder, or raise a one-line UserError saying what is wrong with it."""
    root = Path(data).expanduser()
    if not root.is_dir():
        raise UserError(f"--data {str(data)!r} is not a folder: pass the folder that holds your training images")
    img_dir, cond_dir = root / "images", root / "conditions"
    if condition == "paired" or (not _images(root) and img_dir.is_dir() and cond_dir.is_dir()):
        if not (img_dir.is_dir() and cond_dir.is_dir()):
            raise UserError(f"--condition paired needs {root}/images/ and {root}/conditions/ with the same file names")
        conds = {p.stem: p for p in _images(cond_dir)}
        files = [p for p in _images(img_dir) if p.stem in conds]
        meta = _captions([root, img_dir])
    else:
        files, conds, meta = _images(root), {}, _captions([root])
    if not files:
        what = "pairs with the same name in images/ and conditions/" if condition == "paired" else "images (.png, .jpg, .bmp, .webp)"
        raise UserError(f"--data {str(data)!r} holds no {what}: point it at your training images")
    samples, bad = [], []
    for p in files:
        cond = conds.get(p.stem)
        if not cv2.haveImageReader(str(p)) or (cond is not None and not cv2.haveImageReader(str(cond))):
            bad.append(p)
            continue
        samples.append(Sample(p, cond, _caption(p, meta)))
    if not samples:
        raise UserError(f"--data {str(data)!r}: none of its {len(files)} images is readable; use PNG, JPEG, BMP or WebP files")
    while samples and not _decodes(samples[0]):  # the first that decodes ends the check: one decode for a good folder
        bad.append(samples.pop(0).image)
    if not samples:
        raise UserError(f"--data {str(data)!r}: none of its {len(files)} images decodes (first: {bad[0].name}); they are "
                        "damaged or truncated: copy them again, or use PNG, JPEG, BMP or WebP files")
    return Scan(samples, bad)


def _decodes(sample: Sample) -> bool:
    return _read(sample.image) is not None and (sample.condition is None or _read(sample.condition) is not None)


def _read(path: Path) -> np.ndarray | None:
    """uint8 RGB, transparent parts laid over white (models.imageio's one reader), or None when it does not decode."""
    return decode_rgb(np.fromfile(path, dtype=np.uint8))


def resize_short(img: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size` (area filter down, linear up)."""
    h, w = img.shape[:2]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def pick_crop(shape: tuple, size: int, rng: np.random.Generator | None) -> tuple[int, int, bool]:
    """A square crop (random, or centred when rng is None) and a flip half of the time: (y, x, flip)."""
    h, w = shape[:2]
    if rng is None:
        return (h - size) // 2, (w - size) // 2, False
    return int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1)), bool(rng.random() < 0.5)


def apply_crop(img: np.ndarray, size: int, how: tuple[int, int, bool]) -> np.ndarray:
    y, x, flip = how
    out = img[y : y + size, x : x + size]
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


class TrainData:
    """A map-style dataset of (image, condition, caption) at one resolution. Items are (index, seed) pairs:
    the seed picks the crop, the flip, the caption dropout and the item's noise, so an item is the same on every
    run. `samples` is a folder's list of Sample, or any records with len(), slicing, decode(i) and name(i) (a
    Hugging Face dataset's, training/sources.py)."""

    def __init__(self, samples, condition: str, size: int, caption_dropout: float = 0.0,
                 companions: tuple[str, ...] = ()):
        self.samples = samples
        self.size = size
        self.caption_dropout = caption_dropout
        self.paired = condition == "paired"
        self.hints = condition == COLOUR_HINTS
        self.extract = extractor(condition)
        self.companions = [extractor(c) for c in companions]  # the frozen adapters' conditions, in order

    def __len__(self) -> int:
        return len(self.samples)

    def name(self, i: int) -> str:
        s = self.samples
        return str(s[i].image) if isinstance(s, list) else s.name(i)

    def decode(self, i: int) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        """Example i as (image, paired condition or None, caption), or None when it does not decode."""
        if not isinstance(self.samples, list):
            return self.samples.decode(i, self.paired or bool(self.companions))
        s = self.samples[i]
        img = _read(s.image)
        if img is None:
            return None
        paired = None
        if s.condition is not None and (self.paired or self.companions):
            paired = _read(s.condition)
            if paired is None:
                return None
        return img, paired, s.caption

    def load(self, i: int, rng: np.random.Generator | None) -> dict | None:
        """One example as uint8 arrays, or None when its file does not decode."""
        found = self.decode(i)
        return None if found is None else self.example(*found, rng, i)

    def example(self, img: np.ndarray, paired: np.ndarray | None, caption: str, rng: np.random.Generator | None,
                fallback: int = 0) -> dict | None:
        """A decoded picture (and paired condition) made into a training example: crop, flip, condition, caption
        dropout; None when paired data has no condition. `fallback` seeds colour hints without rng."""
        img = resize_short(img, self.size)
        how = pick_crop(img.shape, self.size, rng)
        target = apply_crop(img, self.size, how)
        if paired is not None:  # the same crop and flip, on the condition stretched to the image's size
            paired = apply_crop(cv2.resize(paired, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA), self.size, how)
        if self.paired:
            if paired is None:
                return None
            cond = paired
        elif self.hints:  # a generator of the item's own: the same hints for the same item seed
            cond = colour_hints(target, np.random.default_rng(int(rng.integers(2**63)) if rng is not None else fallback))
        else:
            cond = self.extract(target)
        drop = rng is not None and rng.random() < self.caption_dropout
        ex = {"image": target, "condition": cond, "caption": "" if drop else caption}
        if self.companions:
            ex["companions"] = [paired if paired is not None else f(target) for f in self.companions]
        return ex

    def __getitem__(self, item: tuple[int, int]) -> dict:
        index, seed = item
        rng = np.random.default_rng(seed)
        skipped = []
        for k in range(len(self.samples)):  # an undecodable file: skip to the next one, and report it
            i = (index + k) % len(self.samples)
            ex = self.load(i, rng)
            if ex is not None:
                ex["skipped"] = skipped
                ex["seed"] = seed
                return ex
            skipped.append(self.name(i))
        raise UserError("none of the training images decodes: check the --data folder")


class EpochBatches:
    """A batch sampler over epochs: epoch e visits every example once, in an order seeded by (seed, e). The
    examples form one global stream; micro-step k of process r takes its slice of the global batch, so 2
    processes of batch 2 see exactly the examples (and seeds) of 1 process of batch 4, and no example is
    trained twice in an epoch. `start` is the number of examples consumed before (all processes together):
    a resumed run, with any number of processes, continues where the stream was."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.start, self.rank, self.world = n, batch_size, seed, start, rank, world
        self._order: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n))
        return self._order[1]

    def item(self, j: int) -> tuple[int, int]:
        """The j-th example of the global stream: (index, item seed)."""
        epoch, at = divmod(j, self.n)
        seed = int(np.random.SeedSequence([self.seed, j]).generate_state(1)[0]) & 0x7FFFFFFF
        return int(self.order(epoch)[at]), seed

    def __iter__(self):
        j = self.start + self.rank * self.batch_size
        while True:
            yield [self.item(j + i) for i in range(self.batch_size)]
            j += self.batch_size * self.world


def collate(items: list[dict]) -> dict:
    """uint8 HWC arrays -> float tensors: images in [-1, 1] (the VAE's range), conditions in [0, 1] (the
    engine's), both NCHW."""
    import torch

    def stack(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([it[key] for it in items])).permute(0, 3, 1, 2).float() / 255

    out = {
        "image": stack("image") * 2 - 1,
        "condition": stack("condition"),
        "caption": [it["caption"] for it in items],
        "skipped": sorted({p for it in items for p in it["skipped"]}),
        "seeds": [int(it.get("seed", 0)) for it in items],  # each example's own noise (training/train.py noise_for)
    }
    if "position" in items[0]:  # a stream's read position after its last item (training/shards.py)
        out["position"] = items[-1]["position"]
    if "companions" in items[0]:  # one NCHW tensor in [0, 1] per frozen companion adapter
        out["companions"] = [torch.from_numpy(np.stack([it["companions"][k] for it in items])).permute(0, 3, 1, 2).float() / 255
                             for k in range(len(items[0]["companions"]))]
    return out
