"""What the window remembers between runs (QSettings): the session's settings (the live settings value, the model
request's pickers, the seed lock, the presets, overlay and side by side) plus the window's own state.
to_session puts them into the session and from_session takes them back out; the widgets only follow the session."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field, fields

from PySide6.QtCore import QByteArray, QSettings

from app.live.session import Session
from app.live.settings import LiveSettings
from app.live.steady import SteadySettings
from app.live.styles import read_presets, write_presets
from app.ui.qtapp import APPLICATION, ORGANIZATION


@dataclass
class Persisted:
    """The window's remembered state; every leaf field is one QSettings key (nested values as group/key)."""

    # prompt, style, seed, strength, size, condition, ...; a steady picture is on until turned off
    live: LiveSettings = field(default_factory=lambda: LiveSettings(steady=SteadySettings()))
    model: str = ""  # base model spec last loaded ("" lets the window pick a default)
    controlnet: str = ""  # the first adapter's spec ("" for none; what versions before the adapter list read)
    adapters: dict[str, float] = field(default_factory=dict)  # adapter spec -> strength, in order (JSON)
    recent_models: str = ""  # recently used model specs, "\n"-separated
    recent_adapters: str = ""  # recently used adapter specs, "\n"-separated
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    dtype: str = "auto"  # auto, float32, bfloat16, float16
    backend: str = "torch"  # who runs CPU frames: torch, auto or openvino
    seed_locked: bool = False  # lock the seed against changes
    source: str = "sketch"  # sketch, camera:N, video:PATH, image:PATH or screen:N[@X,Y,W,H]
    brush: float = 6.0  # the line brush's width in canvas pixels
    colour_brush: float = 24.0  # the colour brush's width in canvas pixels
    view: str = "side"  # side (source and output) or output (output only)
    overlay: bool = True  # show FPS and latency over the output
    record_side: bool = False  # record source and output side by side
    geometry: str = ""  # the window's geometry (hex of QWidget.saveGeometry)
    splitter: str = ""  # the source/output splitter's state (hex)
    presets: str = ""  # the user's style presets: a JSON list of {name, template, loras} (app.live.styles)
    midi: str = ""  # MIDI learn's bindings: a JSON list of {kind, channel, number, target} (app.live.midi)
    engine_url: str = ""  # the engine server connected to last (Model > Connect to engine...); its token is never saved

    @classmethod
    def load(cls, qs: QSettings) -> Persisted:
        return _load(cls(), qs, "")

    def save(self, qs: QSettings) -> None:
        _save(self, qs, "")
        qs.sync()


def to_session(saved: Persisted, session: Session) -> None:
    """The remembered settings into the session (the bound widgets, OSC and MIDI see them there)."""
    session.set_live(saved.live)
    request = dataclasses.replace(session.request, model=saved.model, device=saved.device, dtype=saved.dtype,
                                  backend=saved.backend)
    session.set(seed_locked=saved.seed_locked, overlay=saved.overlay, record_side=saved.record_side,
                presets=tuple(read_presets(saved.presets)), request=request)


def from_session(saved: Persisted, session: Session) -> None:
    """The session's settings into saved (the window's own state, such as its geometry, it sets itself)."""
    req = session.request
    saved.live, saved.presets = session.live, write_presets(list(session.presets))
    saved.device, saved.dtype, saved.backend = req.device, req.dtype, req.backend
    saved.seed_locked = session.seed_locked
    saved.overlay, saved.record_side = bool(session.get("overlay")), bool(session.get("record_side"))


def _optional(cls, name: str):
    """The dataclass X of a field declared `X | None` (such as LiveSettings.steady), else None."""
    args = typing.get_args(typing.get_type_hints(cls).get(name))
    found = [a for a in args if dataclasses.is_dataclass(a)]
    return found[0] if found and type(None) in args else None


def _load(value, qs: QSettings, prefix: str):
    """A copy of the dataclass `value` with every field found in qs; a damaged entry keeps its default.
    A field `X | None` is a group with an extra key "on": false reads back as None."""
    changes = {}
    for f in fields(value):
        key, default = prefix + f.name, getattr(value, f.name)
        optional = _optional(type(value), f.name)
        if optional is not None:
            if qs.contains(key + "/on"):
                on = _convert(qs.value(key + "/on"), True)
                changes[f.name] = _load(default if default is not None else optional(), qs, key + "/") if on else None
        elif dataclasses.is_dataclass(default):
            changes[f.name] = _load(default, qs, key + "/")
        elif qs.contains(key):
            try:
                changes[f.name] = _convert(qs.value(key), default)
            except (TypeError, ValueError):
                pass
    return dataclasses.replace(value, **changes)


def _convert(raw, default):
    if isinstance(default, bool):  # QSettings' INI files give "true" / "false" back as text
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, dict):  # such as LiveSettings.loras: kept as JSON text
        value = json.loads(str(raw)) if raw else {}
        if not isinstance(value, dict):
            raise ValueError(f"not a mapping: {raw!r}")
        return {str(k): float(v) for k, v in value.items()}
    return "" if raw is None else str(raw)


def _save(value, qs: QSettings, prefix: str) -> None:
    for f in fields(value):
        item = getattr(value, f.name)
        if _optional(type(value), f.name) is not None:  # off keeps the values last saved, unread
            qs.setValue(prefix + f.name + "/on", item is not None)
            if item is not None:
                _save(item, qs, prefix + f.name + "/")
        elif dataclasses.is_dataclass(item):
            _save(item, qs, prefix + f.name + "/")
        elif isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            qs.setValue(prefix + f.name, str(item))  # a seed up to 2**64 - 1: QSettings holds 64-bit signed ints
        else:
            qs.setValue(prefix + f.name, json.dumps(item) if isinstance(item, dict) else item)


def open_settings(path: str | None = None) -> QSettings:
    """The user's settings, or an INI file at path (tests and benchmarks use their own)."""
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def hex_bytes(data: QByteArray) -> str:
    return bytes(data.toHex().data()).decode()


def bytes_hex(text: str) -> QByteArray:
    return QByteArray.fromHex(text.encode())


def remember(recent: str, item: str, limit: int = 8) -> str:
    items = [item] + [x for x in recent.split("\n") if x and x != item]
    return "\n".join(items[:limit])
