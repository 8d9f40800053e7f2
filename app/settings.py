"""What the window remembers between runs (QSettings), and the style presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "sdxs-live"
APPLICATION = "SDXS Live"

# name -> prompt template; {prompt} is what the user typed
PRESETS: dict[str, str] = {
    "None": "{prompt}",
    "Watercolor": "{prompt}, watercolor painting, soft washes of colour, paper texture, delicate",
    "Anime": "{prompt}, anime style, clean line art, cel shading, vibrant colours, detailed",
    "Photo": "{prompt}, photograph, natural light, sharp focus, 35mm, highly detailed",
    "Oil painting": "{prompt}, oil painting on canvas, thick brush strokes, impressionist, rich colours",
    "Pixel art": "{prompt}, pixel art, 16-bit video game sprite, limited palette",
    "Pencil": "{prompt}, graphite pencil drawing, cross hatching, monochrome, fine detail",
    "Comic": "{prompt}, comic book illustration, bold ink outlines, halftone, flat colours",
    "Fantasy": "{prompt}, epic fantasy concept art, dramatic lighting, matte painting",
    "Neon": "{prompt}, cyberpunk neon lights, night, glowing, synthwave colours",
}


def styled_prompt(prompt: str, preset: str) -> str:
    template = PRESETS.get(preset, "{prompt}")
    text = template.replace("{prompt}", prompt.strip())
    return text.strip(" ,")


@dataclass
class Persisted:
    """The window's remembered state; every field is one QSettings key."""

    model: str = ""  # base model spec last loaded ("" lets the window pick a default)
    controlnet: str = ""  # adapter spec ("" for none)
    recent_models: str = ""  # recently used model specs, "\n"-separated
    recent_adapters: str = ""  # recently used adapter specs, "\n"-separated
    device: str = "auto"  # auto, cpu or cuda
    dtype: str = "auto"  # auto, float32, bfloat16, float16
    prompt: str = "a cozy cottage in a forest, detailed"  # the user's prompt, before the style template
    preset: str = "None"  # a key of PRESETS
    seed: int = 0  # the noise seed
    seed_locked: bool = False  # lock the seed against changes
    strength: float = 0.8  # control strength (ControlNet conditioning scale)
    size: int = 0  # output size in pixels (0: the model's own)
    source: str = "sketch"  # sketch, camera:N, video:PATH or image:PATH
    condition: str = "auto"  # how camera/video/image frames become the condition
    canny_low: int = 100  # canny thresholds
    canny_high: int = 200
    sigma: float = 6.0  # line-drawing filter softness
    mirror: bool = False  # flip camera and video frames left-right (a front camera as a mirror)
    brush: float = 6.0  # brush width in canvas pixels
    view: str = "side"  # side (source and output) or output (output only)
    overlay: bool = True  # show FPS and latency over the output
    profile: bool = False  # per-stage timings in the overlay
    record_side: bool = False  # record source and output side by side
    geometry: str = ""  # the window's geometry (hex of QWidget.saveGeometry)
    splitter: str = ""  # the source/output splitter's state (hex)

    @classmethod
    def load(cls, qs: QSettings) -> Persisted:
        out = cls()
        for f in fields(cls):
            if not qs.contains(f.name):
                continue
            value = qs.value(f.name)
            default = getattr(out, f.name)
            try:
                if isinstance(default, bool):
                    value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    value = int(value)
                elif isinstance(default, float):
                    value = float(value)
                else:
                    value = "" if value is None else str(value)
            except (TypeError, ValueError):
                continue  # a damaged entry falls back to its default
            setattr(out, f.name, value)
        return out

    def save(self, qs: QSettings) -> None:
        for k, v in asdict(self).items():
            qs.setValue(k, v)
        qs.sync()


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
