"""Prompt schedules for video: what to change at which second of the input.

    # seconds  prompt                               options
    0          a watercolor city at dawn            seed=1
    4.5        a watercolor city at night           lora=anime:0.8
    9          seed=7                               (options only: the prompt stays)

A line is a time in seconds, then the prompt, with `seed=N` (any whole number, taken modulo 2**64 like --seed)
and `lora=NAME:WEIGHT` (repeatable) anywhere after the time. `#` starts a comment. Each cue holds from its time on; the engine's transitions make the
change glide. Parsing needs neither Qt nor torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from models.bounds import BOUNDS, check_seed
from models.errors import UserError

WEIGHT = BOUNDS["lora_weight"]  # a cue's LoRA weight: the range models.lora, OSC and the window take


@dataclass
class Cue:
    """One line of a schedule: what changes from `seconds` on (None / empty: unchanged)."""

    seconds: float  # time in the input video
    line: int  # line number in the file, for errors
    prompt: str | None = None  # the new prompt
    seed: int | None = None  # the new seed
    loras: dict[str, float] = field(default_factory=dict)  # LoRA name -> new weight


def parse_schedule(text: str, source: str = "schedule") -> list[Cue]:
    """Cues sorted by time (stable: lines at the same second apply in file order)."""
    cues = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} line {n}"
        head, _, rest = line.partition(" ")
        try:
            seconds = float(head)
        except ValueError:
            raise UserError(f"{where}: {head!r} is not a time in seconds; write lines as `SECONDS  prompt`") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise UserError(f"{where}: time {head} must be 0 or more seconds")
        cue = Cue(seconds, n)
        words = []
        for word in rest.split():
            if word.startswith("seed="):
                try:
                    cue.seed = check_seed(word[5:], f"{where}: {word!r}:")  # any whole number, modulo 2**64 as --seed
                except UserError:
                    raise UserError(f"{where}: {word!r} needs a whole number, like seed=7") from None
            elif word.startswith("lora="):
                name, sep, weight = word[5:].rpartition(":")
                try:
                    w = float(weight) if sep and name else math.nan
                except ValueError:
                    w = math.nan
                if not WEIGHT.contains(w):
                    raise UserError(f"{where}: {word!r} must be lora=NAME:WEIGHT with a weight between "
                                    f"{WEIGHT.low:g} and {WEIGHT.high:g}, like lora=anime:0.8")
                cue.loras[name] = w
            else:
                words.append(word)
        cue.prompt = " ".join(words) or None
        if cue.prompt is None and cue.seed is None and not cue.loras:
            raise UserError(f"{where}: nothing to change after the time; add a prompt, seed=N or lora=NAME:WEIGHT")
        cues.append(cue)
    if not cues:
        raise UserError(f"{source} has no cues: write lines as `SECONDS  prompt`, like `0  a watercolor city`")
    return sorted(cues, key=lambda c: c.seconds)


def read_schedule(path: str | Path) -> list[Cue]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the schedule {str(p)!r} ({e.__class__.__name__}): pass a text file") from None
    return parse_schedule(text, str(p))


class Playhead:
    """Walks a schedule along the video: advance(t) gives the cues that became due since the last call."""

    def __init__(self, cues: list[Cue]):
        self.cues = cues
        self._next = 0

    def advance(self, seconds: float) -> list[Cue]:
        start = self._next
        while self._next < len(self.cues) and self.cues[self._next].seconds <= seconds + 1e-9:
            self._next += 1
        return self.cues[start:self._next]


def check_loras(cues: list[Cue], engine, source: str = "schedule") -> None:
    """Every LoRA a cue names must be loaded (engine.loras.find raises the one-line error; this adds the line)."""
    for cue in cues:
        for name in cue.loras:
            try:
                engine.loras.find(name)
            except UserError as e:
                raise UserError(f"{source} line {cue.line}: {e}") from None


def apply_cue(session, cue: Cue) -> None:
    """Write a cue to the session (app.live.session.Session) that the live loop follows; the engine's transition
    makes it glide. A cue's LoRA names the short name or the spec; the session keeps LoRAs by their spec."""
    names = session.lora_names()
    values: dict = {} if cue.prompt is None else {"prompt": cue.prompt}
    if cue.seed is not None:
        values["seed"] = cue.seed
    if cue.loras:
        values["loras"] = {**session.live.loras, **{names.get(name, name): w for name, w in cue.loras.items()}}
    session.set(values)
