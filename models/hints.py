"""Colour hints: where a picture's colours go, as a person puts them onto a sketch, on white.

The `colour-hints` condition of a colour-hint adapter. Three ways to make one:

    colour_hints(image, rng)   from a colour picture, at random (training): strokes, blobs, a dotted grid of its
                               own colours, or its colours flat with its lines taken out
    frame_hints(image)         from a live camera, video or screen frame: its own colours, flat (as training's
                               flat hints: the lines painted over), the same frame giving the same hints
    fill_shapes(lines, dabs)   from the canvas: each dab of the colour layer grown to fill the shape of the
                               drawing it sits in, as a paint bucket bounded by the lines would

Hints go only where the picture has colour: not on the white background. A stroke or blob is flat, the
picture's blurred colour where it starts; a careful one stays inside the region of its colour, a rough one (as
a person dabs) runs over the lines inside the drawing, so the adapter learns that a line stays where colour
covers it. Flat hints are the picture's colours with every line painted over by the region beside it: what
fill_shapes gives a canvas, so the adapter learns to keep the sketch's lines around the shapes it fills. White
means "no hint"; a white image is no hints at all. Every size is a share of the picture's shorter side, so hints
look alike at any resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

WHITE = 245  # a pixel with every channel at or above this is background
MODES = (("strokes", 0.1), ("blobs", 0.1), ("grid", 0.1), ("flat", 0.6), ("none", 0.1))  # training mix of hint kinds
ROUGH = 0.5  # share of strokes and blobs drawn roughly: over the drawing's inner lines, not kept to their colour
PHOTO = 0.97  # a picture whose coloured share is above this has no paper (a photo): strokes, blobs, none become a grid
SAME = 60.0  # a careful stroke keeps to pixels within this RGB distance of its colour
FRAME_SIDE = 256  # frame_hints works a larger frame at this shorter side (46 ms -> 11 ms for 512 px on one CPU core)


def _lowest(image: np.ndarray) -> np.ndarray:
    """Each pixel's lowest channel of R, G, B (numpy's min over a 3-long last axis is ~10x slower)."""
    return np.minimum(np.minimum(image[:, :, 0], image[:, :, 1]), image[:, :, 2])


def _highest(image: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(image[:, :, 0], image[:, :, 1]), image[:, :, 2])


def coloured_mask(image: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels that are not white background and belong to a region wider than an outline."""
    s = min(image.shape[:2])
    mask = (_lowest(image) < WHITE).astype(np.uint8)
    k = max(3, int(s * 0.03) | 1)  # an opening removes lines thinner than about 3% of the side
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0


def _blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image[:, :, :3], (0, 0), max(1.0, min(image.shape[:2]) / 96))


def _inside(image: np.ndarray) -> np.ndarray:
    """bool (H, W): the drawing's filled silhouette, outlines and the lines inside it included."""
    s = min(image.shape[:2])
    ink = (_lowest(image) < WHITE).astype(np.uint8)
    k = max(3, int(s * 0.05) | 1)
    return cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0


def _nearest_fill(colours: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Every pixel given the colour of its nearest seed pixel (uint8 RGB)."""
    _, nearest = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros((int(nearest.max()) + 1, 3), np.uint8)
    lut[nearest[seeds]] = colours[:, :, :3][seeds]  # a seed pixel is its own nearest
    return lut[nearest]


def _flat(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The picture's colours without its lines: each outline inside the drawing painted with the colour of the
    region beside it, the paper white (what filling each shape of a drawing with one colour gives)."""
    seeds = mask & (_highest(image) > 60)  # black and near-black (lines, thick or thin) are not colour
    if not seeds.any():
        return np.full_like(image[:, :, :3], 255)
    out = _nearest_fill(image, seeds)
    return np.where((mask | _inside(image))[..., None], out, np.uint8(255))


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


def frame_hints(image: np.ndarray, side: int = FRAME_SIDE) -> np.ndarray:
    """uint8 RGB -> uint8 RGB hints: a live frame's own colours, flat as in training (its lines painted over by
    the colour beside them, white where it is white), so the same frame gives the same hints. A frame whose
    shorter side is over `side` px is worked at that size and its flat hints scaled back up without blending
    (white stays white), as every size here is a share of the side."""
    image = np.ascontiguousarray(image[:, :, :3])
    h, w = image.shape[:2]
    if min(h, w) <= side:
        return _flat(image, coloured_mask(image))
    scale = side / min(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(_flat(small, coloured_mask(small)), (w, h), interpolation=cv2.INTER_NEAREST)


def fill_shapes(lines: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The canvas's colour layer with each dab grown to fill the shape it sits in (uint8 RGB lines and colours ->
    uint8 RGB hints on white), as a paint bucket bounded by the drawing's lines would: a shape is a part of the
    paper the lines close off (gaps up to about 2% of the side are bridged); a shape holding dabs of several
    colours is split between them by nearness, the lines around a filled shape take its colour, and dabs on the
    open paper outside every shape stay as they are."""
    s = min(lines.shape[:2])
    ink = (_lowest(lines) < 128).astype(np.uint8)
    k = max(3, int(s * 0.02) | 1)
    walls = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    _, shapes, boxes, _ = cv2.connectedComponentsWithStats(1 - walls, connectivity=4)
    border = np.unique(np.concatenate([shapes[0], shapes[-1], shapes[:, 0], shapes[:, -1]]))
    dabbed = _lowest(colours) < WHITE
    out = np.where(dabbed[..., None], colours[:, :, :3], np.uint8(255)).astype(np.uint8)
    core = cv2.erode(dabbed.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # a dab less its pale anti-aliased rim
    filled = np.zeros(dabbed.shape, bool)
    for i in np.flatnonzero(np.bincount(shapes[dabbed], minlength=len(boxes))):
        if i == 0 or i in border:
            continue
        x, y, w, h = boxes[i, :4]  # work inside the shape's box: a hatched drawing has thousands of shapes
        box = (slice(y, y + h), slice(x, x + w))
        shape = shapes[box] == i
        seeds = core[box] & shape
        seeds = seeds if seeds.any() else dabbed[box] & shape
        picked = colours[box][seeds][:, :3]
        packed = (picked[:, 0].astype(np.uint32) << 16) | (picked[:, 1].astype(np.uint32) << 8) | picked[:, 2]
        if (packed == packed[0]).all():  # one colour: the whole shape
            out[box][shape] = picked[0]
        else:  # several: each pixel takes its nearest dab's, in this shape only
            out[box][shape] = _nearest_fill(np.ascontiguousarray(colours[box]), seeds)[shape]
        filled[box] |= shape
    if filled.any():  # the lines around a filled shape take the colour beside them
        rim = cv2.dilate(filled.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 2, k + 2))) > 0
        rim &= (walls > 0) & ~dabbed
        x, y, w, h = cv2.boundingRect(rim.astype(np.uint8))  # every rim pixel's nearest filled one lies within k + 2
        box = (slice(max(0, y - k - 2), y + h + k + 2), slice(max(0, x - k - 2), x + w + k + 2))
        out[box][rim[box]] = _nearest_fill(np.ascontiguousarray(out[box]), filled[box])[rim[box]]
    return out


def colour_hints(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB -> uint8 RGB hints on white, drawn at random the way a person adds colour (training)."""
    image = np.ascontiguousarray(image[:, :, :3])
    h, w = image.shape[:2]
    s = min(h, w)
    mask = coloured_mask(image)
    names, weights = zip(*MODES)
    mode = rng.choice(names, p=np.array(weights) / sum(weights))
    if mode == "flat":  # white where the picture has no colour
        return _flat(image, mask)
    if mask.mean() > PHOTO:  # no paper (a photo): hints all over it
        mode = "grid"
    if mode == "none" or not mask.any():
        return np.full_like(image, 255)
    blur = _blurred(image)
    if mode == "grid":
        n = int(rng.integers(8, 21))
        radius = max(1, round(s * rng.uniform(0.015, 0.04)))
        return _grid(image, mask, blur, n, radius, tuple(rng.uniform(0.2, 0.8, 2)))
    out = np.full_like(image, 255)
    ys, xs = np.nonzero(mask)
    inside = _inside(image)
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
        if rng.random() < ROUGH:  # over whatever the drawing holds there, lines too
            keep = (shape > 0) & inside
        else:
            keep = (shape > 0) & mask & (np.linalg.norm(blur.astype(np.float32) - colour, axis=2) < SAME)
        out[keep] = colour.round().astype(np.uint8)
    return out
