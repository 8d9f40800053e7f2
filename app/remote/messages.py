"""The remote engine's data-channel messages, versioned and typed, and their binary framing.

Text messages are JSON objects {"v": VERSION, "type": ..., ...}; the fields of `settings` are LiveSettings' own
(app/live/settings.py) and carry the same meaning as OSC's addresses (app/live/osc.py):

    hello     server -> client   the protocol version, the picture size, the adapters (and what each follows:
                                 conditions), LoRAs and styles it offers
    settings  client -> server   any of prompt, style, seed, strength, adapters {name: 0..2}, loras {name: weight},
                                 transition, keep_colours, condition, mirror (absent fields stay as they are)
    pause     client -> server   on: true holds the picture (frames are dropped), false resumes
    snapshot  client -> server   the server answers with the newest picture, lossless (a SNAPSHOT frame)
    record    client -> server   recording is the client's (stream --out, the window): the server answers an error
    ping/pong either way         t: the sender's clock, echoed (round-trip time; also the link's heartbeat)
    error     server -> client   text: one line
    picture   server -> client   a picture sent on the video track: its pts there and `in`, the pts of the video
                                 frame it was made from as the server received it (app/remote/video.py matches
                                 them), with engine_ms, server_ms, frames, reused

Binary messages carry pictures: MAGIC, one kind byte, a 4-byte big-endian header length, a JSON header, the
payload. FRAME (client -> server) is a PNG (lossless: video codecs smear thin lines) or, for a camera frame
from a client without a video track, a JPEG (camera, video and screen frames go on a video track, VP8, and their
pictures come back on one: app/remote/video.py); PICTURE (server -> client) a JPEG (or PNG when asked); SNAPSHOT a PNG. A payload larger than CHUNK is
split into parts that share an id (the header's id, part, parts); Reassembler keeps only the newest id, so an
older frame still arriving when a newer one starts is dropped (newest frame wins).

No message names a file path: adapters and LoRAs are named among those the server offers; payloads are only
ever decoded as images (never unpickled).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from models.errors import UserError

VERSION = 1
MAGIC = b"SDX"
FRAME, PICTURE, SNAPSHOT = b"F", b"P", b"S"
CHUNK = 60_000  # bytes of payload per message: under the 64 KiB any WebRTC peer takes (RFC 8841)
MAX_PAYLOAD = 8 * 2**20  # bytes: the largest picture a peer accepts (a 1024 px PNG is at most 3 MiB)
MAX_TEXT = 64 * 1024  # characters of a text message
SETTING_FIELDS = ("prompt", "style", "seed", "strength", "adapters", "loras", "transition", "keep_colours",
                  "condition", "mirror")
TYPES = ("hello", "settings", "pause", "snapshot", "record", "ping", "pong", "error", "picture")


@dataclass(frozen=True, kw_only=True)
class Message:
    """One text message: its type and its fields (for settings: only those that change)."""

    type: str  # one of TYPES
    fields: dict[str, Any] = field(default_factory=dict)  # the rest of the JSON object

    def encode(self) -> str:
        return json.dumps({"v": VERSION, "type": self.type, **self.fields})


def decode_text(text: str) -> Message:
    """A text message, checked: JSON object, this version, a known type; else a UserError in one line."""
    if len(text) > MAX_TEXT:
        raise UserError(f"message of {len(text)} characters: at most {MAX_TEXT}")
    try:
        obj = json.loads(text)
    except ValueError:
        raise UserError("message is not JSON") from None
    if not isinstance(obj, dict):
        raise UserError("message is not a JSON object")
    if obj.get("v") != VERSION:
        raise UserError(f"message version {obj.get('v')!r}: this engine speaks version {VERSION}; update the client")
    kind = obj.pop("type", None)
    obj.pop("v")
    if kind not in TYPES:
        raise UserError(f"message type {kind!r}: known types are {', '.join(TYPES)}")
    return Message(type=kind, fields=obj)


def settings_message(settings: Any, loras: dict[str, str] | None = None) -> Message:
    """The settings message for a whole LiveSettings value. loras: LiveSettings.loras' key (a spec) -> the name the
    server offers (the name is what goes over the wire; default: the key as it is)."""
    names = loras or {}
    return Message(type="settings", fields={
        "prompt": settings.prompt, "style": settings.style, "seed": int(settings.seed), "strength": float(settings.strength),
        "adapters": dict(settings.adapters), "loras": {names.get(k, k): float(w) for k, w in settings.loras.items()},
        "transition": float(settings.transition), "keep_colours": float(settings.keep_colours),
        "condition": settings.condition.mode, "mirror": bool(settings.condition.mirror)})


def to_changes(message: Message) -> dict[str, Any]:
    """A message as changes in OSC's words (app.live.osc: prompt, style, seed, strength, transition, keep_colours,
    lora/NAME, pause, snapshot, record), plus adapter/NAME (an adapter's own strength), condition and mirror.
    Types and ranges are checked here (UserError naming the field); names are checked by with_changes."""
    from app.live.settings import CONDITION_MODES
    from models.options import check_strength, check_text

    f, out = message.fields, {}
    if message.type in ("pause", "record"):
        return {message.type: bool(f.get("on", True))}
    if message.type == "snapshot":
        return {"snapshot": True}
    if message.type != "settings":
        return {}
    for key in f:
        if key not in SETTING_FIELDS:
            raise UserError(f"settings field {key!r}: known fields are {', '.join(SETTING_FIELDS)}")
    for key in ("prompt", "style"):
        if key in f:
            out[key] = check_text(_typed(f[key], str, key), key)
    if "seed" in f:
        seed = _typed(f["seed"], int, "seed")
        if not 0 <= seed < 2**63:
            raise UserError(f"seed {seed} must be between 0 and 2**63 - 1")
        out["seed"] = seed
    for key in ("strength", "keep_colours"):
        if key in f:
            out[key] = check_strength(_number(f[key], key), key)
    if "transition" in f:
        t = _number(f["transition"], "transition")
        if not 0 <= t <= 60:
            raise UserError(f"transition {t:g} must be between 0 and 60 seconds")
        out["transition"] = t
    for key, prefix, check in (("adapters", "adapter/", True), ("loras", "lora/", False)):
        for name, value in _typed(f.get(key, {}), dict, key).items():
            v = _number(value, f"{key}[{name!r}]")
            if check:
                check_strength(v, f"adapter {name!r}")
            elif not -4 <= v <= 4:
                raise UserError(f"LoRA {name!r} weight {v:g} must be between -4 and 4")
            out[prefix + str(name)] = v
    if "condition" in f:
        mode = _typed(f["condition"], str, "condition")
        if mode not in CONDITION_MODES:
            raise UserError(f"condition {mode!r}: use one of {', '.join(CONDITION_MODES)}")
        out["condition"] = mode
    if "mirror" in f:
        out["mirror"] = _typed(f["mirror"], bool, "mirror")
    return out


def with_changes(settings: Any, changes: dict[str, Any], offered_loras: dict[str, str], styles: list[str],
                 offered_adapters: list[str]) -> Any:
    """LiveSettings with to_changes' changes applied: OSC's one interpreter (app.live.osc_session.apply_osc, on a
    session holding these settings) for what OSC has, then adapter/NAME, condition and mirror. offered_loras: the
    name a client sees -> LiveSettings.loras' key. A name the server does not offer is a UserError (a client only
    names what the hello offered)."""
    from dataclasses import replace

    from app.live.osc import find_name
    from app.live.osc_session import apply_osc
    from app.live.session import LoadedLora, Session

    for key in changes:
        if key.startswith("lora/") and find_name(key[5:], offered_loras) is None:
            raise UserError(f"LoRA {key[5:]!r} is not offered; offered: {', '.join(offered_loras) or 'none'}")
        if key.startswith("adapter/") and key[8:] not in offered_adapters:
            raise UserError(f"adapter {key[8:]!r} is not offered; offered: {', '.join(offered_adapters) or 'none'}")
        if key == "style" and find_name(changes[key], styles) is None:
            raise UserError(f"style {changes[key]!r} is not offered; offered: {', '.join(styles)}")
    held = tuple(LoadedLora(name=n, spec=spec, weight=settings.loras.get(spec, 1.0)) for n, spec in offered_loras.items())
    session = Session(live=settings, loras_loaded=held)
    apply_osc(session, {k: v for k, v in changes.items() if k in OSC_KEYS or k.startswith("lora/")})
    s = session.live
    adapters = {k[8:]: v for k, v in changes.items() if k.startswith("adapter/")}
    if adapters:
        s = replace(s, adapters={**(s.adapters or dict.fromkeys(offered_adapters, s.strength)), **adapters})
    if "condition" in changes or "mirror" in changes:
        cond = replace(s.condition, mode=changes.get("condition", s.condition.mode),
                       mirror=changes.get("mirror", s.condition.mirror))
        s = replace(s, condition=cond)
    return s


OSC_KEYS = ("prompt", "style", "seed", "strength", "transition", "keep_colours")  # what OSC's interpreter takes here


def quiet_webrtc() -> None:
    """aioice and aiortc log every ICE check at INFO: keep them to warnings."""
    import logging

    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


def _typed(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{name} {value!r} must be a {kind.__name__}")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise UserError(f"{name} {value!r} must be a number")
    return float(value)


# binary messages: pictures


def pack(kind: bytes, header: dict[str, Any], payload: bytes, msg_id: int) -> list[bytes]:
    """One picture as messages of at most CHUNK payload bytes each, sharing msg_id."""
    parts = max(1, -(-len(payload) // CHUNK))
    out = []
    for i in range(parts):
        head = json.dumps({**header, "id": msg_id, "part": i, "parts": parts}).encode()
        out.append(MAGIC + kind + struct.pack(">I", len(head)) + head + payload[i * CHUNK:(i + 1) * CHUNK])
    return out


class Reassembler:
    """Joins a picture's parts; keeps only the newest id (an older, unfinished one is dropped)."""

    def __init__(self) -> None:
        self._id: int | None = None
        self._parts: list[bytes] = []
        self.dropped = 0  # pictures given up because a newer one started

    def add(self, data: bytes) -> tuple[bytes, dict[str, Any], bytes] | None:
        """(kind, header, payload) once a picture is whole; None while parts are missing. A malformed message
        is a UserError."""
        if len(data) < 8 or data[:3] != MAGIC:
            raise UserError("binary message without the SDX header")
        kind, (n,) = data[3:4], struct.unpack(">I", data[4:8])
        try:
            header = json.loads(data[8:8 + n])
            msg_id, part, parts = int(header["id"]), int(header["part"]), int(header["parts"])
        except (ValueError, KeyError, TypeError):
            raise UserError("binary message with a bad header") from None
        if not 1 <= parts <= MAX_PAYLOAD // CHUNK + 1 or not 0 <= part < parts:
            raise UserError(f"binary message part {part} of {parts}: out of range")
        if part == 0:
            if self._parts:
                self.dropped += 1
            self._id, self._parts = msg_id, []
        elif msg_id != self._id or part != len(self._parts):
            return None  # a part of a picture already given up
        self._parts.append(data[8 + n:])
        if len(self._parts) < parts:
            return None
        payload, self._parts = b"".join(self._parts), []
        return kind, header, payload


def encode_image(rgb: np.ndarray, fmt: str = "png", quality: int = 90) -> bytes:
    """uint8 RGB -> PNG (lossless) or JPEG bytes."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]), cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UserError(f"could not encode a {rgb.shape} picture as {fmt}")
    return buf.tobytes()


def decode_image(data: bytes, max_side: int = 2048) -> np.ndarray:
    """PNG or JPEG bytes -> uint8 RGB (alpha dropped over white); UserError for anything else or too large."""
    if len(data) > MAX_PAYLOAD:
        raise UserError(f"picture of {len(data)} bytes: at most {MAX_PAYLOAD}")
    if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8")):
        raise UserError("picture is neither PNG nor JPEG")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim not in (2, 3) or max(img.shape[:2]) > max_side:
        raise UserError(f"picture does not decode to an image of at most {max_side} px a side")
    if img.dtype != np.uint8:
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        alpha = img[:, :, 3:].astype(np.float32) / 255
        img = (img[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
