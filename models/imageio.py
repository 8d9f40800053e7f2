"""Read and write images as uint8 RGB arrays, with one-line errors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from models.errors import UserError


def read_rgb(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise UserError(f"image {str(path)!r} does not exist: check the path")
    if not p.is_file():
        raise UserError(f"{str(path)!r} is not an image file: pass a PNG, JPEG, BMP or WebP file")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise UserError(f"{str(path)!r} is not a readable image: use a PNG, JPEG, BMP or WebP file")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_out_path(path: str | Path) -> Path:
    """Fail before any work when an output image could not be written."""
    p = Path(path)
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        raise UserError(f"cannot write {str(path)!r}: the name must end in .png, .jpg, .bmp or .webp")
    if not p.parent.is_dir():
        raise UserError(f"cannot write {str(path)!r}: folder {str(p.parent)!r} does not exist")
    return p


def write_rgb(path: str | Path, image: np.ndarray) -> Path:
    """Write atomically (temporary file, then rename), so a failure never leaves half an image."""
    p = check_out_path(path)
    ext = p.suffix.lower()
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"could not encode {str(path)!r}")
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=ext)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a saved picture gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {str(path)!r}: {e.strerror}") from None
    return p
