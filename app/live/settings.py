"""What a user can change while the picture runs, as one frozen value, and the style presets.

The window persists exactly this value (app/ui/session/settings.py) and the live loop applies it; two values are
the same setting when they compare equal, so nothing keeps a hand-made "what changed" key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.live.steady import SteadySettings
from models.options import KEEP_COLOURS, STRENGTH, TRANSITION

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
    "Anime LoRA (SDXS)": "{prompt}, anime style, detailed",
}
# name -> the LoRAs (spec -> weight) a style loads besides its template: SDXS's own anime style LoRA
PRESET_LORAS: dict[str, dict[str, float]] = {
    "Anime LoRA (SDXS)": {"IDKiro/sdxs-512-dreamshaper-anime": 1.0},
}
CONDITION_MODES = ("auto", "sketch", "canny", "none")  # what camera, video and image frames can become


def styled_prompt(prompt: str, style: str, template: str = "") -> str:
    """The prompt inside the template, else the style's (an unknown style leaves it as it is)."""
    text = (template or PRESETS.get(style, "{prompt}")).replace("{prompt}", prompt.strip())
    return text.strip(" ,")


@dataclass(frozen=True, kw_only=True)
class ConditionSettings:
    """How a camera, video or image frame becomes the adapter's input (the canvas is used as drawn)."""

    mode: str = "auto"  # auto (the adapter's own condition), sketch, canny or none (the frame as it is)
    low: int = 100  # canny: lower hysteresis threshold
    high: int = 200  # canny: upper hysteresis threshold
    sigma: float = 6.0  # sketch: blur radius of the line-drawing filter; larger gives softer, thicker lines
    mirror: bool = False  # flip the frame left-right first, as a mirror (for a front camera)

    def orient(self, image: np.ndarray, drawn: bool = False) -> np.ndarray:
        """The frame as the user sees it: mirrored when asked (never a drawing, which is already as drawn)."""
        return image[:, ::-1] if self.mirror and not drawn else image


@dataclass(frozen=True, kw_only=True)
class LiveSettings:
    """Everything that shapes the live picture; the loop applies a new value before the next frame."""

    prompt: str = "a cozy cottage in a forest, detailed"  # what the user typed, before the style
    style: str = "None"  # a key of PRESETS, wrapped around the prompt, or the name of a user's preset
    template: str = ""  # a user's preset's prompt template ({prompt}: what the user typed); "" uses PRESETS[style]
    seed: int = 0  # fixes the noise, so a still input gives a still output
    strength: float = STRENGTH  # ControlNet conditioning scale, 0..2, of every adapter (when `adapters` is empty)
    adapters: dict[str, float] = field(default_factory=dict)  # adapter name -> its own strength 0..2, live; empty: `strength` for all
    keep_colours: float = KEEP_COLOURS  # strength 0..2 of colour-hint adapters for a camera, video or screen (0: off)
    fill_shapes: bool = True  # the canvas's colour dabs fill the shape of the drawing they sit in (models.hints.fill_shapes)
    size: int = 0  # output size in pixels (0: the model's own)
    condition: ConditionSettings = field(default_factory=ConditionSettings)  # frame -> condition
    threshold: float = 1.0  # change check: mean grey-level difference below which a camera frame counts as unchanged
    profile: bool = False  # per-stage timings (the plain recipe, and the GPU synchronised at each stage)
    steady: SteadySettings | None = None  # steadying of camera, video and screen frames (app.live.steady); None: off
    transition: float = TRANSITION  # seconds a prompt or seed change glides over (models.transition); 0 jumps
    loras: dict[str, float] = field(default_factory=dict)  # loaded LoRA (name or spec) -> weight, live (engine.add_lora loads)

    @property
    def styled(self) -> str:
        """The prompt the engine gets."""
        return styled_prompt(self.prompt, self.style, self.template)
