"""The canvas's drawing as an OpenRaster file (.ora): its line layer and its colour layer, as Krita, GIMP and
MyPaint open them (https://www.openraster.org/baseline/file-layout-spec.html).

A zip whose first entry is `mimetype` (stored, "image/openraster"), then `stack.xml` (the layers, top first),
`data/colour.png` (RGBA: transparent where nothing is painted, shown multiplied over the lines at 0.8 as the
canvas shows it), `data/lines.png` (opaque RGB), `mergedimage.png` (the two composited, as the canvas shows
them) and `Thumbnails/thumbnail.png` (at most 256 px). Reading takes the layers named lines and colour back; a
file made elsewhere without them gives its merged picture as the line layer (over white), as a PNG would.

A hostile file is refused before it costs memory: every member read is checked by its declared size and
compression ratio before it is inflated (MOST_MEMBER_BYTES, MOST_RATIO), and every layer's PNG by the size its
header declares before it is decoded (MAX_IMAGE_PIXELS, models.options), whatever stack.xml says.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.errors import UserError
from models.imageio import declared_size, over_white, to_uint8
from models.options import MAX_IMAGE_PIXELS
from models.outfiles import cause, check_file, write_atomic

MIMETYPE = "image/openraster"
COLOUR_OPACITY = 0.8  # the colour layer's opacity over the lines (multiplied), as the canvas shows it
MOST_PIXELS = MAX_IMAGE_PIXELS  # a larger drawing or layer is refused before it is decoded (a bomb, or no drawing)
# the most bytes one member may inflate to: an 8-bit RGBA layer at MOST_PIXELS stored without compression fits
MOST_MEMBER_BYTES = 256 * 2**20
MOST_RATIO = 100  # inflated / stored bytes of a member over 1 MB: PNGs barely deflate again, a zip bomb does 1000:1
HEADER_BYTES = 65536  # what a layer's header is read from before the whole member


@dataclass(frozen=True, kw_only=True)
class Drawing:
    """A drawing read back from a file."""

    lines: np.ndarray  # uint8 RGB (H, W, 3): the line layer over white (or a foreign file's merged picture)
    colour: np.ndarray | None  # uint8 RGBA (H, W, 4), straight alpha: the colour layer; None when the file had none


def merged(lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """uint8 RGB: the colour layer multiplied over the lines at COLOUR_OPACITY (black lines stay black)."""
    a = colour[:, :, 3:].astype(np.float32) / 255 * COLOUR_OPACITY
    base = lines.astype(np.float32)
    return np.clip(base * (1 - a) + base * colour[:, :, :3] / 255 * a + 0.5, 0, 255).astype(np.uint8)


def _png(rgb_or_rgba: np.ndarray) -> bytes:
    code = cv2.COLOR_RGBA2BGRA if rgb_or_rgba.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb_or_rgba, code))
    if not ok:
        raise UserError("could not encode the drawing as PNG")
    return buf.tobytes()


def encode(lines: np.ndarray, colour: np.ndarray) -> bytes:
    """The OpenRaster file's bytes for a line layer (uint8 RGB) and a colour layer (uint8 RGBA) of one size."""
    h, w = lines.shape[:2]
    if colour.shape[:2] != (h, w):
        raise UserError(f"the colour layer is {colour.shape[1]}x{colour.shape[0]}, the lines {w}x{h}: they must match")
    image = ET.Element("image", version="0.0.5", w=str(w), h=str(h))
    stack = ET.SubElement(image, "stack")
    ET.SubElement(stack, "layer", name="colour", src="data/colour.png", x="0", y="0", opacity=f"{COLOUR_OPACITY}",
                  visibility="visible", **{"composite-op": "svg:multiply"})
    ET.SubElement(stack, "layer", name="lines", src="data/lines.png", x="0", y="0", opacity="1.0",
                  visibility="visible", **{"composite-op": "svg:src-over"})
    flat = merged(lines, colour)
    k = min(1.0, 256 / max(h, w))
    thumb = cv2.resize(flat, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)  # first, not compressed
        z.writestr("stack.xml", b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(image), zipfile.ZIP_DEFLATED)
        for name, data in (("data/colour.png", _png(colour)), ("data/lines.png", _png(lines)),
                           ("mergedimage.png", _png(flat)), ("Thumbnails/thumbnail.png", _png(thumb))):
            z.writestr(name, data, zipfile.ZIP_STORED)  # PNG is compressed already
    return buf.getvalue()


def write_drawing(path: str | Path, lines: np.ndarray, colour: np.ndarray) -> Path:
    """Write the drawing atomically (a failure leaves no half-written file)."""
    p = check_file(path, repr(str(path)), (".ora",))  # the folder exists and has room
    return write_atomic(p, encode(lines, colour), 0o666)


def _member(z: zipfile.ZipFile, name: str, where: str, limit: int | None = None) -> bytes:
    """A member's bytes (the first `limit` only, when given), refused before inflating when it declares more
    than MOST_MEMBER_BYTES or inflates more than MOST_RATIO times (zipfile stops at the declared size)."""
    try:
        info = z.getinfo(name)
    except KeyError:
        raise UserError(f"{where} names {name!r}, which it does not hold: the file is damaged") from None
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > MOST_MEMBER_BYTES or (info.file_size > 2**20 and ratio > MOST_RATIO):
        raise UserError(f"{where}: {name!r} inflates from {info.compress_size / 2**20:.1f} MB to "
                        f"{info.file_size / 2**20:.0f} MB (at most {MOST_MEMBER_BYTES >> 20} MB, {MOST_RATIO}:1 are "
                        "read): the file is damaged or a zip bomb")
    with z.open(info) as f:
        return f.read(info.file_size if limit is None else min(limit, info.file_size))


def _layer(z: zipfile.ZipFile, src: str, where: str, w: int, h: int) -> np.ndarray:
    """A PNG inside the file as uint8 RGBA (straight alpha), its declared size checked before it is decoded."""
    size = declared_size(_member(z, src, where, HEADER_BYTES))
    if size is None:
        raise UserError(f"{where}: {src!r} is not a readable PNG")
    if size[0] * size[1] > MOST_PIXELS:
        said = f"{size[0]}x{size[1]} pixels" if size[1] > 1 else f"{size[0]} pixels"
        raise UserError(f"{where}: layer {src!r} is {said} in a {w}x{h} drawing (at most {MOST_PIXELS / 1e6:.0f} "
                        "megapixels are read): the file is damaged or hostile")
    try:
        img = cv2.imdecode(np.frombuffer(_member(z, src, where), np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # a header OpenCV's own checks refuse
        img = None
    if img is None:
        raise UserError(f"{where}: {src!r} is not a readable PNG")
    img = to_uint8(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA, dst=img)


def _placed(layer: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """A layer at offset (x, y) on a transparent w x h picture (cropped to it)."""
    out = np.zeros((h, w, 4), np.uint8)
    lh, lw = layer.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + lw, w), min(y + lh, h)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = layer[y0 - y : y1 - y, x0 - x : x1 - x]
    return out


def read_drawing(path: str | Path) -> Drawing:
    """The drawing in an OpenRaster file: its lines and colour layers, or (a file made elsewhere) its merged
    picture as the lines. One-line UserError for anything that is not a readable OpenRaster file."""
    where = repr(str(path))
    if not Path(path).is_file():
        raise UserError(f"drawing {where} does not exist or is not a file: check the path")
    try:
        with zipfile.ZipFile(path) as z:
            return _read(z, where)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as e:
        reason = cause(e) if isinstance(e, OSError) else (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"{where} is not a readable OpenRaster file ({reason}): save it as .ora from Krita, GIMP "
                        "or MyPaint") from None


def _offset(e: ET.Element, key: str, where: str) -> int:
    try:
        value = float(e.get(key, "0"))
    except ValueError:
        value = float("nan")
    if not abs(value) < MOST_PIXELS:
        raise UserError(f"{where}: layer {e.get('name', '')!r} has {key}={e.get(key)!r}, not a position: the file is damaged")
    return int(value)


def _read(z: zipfile.ZipFile, where: str) -> Drawing:
    if z.namelist()[:1] != ["mimetype"] or _member(z, "mimetype", where, 256).strip() != MIMETYPE.encode():
        raise UserError(f"{where} is not an OpenRaster file (no image/openraster mimetype first)")
    try:
        image = ET.fromstring(_member(z, "stack.xml", where))
        w, h = int(image.get("w", "0")), int(image.get("h", "0"))
    except (KeyError, ET.ParseError, ValueError):
        raise UserError(f"{where} has no readable stack.xml: the file is damaged") from None
    if not (0 < w and 0 < h and w * h <= MOST_PIXELS):
        raise UserError(f"{where} is {w}x{h} pixels: a drawing must be between 1 and {MOST_PIXELS / 1e6:.0f} megapixels")
    layers = {e.get("name", "").lower(): e for e in image.iter("layer")}
    layers.setdefault("colour", layers.get("color"))
    if layers.get("lines") is not None and layers.get("colour") is not None:
        found = {}
        for name in ("lines", "colour"):
            e = layers[name]
            found[name] = _placed(_layer(z, e.get("src", ""), where, w, h), _offset(e, "x", where), _offset(e, "y", where), w, h)
        return Drawing(lines=over_white(found["lines"]), colour=found["colour"])
    if "mergedimage.png" in z.namelist():
        return Drawing(lines=over_white(_placed(_layer(z, "mergedimage.png", where, w, h), 0, 0, w, h)), colour=None)
    raise UserError(f"{where} has neither our lines and colour layers nor a mergedimage.png: "
                    "save it again from Krita, GIMP or MyPaint")
