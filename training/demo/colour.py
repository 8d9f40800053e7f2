"""Colour for the demo model: naming a picture's colours, recolouring it to a named colour, and scoring how
far a prompt's colour word steered a picture.

Openclipart's captions seldom name colours, and the colours they would name are spread over every subject,
so a one-step model trained on them learns the mean colour and ignores colour words. The demo therefore
trains on recoloured copies too: the picture's hues turned so that its main colour becomes the colour its
caption names ("a blue apple"), the same drawing in every colour, so the colour word is the only thing that
tells the model which.
"""

from __future__ import annotations

import cv2
import numpy as np


def clear_colour(img: np.ndarray) -> np.ndarray:
    """Mask of the pixels in a clear colour (some channel 40+ levels away from the pixel's grey)."""
    a = img.astype(np.int16)
    return np.abs(a - a.mean(axis=2, keepdims=True)).max(axis=2) > 40


def colour_share(img: np.ndarray) -> float:
    """Share of pixels in a clear colour."""
    return float(clear_colour(img).mean())


# OpenCV hue (0-180) bins of clearly coloured pixels and their names
HUES = ((0, 8, "red"), (8, 20, "orange"), (20, 34, "yellow"), (34, 85, "green"), (85, 128, "blue"),
        (128, 150, "purple"), (150, 170, "pink"), (170, 181, "red"))


def colour_words(img: np.ndarray, most: int = 2, min_part: float = 0.2) -> list[str]:
    """Names of the main colours of an RGB picture, largest first: hue bins holding at least `min_part` of
    its clearly coloured pixels; dark oranges and reds are "brown"."""
    coloured = clear_colour(img)
    if not coloured.any():
        return []
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[coloured]
    h, v = hsv[:, 0].astype(int), hsv[:, 2].astype(int)
    counts: dict[str, int] = {}
    for lo, hi, name in HUES:
        inside = (h >= lo) & (h < hi)
        if name in ("orange", "red"):
            brown = inside & (v < 140)
            counts["brown"] = counts.get("brown", 0) + int(brown.sum())
            inside &= ~brown
        counts[name] = counts.get(name, 0) + int(inside.sum())
    ranked = sorted(((n, c) for n, c in counts.items() if c >= min_part * len(h)), key=lambda x: -x[1])
    return [n for n, _ in ranked[:most]]


# the colours a caption can ask for and their OpenCV hue (0-180): the targets of recolour()
PALETTE = {"red": 0, "orange": 14, "yellow": 27, "green": 60, "blue": 110, "purple": 138, "pink": 162}


def main_hue(img: np.ndarray) -> int | None:
    """The OpenCV hue of most clearly coloured pixels: the mean hue in the fullest of 18 bins of 10 (None
    where nothing is coloured)."""
    coloured = clear_colour(img)
    if not coloured.any():
        return None
    hue = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[..., 0][coloured].astype(int)
    fullest = np.bincount(hue // 10 % 18, minlength=18).argmax()
    return int(round(hue[hue // 10 % 18 == fullest].mean()))


def recolour(img: np.ndarray, colour: str) -> np.ndarray:
    """The picture with the hue of every clearly coloured pixel turned by one angle, so that its main hue
    becomes `colour`'s (PALETTE); greys, black and white stay. Yellow needs light: its pixels are lifted
    towards full value, or dark reds would turn olive."""
    main = main_hue(img)
    if main is None:
        return img.copy()
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    mask = clear_colour(img)
    h = hsv[..., 0].astype(int)
    hsv[..., 0] = np.where(mask, (h + PALETTE[colour] - main) % 180, h).astype(np.uint8)
    if colour == "yellow":
        v = hsv[..., 2].astype(np.float32)
        hsv[..., 2] = np.where(mask, 0.4 * v + 0.6 * 255, v).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _lab_ab(img: np.ndarray) -> np.ndarray:
    """CIELAB a*, b* of every pixel, (H, W, 2) float32."""
    return cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:]


# unit a*b* direction of each colour word: its pure hue at full saturation and value
_DIRECTIONS = {}
for _name, _hue in PALETTE.items():
    _px = cv2.cvtColor(np.array([[[_hue, 255, 255]]], np.uint8), cv2.COLOR_HSV2RGB)
    _ab = _lab_ab(_px)[0, 0]
    _DIRECTIONS[_name] = _ab / np.linalg.norm(_ab)


def colour_score(img: np.ndarray, colour: str) -> float:
    """How much of `colour` the picture holds: its mean a*b* (CIELAB, over all pixels, so white paper counts
    as none and a bigger coloured area as more) projected on the colour's direction."""
    return float(_lab_ab(img).reshape(-1, 2).mean(0) @ _DIRECTIONS[colour])


def steered(first: np.ndarray, second: np.ndarray, colours: tuple[str, str], margin: float = 5.0) -> bool:
    """True when `first` (asked for colours[0]) holds more of colours[0] than `second` (asked for colours[1])
    does, and `second` more of colours[1] than `first`, each by at least `margin` CIELAB units (about twice
    the just-noticeable difference of 2.3: clearly, not barely)."""
    a, b = colours
    return (colour_score(first, a) - colour_score(second, a) >= margin
            and colour_score(second, b) - colour_score(first, b) >= margin)


def colour_caption(words: list[str], caption: str) -> str:
    """'a red and green apple, fruit': the colour names first, as a person would prompt."""
    return f"a {' and '.join(words)} {caption}" if words else caption


def with_recoloured(images: np.ndarray, captions: list[str], copies: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """The pictures as they are and `copies` recoloured copies of each, to colours drawn at random (never
    the picture's own), each captioned with the colours it now shows (uint8 NHWC, captions without colours
    in, with colours out)."""
    rng = np.random.default_rng(seed)
    out, texts = [], []
    names = list(PALETTE)
    for img, cap in zip(images, captions):
        words = colour_words(img)
        out.append(img)
        texts.append(colour_caption(words, cap))
        for colour in rng.permutation([n for n in names if [n] != words[:1]])[:copies]:
            new = recolour(img, str(colour))
            out.append(new)
            texts.append(colour_caption(colour_words(new), cap))
    return np.stack(out), texts
