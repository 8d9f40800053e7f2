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
an image that fails to decode later is skipped then (another one takes its place) and counted. Batches are drawn per step from
a generator seeded by (seed, step, process): a resumed run sees exactly the batches it would have seen.
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
    the seed picks the crop, the flip and the caption dropout, so an item is the same on every run."""

    def __init__(self, samples: list[Sample], condition: str, size: int, caption_dropout: float = 0.0,
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

    def load(self, i: int, rng: np.random.Generator | None) -> dict | None:
        """One example as uint8 arrays, or None when its file does not decode."""
        s = self.samples[i]
        img = _read(s.image)
        if img is None:
            return None
        img = resize_short(img, self.size)
        how = pick_crop(img.shape, self.size, rng)
        target = apply_crop(img, self.size, how)
        paired = None
        if s.condition is not None and (self.paired or self.companions):  # the same crop and flip, on the
            paired = _read(s.condition)                                    # condition stretched to the image's size
            if paired is None:
                return None
            paired = apply_crop(cv2.resize(paired, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA), self.size, how)
        if self.paired:
            cond = paired
        elif self.hints:  # a generator of the item's own: the same hints for the same item seed
            cond = colour_hints(target, np.random.default_rng(int(rng.integers(2**63)) if rng is not None else i))
        else:
            cond = self.extract(target)
        drop = rng is not None and rng.random() < self.caption_dropout
        ex = {"image": target, "condition": cond, "caption": "" if drop else s.caption}
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
                return ex
            skipped.append(str(self.samples[i].image))
        raise UserError("none of the training images decodes: check the --data folder")


class StepBatches:
    """A batch sampler: the batch for micro-step k is drawn from a generator seeded by (seed, k, rank),
    with replacement, so it does not depend on what ran before (exact resume, no epoch bookkeeping)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0, rank: int = 0):
        self.n, self.batch_size, self.seed, self.start, self.rank = n, batch_size, seed, start, rank

    def __iter__(self):
        k = self.start
        while True:
            rng = np.random.default_rng([self.seed, k, self.rank])
            idx = rng.integers(self.n, size=self.batch_size)
            seeds = rng.integers(2**31, size=self.batch_size)
            yield [(int(i), int(s)) for i, s in zip(idx, seeds)]
            k += 1


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
    }
    if "companions" in items[0]:  # one NCHW tensor in [0, 1] per frozen companion adapter
        out["companions"] = [torch.from_numpy(np.stack([it["companions"][k] for it in items])).permute(0, 3, 1, 2).float() / 255
                             for k in range(len(items[0]["companions"]))]
    return out
