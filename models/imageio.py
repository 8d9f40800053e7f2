"""Read and write images as uint8 RGB arrays, with one-line errors.

One reader for every picture a user gives us (generate's control image, Load, Trace, drag and drop, the
trainer's data): transparent parts are laid over white, the canvas's paper, and 16-bit images are scaled
to 8 bits, so a transparent PNG means the same thing everywhere."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.errors import UserError

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "PNG input buffer is incomplete": we say it in one line


def read_rgb(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise UserError(f"image {str(path)!r} does not exist: check the path")
    if not p.is_file():
        raise UserError(f"{str(path)!r} is not an image file: pass a PNG, JPEG, BMP or WebP file")
    img = decode_rgb(np.fromfile(p, dtype=np.uint8))
    if img is None:
        raise UserError(f"{str(path)!r} is not a readable image: use a PNG, JPEG, BMP or WebP file")
    return img


def decode_rgb(data: np.ndarray) -> np.ndarray | None:
    """Encoded image bytes -> uint8 RGB over white, or None when they do not decode."""
    if not data.size:
        return None
    jpeg = data[:2].tobytes() == b"\xff\xd8"  # no alpha, but maybe an EXIF rotation, which IMREAD_COLOR applies
    img = cv2.imdecode(data, cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype != np.uint8:  # 16-bit PNG or TIFF
        img = (img / 257).round().astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        img = over_white(img)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def over_white(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4), straight alpha last (RGBA or BGRA) -> uint8 (H, W, 3) laid over white paper."""
    alpha = img[:, :, 3:].astype(np.float32) / 255
    return (img[:, :, :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)


def check_out_path(path: str | Path) -> Path:
    """Fail before any work when an output image could not be written."""
    from models.outfiles import check_file

    p = Path(path)
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        raise UserError(f"cannot write {str(path)!r}: the name must end in .png, .jpg, .bmp or .webp")
    return check_file(p, repr(str(path)))  # the folder exists, takes a file and has room


def write_rgb(path: str | Path, image: np.ndarray) -> Path:
    """Write atomically (temporary file, then rename), so a failure never leaves half an image."""
    p = check_out_path(path)
    ext = p.suffix.lower()
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"could not encode {str(path)!r}")
    from models.outfiles import write_atomic

    return write_atomic(p, buf.tobytes(), 0o666)  # the temporary file is made inside its error handling


def grid(rows: list[list[np.ndarray]], cell: int | None = None, gap: int = 4) -> np.ndarray:
    """Pictures in rows and columns with white gutters, for evidence and validation sheets.

    cell: every picture is resized to cell x cell (area filter); None keeps them as they are, which
    needs pictures of one size."""
    fit = (lambda img: cv2.resize(img, (cell, cell), interpolation=cv2.INTER_AREA)) if cell else (lambda img: img)
    lines = []
    for row in rows:
        cells = [fit(np.ascontiguousarray(img[:, :, :3])) for img in row]
        sep = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
        line = np.concatenate([x for c in cells for x in (c, sep)][:-1], axis=1)
        lines += [line, np.full((gap, line.shape[1], 3), 255, np.uint8)]
    return np.concatenate(lines[:-1], axis=0)
