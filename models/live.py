"""The live loop without Qt: what the window's worker and `python main.py stream` share.

    frame (sketch canvas, camera, video, image) -> condition (as the adapter wants it)
      -> unchanged? reuse the last output : engine.step -> output

The window wraps a LiveLoop in its worker thread; the relay hands it only the newest frame (ping-pong:
one frame in flight, one pending, no queue). Settings (prompt, seed, size, strength, adapter) are stored
when they change and applied before the next frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import cv2
import numpy as np

from models import conditions
from models.errors import UserError

CONDITION_MODES = ("auto", "sketch", "canny", "none")  # what the window offers for camera, video and image sources


class EngineLike(Protocol):
    """What the live loop needs from an engine: models.engine.Engine, or FakeEngine in tests and the ui bench."""

    control_scale: float
    profile: bool
    timings: Any
    adapter: Any
    device: Any
    dtype: Any
    size: int
    prompt: str | None
    seed: int

    def set_prompt(self, prompt: str) -> None: ...
    def set_seed(self, seed: int) -> None: ...
    def set_size(self, size: int) -> None: ...
    def set_adapter(self, adapter: Any) -> None: ...
    def step(self, frame: np.ndarray) -> np.ndarray: ...


# load(model, controlnet, device, dtype, progress) -> engine; Engine.load by default
Loader = Callable[[str, "str | None", str, str, Any], EngineLike]


def real_loader(model: str, controlnet: str | None, device: str, dtype: str, progress: Any = None,
                loras: Sequence[str] = ()) -> EngineLike:
    from models.common_args import quiet_libraries
    from models.engine import Engine

    quiet_libraries()
    return Engine.load(model, controlnet, device, dtype, progress, loras)


def set_fast(engine: EngineLike, mode: str = "auto") -> str:
    """Choose the engine's per-frame path (models.fast: CUDA graphs on a GPU by default); 'eager' for engines
    without one. Returns the mode in use."""
    if not hasattr(engine, "set_fast"):
        return "eager"
    return engine.set_fast(mode)


@dataclass
class ConditionSettings:
    """How a camera, video or image frame becomes the adapter's input (the canvas is used as drawn)."""

    mode: str = "auto"  # auto (the adapter's own condition), sketch, canny or none (the frame as it is)
    low: int = 100  # canny: lower hysteresis threshold
    high: int = 200  # canny: upper hysteresis threshold
    sigma: float = 6.0  # sketch: blur radius of the line-drawing filter; larger gives softer, thicker lines
    mirror: bool = False  # flip the frame left-right first, as a mirror (for a front camera)


def extract(frame: np.ndarray, settings: ConditionSettings, adapter_condition: str = "sketch", drawn: bool = False) -> np.ndarray:
    """The condition image, black lines on white (the engine inverts it for white_on_black adapters).

    drawn: the frame is a drawing (the sketch canvas), used as it is."""
    if settings.mirror and not drawn:
        frame = frame[:, ::-1]
    if drawn:
        return np.ascontiguousarray(frame[:, :, :3])
    mode = adapter_condition if settings.mode == "auto" else settings.mode
    if mode == "canny":
        low, high = sorted((int(settings.low), int(settings.high)))
        return conditions.canny(np.ascontiguousarray(frame), low, high)
    if mode == "sketch":
        return conditions.sketch(np.ascontiguousarray(frame), settings.sigma)
    if mode == "none":
        return np.ascontiguousarray(frame[:, :, :3])
    return conditions.extractor(mode)(np.ascontiguousarray(frame))


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


class Relay:
    """Latest frame wins, by ping-pong: at most one frame in flight, only the newest kept pending.

    offer() returns the item to send now (the worker is idle) or None (it was kept as the pending one,
    replacing any older pending item). done() is called when the worker finishes; it returns the pending
    item to send next, or None. Thread-safe, so the GUI and a test can drive it from anywhere."""

    def __init__(self):
        self._lock = threading.Lock()
        self._busy = False
        self._pending: Any = None
        self.dropped = 0  # pending items replaced by newer ones before they were sent

    @property
    def busy(self) -> bool:
        return self._busy

    def offer(self, item: Any) -> Any:
        with self._lock:
            if not self._busy:
                self._busy = True
                return item
            if self._pending is not None:
                self.dropped += 1
            self._pending = item
            return None

    def done(self) -> Any:
        with self._lock:
            item, self._pending = self._pending, None
            self._busy = item is not None
            return item

    def clear(self) -> None:
        with self._lock:
            self._pending = None
            self._busy = False


@dataclass
class Frame:
    """One source frame on its way to the engine."""

    image: np.ndarray  # uint8 RGB, owned by this object (copied from any Qt or OpenCV buffer)
    captured: float  # time.perf_counter() when the source produced it, for end-to-end latency
    drawn: bool = False  # True for the sketch canvas: the image already is the condition
    seq: int = 0  # the source's frame number


@dataclass
class Result:
    """What the loop gives back for one frame."""

    output: np.ndarray  # uint8 RGB, size x size
    condition: np.ndarray  # uint8 RGB, the image the adapter saw, in its polarity
    source: np.ndarray  # the frame as it came in (after mirroring)
    captured: float  # the frame's capture time
    reused: bool  # True when the input was unchanged and the last output was reused
    timings: dict = field(default_factory=dict)  # ms by stage: extract, condition, unet, decode, output, total
    frames: int = 0  # frames the engine has processed so far
    glide: float = 1.0  # 0..1 along a running prompt or seed transition (models.transition); 1 when still


@dataclass
class LiveSettings:
    """Everything a user can change while the loop runs; applied before the next frame."""

    prompt: str = ""  # the text prompt
    seed: int = 0  # fixes the noise, so a still input gives a still output
    strength: float = 0.8  # ControlNet conditioning scale, 0..2
    size: int | None = None  # output size in pixels (None: the model's own)
    condition: ConditionSettings = field(default_factory=ConditionSettings)  # frame -> condition
    threshold: float = 1.0  # ChangeDetector threshold (grey levels)
    profile: bool = False  # per-stage timings (synchronises the GPU each stage)
    transition: float = 0.5  # seconds a prompt or seed change glides over (models.transition); 0 jumps
    loras: dict[str, float] = field(default_factory=dict)  # loaded LoRA (name or spec) -> weight, live (engine.add_lora loads)


class LiveLoop:
    """Holds an engine and turns frames into results; the same code for the window and for stream."""

    def __init__(self, engine: EngineLike, settings: LiveSettings | None = None):
        self.engine = engine
        self.settings = LiveSettings()
        self.detector = ChangeDetector()
        self.frames = 0  # frames the engine processed (not counting reused ones)
        self.engine_seconds = 0.0  # time spent in engine.step
        self.first_start = 0.0  # perf_counter when the engine began its first frame
        self.last_end = 0.0  # perf_counter when it finished its latest frame
        self._last: Result | None = None
        self._last_key: tuple | None = None
        self._fast_before: str | None = None  # the fast mode to go back to when profiling ends
        self._applied_loras: set[str] = set()  # LoRA names whose weight this loop has set
        self.apply(settings or LiveSettings())

    def apply(self, settings: LiveSettings) -> None:
        """Store new settings; the engine picks them up now (cheap: cached prompt, noise per seed)."""
        e = self.engine
        e.set_prompt(settings.prompt)
        e.set_seed(settings.seed)
        e.control_scale = float(settings.strength)
        e.profile = bool(settings.profile)
        if hasattr(e, "transition"):
            e.transition.seconds = max(0.0, float(settings.transition))
        for name, weight in settings.loras.items():
            if self.settings.loras.get(name) != weight or name not in self._applied_loras:
                e.set_lora_weight(name, weight)  # a buffer fill: no rebuild
                self._applied_loras.add(name)
        fast = getattr(e, "fast", "eager")
        if settings.profile and fast != "eager":  # per-stage timings need the plain recipe
            self._fast_before = fast
            e.set_fast("eager")
        elif not settings.profile and self._fast_before:
            e.set_fast(self._fast_before)
            self._fast_before = None
        self.detector.threshold = settings.threshold
        self.settings = replace(settings, condition=replace(settings.condition), loras=dict(settings.loras))
        size = settings.size or getattr(getattr(e, "base", None), "native_size", None)  # None: the model's own
        if size and size != e.size:
            e.set_size(size)  # last: a bad size raises after everything else was applied

    def set_adapter(self, adapter: Any) -> None:
        self.engine.set_adapter(adapter)
        self._last_key = None

    @property
    def adapter_condition(self) -> str:
        adapter = self.engine.adapter
        return adapter.info.condition if adapter is not None else "sketch"

    @property
    def invert(self) -> bool:
        adapter = self.engine.adapter
        return adapter is not None and adapter.info.polarity == "white_on_black"

    def process(self, frame: Frame) -> Result:
        """One frame through condition extraction, change detection and the engine."""
        t0 = time.perf_counter()
        s = self.settings
        source = frame.image[:, ::-1] if s.condition.mirror and not frame.drawn else frame.image
        cond = extract(frame.image, s.condition, self.adapter_condition, frame.drawn)
        t1 = time.perf_counter()
        e = self.engine
        key = (e.prompt, e.seed, e.size, e.control_scale, id(e.adapter), tuple(getattr(e, "lora_weights", {}).items()))
        changed = self.detector.changed(cond, exact=frame.drawn)
        if self._last is not None and not changed and key == self._last_key and not getattr(e, "gliding", False):
            last = self._last
            return Result(last.output, last.condition, source, frame.captured, True,
                          {"extract": 1000 * (t1 - t0), "total": 1000 * (time.perf_counter() - t0)}, self.frames)
        if not changed:  # settings changed but the frame did not: render it anyway
            self.detector.reset()
            self.detector.changed(cond, exact=frame.drawn)
        if not self.frames:
            self.first_start = t1
        try:
            output = e.step(cond)
        except Exception as err:  # the fast path (CUDA graphs, compile) can fail on a new shape: fall back once
            if getattr(e, "fast", "eager") == "eager":
                raise
            logging.getLogger("sdxs.live").warning("fast path %s failed (%s); using the eager recipe", e.fast, err)
            e.set_fast("eager")
            output = e.step(cond)
        t2 = self.last_end = time.perf_counter()
        self.frames += 1
        self.engine_seconds += t2 - t1
        timings = _timings_dict(e.timings)
        timings["extract"] = 1000 * (t1 - t0)
        timings["total"] = 1000 * (t2 - t0)
        shown = 255 - cond if self.invert else cond
        glide = e.transition.progress if hasattr(e, "transition") else 1.0
        self._last = Result(output, shown, source, frame.captured, False, timings, self.frames, glide)
        self._last_key = key
        return self._last

    @property
    def fps(self) -> float:
        """Mean rate of the engine's frames: frames / wall time from the start of the first to the end of the last."""
        elapsed = self.last_end - self.first_start
        return self.frames / elapsed if self.frames and elapsed > 0 else 0.0


def _timings_dict(t: Any) -> dict:
    if t is None:
        return {}
    if isinstance(t, dict):
        return dict(t)
    return {k: float(v) for k, v in vars(t).items() if isinstance(v, (int, float)) and v}


class FakeEngine:
    """A stand-in engine for tests and the ui benchmark: sleeps `delay` seconds, then returns a tinted copy of
    the condition (so the output follows the input), the way the real engine's interface does."""

    def __init__(self, delay: float = 0.0, size: int = 256, condition: str = "sketch", polarity: str = "black_on_white"):
        from models.loading import AdapterInfo

        self.delay = delay
        self.control_scale = 0.8
        self.profile = False
        self.timings: dict = {}
        self.device = "fake"
        self.dtype = "none"
        self.size = size
        self.seed = 0
        self.prompt = ""
        self.adapter = _FakeAdapter(AdapterInfo(condition=condition, polarity=polarity))
        self.steps = 0

    def set_prompt(self, prompt: str) -> None:
        self.prompt = prompt

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def set_size(self, size: int) -> None:
        from models.engine import check_size

        self.size = check_size(size)

    def set_adapter(self, adapter: Any) -> None:
        self.adapter = adapter

    def step(self, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        img = conditions.fit_square(frame, self.size).astype(np.float32)
        tint = np.array([1.0, 0.55 + 0.45 * ((self.seed % 7) / 6), 0.35], np.float32)
        self.steps += 1
        self.timings = {"total": 1000 * (time.perf_counter() - t0)}
        return np.ascontiguousarray((img * tint).clip(0, 255).astype(np.uint8))


@dataclass
class _FakeAdapter:
    info: Any
    spec: str = "fake"


def parse_size(size: Any) -> int | None:
    if size in (None, "", 0):
        return None
    try:
        return int(size)
    except (TypeError, ValueError):
        raise UserError(f"size {size!r} is not a number: use a multiple of 8 such as 256 or 512") from None
