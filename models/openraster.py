"""The canvas's drawing as an OpenRaster file (.ora): its line layer and its colour layer, as Krita, GIMP and
MyPaint open them (https://www.openraster.org/baseline/file-layout-spec.html).

A zip whose first entry is `mimetype` (stored, "image/openraster"), then `stack.xml` (the layers, top first),
`data/colour.png` (RGBA: transparent where nothing is painted, shown multiplied over the lines at 0.8 as the
canvas shows it), `data/lines.png` (opaque RGB), `mergedimage.png` (the two composited, as the canvas shows
them) and `Thumbnails/thumbnail.png` (at most 256 px). Reading takes the layers named lines and colour back; a
file made elsewhere without them gives its merged picture as the line layer (over white), as a PNG would.
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
from models.imageio import over_white
from models.outfiles import cause, check_file, write_atomic

MIMETYPE = "image/openraster"
COLOUR_OPACITY = 0.8  # the colour layer's opacity over the lines (multiplied), as the canvas shows it
MOST_PIXELS = 64 * 2**20  # a larger picture is refused before it is decoded (a zip bomb, or no drawing)


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


def _layer(z: zipfile.ZipFile, src: str, where: str) -> np.ndarray:
    """A PNG inside the file as uint8 RGBA (straight alpha)."""
    try:
        data = np.frombuffer(z.read(src), np.uint8)
    except KeyError:
        raise UserError(f"{where} names {src!r}, which it does not hold: the file is damaged") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"{where}: {src!r} is not a readable PNG")
    if img.dtype != np.uint8:
        img = (img / 257).round().astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


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
    if z.namelist()[:1] != ["mimetype"] or z.read("mimetype").strip() != MIMETYPE.encode():
        raise UserError(f"{where} is not an OpenRaster file (no image/openraster mimetype first)")
    try:
        image = ET.fromstring(z.read("stack.xml"))
        w, h = int(image.get("w", "0")), int(image.get("h", "0"))
    except (KeyError, ET.ParseError, ValueError):
        raise UserError(f"{where} has no readable stack.xml: the file is damaged") from None
    if not (0 < w and 0 < h and w * h <= MOST_PIXELS):
        raise UserError(f"{where} is {w}x{h} pixels: a drawing must be between 1 and {MOST_PIXELS >> 20} megapixels")
    layers = {e.get("name", "").lower(): e for e in image.iter("layer")}
    layers.setdefault("colour", layers.get("color"))
    if layers.get("lines") is not None and layers.get("colour") is not None:
        found = {}
        for name in ("lines", "colour"):
            e = layers[name]
            found[name] = _placed(_layer(z, e.get("src", ""), where), _offset(e, "x", where), _offset(e, "y", where), w, h)
        return Drawing(lines=over_white(found["lines"]), colour=found["colour"])
    if "mergedimage.png" in z.namelist():
        return Drawing(lines=over_white(_placed(_layer(z, "mergedimage.png", where), 0, 0, w, h)), colour=None)
    raise UserError(f"{where} has neither our lines and colour layers nor a mergedimage.png: "
                    "save it again from Krita, GIMP or MyPaint")
