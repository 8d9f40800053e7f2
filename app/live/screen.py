"""The screen as a source: `screen[:N][@X,Y,W,H]`, captured with mss in its own thread, newest frame wins.

N is mss's monitor number: 1 is the first monitor (the default), 2 the second, 0 all monitors together.
@X,Y,W,H picks a region of that monitor, in pixels from its top-left corner. ScreenCapture has the interface
of app.live.sources.Capture (start, latest, stop, state, error, alive), so the window and `stream` use either.

Feedback loops: when our own output window is on the captured screen, the model stylizes its own output
over and over. The window tells the capture where that window is (set_own_window); a capture whose region
overlaps it logs a warning, keeps it in `warning`, and by default paints the overlap flat grey so the loop
cannot start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass

import cv2
import numpy as np

from app.live.sources import Capture, FrameThread, SourceSpec, StillImage
from models.errors import UserError, first_line

log = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # x, y, width, height in screen pixels
SYNTAX = "screen, screen:N (a monitor, 1 = the first) or screen:N@X,Y,W,H (a region of it)"


@dataclass(frozen=True)
class ScreenArea:
    """A parsed screen spec."""

    monitor: int = 1  # mss monitor number: 0 all monitors together, 1 the first, 2 the second...
    region: Rect | None = None  # x, y, width, height inside that monitor; None: the whole monitor

    def __str__(self) -> str:
        return format_spec(self.monitor, self.region)


def format_spec(monitor: int = 1, region: Rect | None = None) -> str:
    """The --source text for a monitor and an optional region (what the window's region picker sets)."""
    spec = f"screen:{monitor}"
    return spec + ("@" + ",".join(str(int(v)) for v in region) if region else "")


def parse_screen(spec: str) -> ScreenArea:
    """screen | screen:N | screen@X,Y,W,H | screen:N@X,Y,W,H (raises UserError naming the fix)."""
    text = spec.strip()
    if not text.startswith("screen"):
        raise UserError(f"source {spec!r} is not a screen: use {SYNTAX}")
    rest = text[len("screen"):]
    head, at, region_text = rest.partition("@")
    monitor = 1
    if head:
        if not head.startswith(":") or not head[1:].isdigit():
            raise UserError(f"screen source {spec!r}: the monitor must be a number, like screen:1; use {SYNTAX}")
        monitor = int(head[1:])
    region = None
    if at:
        parts = region_text.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise UserError(f"screen region {region_text!r} must be X,Y,W,H in whole pixels, like screen:1@0,0,640,480")
        x, y, w, h = (int(p) for p in parts)
        if w < 8 or h < 8:
            raise UserError(f"screen region {region_text!r} is too small: width and height must be at least 8 pixels")
        region = (x, y, w, h)
    return ScreenArea(monitor, region)


def check_display() -> None:
    """Raise a one-line UserError where mss cannot capture: Wayland without X (no DISPLAY) has no capture
    mss can use (the desktop portal would ask the user each time)."""
    if not sys.platform.startswith("linux"):
        return
    if not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY"):
            raise UserError("screen capture needs X11: this is a Wayland session without XWayland (DISPLAY is unset); "
                            "log in to an X11 session, or run with XWayland and DISPLAY set")
        raise UserError("screen capture needs a display: DISPLAY is unset (no X server); run it on the desktop")


def list_monitors() -> list[tuple[int, Rect]]:
    """(number, (x, y, width, height)) of each monitor, 1 first, then 0 (all together): for a monitor menu."""
    check_display()
    with _open_mss() as sct:
        mons = sct.monitors
    return [(i, _rect(m)) for i, m in list(enumerate(mons))[1:] + [(0, mons[0])]]


def screenshot(monitor: int = 1) -> tuple[np.ndarray, Rect]:
    """One picture of a monitor (uint8 RGB) and its rectangle on the desktop: what the region picker dims and
    lets the user drag a rectangle over. Raises UserError for a missing display or monitor."""
    check_display()
    with _open_mss() as sct:
        mon = _monitor(sct, monitor, f"screen:{monitor}")
        return _to_rgb(sct.grab(mon)), _rect(mon)


def overlap(a: Rect, b: Rect) -> Rect | None:
    """The intersection of two rectangles, or None when they do not touch."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def open_capture(spec: SourceSpec):
    """The capture for a parsed source: ScreenCapture, StillImage or app.live.sources.Capture, started."""
    if spec.kind == "screen":
        return ScreenCapture(spec).start()
    if spec.kind == "image":
        return StillImage(spec)
    if spec.kind == "ndi":
        from app.live.ndi_in import NdiCapture

        return NdiCapture(spec).start()
    return Capture(spec).start()


class ScreenCapture(FrameThread):
    """Grabs a monitor or a region of it at up to `fps` frames a second, newest frame kept (app.live.sources.FrameThread)."""

    def __init__(self, spec: SourceSpec, fps: float = 30.0):
        if spec.kind != "screen":
            raise UserError(f"cannot capture the screen from {spec}: use {SYNTAX}")
        super().__init__(spec, "capture-screen")
        self.area = parse_screen(str(spec))
        self.fps = float(fps)  # the most frames a second we grab (a whole 4K screen costs a core at full speed)
        self.warning = ""  # set while the captured rectangle overlaps our own output window
        self.rect: Rect | None = None  # the captured rectangle on the desktop, once open
        self.mask_own_window = True  # paint the overlap with our own window flat grey (no feedback loop)
        self._own: list[Rect] | None = None  # our own windows on the desktop

    def set_own_window(self, rect: Rect | list[Rect] | None, mask: bool = True) -> None:
        """Where our windows are on the desktop (x, y, w, h, or a list of them: the main window and the
        full-screen output; None when hidden). Call it when they move or resize; an overlap with the captured
        rectangle sets `warning` and, with mask, is painted grey."""
        rects = [rect] if rect and not isinstance(rect[0], (tuple, list)) else list(rect or [])
        with self._lock:
            self._own = [tuple(int(v) for v in r) for r in rects if r] or None
            self.mask_own_window = mask
        self._check_overlap()

    # ---- the thread ---------------------------------------------------------------------------------

    def _check_overlap(self) -> Rect | None:
        own, rect = self._own, self.rect
        hits = [(r, h) for r in own or [] if rect and (h := overlap(rect, r))]
        message = (f"the captured screen area {rect} overlaps the SDXS Live output window {hits[0][0]}: it would stylize "
                   "its own output (a feedback loop); move the window off the captured area or pick another region"
                   ) if hits else ""
        if message and message != self.warning:
            log.warning(message)
        self.warning = message
        return hits[0][1] if hits else None

    def _run(self) -> None:
        try:
            check_display()
            sct = _open_mss()
        except UserError as e:
            self._fail(str(e))
            return
        except Exception as e:  # mss raises ScreenShotError (no X server, no XRandR...): one line for the user
            self._fail(f"screen capture could not start ({first_line(e)}): "
                       "check that DISPLAY names a running X server")
            return
        try:
            mon = _monitor(sct, self.area.monitor, str(self.area))
            box = _region(mon, self.area)
            self.rect = _rect(box)
            self._check_overlap()
            self._set_state("running")
            self._grab_loop(sct, box)
        except UserError as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"screen capture of {self.area} stopped: {first_line(e)}")
        finally:
            sct.close()

    def _grab_loop(self, sct, box: dict) -> None:
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        next_due = time.perf_counter()
        while not self._stop.is_set():
            rgb = _to_rgb(sct.grab(box))
            with self._lock:
                own, mask = self._own, self.mask_own_window
            for hit in (overlap(self.rect, r) for r in own or []) if mask else ():
                if hit:  # our own output must never feed back into the model
                    x, y = hit[0] - self.rect[0], hit[1] - self.rect[1]
                    rgb[y : y + hit[3], x : x + hit[2]] = 128
            self._publish(rgb)
            next_due = self._pace(next_due, period)


def _open_mss():
    import mss

    return mss.MSS()


def _monitor(sct, number: int, spec: str) -> dict:
    mons = sct.monitors
    if not 0 <= number < len(mons):
        raise UserError(f"{spec}: there is no monitor {number}; this desktop has {len(mons) - 1} "
                        f"(screen:1 to screen:{len(mons) - 1}, or screen:0 for all together)")
    return mons[number]


def _region(mon: dict, area: ScreenArea) -> dict:
    if area.region is None:
        return {k: int(mon[k]) for k in ("left", "top", "width", "height")}
    x, y, w, h = area.region
    if x + w > mon["width"] or y + h > mon["height"]:
        raise UserError(f"{area}: the region runs off monitor {area.monitor} ({mon['width']}x{mon['height']}); "
                        "choose X,Y,W,H inside it")
    return {"left": int(mon["left"]) + x, "top": int(mon["top"]) + y, "width": w, "height": h}


def _rect(mon: dict) -> Rect:
    return int(mon["left"]), int(mon["top"]), int(mon["width"]), int(mon["height"])


def _to_rgb(shot) -> np.ndarray:
    return cv2.cvtColor(np.asarray(shot), cv2.COLOR_BGRA2RGB)  # a new array the frame owns
