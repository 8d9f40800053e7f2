"""Every bounded live value in one table: its range, default and how it is written, with no torch and no Qt.

The command line's options (app/cli), the window's widget ranges (app/ui/session/bindings.py), OSC's checks
(app/live/osc.py), MIDI's slider ranges, the schedule's and the session's checks are all made from BOUNDS, so
a value one of them takes, every other one takes too (tests/test_bounds.py holds them to it).

Seeds are special: any whole number is a seed, taken modulo 2**64 (the range torch's generators take).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from models.errors import UserError

SEED_MODULUS = 2**64  # seeds are taken modulo 2**64: any whole number works


@dataclass(frozen=True, kw_only=True)
class Bound:
    """One bounded value: what it is, its range and default, and how the widgets step through it."""

    name: str  # the session's field (and OSC's address after /sdxs/, the option after --)
    what: str  # a few words for errors and help, like "adapter strength"
    low: float | None  # the smallest value taken (None: no limit, the seed)
    high: float | None  # the largest value taken (None: no limit)
    default: float | None  # what a new session starts at (None: the model's own, the size)
    whole: bool = False  # a whole number (the seed, a size, an edge threshold)
    multiple: int = 1  # a whole value must be a multiple of this (a size: of 8)
    decimals: int = 2  # a widget's decimals for a fractional value (sliders move in 10**-decimals)
    unit: str = ""  # shown after the value in messages and boxes: "s", "px"
    off: float | None = None  # a value inside the range that means "off" or "the model's own", said in errors

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"bound {self.name}: low {self.low} above high {self.high}")

    @property
    def scale(self) -> int:
        """A slider's steps per unit: 1 for a whole value, 10**decimals for a fractional one."""
        return 1 if self.whole else 10 ** self.decimals

    def contains(self, value: object) -> bool:
        """Whether value is one this bound takes as it is (no rounding, no modulo)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.whole and (isinstance(value, float) and not value.is_integer() or int(value) % self.multiple):
            return value == self.off
        if value == self.off:
            return True
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def range_text(self) -> str:
        """"0..2", "-4..4 s", "any whole number": for help texts and error lines."""
        if self.low is None and self.high is None:
            return "any whole number" if self.whole else "any number"
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.low:g}..{self.high:g}{unit}"
        if self.multiple > 1:
            text = f"a multiple of {self.multiple}, {text}"
        return text

    def check(self, value: object, flag: str | None = None) -> float | int:
        """value if this bound takes it (a whole float as an int for a whole bound; a seed modulo 2**64), else
        a UserError naming the value, the range and the option (flag: how the user wrote it, like --strength)."""
        if self.name == "seed":
            return check_seed(value, flag or "seed")
        if not self.contains(value):
            shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
            whole = "a whole number " if self.whole and self.multiple == 1 else ""
            many = f"a multiple of {self.multiple} " if self.multiple > 1 else ""
            unit = f" {self.unit}" if self.unit else ""
            off = f" ({self.off:g}: the model's own)" if self.off is not None else ""
            raise UserError(f"{flag or self.what} {shown} must be {whole}{many}between {self.low:g} and "
                            f"{self.high:g}{unit}{off}")
        return int(value) if self.whole else float(value)

    def clamp(self, value: float) -> float:
        """value pulled into the range (a slider's or a knob's end)."""
        if self.low is not None:
            value = max(self.low, value)
        if self.high is not None:
            value = min(self.high, value)
        return value

    def on_range(self, fraction: float) -> float:
        """A fraction 0..1 (a MIDI knob) as a value of this range, rounded as a widget shows it."""
        if self.low is None or self.high is None:
            raise ValueError(f"bound {self.name} has no range to map a fraction onto")
        value = self.low + min(max(fraction, 0.0), 1.0) * (self.high - self.low)
        return round(value) if self.whole else round(value, self.decimals)


def check_seed(seed: object, flag: str = "seed") -> int:
    """Any whole number as a seed (an int, or a float or text holding one): taken modulo 2**64, so -1 and
    2**64 - 1 give the same noise (as torch does)."""
    if isinstance(seed, str):
        try:
            seed = int(seed.strip())
        except ValueError:
            raise UserError(f"{flag} {seed!r} must be a whole number, like 7") from None
    if isinstance(seed, float) and math.isfinite(seed) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"{flag} {seed!r} must be a whole number, like 7")
    return seed % SEED_MODULUS


def new_seed() -> int:
    """A random seed, anywhere in 0..2**64-1 (New seed, /sdxs/seed/new, a MIDI pad)."""
    return random.randrange(SEED_MODULUS)


# the largest output size: memory grows with the pixel count (size squared). Measured on the demo model, CPU fp32,
# one generate (peak RSS): 0.54 GB at 64 px, 0.58 at 256, 0.66 at 512, 0.97 at 1024, 1.48 at 1536, 2.24 at 2048,
# about 0.4 KB per output pixel over the weights; wider models (SDXS-512) need more per pixel. 2048 is 16x the
# pixels of SDXS's native 512; a typo like 100000 would ask for a 10 GB tensor at once.
_TABLE = (
    Bound(name="seed", what="seed", low=None, high=None, default=0, whole=True),
    # the adapter strength (ControlNet conditioning scale) everything starts at: the scale adapters are trained at
    # (ours and SDXS's own) and diffusers' default; 0.8 made the demo's pictures softer (sharpness 0.64 against 0.78)
    Bound(name="strength", what="strength", low=0.0, high=2.0, default=1.0),
    Bound(name="adapter_strength", what="adapter strength", low=0.0, high=2.0, default=1.0),
    # the strength of a colour-hint adapter fed hints from a live frame's own colours (keep colours; 0: off)
    Bound(name="keep_colours", what="keep-colours strength", low=0.0, high=2.0, default=1.0),
    # seconds a prompt or seed change glides over (models.transition) in the live loop, stream and the window; the
    # engine alone jumps (0)
    Bound(name="transition", what="transition", low=0.0, high=60.0, default=0.5, decimals=1, unit="s"),
    Bound(name="lora_weight", what="LoRA weight", low=-4.0, high=4.0, default=1.0),
    Bound(name="size", what="size", low=64, high=2048, default=None, whole=True, multiple=8, unit="px", off=0),
    Bound(name="canny_low", what="canny low threshold", low=0, high=255, default=100, whole=True),
    Bound(name="canny_high", what="canny high threshold", low=0, high=255, default=200, whole=True),
    Bound(name="sigma", what="line-drawing softness", low=1, high=30, default=6, whole=True),
)
BOUNDS: dict[str, Bound] = {b.name: b for b in _TABLE}


def bound(name: str) -> Bound:
    return BOUNDS[name]
