"""OSC's one interpreter, for the window and `stream` alike: the changes an app.live.osc.OscControl took
become writes to an app.live.session.Session, never to widgets or a loop.

    prompt, strength, transition, keep_colours -> the session's field (checked against models.bounds)
    seed N / seed/new                          -> the seed (any whole number, modulo 2**64) / a random one;
                                                  the seed lock leaves it, with one log line
    style NAME                                 -> Session.choose_style (case, spaces as _ or - ignored)
    lora/NAME W                                -> that loaded LoRA's weight
    pause 0/1, record 0/1, snapshot            -> paused, recording, a snapshot asked for

Whoever owns the output acts on paused, recording and snapshots when the session says they changed.
"""

from __future__ import annotations

import logging
from typing import Any

from app.live.osc import NEW_SEED, find_name
from app.live.session import Session
from models.errors import UserError

log = logging.getLogger(__name__)


def apply_osc(session: Session, changes: dict[str, Any]) -> frozenset[str]:
    """Write OSC's changes (address after /sdxs/ -> newest value) to the session, a bad value dropped alone; unknown style
    or LoRA names and a locked seed are one log line each and change nothing. Returns the names that changed."""
    values: dict[str, Any] = {}
    snapshot = False
    for key, value in changes.items():
        if key == "seed":
            if session.seed_locked:
                log.warning("OSC /sdxs/seed: the seed is locked (untick Lock in the window)")
            elif value == NEW_SEED:
                session.roll_seed()
            else:
                values["seed"] = value
        elif key in ("prompt", "strength", "transition", "keep_colours"):
            values[key] = value
        elif key in ("pause", "record"):
            values["paused" if key == "pause" else "recording"] = bool(value)
        elif key == "snapshot":
            snapshot = True
        elif key == "style":
            name = find_name(value, session.style_names())
            if name is None:
                log.warning("OSC /sdxs/style %r: no such style; known: %s", value, ", ".join(session.style_names()))
            else:
                session.choose_style(name)
        elif key.startswith("lora/"):
            names = session.lora_names()
            name = find_name(key[5:], names)
            if name is None:
                log.warning("OSC /sdxs/%s: no LoRA of that name is loaded (loaded: %s)", key, ", ".join(names) or "none")
            else:
                values["loras"] = {**values.get("loras", session.live.loras), names[name]: float(value)}
    changed = frozenset()
    for key, value in values.items():  # one by one: a bad value is dropped alone
        try:
            changed |= session.set({key: value})
        except UserError as e:
            log.warning("OSC /sdxs/%s: %s", key, e)
    if snapshot:
        session.snapshot()
        changed |= {"snapshots"}
    return changed
