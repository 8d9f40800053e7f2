"""models/hints.py: the colour-hints condition (training's random hints and a live frame's dot grid)."""

from __future__ import annotations

import cv2
import numpy as np

from models import hints
from models.hints import WHITE, colour_hints, frame_hints


def drawing() -> np.ndarray:
    """A clip-art-like picture on white: a red disc and a blue square with black outlines."""
    img = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(img, (40, 64), 28, (220, 30, 30), -1)
    cv2.circle(img, (40, 64), 28, (0, 0, 0), 2)
    cv2.rectangle(img, (80, 40), (120, 90), (40, 90, 220), -1)
    cv2.rectangle(img, (80, 40), (120, 90), (0, 0, 0), 2)
    return img


def test_a_white_picture_has_no_hints_and_no_hint_lands_on_the_paper():
    white = np.full((64, 64, 3), 255, np.uint8)
    assert (colour_hints(white, np.random.default_rng(0)) == 255).all()
    assert (frame_hints(white) == 255).all()
    img = drawing()
    # the paper, less a dot's radius around the drawing (a dot centred inside may spill that far)
    paper = cv2.erode((img.min(axis=2) >= WHITE).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    kinds = set()
    for seed in range(60):
        h = colour_hints(img, np.random.default_rng(seed))
        assert (h[paper] == 255).all(), seed
        covered = (h.min(axis=2) < WHITE).mean()
        kinds.add("none" if covered == 0 else "some")
    assert kinds == {"none", "some"}  # 1 in 10 is no hint at all: the adapter must then leave the picture alone


def test_hints_keep_to_the_region_of_their_colour():
    img = np.full((128, 128, 3), 255, np.uint8)  # a box, red on the left, blue on the right, outlined
    img[24:104, 24:64], img[24:104, 64:104] = (220, 30, 30), (40, 90, 220)
    cv2.rectangle(img, (24, 24), (104, 104), (0, 0, 0), 2)
    red = lambda a: a[..., 0].astype(int) > a[..., 2].astype(int) + 60  # noqa: E731
    blue = lambda a: a[..., 2].astype(int) > a[..., 0].astype(int) + 60  # noqa: E731
    # a hint's colour is the picture blurred where it starts, so it may reach a pixel or two over a border
    far = np.zeros((128, 128), bool)
    far[28:100, 28:60] = far[28:100, 68:100] = True
    for seed in range(40):
        h = colour_hints(img, np.random.default_rng(seed))
        # no red dabbed over the blue half, no blue over the red: a hint stays inside its colour's region
        assert not (red(h) & blue(img) & far).any() and not (blue(h) & red(img) & far).any(), seed


def test_frame_hints_are_a_fixed_grid_of_the_frames_own_colours():
    img = drawing()
    h = frame_hints(img)
    assert np.array_equal(h, frame_hints(img.copy()))  # the same frame, the same hints: nothing flickers
    step = 128 / hints.GRID
    centres = [(int((j + 0.5) * step), int((i + 0.5) * step)) for j in range(hints.GRID) for i in range(hints.GRID)]
    for y, x in centres:  # a dot of the picture's own colour at every grid point in a coloured region, none on paper
        if np.hypot(y - 64, x - 40) < 22:
            assert np.abs(h[y, x].astype(int) - (220, 30, 30)).max() < 40, (y, x)
        elif 46 <= y <= 84 and 86 <= x <= 114:
            assert np.abs(h[y, x].astype(int) - (40, 90, 220)).max() < 40, (y, x)
        elif img[max(0, y - 8) : y + 9, max(0, x - 8) : x + 9].min() >= WHITE:
            assert (h[y, x] == 255).all(), (y, x)
    photo = np.random.default_rng(0).integers(0, 200, (96, 96, 3), dtype=np.uint8)
    assert (frame_hints(photo).min(axis=2) < WHITE).mean() > 0.4  # colour everywhere: dots all over
