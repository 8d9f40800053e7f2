"""The --source grammar, without opening anything: sketch | camera:N | video:PATH | image:PATH |
screen[:N][@X,Y,W,H].

parse_source checks a --source value (files exist, numbers are numbers) and gives a SourceSpec; parse_screen
reads the screen's part: N is mss's monitor number (1 the first monitor, the default; 2 the second; 0 all
monitors together), @X,Y,W,H a region of that monitor in pixels from its top-left corner. format_spec writes
it back (what the window's region picker sets). app.live.capture opens a parsed source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from models.errors import UserError

KINDS = ("sketch", "camera", "video", "image")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
Rect = tuple[int, int, int, int]  # x, y, width, height in screen pixels
SYNTAX = "screen, screen:N (a monitor, 1 = the first) or screen:N@X,Y,W,H (a region of it)"


@dataclass
class SourceSpec:
    """A parsed --source value."""

    kind: str  # sketch, camera, video, image or screen
    target: str = ""  # camera index as text, a file path, or the screen's N[@X,Y,W,H]

    def __str__(self) -> str:
        return self.kind if self.kind == "sketch" else f"{self.kind}:{self.target}"

    @property
    def index(self) -> int | str:
        """The camera's index; a device path (or a file standing in for a camera in tests) stays a string."""
        return int(self.target) if self.target.isascii() and self.target.isdigit() else self.target


def parse_source(spec: str, default_kind: str | None = None) -> SourceSpec:
    """sketch | camera:N | video:PATH | image:PATH | screen[:N][@X,Y,W,H] | ndi:NAME (a bare path counts as default_kind,
    or by extension)."""
    spec = (spec or "").strip()
    if spec == "sketch":
        return SourceSpec("sketch")
    if spec == "screen" or spec.startswith(("screen:", "screen@")):  # screen[:N][@X,Y,W,H]
        area = parse_screen(spec)
        return SourceSpec("screen", str(area).partition(":")[2])
    if spec.startswith("ndi:"):  # an NDI sender by name (app.live.ndi_in)
        from app.live.ndi import check_name

        return SourceSpec("ndi", check_name(spec[4:], "ndi:"))
    kind, sep, target = spec.partition(":")
    if not sep or kind not in KINDS or len(kind) == 1:  # "C:\..." on Windows is a path, not a kind
        kind, target = default_kind or _kind_of(spec), spec
    if kind == "camera":
        if not (target.isascii() and target.isdigit()):  # '²' is a digit to isdigit(), not to int()
            raise UserError(f"camera {target!r} must be a number, like camera:0 (the first camera)")
        return SourceSpec("camera", str(int(target)))
    if kind in ("video", "image"):
        if not target:
            raise UserError(f"{kind}: needs a file, like {kind}:/path/to/file")
        path = Path(os.path.expanduser(target))  # Path.expanduser raises for ~unknown-user
        try:
            found = path.is_file()
        except OSError as e:  # a name too long for the file system, say
            raise UserError(f"{kind} file {target[:80]!r} cannot be opened ({e.strerror or e}): check the path") from None
        if not found:
            raise UserError(f"{kind} file {target!r} does not exist: check the path")
        return SourceSpec(kind, str(path))
    raise UserError(f"source {spec!r} is not one of sketch, camera:N, video:PATH, image:PATH, screen[:N][@X,Y,W,H], ndi:NAME")


def _kind_of(spec: str) -> str:
    if spec.isascii() and spec.isdigit():
        return "camera"
    if Path(spec).suffix.lower() in VIDEO_EXTS:
        return "video"
    if Path(spec).suffix:
        return "image"
    raise UserError(f"source {spec!r} is not one of sketch, camera:N, video:PATH, image:PATH")


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
        if not head.startswith(":") or not (head[1:].isascii() and head[1:].isdigit()):
            raise UserError(f"screen source {spec!r}: the monitor must be a number, like screen:1; use {SYNTAX}")
        monitor = int(head[1:])
    region = None
    if at:
        parts = region_text.split(",")
        if len(parts) != 4 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise UserError(f"screen region {region_text!r} must be X,Y,W,H in whole pixels, like screen:1@0,0,640,480")
        x, y, w, h = (int(p) for p in parts)
        if w < 8 or h < 8:
            raise UserError(f"screen region {region_text!r} is too small: width and height must be at least 8 pixels")
        region = (x, y, w, h)
    return ScreenArea(monitor, region)
