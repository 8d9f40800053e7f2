"""Colour hints: where a picture's colours go, as a person scribbles them onto a sketch, on white.

The `colour-hints` condition of a colour-hint adapter. Two ways to make one from a colour picture:

    colour_hints(image, rng)  random strokes, blobs or a dotted grid of the picture's own colours (training)
    frame_hints(image)        the dotted grid with fixed spacing and phase (a live camera, video or screen frame:
                              the same scene gives the same hints, so nothing flickers)

Both only put colour where the picture has some: a region wider than an outline that is not the white
background. Each hint is flat, the picture's blurred colour where the hint sits, and a stroke stays inside
the region of its colour. White means "no hint"; a white image is no hints at all. Every size below is a
share of the picture's shorter side, so hints look alike at any resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

WHITE = 245  # a pixel with every channel at or above this is background
MODES = (("strokes", 0.4), ("blobs", 0.3), ("grid", 0.2), ("none", 0.1))  # training mix of hint kinds
GRID = 14  # frame_hints: dots per side
DOT = 0.028  # frame_hints: dot radius, share of the side
SAME = 60.0  # a stroke keeps to pixels within this RGB distance of its colour


def coloured_mask(image: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels that are not white background and belong to a region wider than an outline."""
    s = min(image.shape[:2])
    mask = (image[:, :, :3].min(axis=2) < WHITE).astype(np.uint8)
    k = max(3, int(s * 0.03) | 1)  # an opening removes lines thinner than about 3% of the side
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0


def _blurred(image: np.ndarray) -> np.ndarray:
    s = min(image.shape[:2])
    return cv2.GaussianBlur(image[:, :, :3], (0, 0), max(1.0, s / 96))


def _grid(image: np.ndarray, mask: np.ndarray, blur: np.ndarray, n: int, radius: int, phase: tuple[float, float]):
    h, w = mask.shape
    out = np.full((h, w, 3), 255, np.uint8)
    step = min(h, w) / n
    for gy in np.arange(phase[0] * step, h, step):
        for gx in np.arange(phase[1] * step, w, step):
            y, x = int(gy), int(gx)
            if mask[y, x]:
                cv2.circle(out, (x, y), radius, tuple(int(c) for c in blur[y, x]), -1, cv2.LINE_AA)
    return out


def frame_hints(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> uint8 RGB hints on white: a fixed grid of dots in the frame's own colours (live sources)."""
    image = np.ascontiguousarray(image[:, :, :3])
    radius = max(1, round(min(image.shape[:2]) * DOT))
    return _grid(image, coloured_mask(image), _blurred(image), GRID, radius, (0.5, 0.5))


def colour_hints(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB -> uint8 RGB hints on white, drawn at random the way a person adds colour (training)."""
    image = np.ascontiguousarray(image[:, :, :3])
    h, w = image.shape[:2]
    s = min(h, w)
    mask = coloured_mask(image)
    names, weights = zip(*MODES)
    mode = rng.choice(names, p=np.array(weights) / sum(weights))
    if mode == "none" or not mask.any():
        return np.full_like(image, 255)
    blur = _blurred(image)
    if mode == "grid":
        n = int(rng.integers(8, 21))
        radius = max(1, round(s * rng.uniform(0.015, 0.04)))
        return _grid(image, mask, blur, n, radius, tuple(rng.uniform(0.2, 0.8, 2)))
    out = np.full_like(image, 255)
    ys, xs = np.nonzero(mask)
    for _ in range(int(rng.integers(1, 9 if mode == "strokes" else 7))):
        i = int(rng.integers(len(ys)))
        y, x = int(ys[i]), int(xs[i])
        colour = blur[y, x].astype(np.float32)
        shape = np.zeros((h, w), np.uint8)
        if mode == "strokes":  # a short wobbly line, 2-8% of the side wide
            pts = [(x, y)]
            angle = rng.uniform(0, 2 * np.pi)
            for _ in range(int(rng.integers(2, 6))):
                angle += rng.normal(0, 0.6)
                step = s * rng.uniform(0.04, 0.12)
                pts.append((int(pts[-1][0] + step * np.cos(angle)), int(pts[-1][1] + step * np.sin(angle))))
            width = max(1, round(s * rng.uniform(0.02, 0.08)))
            cv2.polylines(shape, [np.array(pts, np.int32)], False, 1, width, cv2.LINE_AA)
        else:  # a filled blob, 3-12% of the side across
            axes = (max(1, round(s * rng.uniform(0.03, 0.12))), max(1, round(s * rng.uniform(0.03, 0.12))))
            cv2.ellipse(shape, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1, cv2.LINE_AA)
        near = np.linalg.norm(blur.astype(np.float32) - colour, axis=2) < SAME
        keep = (shape > 0) & near & mask
        out[keep] = colour.round().astype(np.uint8)
    return out
