"""A steadier picture from a camera, a video or the screen: keep a still scene still while motion still shows.

A one-step model redraws the whole picture every frame, and sensor noise moves the extracted lines a
little every frame, so a still camera flickers. Three stages, each cheap, all motion-aware so that a moving
object is neither smoothed nor held back:

    condition -> 1. smooth: a running average of the condition where it is still; pixels that change a lot
                    (motion) take the new value at once
              -> 2. skip: StreamDiffusion's similarity filter, on tile means (noise averages out in a tile,
                    a moving object does not): no tile changed since the last render -> reuse its output
              -> engine
    output    -> 3. blend: where the condition is still, keep part of the previous output

The live loop (app.live.loop.LiveLoop) calls condition(), changed() and output() for every camera, video
and screen frame; drawings from the canvas go around it. `python main.py bench steady` measures it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from models.conditions import fit_square
from models.errors import UserError


@dataclass(frozen=True, kw_only=True)
class SteadySettings:
    """How much to steady the picture. Defaults chosen with `bench steady` (README: A steadier picture)."""

    smooth: float = 0.15  # weight of the newest condition in its running average where still (1: no smoothing)
    motion: float = 16.0  # grey levels of the camera frame (after a small blur): a larger change is motion, taken at once
    skip: float = 3.0  # grey levels: reuse the last output while no tile's mean moved more (0: render every frame)
    tiles: int = 16  # the skip test compares tile means on a tiles x tiles grid
    blend: float = 0.7  # share of the previous output kept where the condition is still (0: off)
    spread: int = 9  # pixels around a moving area that count as moving too (the model redraws around an object)

    @property
    def active(self) -> bool:
        return self.smooth < 1 or self.skip > 0 or self.blend > 0


def parse_steady(text: str | None) -> SteadySettings | None:
    """--steady: on (the measured defaults), off, or NAME=VALUE pairs such as smooth=0.5,skip=2,blend=0."""
    t = (text or "").strip().lower()
    if t in ("", "off", "none", "0"):
        return None
    if t in ("on", "default", "1"):
        return SteadySettings()
    names = {f.name: f.type for f in fields(SteadySettings)}
    values = {}
    for part in t.split(","):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or name not in names:
            raise UserError(f"--steady {text!r}: use on, off or NAME=VALUE pairs with names from {', '.join(names)}")
        try:
            values[name] = int(value) if name in ("tiles", "spread") else float(value)
        except ValueError:
            raise UserError(f"--steady {name}={value!r} must be a number") from None
    s = SteadySettings(**values)
    if not 0 < s.smooth <= 1 or not 0 <= s.blend < 1 or s.skip < 0 or s.motion <= 0 or s.tiles < 1 or s.spread < 0:
        raise UserError(f"--steady {text!r}: smooth must be in (0, 1], blend in [0, 1), skip >= 0, motion > 0, tiles >= 1")
    return s


def describe(s: SteadySettings | None) -> str:
    return "off" if s is None or not s.active else ",".join(f"{k}={v:g}" for k, v in asdict(s).items())


class Stabiliser:
    """The per-frame state of the three stages; one per live loop, reset when the source changes."""

    def __init__(self, settings: SteadySettings):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._avg: np.ndarray | None = None  # float32 running average of the condition
        self._grey: np.ndarray | None = None  # float32 running average of the blurred grey frame (finds motion)
        self._moving: np.ndarray | None = None  # float32 0..1 per condition pixel: how much it moved this frame
        self._ref: np.ndarray | None = None  # tile means of the condition last rendered
        self._out: np.ndarray | None = None  # the last output given back
        self.skipped = 0  # frames the skip test reused an output for

    def condition(self, cond: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
        """1. The smoothed condition (uint8 RGB), and which pixels moved (for the output blend).

        frame: the camera frame the condition came from (same size). Motion is found on it rather than on the
        condition, because extractors amplify noise (the line drawing turns a dark flat area into speckle)."""
        s = self.settings
        new = cond.astype(np.float32)
        if frame is not None and frame.shape[:2] != cond.shape[:2]:  # an extractor that resizes: use the condition
            frame = None
        grey = cv2.GaussianBlur(cv2.cvtColor((frame if frame is not None else cond)[:, :, :3], cv2.COLOR_RGB2GRAY)
                                .astype(np.float32), (0, 0), 1.5)  # noise blurs away, motion stays
        if self._avg is None or self._avg.shape != new.shape or self._grey.shape != grey.shape:
            self._avg, self._grey, self._ref, self._out = new, grey, None, None
            self._moving = np.ones(new.shape[:2], np.float32)
            return cond
        moving = np.abs(grey - self._grey) > s.motion
        if s.spread:
            k = 2 * s.spread + 1
            moving = cv2.dilate(moving.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        self._moving = cv2.GaussianBlur(moving.astype(np.float32), (0, 0), 2.0)
        still = 1.0 - self._moving
        # a moving pixel takes the new value, a still one moves toward it by `smooth`
        w = s.smooth * still[:, :, None] + self._moving[:, :, None]
        self._avg += w * (new - self._avg)
        self._grey += w[:, :, 0] * (grey - self._grey)
        return np.ascontiguousarray(np.rint(self._avg).astype(np.uint8))

    def changed(self, cond: np.ndarray) -> bool:
        """2. False when no tile of the condition moved more than `skip` grey levels since the last render."""
        s = self.settings
        if s.skip <= 0 or self._ref is None:
            return True
        tiles = _tile_means(cond, s.tiles)
        same = tiles.shape == self._ref.shape and float(np.abs(tiles - self._ref).max()) <= s.skip
        self.skipped += same
        return not same

    def output(self, out: np.ndarray, cond: np.ndarray, fresh: bool = False) -> np.ndarray:
        """3. The output blended with the previous one where still; remembers cond as the last rendered.
        fresh: the settings changed (prompt, seed...), so the previous output is not blended in."""
        s = self.settings
        self._ref = _tile_means(cond, s.tiles)
        prev, self._out = self._out, out
        if s.blend <= 0 or fresh or prev is None or prev.shape != out.shape or self._moving is None:
            return out
        moving = fit_square(np.repeat((self._moving * 255).astype(np.uint8)[:, :, None], 3, axis=2), out.shape[0])
        keep = s.blend * (1.0 - moving[:, :, :1].astype(np.float32) / 255)
        blended = out + keep * (prev.astype(np.float32) - out)
        self._out = np.ascontiguousarray(np.rint(blended).astype(np.uint8))
        return self._out


def make_stabiliser(settings: SteadySettings | None) -> Stabiliser | None:
    return Stabiliser(settings) if settings is not None and settings.active else None


def _tile_means(cond: np.ndarray, tiles: int) -> np.ndarray:
    grey = cond[:, :, :3].mean(axis=2, dtype=np.float32)
    return cv2.resize(grey, (tiles, tiles), interpolation=cv2.INTER_AREA)
