"""The session: one observable object holding what the user plays, with no Qt, so the window and `stream`
share it.

It holds the live settings (published as one frozen app.live.settings.LiveSettings value), the source,
the adapters and LoRAs the engine holds, paused, recording, the seed lock, the model asked for and the
loaded model's info, and the engine's frame rate. Writers (the window's widgets through app.ui.session.bindings,
OSC, MIDI, a schedule, the saved settings) call set(); observers subscribed with subscribe() are told which
names changed, after the change, on the writer's thread (the window's bridge queues them to the GUI thread).

Names are LiveSettings' fields (prompt, seed, strength, ...), "condition.low" and the like for
ConditionSettings' fields, and the session's own (OWN below). Bounded values are checked against
models.bounds (a seed is any whole number, taken modulo 2**64); a bad one raises UserError and changes
nothing. Every method may be called from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from app.live.settings import PRESETS, ConditionSettings, LiveSettings
from app.live.styles import Preset, builtin
from models.bounds import BOUNDS, new_seed
from models.errors import UserError
from models.opening import EngineOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ModelRequest:
    """The model the user asks for: what the next load loads. The window's pickers show it, the saved settings
    keep it, and the worker loads from it (engine_options makes the engine opener's input)."""

    model: str = ""  # base model spec: folder, hub id or demo ("" : none chosen yet)
    adapters: tuple[str, ...] = ()  # SPEC[:STRENGTH] of each adapter (models.options.adapter_arg), kept when a load fails
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    dtype: str = "auto"  # auto, float32, bfloat16 or float16
    backend: str = "torch"  # who runs CPU frames: torch, auto or openvino
    fast: str = "auto"  # torch's runner (models.runners): auto is CUDA graphs on a GPU, eager on a CPU
    precision: str = "fp32"  # OpenVINO's precision: fp32 or int8

    def engine_options(self, size: int | None = None) -> EngineOptions:
        """What models.opening.open_engine opens for this request at this output size (None: the model's own):
        the one place a request becomes the engine's options."""
        return EngineOptions(model=self.model, controlnets=self.adapters, size=size, device=self.device,
                             dtype=self.dtype, fast=self.fast, backend=self.backend, precision=self.precision)


@dataclass(frozen=True, kw_only=True)
class LoadedAdapter:
    """One adapter the engine holds."""

    name: str  # the engine's name for it (engine.adapters[i].name)
    spec: str  # what it was loaded from: a folder, a hub id, demo-sketch, ...
    strength: float  # its strength when reported, 0..2 (the live one is LiveSettings.adapters[name])
    condition: str  # what it follows (AdapterInfo.condition): sketch, canny, colour-hints, ...


@dataclass(frozen=True, kw_only=True)
class LoadedLora:
    """One LoRA the engine holds."""

    name: str  # the name the user sees (and OSC's /sdxs/lora/NAME and MIDI's lora/NAME use)
    spec: str  # what it was loaded from; LiveSettings.loras is keyed by it
    weight: float  # its weight when reported (the live one is LiveSettings.loras[spec])


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """The loaded model, as the worker reports it after a load."""

    model: str  # the spec it was loaded from
    device: str  # the torch device, like cpu or cuda:0
    dtype: str  # float32, bfloat16, float16
    size: int  # output size in pixels now
    native: int  # the model's own size
    backend: str = "torch"  # torch or openvino
    adapters: tuple[str, ...] = ()  # each adapter's spec, in order
    conditions: tuple[str, ...] = ()  # what each adapter follows, in order
    polarity: str = ""  # how the first adapter's condition draws lines ("" without one)

    @property
    def controlnet(self) -> str | None:
        """The first adapter's spec: the one the overlay and the Train dialog name."""
        return self.adapters[0] if self.adapters else None

    @property
    def condition(self) -> str:
        return self.conditions[0] if self.conditions else ""

    @classmethod
    def from_report(cls, d: Mapping[str, Any]) -> ModelInfo:
        """From the worker's loaded report (a dict until the worker sends this value itself)."""
        return cls(model=str(d["model"]), device=str(d["device"]), dtype=str(d["dtype"]), size=int(d["size"]),
                   native=int(d.get("native") or d["size"]), backend=str(d.get("backend") or "torch"),
                   adapters=tuple(d.get("adapters") or ()), conditions=tuple(d.get("conditions") or ()),
                   polarity=str(d.get("polarity") or ""))

    def with_adapters(self, loaded: Iterable[LoadedAdapter]) -> ModelInfo:
        loaded = tuple(loaded)
        return replace(self, adapters=tuple(a.spec for a in loaded), conditions=tuple(a.condition for a in loaded))


LIVE = frozenset(f.name for f in fields(LiveSettings))
CONDITION = frozenset(f"condition.{f.name}" for f in fields(ConditionSettings))
# the session's own names -> their starting value
OWN: dict[str, Any] = {
    "source": "sketch",  # sketch, camera:N, video:PATH, image:PATH, screen:N[@X,Y,W,H], ndi:NAME
    "paused": False,  # no frames go to the engine
    "recording": False,  # the output is being recorded (asked for; the worker says when it really stops)
    "seed_locked": False,  # the seed keeps its value: New seed, OSC and MIDI leave it
    "request": ModelRequest(),  # the model asked for
    "model": None,  # ModelInfo of the loaded model, None before one loaded
    "adapters_loaded": (),  # tuple[LoadedAdapter, ...] the engine holds, in order
    "loras_loaded": (),  # tuple[LoadedLora, ...] the engine holds, in order
    "presets": (),  # tuple[Preset, ...]: the user's own style presets
    "fps": 0.0,  # frames shown (window) or made (stream) a second, published by the frame path
    "snapshots": 0,  # snapshots asked for so far: each increase asks for one
    "overlay": True,  # the window shows FPS and latency over the output
    "record_side": False,  # a recording holds the source and the output side by side
}
# a bounded name -> its bound in models.bounds
BOUNDED = {"seed": "seed", "strength": "strength", "keep_colours": "keep_colours", "transition": "transition",
           "size": "size", "condition.low": "canny_low", "condition.high": "canny_high", "condition.sigma": "sigma"}

Observer = Callable[[frozenset[str]], None]


class Session:
    """What the user plays, observable and thread-safe (see the module's text)."""

    def __init__(self, live: LiveSettings | None = None, **own: Any):
        unknown = set(own) - set(OWN)
        if unknown:
            raise TypeError(f"unknown session fields: {', '.join(sorted(unknown))}")
        self._lock = threading.RLock()
        self._live = live or LiveSettings()
        self._own = {**OWN, **own}
        self._observers: list[Observer] = []

    # ---- reading ------------------------------------------------------------------------------------

    @property
    def live(self) -> LiveSettings:
        """The live settings now: one frozen value, what the engine gets."""
        return self._live

    def get(self, name: str) -> Any:
        with self._lock:
            if name in LIVE:
                return getattr(self._live, name)
            if name in CONDITION:
                return getattr(self._live.condition, name.split(".", 1)[1])
            if name in self._own:
                return self._own[name]
        raise KeyError(f"no session field {name!r}")

    # the own fields, typed (each a plain read: a field is replaced whole, never changed in place)
    source = property(lambda self: str(self._own["source"]))
    paused = property(lambda self: bool(self._own["paused"]))
    recording = property(lambda self: bool(self._own["recording"]))
    seed_locked = property(lambda self: bool(self._own["seed_locked"]))
    fps = property(lambda self: float(self._own["fps"]))

    @property
    def request(self) -> ModelRequest:
        return self._own["request"]

    @property
    def model(self) -> ModelInfo | None:
        return self._own["model"]

    @property
    def adapters_loaded(self) -> tuple[LoadedAdapter, ...]:
        return self._own["adapters_loaded"]

    @property
    def loras_loaded(self) -> tuple[LoadedLora, ...]:
        return self._own["loras_loaded"]

    @property
    def presets(self) -> tuple[Preset, ...]:
        return self._own["presets"]

    # ---- observing ----------------------------------------------------------------------------------

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """observer(names) after every change, on the writer's thread; returns the call that unsubscribes."""
        with self._lock:
            self._observers.append(observer)

        def unsubscribe() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)

        return unsubscribe

    def _tell(self, changed: set[str]) -> frozenset[str]:
        names = frozenset(changed)
        if names:
            with self._lock:
                observers = list(self._observers)
            for observer in observers:  # outside the lock: an observer may read or write the session
                try:
                    observer(names)
                except Exception:
                    log.exception("a session observer failed on %s", ", ".join(sorted(names)))
        return names

    # ---- writing ------------------------------------------------------------------------------------

    def set(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> frozenset[str]:
        """Change fields (condition.low and the like in `values`); returns the names that changed. A bounded
        value outside its bound raises UserError and changes nothing. Setting `strength` sets every adapter's
        own strength too (the panel's Strength slider, OSC's /sdxs/strength)."""
        values = {**(values or {}), **more}
        return self._change(lambda: values)

    def _change(self, make: Callable[[], Mapping[str, Any]]) -> frozenset[str]:
        """make() runs under the lock, so a read-modify-write (one LoRA's weight in the dict) loses no other
        thread's write; the observers are told after, outside it."""
        with self._lock:
            checked = {k: self._check(k, v) for k, v in make().items()}
            live, cond, own = {}, {}, {}
            for k, v in checked.items():
                if k in LIVE:
                    live[k] = v
                elif k in CONDITION:
                    cond[k.split(".", 1)[1]] = v
                else:
                    own[k] = v
            if "strength" in live and "adapters" not in live and self._live.adapters:
                live["adapters"] = dict.fromkeys(self._live.adapters, live["strength"])
            if cond:
                live["condition"] = replace(live.get("condition", self._live.condition), **cond)
            changed = {k for k, v in live.items() if getattr(self._live, k) != v}
            changed |= {k for k, v in own.items() if self._own[k] != v}
            if "condition" in changed:
                old, new = self._live.condition, live["condition"]
                changed |= {f"condition.{f.name}" for f in fields(ConditionSettings)
                            if getattr(old, f.name) != getattr(new, f.name)}
            if live:
                self._live = replace(self._live, **live)
            self._own.update(own)
        return self._tell(changed)

    def set_live(self, live: LiveSettings) -> frozenset[str]:
        """A whole LiveSettings value (restored settings, a schedule's cue): every field that differs changes."""
        values = {f.name: getattr(live, f.name) for f in fields(LiveSettings)}
        return self.set(values)

    def _check(self, name: str, value: Any) -> Any:
        if name not in LIVE and name not in CONDITION and name not in OWN:
            raise KeyError(f"no session field {name!r}")
        b = BOUNDED.get(name)
        if b is not None:
            value = BOUNDS[b].check(value, name)
            return float(value) if name == "condition.sigma" else value
        if name == "adapters":
            return {str(k): float(BOUNDS["adapter_strength"].check(v, f"adapter {k}'s strength")) for k, v in value.items()}
        if name == "loras":
            return {str(k): float(BOUNDS["lora_weight"].check(v, f"LoRA {k}'s weight")) for k, v in value.items()}
        return value

    # ---- what the user does -------------------------------------------------------------------------

    def roll_seed(self) -> bool:
        """A random new seed, unless the seed is locked; whether it changed."""
        if self.seed_locked:
            return False
        return bool(self.set(seed=new_seed()))

    def set_adapter_strength(self, name: str, strength: float) -> frozenset[str]:
        return self._change(lambda: {"adapters": {**self._live.adapters, name: strength}})

    def set_lora_weight(self, spec: str, weight: float) -> frozenset[str]:
        return self._change(lambda: {"loras": {**self._live.loras, spec: weight}})

    def drop_lora(self, spec: str) -> frozenset[str]:
        return self._change(lambda: {"loras": {k: v for k, v in self._live.loras.items() if k != spec}})

    def style_names(self) -> list[str]:
        """The built-in styles, then the user's presets: what the Style box offers."""
        return list(PRESETS) + [p.name for p in self.presets if p.name not in PRESETS]

    def preset(self, name: str) -> Preset | None:
        user = {p.name: p for p in self.presets}
        return user.get(name) or (builtin(name) if name in PRESETS else None)

    def choose_style(self, name: str) -> frozenset[str]:
        """The user picks a style: its template, and a preset's LoRAs at its weights with every other LoRA at 0
        (kept, so it can come back); a LoRA the engine does not hold yet waits in LiveSettings.loras to load."""
        p = self.preset(name)
        if p is None:
            raise UserError(f"no style {name!r}: choose one of {', '.join(self.style_names())}")
        values: dict[str, Any] = {"style": name, "template": "" if name in PRESETS else p.template}
        if p.loras:
            return self._change(lambda: {**values, "loras": {**dict.fromkeys(self._live.loras, 0.0), **p.loras}})
        return self.set(values)

    def snapshot(self) -> None:
        """Ask for a snapshot of the output (whoever owns the output writes it)."""
        self._change(lambda: {"snapshots": self._own["snapshots"] + 1})

    def has_colour(self) -> bool:
        """A colour-hint adapter is loaded (the colour brush, Keep colours and Fill shapes need one)."""
        from models.options import COLOUR_HINTS

        return any(a.condition == COLOUR_HINTS for a in self.adapters_loaded)

    def lora_names(self) -> dict[str, str]:
        """The name the user sees -> the spec, of every LoRA the engine holds."""
        return {lo.name: lo.spec for lo in self.loras_loaded}
