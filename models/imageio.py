"""Read and write images as uint8 RGB arrays, with one-line errors.

One reader for every picture a user gives us (generate's control image, Load, Trace, drag and drop, the
trainer's data): transparent parts are laid over white, the canvas's paper, and 16-bit images are scaled
to 8 bits, so a transparent PNG means the same thing everywhere.

Every picture's size is read from its header before it is decoded (a PNG's IHDR, a WebP's VP8 header, Pillow's
lazy Image.open for the other formats): a file that declares more than MAX_IMAGE_PIXELS (models.options) is refused unread, so a
small file that declares 20000x20000 (a decompression bomb) never allocates its gigabytes. Conversions after
the decode (16 to 8 bits, alpha over white) run in bands of rows, so an image at the limit needs little more
than its own pixels."""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np

from models.errors import UserError
from models.options import MAX_IMAGE_PIXELS

BAND = 256  # rows converted at a time: the float and 16-bit temporaries of a large image stay small

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "PNG input buffer is incomplete": we say it in one line


def read_rgb(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise UserError(f"image {str(path)!r} does not exist: check the path")
    if not p.is_file():
        raise UserError(f"{str(path)!r} is not an image file: pass a PNG, JPEG, BMP or WebP file")
    img = decode_rgb(np.fromfile(p, dtype=np.uint8), repr(str(path)))
    if img is None:
        raise UserError(f"{str(path)!r} is not a readable image: use a PNG, JPEG, BMP or WebP file")
    return img


def declared_size(data: np.ndarray | bytes) -> tuple[int, int] | None:
    """(width, height) an encoded image declares in its header, without decoding it; None when no header is
    readable (not an image, or a format neither we nor Pillow know)."""
    head = bytes(data[:33])
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:  # Pillow's WebP reader wants whole data
        kind = head[12:16]
        if kind == b"VP8X":
            return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
        if kind == b"VP8L":
            bits = int.from_bytes(head[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8 ":
            return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    from PIL import Image

    raw = io.BytesIO(data if isinstance(data, bytes) else data.tobytes())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own bomb warning: we refuse in our words below
            with Image.open(raw) as im:
                return im.size  # the header only: Image.open is lazy
    except Image.DecompressionBombError as e:  # over twice Pillow's cap, far over ours: its plugin gives the size
        return _plugin_size(raw, e)
    except Exception:  # UnidentifiedImageError, a damaged header (SyntaxError, struct.error, ...)
        return None


def _plugin_size(raw: io.BytesIO, e: Exception) -> tuple[int, int]:
    """The size Pillow refused with DecompressionBombError, read by the format's own plugin (Image.open's
    registry, without its cap); failing that, the pixel count from Pillow's message as (pixels, 1)."""
    from PIL import Image

    prefix = raw.getvalue()[:16]
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            if accept is None or accept(prefix) is True:
                raw.seek(0)
                with factory(raw, "") as im:
                    return im.size
        except Exception:
            continue
    pixels = re.search(r"\((\d+) pixels\)", str(e))
    return (int(pixels.group(1)) if pixels else MAX_IMAGE_PIXELS + 1, 1)


def check_pixels(w: int, h: int, where: str) -> None:
    """A UserError naming the size and the limit when w x h is over MAX_IMAGE_PIXELS."""
    if w * h > MAX_IMAGE_PIXELS:
        size = f"{w}x{h} pixels" if h > 1 else f"{w} pixels"
        raise UserError(f"{where} is {size} ({w * h / 1e6:.0f} megapixels): at most {MAX_IMAGE_PIXELS / 1e6:.0f} "
                        "megapixels are read; scale it down first")


def decode_rgb(data: np.ndarray, where: str | None = None) -> np.ndarray | None:
    """Encoded image bytes -> uint8 RGB over white, or None when they do not decode. A header that declares
    more than MAX_IMAGE_PIXELS is refused before decoding: a UserError naming `where`, or None without one (the
    trainer counts it with the unreadable files)."""
    if not data.size:
        return None
    size = declared_size(data)
    if size is None:
        return None
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        if where is None:
            return None
        check_pixels(*size, where)
    jpeg = data[:2].tobytes() == b"\xff\xd8"  # no alpha, but maybe an EXIF rotation, which IMREAD_COLOR applies
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED)
    except cv2.error:  # a header OpenCV's own checks refuse (a side over its cap): unreadable, as for None
        return None
    if img is None:
        return None
    img = to_uint8(img)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        img = over_white(img)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place: no second copy of a large picture


def to_uint8(img: np.ndarray) -> np.ndarray:
    """A decoded image in 8 bits: 16-bit PNG or TIFF scaled by 1/257, rounded (in bands of rows)."""
    if img.dtype == np.uint8:
        return img
    out = np.empty(img.shape, np.uint8)
    for y in range(0, img.shape[0], BAND):
        out[y : y + BAND] = (img[y : y + BAND] / 257).round()
    return out


def over_white(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4), straight alpha last (RGBA or BGRA) -> uint8 (H, W, 3) laid over white paper."""
    out = np.empty((*img.shape[:2], 3), np.uint8)
    for y in range(0, img.shape[0], BAND):
        band = img[y : y + BAND]
        alpha = band[:, :, 3:].astype(np.float32) / 255
        out[y : y + BAND] = (band[:, :, :3] * alpha + 255 * (1 - alpha)).round()
    return out


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
