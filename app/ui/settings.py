"""What the window remembers between runs (QSettings): the live settings value plus the window's own state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from PySide6.QtCore import QByteArray, QSettings

from app.live.settings import LiveSettings
from app.ui.qtapp import APPLICATION, ORGANIZATION


@dataclass
class Persisted:
    """The window's remembered state; every leaf field is one QSettings key (nested values as group/key)."""

    live: LiveSettings = field(default_factory=LiveSettings)  # prompt, style, seed, strength, size, condition, ...
    model: str = ""  # base model spec last loaded ("" lets the window pick a default)
    controlnet: str = ""  # adapter spec ("" for none)
    recent_models: str = ""  # recently used model specs, "\n"-separated
    recent_adapters: str = ""  # recently used adapter specs, "\n"-separated
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    dtype: str = "auto"  # auto, float32, bfloat16, float16
    backend: str = "torch"  # who runs CPU frames: torch, auto or openvino
    seed_locked: bool = False  # lock the seed against changes
    source: str = "sketch"  # sketch, camera:N, video:PATH or image:PATH
    brush: float = 6.0  # brush width in canvas pixels
    view: str = "side"  # side (source and output) or output (output only)
    overlay: bool = True  # show FPS and latency over the output
    record_side: bool = False  # record source and output side by side
    geometry: str = ""  # the window's geometry (hex of QWidget.saveGeometry)
    splitter: str = ""  # the source/output splitter's state (hex)

    @classmethod
    def load(cls, qs: QSettings) -> Persisted:
        return _load(cls(), qs, "")

    def save(self, qs: QSettings) -> None:
        _save(self, qs, "")
        qs.sync()


def _load(value, qs: QSettings, prefix: str):
    """A copy of the dataclass `value` with every field found in qs; a damaged entry keeps its default."""
    changes = {}
    for f in fields(value):
        key, default = prefix + f.name, getattr(value, f.name)
        if dataclasses.is_dataclass(default):
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
    return "" if raw is None else str(raw)


def _save(value, qs: QSettings, prefix: str) -> None:
    for f in fields(value):
        item = getattr(value, f.name)
        if dataclasses.is_dataclass(item):
            _save(item, qs, prefix + f.name + "/")
        else:
            qs.setValue(prefix + f.name, item)


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
