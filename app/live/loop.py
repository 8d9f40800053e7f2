"""The live loop without Qt: what the window's worker and `python main.py stream` share.

    frame (sketch canvas, camera, video, image) -> one condition per adapter (as each adapter wants it)
      -> unchanged? reuse the last output : engine.step -> output

Each adapter sees its own condition (LiveLoop.conditions): a line adapter the frame through its own extractor
(or the canvas's drawing as it is); a colour-hint adapter (condition "colour-hints") the canvas's colour layer
(Frame.layers["colour"], white without one; each dab grown to fill the shape of the drawing it sits in when
LiveSettings.fill_shapes, models.hints.fill_shapes) at its own strength, or for a camera, video or screen the
frame's own colours (models.hints.frame_hints) at LiveSettings.keep_colours (0: white, at strength 0).

The window and `stream` run a LiveLoop on the frame path's thread (app/live/framepath.py), which hands it only
the newest frame. A new LiveSettings value is applied between frames (under the path's lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from app.live.settings import ConditionSettings, LiveSettings
from app.live.steady import make_stabiliser
from models import conditions
from models.hints import fill_shapes, frame_hints
from models.loading import Adapter
from models.recipe import Settings, Timings
from models.transition import Transition

if TYPE_CHECKING:
    from models.engine import Engine


class EngineLike(Protocol):
    """What the live loop uses of an engine (models.engine.Engine; tests run it on tiny parts with a stand-in
    runner, models.tiny.tiny_engine). tests/test_recipe.py checks that the loop uses every member and Engine
    has them all."""

    control_scale: float  # every adapter's strength at once (reads the first's)
    profile: bool  # time each stage of a frame (the eager runner)
    transition: Transition  # .seconds a change glides over, .progress of the glide

    @property
    def adapters(self) -> list[Adapter]: ...  # in order (each .name, .info, .colour_hints), maybe empty
    @property
    def adapter_strengths(self) -> dict[str, float]: ...  # adapter name -> strength 0..2, in order
    @property
    def settings(self) -> Settings: ...  # everything the picture depends on besides the frame, as one value
    @property
    def gliding(self) -> bool: ...  # a prompt or seed transition runs: each frame differs
    @property
    def timings(self) -> Timings: ...  # the last frame's milliseconds, by stage
    @property
    def fast(self) -> str: ...  # torch's runner now: eager, fused, graphs or compile
    @property
    def size(self) -> int: ...  # output size in pixels
    @property
    def native_size(self) -> int: ...  # the model's own size (a size of 0 in the settings means this)

    def set_prompt(self, prompt: str) -> None: ...
    def set_seed(self, seed: int) -> None: ...
    def set_size(self, size: int) -> None: ...
    def set_adapter_strength(self, name: str, strength: float) -> None: ...  # live: never rebuilds a runner
    def set_lora_weight(self, name: str, weight: float) -> None: ...
    def set_fast(self, mode: str = "auto") -> str: ...  # returns the runner kind used
    # one condition image, or one per adapter in adapters' order; strengths: this frame's, None = the adapter's own
    def step(self, frame: np.ndarray | list[np.ndarray], strengths: list[float | None] | None = None) -> np.ndarray: ...


# load(options, progress, say, before_warm_up) -> engine, as models.opening.open_engine (the default) does it
Loader = Callable[..., "Engine"]


def extract(image: np.ndarray, settings: ConditionSettings, adapter_condition: str = "sketch", drawn: bool = False) -> np.ndarray:
    """The condition image of an (already oriented) frame, black lines on white (the engine inverts it for
    white_on_black adapters). drawn: the frame is a drawing (the sketch canvas), used as it is."""
    image = np.ascontiguousarray(image[:, :, :3])
    if drawn:
        return image
    mode = adapter_condition if settings.mode == "auto" else settings.mode
    if mode == "canny":
        low, high = sorted((int(settings.low), int(settings.high)))
        return conditions.canny(image, low, high)
    if mode == "sketch":
        return conditions.sketch(image, settings.sigma)
    return conditions.extractor(mode)(image)


class ChangeDetector:
    """Tells whether a frame differs from the last one that was rendered.

    Camera and video frames are compared on a small grey thumbnail: below `threshold` (mean absolute
    difference in grey levels, 0-255) they count as unchanged, which absorbs sensor noise. Drawings
    (exact=True) count as changed when any pixel differs, so every stroke renders."""

    def __init__(self, threshold: float = 1.0):
        self.threshold = threshold
        self._last: np.ndarray | None = None
        self._exact: np.ndarray | None = None

    def changed(self, frame: np.ndarray, exact: bool = False) -> bool:
        if exact:
            same = self._exact is not None and self._exact.shape == frame.shape and np.array_equal(self._exact, frame)
            if not same:
                self._exact = frame.copy()
            self._last = None
            return not same
        small = cv2.resize(frame[:, :, :3], (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
        if self._last is not None and float(np.abs(small - self._last).mean()) < self.threshold:
            return False
        self._last, self._exact = small, None
        return True

    def reset(self) -> None:
        self._last = self._exact = None


@dataclass
class Frame:
    """One source frame on its way to the engine."""

    image: np.ndarray  # uint8 RGB, owned by this object (copied from any Qt or OpenCV buffer)
    captured: float  # time.perf_counter() when the source produced it, for end-to-end latency
    drawn: bool = False  # True for the sketch canvas: the image already is the condition
    seq: int = 0  # the source's frame number
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # the canvas's other layers: "colour", uint8 RGB on white


@dataclass
class Result:
    """What the loop gives back for one frame."""

    output: np.ndarray  # uint8 RGB, size x size
    condition: np.ndarray  # uint8 RGB, the image the first adapter saw, in its polarity
    source: np.ndarray  # the frame as it came in (after mirroring)
    captured: float  # the frame's capture time
    reused: bool  # True when the input was unchanged and the last output was reused
    timings: dict = field(default_factory=dict)  # ms by stage: extract, condition, unet, decode, output, total
    frames: int = 0  # frames the engine has processed so far
    glide: float = 1.0  # 0..1 along a running prompt or seed transition (models.transition); 1 when still
    conditions: list[np.ndarray] = field(default_factory=list)  # uint8 RGB, what each adapter saw, in its polarity


class LiveLoop:
    """Holds an engine and turns frames into results; the same code for the window and for stream.

    fast: the engine's per-frame runner (models.runners: CUDA graphs on a GPU by default). It is chosen before
    the first settings apply, so settings remembered with per-stage timings on take effect at once."""

    def __init__(self, engine: EngineLike, settings: LiveSettings | None = None, fast: str = "auto"):
        self.engine = engine
        self.fast = engine.set_fast(fast)  # the path wanted when not profiling
        self.settings = LiveSettings()
        self.detector = ChangeDetector()
        self.frames = 0  # frames the engine processed (not counting reused ones)
        self.first_start = 0.0  # perf_counter when the engine began its first frame
        self.last_end = 0.0  # perf_counter when it finished its latest frame
        self._last: Result | None = None
        self._last_settings: Settings | None = None  # the engine's settings value the last output was made with
        self._last_strengths: list[float | None] = []  # the per-frame strengths (keep colours) it was made with
        self.steady = None  # app.live.steady.Stabiliser while settings.steady is on
        self._applied_loras: set[str] = set()  # LoRA names whose weight this loop has set
        self.apply(settings or LiveSettings())

    def apply(self, settings: LiveSettings) -> None:
        """Store new settings; the engine picks them up now (cheap: cached prompt, noise per seed)."""
        e = self.engine
        e.set_prompt(settings.styled)
        e.set_seed(settings.seed)
        if settings.adapters:  # each adapter's own strength; a name not loaded (yet) is left for later
            held = e.adapter_strengths
            for name, strength in settings.adapters.items():
                if name in held and held[name] != strength:
                    e.set_adapter_strength(name, strength)  # a buffer fill or graph input: no rebuild
        else:
            e.control_scale = float(settings.strength)
        e.profile = bool(settings.profile)
        e.transition.seconds = max(0.0, float(settings.transition))
        for name, weight in settings.loras.items():
            if self.settings.loras.get(name) != weight or name not in self._applied_loras:
                e.set_lora_weight(name, weight)  # a buffer fill: no rebuild
                self._applied_loras.add(name)
        wanted = "eager" if settings.profile else self.fast  # per-stage timings need the plain recipe
        if e.fast != wanted:
            e.set_fast(wanted)
        self.detector.threshold = settings.threshold
        if settings.steady != self.settings.steady or (self.steady is None and settings.steady is not None):
            self.steady = make_stabiliser(settings.steady)
        self.settings = settings
        size = settings.size or e.native_size  # 0: the model's own
        if size and size != e.size:
            e.set_size(size)  # last: a bad size raises after everything else was applied

    @property
    def adapter_condition(self) -> str:
        """The condition of the first adapter that is not a colour-hint one (sketch without one)."""
        lines = [a for a in self.engine.adapters if not a.colour_hints]
        return lines[0].info.condition if lines else "sketch"

    def conditions(self, frame: Frame, source: np.ndarray) -> tuple[list[np.ndarray | None], list[float | None]]:
        """Each adapter's condition image and this frame's strength for it (None: its own), in engine.adapters'
        order; a live frame's colour hints are None here (made by colour_hints only when the frame renders).
        Without adapters: the frame's line condition, as a text-only model ignores it anyway."""
        s, made = self.settings, {}
        conds: list[np.ndarray | None] = []
        strengths: list[float | None] = []

        def lines(condition: str) -> np.ndarray:
            if condition not in made:
                made[condition] = extract(source, s.condition, condition, frame.drawn)
            return made[condition]

        for a in self.engine.adapters:
            if not a.colour_hints:
                conds.append(lines(a.info.condition))
                strengths.append(None)
            elif frame.drawn:  # the canvas's colour layer at the adapter's own strength
                layer = frame.layers.get("colour")
                if layer is None:
                    conds.append(_white(source))
                else:
                    layer = np.ascontiguousarray(layer[:, :, :3])
                    conds.append(fill_shapes(source, layer) if s.fill_shapes else layer)
                strengths.append(None)
            else:  # a live frame: its own colours at the keep-colours strength
                conds.append(None if s.keep_colours > 0 else _white(source))
                strengths.append(float(s.keep_colours))
        return (conds or [lines(self.adapter_condition)]), strengths

    def process(self, frame: Frame) -> Result:
        """One frame through condition extraction, change detection and the engine."""
        t0 = time.perf_counter()
        s = self.settings
        source = s.condition.orient(frame.image, frame.drawn)
        conds, strengths = self.conditions(frame, source)
        main = next((i for i, c in enumerate(conds) if c is not None and not _colour_at(self.engine, i)), 0)
        steady = None if frame.drawn else self.steady  # a drawing is exact: never smoothed or skipped
        if steady is not None and conds[main] is not None:
            conds[main] = steady.condition(conds[main], source)
        t1 = time.perf_counter()
        e = self.engine
        if frame.drawn:  # every layer counts: a colour blob alone is a change
            probe = conds[0] if len(conds) == 1 else np.concatenate([c.reshape(-1) for c in conds if c is not None])
            changed = self.detector.changed(probe, exact=True)
        else:
            probe = conds[main] if conds[main] is not None else source
            changed = steady.changed(probe) if steady is not None else self.detector.changed(probe)
        gliding = e.gliding  # a transition changes every frame, even for a still input
        settings = e.settings  # a value: equal settings, the same picture (models.recipe.Settings)
        same = settings == self._last_settings and strengths == self._last_strengths
        if self._last is not None and not changed and same and not gliding:
            last = self._last
            return Result(last.output, last.condition, source, frame.captured, True,
                          {"extract": 1000 * (t1 - t0), "total": 1000 * (time.perf_counter() - t0)}, self.frames,
                          conditions=last.conditions)
        if not changed and steady is None:  # settings changed but the frame did not: render it anyway
            self.detector.reset()
            self.detector.changed(probe, exact=frame.drawn)
        conds = [colour_hints(source) if c is None else c for c in conds]  # a live frame's colours, only now
        t1 = time.perf_counter()
        if not self.frames:
            self.first_start = t1
        cond = conds[main]
        frames = conds[0] if len(conds) == 1 else conds  # one adapter (or none): the one image
        output = e.step(frames, strengths=strengths) if any(v is not None for v in strengths) else e.step(frames)
        if steady is not None:
            output = steady.output(output, cond, fresh=settings != self._last_settings)
        if e.fast == "eager" and not s.profile:
            self.fast = "eager"  # the engine fell back from a failed fast path: do not ask for it again
        t2 = self.last_end = time.perf_counter()
        self.frames += 1
        timings = e.timings.as_dict()
        timings["extract"] = 1000 * (t1 - t0)
        timings["total"] = 1000 * (t2 - t0)
        seen = [255 - c if a.info.inverted else c for a, c in zip(e.adapters, conds)] or conds
        glide = e.transition.progress
        self._last = Result(output, seen[0], source, frame.captured, False, timings, self.frames, glide, seen)
        self._last_settings, self._last_strengths = settings, strengths
        return self._last

    @property
    def fps(self) -> float:
        """Mean rate of the engine's frames: frames / wall time from the start of the first to the end of the last."""
        elapsed = self.last_end - self.first_start
        return self.frames / elapsed if self.frames and elapsed > 0 else 0.0


def colour_hints(source: np.ndarray) -> np.ndarray:
    """A live frame's colour hints: its own colours, flat, white where it is white (models.hints.frame_hints)."""
    return frame_hints(np.ascontiguousarray(source[:, :, :3]))


def _colour_at(engine: EngineLike, i: int) -> bool:
    adapters = engine.adapters
    return i < len(adapters) and adapters[i].colour_hints


def _white(source: np.ndarray) -> np.ndarray:
    """No colour hint: a white image of the frame's size."""
    return np.full((*source.shape[:2], 3), 255, np.uint8)
