"""The remote engine's messages (app/remote/messages.py): a settings message maps onto LiveSettings as OSC's
changes do, names are checked against what the server offers, bad values and versions are one line each,
pictures split into parts and join again with the newest one winning; and a loopback server without a token
refuses a foreign Host or Origin (a web page elsewhere cannot drive it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.live.settings import PRESETS, LiveSettings
from app.remote.messages import (
    CHUNK,
    FRAME,
    VERSION,
    Message,
    Reassembler,
    decode_image,
    decode_text,
    encode_image,
    pack,
    settings_message,
    to_changes,
    with_changes,
)
from models.errors import UserError

LORAS = {"anime": "IDKiro/sdxs-512-dreamshaper-anime"}  # the name a client sees -> the spec LiveSettings holds
ADAPTERS = ["demo-sketch", "demo-colour"]


def apply(settings: LiveSettings, **fields) -> LiveSettings:
    msg = decode_text(Message(type="settings", fields=fields).encode())
    return with_changes(settings, to_changes(msg), LORAS, list(PRESETS), ADAPTERS)


def test_a_settings_message_becomes_live_settings():
    s = apply(LiveSettings(), prompt="a fox", seed=7, strength=0.5, transition=2.0, keep_colours=0.3, style="Anime",
              loras={"anime": 0.8}, adapters={"demo-colour": 0.2}, condition="canny", mirror=True)
    assert (s.prompt, s.seed, s.strength, s.transition, s.keep_colours, s.style) == ("a fox", 7, 0.5, 2.0, 0.3, "Anime")
    assert s.loras == {"IDKiro/sdxs-512-dreamshaper-anime": 0.8}
    assert s.adapters == {"demo-sketch": 0.5, "demo-colour": 0.2}  # the others keep the strength they had
    assert s.condition.mode == "canny" and s.condition.mirror
    assert apply(s) == s  # an empty message changes nothing


def test_the_whole_settings_value_goes_over_and_comes_back():
    start = LiveSettings(prompt="a boat", seed=3, strength=1.5, transition=0.0, keep_colours=0.0,
                         adapters={"demo-sketch": 1.2, "demo-colour": 0.4}, loras={"IDKiro/sdxs-512-dreamshaper-anime": 0.6})
    names = {spec: name for name, spec in LORAS.items()}
    msg = decode_text(settings_message(start, names).encode())
    assert with_changes(LiveSettings(), to_changes(msg), LORAS, list(PRESETS), ADAPTERS) == start


@pytest.mark.parametrize("fields, says", [
    ({"loras": {"/home/me/evil.safetensors": 1.0}}, "not offered"),  # a path names nothing the server offers
    ({"adapters": {"../../x": 1.0}}, "not offered"),
    ({"style": "No such style"}, "not offered"),
    ({"strength": 3}, "between 0"),
    ({"seed": -1}, "seed"),
    ({"seed": "7"}, "must be a int"),
    ({"transition": float("nan")}, "must be a number"),
    ({"condition": "depth"}, "condition"),
    ({"path": "/etc/passwd"}, "known fields"),
])
def test_bad_settings_are_one_line(fields, says):
    with pytest.raises(UserError, match=says) as e:
        apply(LiveSettings(), **fields)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, says", [
    ("not json", "not JSON"), ("[1]", "not a JSON object"), (json.dumps({"v": 99, "type": "ping"}), "version 99"),
    (json.dumps({"v": VERSION, "type": "exec"}), "known types"),
])
def test_bad_messages_are_one_line(text, says):
    with pytest.raises(UserError, match=says):
        decode_text(text)


def test_pictures_split_and_join_and_the_newest_wins():
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    png = encode_image(noisy, "png")
    assert len(png) > 2 * CHUNK  # several parts
    parts = pack(FRAME, {"seq": 5}, png, msg_id=1)
    newer = pack(FRAME, {"seq": 6}, encode_image(noisy[:64, :64], "png"), msg_id=2)
    r = Reassembler()
    assert r.add(parts[0]) is None and r.add(parts[1]) is None
    kind, header, payload = next(x for x in (r.add(p) for p in newer) if x is not None)  # a newer one starts: the old is dropped
    assert (kind, header["seq"], r.dropped) == (FRAME, 6, 1)
    assert all(r.add(p) is None for p in parts[2:])  # the rest of the dropped one is ignored
    whole = [r.add(p) for p in pack(FRAME, {"seq": 7}, png, msg_id=3)][-1]
    assert np.array_equal(decode_image(whole[2]), noisy)  # lossless


def test_only_png_and_jpeg_decode():
    with pytest.raises(UserError, match="neither PNG nor JPEG"):
        decode_image(b"\x80\x04\x95" + b"\x00" * 20)  # a pickle's first bytes
    with pytest.raises(UserError, match="2048"):
        decode_image(encode_image(np.zeros((8, 3000, 3), np.uint8), "png"))


def test_a_loopback_server_without_a_token_refuses_foreign_hosts_and_origins(engine):
    import urllib.error
    import urllib.request

    from app.live.loop import LiveLoop
    from app.remote.server import EngineServer

    server = EngineServer(LiveLoop(engine, LiveSettings(size=64)), "127.0.0.1:0")
    server.start()
    try:
        def status(headers: dict) -> int:
            req = urllib.request.Request(server.url + "/", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        assert status({}) == 200  # the page, on loopback
        assert status({"Host": "evil.example:8770"}) == 403  # DNS rebinding: a foreign name for this address
        assert status({"Origin": "http://evil.example"}) == 403  # another site's page
    finally:
        server.stop()
