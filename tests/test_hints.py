"""models/hints.py: the colour-hints condition (training's random hints, a live frame's flat colours, the
canvas's filled shapes)."""

from __future__ import annotations

import cv2
import numpy as np

from models import hints
from models.hints import WHITE, colour_hints, fill_shapes, frame_hints


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


def box() -> np.ndarray:
    """A box, red on the left, blue on the right, outlined in black."""
    img = np.full((128, 128, 3), 255, np.uint8)
    img[24:104, 24:64], img[24:104, 64:104] = (220, 30, 30), (40, 90, 220)
    cv2.rectangle(img, (24, 24), (104, 104), (0, 0, 0), 2)
    return img


def red(a: np.ndarray) -> np.ndarray:
    return a[..., 0].astype(int) > a[..., 2].astype(int) + 60


def blue(a: np.ndarray) -> np.ndarray:
    return a[..., 2].astype(int) > a[..., 0].astype(int) + 60


def test_careful_hints_keep_to_the_region_of_their_colour_and_rough_ones_do_not(monkeypatch):
    monkeypatch.setattr(hints, "MODES", (("strokes", 0.5), ("blobs", 0.5)))
    monkeypatch.setattr(hints, "ROUGH", 0.0)
    img = box()
    # a hint's colour is the picture blurred where it starts, so it may reach a pixel or two over a border
    far = np.zeros((128, 128), bool)
    far[28:100, 28:60] = far[28:100, 68:100] = True
    for seed in range(40):
        h = colour_hints(img, np.random.default_rng(seed))
        # no red dabbed over the blue half, no blue over the red: a hint stays inside its colour's region
        assert not (red(h) & blue(img) & far).any() and not (blue(h) & red(img) & far).any(), seed
    monkeypatch.setattr(hints, "ROUGH", 1.0)  # rough ones run over whatever the drawing holds: lines, the other half
    crossed = [bool((red(h) & blue(img) & far).any() or (blue(h) & red(img) & far).any())
               for h in (colour_hints(img, np.random.default_rng(seed)) for seed in range(40))]
    assert sum(crossed) >= 5


def test_flat_hints_are_the_pictures_colours_with_the_lines_painted_over(monkeypatch):
    monkeypatch.setattr(hints, "MODES", (("flat", 1.0),))
    img = box()
    cv2.line(img, (30, 64), (58, 64), (0, 0, 0), 2)  # a line inside the red half
    h = colour_hints(img, np.random.default_rng(0))
    assert red(h[62:67, 32:56]).all()  # the line is red in the hints: its region's colour
    assert red(h[30:100, 30:60]).all() and blue(h[30:100, 70:100]).all()
    assert (h[:16] == 255).all() and (h[:, :16] == 255).all()  # the paper stays white


def test_frame_hints_are_the_frames_own_colours_flat_with_its_lines_painted_over():
    img = drawing()
    cv2.line(img, (20, 64), (60, 64), (0, 0, 0), 2)  # a line across the red disc
    h = frame_hints(img)
    assert np.array_equal(h, frame_hints(img.copy()))  # the same frame, the same hints: nothing flickers
    assert red(h[62:67, 22:58]).all() and red(h[45:83, 30:50]).all()  # the disc, its line painted red
    assert blue(h[45:85, 85:115]).all()
    assert (h[:8] == 255).all() and (h[110:] == 255).all()  # white where the frame is white
    photo = np.random.default_rng(0).integers(0, 200, (96, 96, 3), dtype=np.uint8)
    assert (frame_hints(photo).min(axis=2) < WHITE).all()  # a photo has colour everywhere: hints everywhere


def test_a_large_frame_gets_the_same_hints_as_its_smaller_copy_scaled_up_flat_and_white_kept():
    img = drawing()
    cv2.line(img, (20, 64), (60, 64), (0, 0, 0), 2)
    big = cv2.resize(img, (1024, 768), interpolation=cv2.INTER_CUBIC)  # a camera frame, not square
    h = frame_hints(big, side=192)
    assert h.shape == big.shape and h.dtype == np.uint8
    assert red(h[6 * 45 : 6 * 83, 8 * 30 : 8 * 50]).all() and blue(h[6 * 45 : 6 * 85, 8 * 85 : 8 * 115]).all()
    assert (h[:40] == 255).all() and (h[-40:] == 255).all()  # white stays exactly white (no hint), not pale
    small = frame_hints(cv2.resize(big, (256, 192), interpolation=cv2.INTER_AREA))
    assert set(map(tuple, h.reshape(-1, 3))) == set(map(tuple, small.reshape(-1, 3)))  # no new, blended colours
    assert np.array_equal(frame_hints(big, side=768), frame_hints(big, side=10_000))  # at or under `side`: as is


def test_fill_shapes_grows_each_dab_to_its_shape_split_by_nearness_and_leaves_the_paper():
    lines = np.full((128, 128, 3), 255, np.uint8)
    cv2.rectangle(lines, (10, 10), (60, 60), (0, 0, 0), 2)  # a closed square
    cv2.circle(lines, (95, 95), 20, (0, 0, 0), 2)
    lines[70:80, 95:97] = 255  # a gap of 2 px (1.6% of the side) in the circle
    dabs = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(dabs, (20, 35), 4, (220, 30, 30), -1)  # red on the square's left, blue on its right
    cv2.circle(dabs, (50, 35), 4, (40, 90, 220), -1)
    cv2.circle(dabs, (95, 95), 4, (40, 170, 60), -1)  # green in the circle
    cv2.circle(dabs, (100, 20), 4, (245, 200, 20), -1)  # yellow on the open paper
    h = fill_shapes(lines, dabs)
    assert red(h[14:57, 14:30]).all() and blue(h[14:57, 41:57]).all()  # split between the two by nearness
    green = (h[..., 1].astype(int) > h[..., 0].astype(int) + 60) & (h[..., 1].astype(int) > h[..., 2].astype(int) + 60)
    assert green[82:108, 82:108].all()  # the gap is bridged: the circle fills, the paper around it does not
    assert (h[120:, :] == 255).all() and (h[70:80, 10:60] == 255).all()
    yellow = (h[..., 0] > 200) & (h[..., 1] > 150) & (h[..., 2] < 80)
    assert yellow.sum() < 80 and yellow[18:23, 98:103].all()  # a dab on the open paper stays a dab
    assert red(h[10:12, 20:30]).all()  # the square's own line takes the colour beside it
    assert (fill_shapes(lines, np.full_like(dabs, 255)) == 255).all()  # no dab, no hint


def test_fill_shapes_keeps_each_shape_to_its_own_dabs():
    """A house: roof, walls and door are three shapes; a dab in each fills its own, never the shape beside it
    (a nearer dab in another shape does not count)."""
    lines = np.full((128, 128, 3), 255, np.uint8)
    cv2.rectangle(lines, (30, 60), (98, 118), (0, 0, 0), 2)  # walls
    cv2.polylines(lines, [np.array([(30, 60), (64, 20), (98, 60)], np.int32)], False, (0, 0, 0), 2)  # roof
    cv2.rectangle(lines, (56, 90), (72, 118), (0, 0, 0), 2)  # door, on the walls' bottom line
    dabs = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(dabs, (64, 48), 3, (220, 30, 30), -1)
    cv2.circle(dabs, (40, 75), 3, (245, 200, 20), -1)
    cv2.circle(dabs, (64, 104), 3, (40, 90, 220), -1)
    h = fill_shapes(lines, dabs)
    yellow = (h[..., 0] > 200) & (h[..., 1] > 150) & (h[..., 2] < 80)
    assert red(h[45:56, 50:78]).all() and blue(h[94:114, 60:69]).all()
    assert yellow[64:114, 34:52].all() and yellow[64:86, 76:95].all() and yellow[95:114, 78:95].all()
