"""What `--data` names, and the Hugging Face datasets it can be. Three kinds:

    folder    a folder of images (training/data.py scan: .txt captions, metadata.jsonl, images/ + conditions/)
    dataset   a Hugging Face dataset: a save_to_disk folder, Parquet files (a file, a glob or a folder of them),
              or a hub id (owner/name) when online; --image-column, --caption-column, --condition-column
    shards    WebDataset tar shards, read as a stream (training/shards.py): shards/train-{000000..000099}.tar,
              a glob, a folder of .tar files, one .tar, or http(s):// and pipe: URLs

A dataset is read by index from its memory-mapped Arrow files (random access, as a folder is); columns that hold
pictures may be datasets' Image feature, bytes or file paths. Column names are checked before any model loads: a
missing one is one line that lists the columns there are.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import UserError
from models.imageio import decode_rgb

KINDS = ("folder", "dataset", "shards")
CAPTION_COLUMNS = ("text", "caption", "prompt")  # tried in order when --caption-column is not given
CONDITION_COLUMNS = ("conditioning_image", "condition", "conditioning", "control_image")  # likewise
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")  # what save_to_disk writes


@dataclass(frozen=True, kw_only=True)
class Columns:
    """The flags that name a dataset's columns (or a shard's file extensions)."""

    image: str | None = None  # --image-column
    caption: str | None = None  # --caption-column
    condition: str | None = None  # --condition-column


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "pipe:", "gs://", "s3://"))


def expand(text: str) -> list[str]:
    """Brace patterns ({000000..000099}) and globs -> the list of names, in order."""
    from braceexpand import braceexpand

    out = []
    for part in braceexpand(text):
        hits = sorted(glob.glob(os.path.expanduser(part))) if any(c in part for c in "*?[") and not is_url(part) else [part]
        out += hits
    return out


def kind(data: str) -> str:
    """Which of KINDS --data names (without reading it)."""
    path = Path(data).expanduser()
    if is_url(data) or "{" in data or data.endswith(".tar") or data.endswith(".tar.gz"):
        return "shards"
    if any(c in data for c in "*?["):
        names = expand(data)
        return "dataset" if names and all(n.endswith(".parquet") for n in names) else "shards"
    if path.is_file():
        return "dataset" if path.suffix == ".parquet" else "folder"
    if path.is_dir():
        if any((path / m).exists() for m in DATASET_MARKERS):
            return "dataset"
        from training.data import IMAGE_EXTS

        if any(p.suffix.lower() in IMAGE_EXTS for p in path.iterdir()) or (path / "images").is_dir():
            return "folder"
        if any(path.glob("*.tar")):
            return "shards"
        if any(path.rglob("*.parquet")):
            return "dataset"
        return "folder"
    if HUB_ID.match(data):
        return "dataset"
    return "folder"  # training/data.py scan says what is wrong


def shard_urls(data: str) -> list[str]:
    """The shard names --data expands to, each checked to exist when local."""
    path = Path(data).expanduser()
    names = sorted(str(p) for p in path.glob("*.tar")) if path.is_dir() else expand(data)
    if not names:
        raise UserError(f"--data {data!r} names no WebDataset shards: give a pattern like shards/train-{{000000..000009}}.tar "
                        "or a folder of .tar files (python main.py train-data pack makes them)")
    missing = [n for n in names if not is_url(n) and not Path(n).expanduser().is_file()]
    if missing:
        raise UserError(f"--data {data!r}: {len(missing)} of its {len(names)} shards do not exist (first: {missing[0]}): "
                        "fix the pattern or the folder")
    return names


def open_dataset(data: str):
    """A Hugging Face dataset (one split) from a save_to_disk folder, Parquet files or a hub id."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(data).expanduser()
    try:
        if path.is_dir() and any((path / m).exists() for m in DATASET_MARKERS):
            found = datasets.load_from_disk(str(path))
        elif path.exists() or any(c in data for c in "*?["):
            files = sorted(str(p) for p in path.rglob("*.parquet")) if path.is_dir() else expand(data)
            found = datasets.Dataset.from_parquet(files)
        else:
            if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("0", "", "false"):
                raise UserError(f"--data {data!r} is not a local path and the Hugging Face hub is offline (HF_HUB_OFFLINE=1): "
                                "go online to download it, or pass a save_to_disk folder, Parquet files or shards")
            found = datasets.load_dataset(data, split="train")
    except UserError:
        raise
    except Exception as e:  # damaged Arrow/Parquet files, an unknown hub id
        from models.errors import first_line

        raise UserError(f"--data {data!r} does not open as a Hugging Face dataset ({first_line(e, 160)}): "
                        "pass a save_to_disk folder, Parquet files, a hub id or a folder of images") from None
    if isinstance(found, datasets.DatasetDict):
        split = "train" if "train" in found else next(iter(found))
        found = found[split]
    return found


def _pick(flag: str, given: str | None, names: list[str], wanted: tuple[str, ...], data: str) -> str | None:
    if given is not None:
        if given not in names:
            raise UserError(f"{flag} {given!r} is not a column of {data!r}: its columns are {', '.join(names)}")
        return given
    return next((n for n in wanted if n in names), None)


class DatasetRecords:
    """A Hugging Face dataset as TrainData's samples: decode(i) -> (image, condition or None, caption)."""

    def __init__(self, ds, data: str, columns: Columns, condition: str):
        import datasets

        names = list(ds.column_names)
        images = [n for n, f in ds.features.items() if isinstance(f, datasets.Image)]
        self.image = _pick("--image-column", columns.image, names, ("image", *images), data)
        if self.image is None:
            raise UserError(f"--data {data!r} has no column 'image' (columns: {', '.join(names)}): "
                            "name the pictures' column with --image-column")
        self.caption = _pick("--caption-column", columns.caption, names, CAPTION_COLUMNS, data)
        self.condition = _pick("--condition-column", columns.condition, names, CONDITION_COLUMNS, data)
        if condition == "paired" and self.condition is None:
            raise UserError(f"--condition paired: {data!r} has no condition column (columns: {', '.join(names)}): "
                            "name it with --condition-column")
        keep = [c for c in (self.image, self.caption, self.condition) if c is not None]
        ds = ds.select_columns(keep)
        for c in (self.image, self.condition):  # raw bytes: decoded by models.imageio, as a folder's files are
            if c is not None and isinstance(ds.features[c], datasets.Image):
                ds = ds.cast_column(c, datasets.Image(decode=False))
        self.ds, self.data = ds, data

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, part: slice) -> DatasetRecords:  # --holdout: the rest of the rows
        out = object.__new__(DatasetRecords)
        out.__dict__ |= self.__dict__
        out.ds = self.ds.select(range(len(self.ds))[part])
        return out

    def name(self, i: int) -> str:
        return f"{self.data}[{i}]"

    def decode(self, i: int, want_condition: bool = True) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        row = self.ds[i]
        img = picture(row[self.image])
        cond = picture(row[self.condition]) if want_condition and self.condition is not None else None
        if img is None or (want_condition and self.condition is not None and cond is None):
            return None
        caption = row[self.caption] if self.caption is not None else ""
        return img, cond, "" if caption is None else str(caption)

    @property
    def paired(self) -> bool:
        return self.condition is not None


def picture(value) -> np.ndarray | None:
    """A dataset cell that holds a picture (Image feature dict, bytes, a file path, a PIL image) -> uint8 RGB."""
    if value is None:
        return None
    if isinstance(value, dict):
        raw = value.get("bytes")
        if raw is None and value.get("path"):
            value = value["path"]
        else:
            value = raw
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_rgb(np.frombuffer(value, np.uint8))
    if isinstance(value, str):
        try:
            return decode_rgb(np.fromfile(Path(value).expanduser(), dtype=np.uint8))
        except OSError:
            return None
    if hasattr(value, "convert"):  # a PIL image
        return np.asarray(value.convert("RGB"))
    return None


def first_decodable(records: DatasetRecords, data: str, limit: int = 64) -> list[str]:
    """Rows that do not decode, read in order until one does (as a folder's scan): a dataset of nothing but
    damaged pictures is one line before any model loads."""
    bad = []
    for i in range(min(len(records), limit)):
        if records.decode(i) is not None:
            return bad
        bad.append(records.name(i))
    raise UserError(f"--data {data!r}: none of its first {len(bad)} rows decodes as a picture (column "
                    f"{records.image!r}): check --image-column, or the files")
