"""OSC control of the live settings (python-osc over UDP), for TouchDesigner, Resolume, Max, Ableton, ossia.

    /sdxs/prompt s        the prompt                 /sdxs/style s        a style preset by name
    /sdxs/seed i          the seed (glides)          /sdxs/seed/new       a new random seed
    /sdxs/strength f      control strength, 0..2     /sdxs/transition f   glide time in seconds
                          (every adapter's)          /sdxs/keep_colours f keep-colours strength, 0..2
    /sdxs/lora/NAME f     a loaded LoRA's weight     /sdxs/pause i        1 pauses, 0 resumes
    /sdxs/snapshot        save a snapshot            /sdxs/record i       1 starts, 0 stops recording
    /sdxs/fps             replies /sdxs/fps f (the engine's frames per second) to the sender

One server thread reads the datagrams and checks each message; the newest value per address waits in
`pending` until the live loop (or the window) takes it before its next frame, so a burst of thousands of
messages costs the engine one settings change. A wrong type, an out-of-range value or an unknown address
is dropped with one log line (at most one a second per address; the rest are counted). OSC has no
authentication: the server listens on loopback unless told otherwise, and takes messages only from this
machine (127.0.0.1, ::1) and the hosts in `allow`; the others are dropped and counted.

Hostile datagrams cost one line, never a traceback: a packet that does not parse (a string that is not UTF-8,
a bundle nested too deep, truncated data) is dropped and counted under one rate-limited "malformed" line;
a datagram is read whole up to UDP's own limit (64 KB, a long prompt included); addresses and values are
shortened to SHOWN characters in lines, and the rate limiter remembers at most KEYS of them. Snapshots are
taken at most one a second (their files are named by the second): the others are one line, not a silent
overwrite. /sdxs/fps answers the last rate the engine had (a still canvas makes no frames, not 0 FPS).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from models.bounds import BOUNDS, Bound, check_seed
from models.errors import UserError

log = logging.getLogger(__name__)
PREFIX = "/sdxs/"
NEW_SEED = "new"  # pending["seed"] after /sdxs/seed/new
INSTALL = "pip install python-osc==1.10.2"


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """[ADDR:]PORT -> (host, port); a bare port listens on loopback."""
    t = (text or "").strip()
    host, _, port = t.rpartition(":")
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:  # 0: any free port (printed at start)
        raise UserError(f"--osc {text!r}: use a port from 1 to 65535, or ADDR:PORT, like --osc 9000 or --osc 0.0.0.0:9000")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_hosts(hosts: Iterable[str]) -> set[str]:
    """The IP addresses of --osc-allow's hosts (names are looked up once, now)."""
    found: set[str] = set()
    for host in (h.strip() for h in hosts):
        if not host:
            continue
        try:
            found |= {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)}
        except OSError:
            raise UserError(f"--osc-allow {host!r}: no such host; give an IP address or a name this machine can resolve") from None
    return found


def _number(args: tuple, lo: float, hi: float, whole: bool = False) -> float | int | None:
    """The one numeric argument within lo..hi (an int may come as a whole float: TouchDesigner sends floats)."""
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        return None
    v = args[0]
    if whole:
        if isinstance(v, float) and not v.is_integer():
            return None
        v = int(v)
    elif isinstance(v, float):
        v = round(v, 5)  # OSC floats are 32-bit: 0.4 arrives as 0.4000000059604645
    return v if lo <= v <= hi else None


def _bounded(b: Bound) -> tuple[str, Callable[[tuple], Any]]:
    """What OSC wants for a bounded value of models.bounds, and its check."""
    kind = "int" if b.whole else "float"
    return f"one {kind}, {b.range_text()}", lambda a: _number(a, b.low, b.high, whole=b.whole)


def _seed(args: tuple) -> int | None:
    """Any whole number (an int, a whole float, or text holding one, for seeds past OSC's 64-bit ints), modulo 2**64."""
    if len(args) != 1:
        return None
    try:
        return check_seed(args[0])
    except UserError:
        return None


def _text(args: tuple) -> str | None:
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


# address (after /sdxs/) -> (what it wants, for the log line, and its check: args -> value or None)
CHECKS: dict[str, tuple[str, Callable[[tuple], Any]]] = {
    "prompt": ("one string", _text),
    "style": ("one string, a style preset's name", _text),
    "seed": ("one whole number (int, whole float or text), taken modulo 2**64", _seed),
    "seed/new": ("no argument", lambda a: NEW_SEED if not a else None),
    "strength": _bounded(BOUNDS["strength"]),
    "keep_colours": _bounded(BOUNDS["keep_colours"]),
    "transition": _bounded(BOUNDS["transition"]),
    "pause": ("one int, 0 or 1", lambda a: _number(a, 0, 1, whole=True)),
    "snapshot": ("no argument", lambda a: True if not a else None),
    "record": ("one int, 0 or 1", lambda a: _number(a, 0, 1, whole=True)),
}
LORA = _bounded(BOUNDS["lora_weight"])  # /sdxs/lora/NAME
MAX_DATAGRAM = 65535  # bytes read per datagram: every UDP datagram whole (socketserver's default is 8192)
RECEIVE_BUFFER = 4 << 20  # bytes of datagrams the kernel may hold while the server thread is busy (Linux caps it at net.core.rmem_max)
SHOWN = 80  # characters of an address or a value a log line shows
KEYS = 256  # rate-limited log keys remembered (the oldest are forgotten)
SNAPSHOT_GAP = 1.0  # seconds between two OSC snapshots (file names carry the second)


def shown(text: Any) -> str:
    """text as a log line shows it: at most SHOWN characters, the rest counted."""
    t = str(text)
    return t if len(t) <= SHOWN else f"{t[:SHOWN]}... ({len(t)} characters)"


class _Packets:
    """The dispatcher the python-osc server calls: parses each datagram itself (a hostile one is one line) and
    gives every message to OscControl._message; no address-pattern regexes are built from what senders send."""

    def __init__(self, control: OscControl):
        self.control = control

    def call_handlers_for_packet(self, data: bytes, client_address: tuple) -> list:
        from pythonosc.osc_packet import OscPacket

        try:
            messages = [m.message for m in OscPacket(data).messages]
        except Exception as e:  # ParseError, UnicodeDecodeError, RecursionError, struct.error: all one line
            self.control.malformed += 1
            self.control._log("malformed", "OSC: dropped a malformed datagram of %d bytes from %s: %s",
                              len(data), client_address[0], shown(f"{type(e).__name__}: {e}"))
            return []
        replies = []
        for m in messages:
            reply = self.control._message(client_address, m.address, *m.params)
            if reply is not None:
                replies.append(reply)
        return replies


class OscControl:
    """A UDP OSC server in its own thread; take() gives the newest value per setting since the last take().

    on_pending: called from the server thread when the first change after a take() arrives (the window
    turns it into a queued Qt signal); fps: the engine's current frame rate for /sdxs/fps replies."""

    def __init__(self, address: str = "9000", allow: Iterable[str] = (), on_pending: Callable[[], None] | None = None,
                 fps: Callable[[], float] | None = None):
        from pythonosc.osc_server import BlockingOSCUDPServer

        self.host, self.port = parse_address(address)
        allow = [h for h in allow if h.strip()]
        if not _is_loopback(self.host) and not allow:
            raise UserError(f"--osc {address!r} listens beyond this machine, and OSC has no password: add --osc-allow "
                            "HOST[,HOST...] naming the computers that may send, or listen on 127.0.0.1")
        self.allowed = {"127.0.0.1", "::1", "::ffff:127.0.0.1"} | resolve_hosts(allow)
        self.on_pending = on_pending
        self.fps = fps
        self.received = 0  # messages taken into pending
        self.rejected = 0  # wrong type, out of range or unknown address
        self.dropped = 0  # datagrams from senders not allowed
        self.malformed = 0  # datagrams that did not parse
        self.snapshots_refused = 0  # /sdxs/snapshot within SNAPSHOT_GAP of the last one
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._last_log: dict[str, float] = {}  # at most KEYS keys
        self._quiet: dict[str, int] = {}  # lines left out per key since its last one
        self._last_fps = 0.0  # the last non-zero rate, the /sdxs/fps answer while no frame is made
        self._last_snapshot = -SNAPSHOT_GAP
        dispatcher = _Packets(self)  # bundles' times are not waited for: a bundle timed in the future never stalls
        control = self

        class Server(BlockingOSCUDPServer):
            max_packet_size = MAX_DATAGRAM

            def server_bind(self) -> None:  # room for a burst (a controller's sweep): the kernel caps it at rmem_max
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
                super().server_bind()

            def handle_error(self, request, client_address) -> None:  # anything else: one line, not a traceback
                import sys

                e = sys.exc_info()[1]
                control._log("error", "OSC: a datagram from %s failed: %s", client_address[0],
                             shown(f"{type(e).__name__}: {e}"))

            def verify_request(self, request, client_address) -> bool:
                if client_address[0] not in control.allowed:
                    control.dropped += 1
                    control._log(f"sender {client_address[0]}", "dropped an OSC message from %s: not in --osc-allow",
                                 client_address[0])
                    return False
                return super().verify_request(request, client_address)

        try:
            self._server = Server((self.host, self.port), dispatcher)
        except OSError as e:
            why = "the port is in use by another program" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
            raise UserError(f"cannot listen for OSC on {self.host}:{self.port}: {why}; choose another, like --osc "
                            f"{self.port + 1}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="osc-server", daemon=True)
        self._thread.start()
        log.info("OSC: listening on %s:%d (/sdxs/prompt, /sdxs/seed, ...: see docs/instrument.md)", self.host, self.port)

    def take(self) -> dict[str, Any]:
        """The changes since the last take (address after /sdxs/ -> newest value), and forget them."""
        with self._lock:
            changes, self._pending = self._pending, {}
        return changes

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    # ---- the server thread ----------------------------------------------------------------------------

    def _message(self, client: tuple, address: str, *args: Any):
        key = address[len(PREFIX):] if address.startswith(PREFIX) else ""
        if key == "fps" and not args:
            rate = float(self.fps() if self.fps else 0.0)
            self._last_fps = rate if rate > 0 else self._last_fps  # a still canvas: the last rate it ran at
            return ("/sdxs/fps", self._last_fps)
        if key.startswith("lora/") and len(key) > 5:
            wants, value = LORA[0], LORA[1](args)
        elif key in CHECKS:
            wants, check = CHECKS[key]
            value = check(args)
        else:
            self.rejected += 1
            self._log("unknown address", "OSC %s: no such address; see the table in docs/instrument.md", shown(address))
            return None
        if value is None:
            self.rejected += 1
            self._log(key, "OSC %s %s: ignored, it takes %s", shown(address),
                      shown(" ".join(map(repr, args)) or "(no argument)"), wants)
            return None
        if key == "snapshot":
            now = time.monotonic()
            if now - self._last_snapshot < SNAPSHOT_GAP:
                self.snapshots_refused += 1
                self._log("snapshot", "OSC /sdxs/snapshot: one snapshot a second at most (its file is named by the "
                          "second); this one was not taken")
                return None
            self._last_snapshot = now
        key = "seed" if key == "seed/new" else key  # a new seed and a given one: the newest wins
        with self._lock:
            first = not self._pending
            self._pending[key] = value
            self.received += 1
        if first and self.on_pending is not None:
            self.on_pending()
        return None

    def _log(self, key: str, text: str, *args: Any) -> None:
        """One warning line per key a second at most; the lines left out are counted into the next one."""
        key = key[:SHOWN]  # a lora/NAME key of 7 KB is remembered as its first SHOWN characters
        now = time.monotonic()
        if now - self._last_log.get(key, -10.0) < 1.0:
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return
        self._last_log.pop(key, None)
        self._last_log[key] = now  # newest last: the oldest key is forgotten first
        while len(self._last_log) > KEYS:
            old = next(iter(self._last_log))
            del self._last_log[old]
            self._quiet.pop(old, None)
        more = self._quiet.pop(key, 0)
        log.warning(text + (f" ({more} more like it left out)" if more else ""), *args)


def find_name(name: str, names: Iterable[str]) -> str | None:
    """The one of `names` that an OSC address part means: the same, ignoring case, spaces as _ or -."""
    def norm(s: str) -> str:
        return "".join("_" if c in " -" else c for c in s.strip().lower())

    return next((n for n in names if n == name), None) or next((n for n in names if norm(n) == norm(name)), None)
