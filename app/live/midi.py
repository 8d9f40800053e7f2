"""MIDI learn: a controller's knobs and faders on the window's sliders, its pads and keys on its buttons.

Pure mapping, no Qt and no MIDI library: feed(message) takes anything with mido's message attributes
(type, channel, control, value, note, velocity) and returns what to do. The window's side (app.ui.session.midi_link)
opens the ports with mido + python-rtmidi, and shows, removes and remembers the bindings.

    a slider (strength, transition, a LoRA's weight)  <- a control change: value 0..127 over the slider's range
    a trigger (new seed, snapshot, record)            <- a note on, or a control change to a non-zero value
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)
TRIGGERS = {"seed/new": "New seed", "snapshot": "Snapshot", "record": "Record"}  # target -> its label
INSTALL = "pip install mido==1.3.3 python-rtmidi==1.5.8"


@dataclass(frozen=True, kw_only=True)
class Binding:
    """One control of a MIDI controller and what it moves or presses."""

    kind: str  # "cc" (a knob, fader or button sending control changes) or "note" (a key or pad)
    channel: int  # MIDI channel, 0..15 (shown as 1..16)
    number: int  # controller or note number, 0..127
    target: str  # strength, transition, lora/NAME (sliders), or seed/new, snapshot, record (triggers)

    def describe(self) -> str:
        """As a menu shows it: "CC 21 on channel 1", "note C4 on channel 10"."""
        what = f"CC {self.number}" if self.kind == "cc" else f"note {note_name(self.number)}"
        return f"{what} on channel {self.channel + 1}"


def note_name(number: int) -> str:
    return ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][number % 12] + str(number // 12 - 1)


def is_trigger(target: str) -> bool:
    return target in TRIGGERS


class MidiMap:
    """The bindings, and the target waiting for the next control moved (learn)."""

    def __init__(self, bindings: list[Binding] | None = None):
        self.bindings: dict[str, Binding] = {b.target: b for b in bindings or []}  # one control per target
        self.learning: str | None = None  # the target the next control will be bound to

    def learn(self, target: str) -> None:
        self.learning = target

    def cancel(self) -> None:
        self.learning = None

    def remove(self, target: str) -> Binding | None:
        return self.bindings.pop(target, None)

    def get(self, target: str) -> Binding | None:
        return self.bindings.get(target)

    def feed(self, msg: Any) -> list[tuple[str, float | None]]:
        """What one message does: [(target, fraction 0..1 for a slider, None for a trigger)]; after learn(),
        the first fitting message binds instead and gives [("learned", None)]."""
        kind = {"control_change": "cc", "note_on": "note"}.get(getattr(msg, "type", ""))
        if kind is None or (kind == "note" and msg.velocity == 0):  # a note on at velocity 0 is a note off
            return []
        number = msg.control if kind == "cc" else msg.note
        value = msg.value if kind == "cc" else msg.velocity
        if self.learning is not None:
            if kind == "note" and not is_trigger(self.learning):
                return []  # a slider needs a knob or fader: keep waiting
            target, self.learning = self.learning, None
            for old in [t for t, b in self.bindings.items() if (b.kind, b.channel, b.number) == (kind, msg.channel, number)]:
                del self.bindings[old]  # one control moves one thing
            self.bindings[target] = Binding(kind=kind, channel=msg.channel, number=number, target=target)
            log.info("MIDI: %s -> %s", self.bindings[target].describe(), target)
            return [("learned", None)]
        out: list[tuple[str, float | None]] = []
        for b in self.bindings.values():
            if (b.kind, b.channel, b.number) != (kind, msg.channel, number):
                continue
            if is_trigger(b.target):
                if value > 0:  # a button's press (127), not its release (0)
                    out.append((b.target, None))
            elif kind == "cc":
                out.append((b.target, value / 127))
        return out

    def to_json(self) -> str:
        return json.dumps([asdict(b) for b in self.bindings.values()])

    @classmethod
    def from_json(cls, text: str) -> MidiMap:
        """The remembered bindings; a damaged entry is left out with one log line."""
        try:
            items = json.loads(text) if text else []
        except ValueError:
            log.warning("MIDI: the remembered bindings are damaged; starting without them")
            return cls()
        bindings = []
        for item in items if isinstance(items, list) else []:
            try:
                b = Binding(kind=str(item["kind"]), channel=int(item["channel"]), number=int(item["number"]),
                            target=str(item["target"]))
                if b.kind in ("cc", "note") and 0 <= b.channel <= 15 and 0 <= b.number <= 127 and b.target:
                    bindings.append(b)
            except (KeyError, TypeError, ValueError):
                log.warning("MIDI: left out a damaged binding %r", item)
        return cls(bindings)


def on_range(fraction: float, lo: float, hi: float) -> float:
    """A control's 0..1 over a slider's lo..hi."""
    return lo + (hi - lo) * min(max(fraction, 0.0), 1.0)


def input_names(port: str | None = None) -> tuple[list[str], str]:
    """The MIDI input ports to open (--midi PORT: the ones whose name contains it; else all), from every MIDI
    system mido's backend has (rtmidi: ALSA and JACK on Linux, CoreMIDI, Windows MM), and why none when the
    list is empty (no library, no MIDI system, no port): one line for the menu. open_input() opens a name."""
    try:
        import mido
    except ImportError:
        return [], f"MIDI needs the mido and python-rtmidi packages: {INSTALL}"
    _SYSTEM_OF.clear()
    why = []
    for backend in _backends(mido):
        label = backend.api.replace("LINUX_", "").replace("UNIX_", "").replace("MACOSX_", "") if backend.api else "MIDI"
        try:
            with _library_chatter_to_log():  # ALSA and JACK print to stderr themselves when they are not there
                names = backend.get_input_names()
        except ImportError:
            return [], f"MIDI needs python-rtmidi: {INSTALL}"
        except Exception as e:  # rtmidi's SystemError: no ALSA sequencer (/dev/snd/seq), no JACK server...
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            known = {"ALSA": "no sequencer, /dev/snd/seq", "JACK": "no server running"}
            why.append(f"{label}: {known.get(label) or text.split(': ', 1)[-1].rstrip('.')}")
            continue
        for name in names:
            _SYSTEM_OF.setdefault(name, backend)
    names = list(_SYSTEM_OF)
    if port:
        names = [n for n in names if port.lower() in n.lower()]
        if not names:
            return [], f"no MIDI input port matches --midi {port!r}"
    if names:
        return names, ""
    if why and len(why) == len(_backends(mido)):
        return [], f"no MIDI system here ({'; '.join(why)})"
    return [], "no MIDI input port found: connect a controller and restart"


def open_input(name: str, callback):
    """Open an input port input_names() found, through the MIDI system that listed it."""
    import mido

    backend = _SYSTEM_OF.get(name) or mido.backend
    return backend.open_input(name, callback=callback)


_SYSTEM_OF: dict = {}  # port name -> the mido backend (MIDI system) that listed it, from the last input_names()


def _backends(mido) -> list:
    """mido's backend once per MIDI system it can reach: each API rtmidi was built with (ALSA, JACK...), or the
    backend as it is (another backend, or one with its API chosen: MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK)."""
    base = mido.backend
    if base.api or not base.name.endswith("rtmidi"):
        return [base]
    try:
        apis = base.module.get_api_names()
    except ImportError:
        return [base]
    return [mido.Backend(f"{base.name}/{api}", load=True) for api in apis if api != "RTMIDI_DUMMY"] or [base]


class _library_chatter_to_log:
    """C libraries' own stderr lines (ALSA's "ALSA lib ... open /dev/snd/seq failed", libjack's "Cannot connect to
    server socket") held back while a MIDI system is asked, and logged at debug level; anything else written to
    stderr meanwhile (another thread's log line) goes on to stderr."""

    CHATTER = ("ALSA lib", "Cannot connect to server", "jack server", "JackShm", "Jack")

    def __enter__(self):
        import tempfile

        sys.stderr.flush()
        self.held = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.held.fileno(), 2)

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.held.seek(0)
        text = self.held.read().decode(errors="replace")
        self.held.close()
        other = []
        for line in text.splitlines():
            if line.startswith(self.CHATTER):
                log.debug("MIDI system: %s", line)
            elif line.strip():
                other.append(line)
        if other:
            sys.stderr.write("\n".join(other) + "\n")
