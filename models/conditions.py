"""Turn frames into control images: cropping, and the condition extractors adapters are trained on.

Every extractor takes and returns uint8 RGB (H, W, 3). Line conditions (sketch, canny) come out as
black lines on white, the way the canvas draws; the engine inverts for adapters that want the opposite.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.errors import UserError
from models.hints import frame_hints
from models.options import COLOUR_HINTS


def fit_square(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to size x size (area filter down, linear up)."""
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
        raise UserError(f"a frame must be uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
    frame = frame[:, :, :3]
    h, w = frame.shape[:2]
    if h != w:
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        frame = frame[y : y + s, x : x + s]
    if frame.shape[0] != size:
        interp = cv2.INTER_AREA if frame.shape[0] > size else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (size, size), interpolation=interp)
    return np.ascontiguousarray(frame)


def fit_frames(frames: list[np.ndarray] | np.ndarray, size: int, count: int) -> np.ndarray:
    """(count, size, size, 3) uint8: each adapter's condition image fitted to size (fit_square), an image
    shared by several adapters fitted once (a single array, or a list shorter than count: the last serves
    the rest)."""
    if isinstance(frames, np.ndarray):
        frames = [frames]
    out = np.empty((count, size, size, 3), np.uint8)
    done: dict[int, int] = {}
    for i in range(count):
        frame = frames[i] if i < len(frames) else frames[-1]
        if id(frame) in done:
            out[i] = out[done[id(frame)]]
        else:
            out[i] = fit_square(frame, size)
            done[id(frame)] = i
    return out


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame[:, :, :3], cv2.COLOR_RGB2GRAY)


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def canny(frame: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """Canny edges, black on white."""
    edges = cv2.Canny(cv2.GaussianBlur(_gray(frame), (3, 3), 0), low, high)
    return _rgb(255 - edges)


def sketch(frame: np.ndarray, sigma: float = 6.0, strength: float = 1.0) -> np.ndarray:
    """A soft pencil drawing, black on white: colour dodge of the grey image with its blurred negative."""
    g = _gray(frame).astype(np.float32)
    blur = cv2.GaussianBlur(255 - g, (0, 0), sigma)
    dodge = np.clip(g * 255 / np.maximum(255 - blur, 1), 0, 255)
    # darken the faint shading so lines read like strokes; strength 0 gives the raw dodge
    lines = 255 - np.clip((255 - dodge) * (1 + 3 * strength), 0, 255)
    return _rgb(lines.astype(np.uint8))


def grayscale(frame: np.ndarray) -> np.ndarray:
    """The grey image, for colorization adapters."""
    return _rgb(_gray(frame))


def blur(frame: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """A blurred copy, for restoration adapters."""
    return np.ascontiguousarray(cv2.GaussianBlur(frame[:, :, :3], (0, 0), sigma))


def identity(frame: np.ndarray) -> np.ndarray:
    """Paired data and the sketch canvas: the frame already is the condition."""
    return frame[:, :, :3]


# colour-hints: a live frame's own colours as a colour-hint adapter's hints (models.hints; training draws them at random)
EXTRACTORS = {"sketch": sketch, "canny": canny, "grayscale": grayscale, "blur": blur, COLOUR_HINTS: frame_hints,
              "paired": identity, "none": identity}


def extractor(name: str):
    if name not in EXTRACTORS:
        raise UserError(f"unknown condition {name!r}: use one of {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name]


def sketch_frames(n: int, size: int) -> list[np.ndarray]:
    """n different black-on-white drawings (a circle moving along a line), like strokes on the canvas: the
    synthetic input of benchmarks and of OpenVINO's calibration and trace."""
    frames = []
    for i in range(n):
        img = np.full((size, size, 3), 255, np.uint8)
        c = int(size * (0.3 + 0.4 * i / max(n - 1, 1)))
        cv2.circle(img, (c, size // 2), size // 5, (0, 0, 0), max(2, size // 128))
        cv2.line(img, (size // 8, size - size // 6), (c, size // 3), (0, 0, 0), max(2, size // 128))
        frames.append(img)
    return frames
