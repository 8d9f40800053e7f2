"""OSC control (app.live.osc) through a real python-osc client on loopback: every address written to a
session by OSC's one interpreter (app.live.osc_session), wrong types, a burst of 10,000 messages, the
sender allow list, and stream's side (app.live.osc_stream) on a fake engine."""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("pythonosc")
from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from app.live.osc import NEW_SEED, OscControl  # noqa: E402
from app.live.osc_session import apply_osc  # noqa: E402
from app.live.session import LoadedLora, Session  # noqa: E402
from app.live.settings import LiveSettings  # noqa: E402
from models.errors import UserError  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def osc():
    control = OscControl("127.0.0.1:0")
    yield control
    control.close()


def wait_for(osc: OscControl, key: str, timeout: float = 5.0) -> dict:
    """Everything pending once `key` has arrived (what the next frame would take)."""
    got: dict = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got |= osc.take()
        if key in got:
            return got
        time.sleep(0.005)
    raise AssertionError(f"{key} did not arrive; got {got}")


def test_each_address_changes_its_setting(osc):
    client = SimpleUDPClient("127.0.0.1", osc.port)
    session = Session(loras_loaded=(LoadedLora(name="anime", spec="IDKiro/sdxs-512-dreamshaper-anime", weight=1.0),))
    for address, value, expect in [
        ("/sdxs/prompt", "a red fox in the snow", {"prompt": "a red fox in the snow"}),
        ("/sdxs/seed", 1234, {"seed": 1234}),
        ("/sdxs/seed", 77.0, {"seed": 77}),  # TouchDesigner sends whole numbers as floats
        ("/sdxs/seed", -1, {"seed": 2**64 - 1}),  # any whole number, taken modulo 2**64
        ("/sdxs/seed", 2**40, {"seed": 2**40}),  # past 2**31: an int64 on the wire
        ("/sdxs/seed", str(2**64 + 5), {"seed": 5}),  # past OSC's ints: as text
        ("/sdxs/strength", 1.25, {"strength": 1.25}),
        ("/sdxs/transition", 2.5, {"transition": 2.5}),
        ("/sdxs/style", "pixel_art", {"style": "Pixel art"}),  # by name; case, _ for space
        ("/sdxs/lora/anime", 0.4, {"loras": {"IDKiro/sdxs-512-dreamshaper-anime": 0.4}}),
    ]:
        client.send_message(address, value)
        key = address[len("/sdxs/"):]
        apply_osc(session, wait_for(osc, key))
        for field, v in expect.items():
            assert getattr(session.live, field) == v, address
    client.send_message("/sdxs/seed/new", [])
    assert wait_for(osc, "seed")["seed"] == NEW_SEED
    seeds = set()
    for _ in range(20):
        apply_osc(session, {"seed": NEW_SEED})
        seeds.add(session.live.seed)
    assert len(seeds) > 15 and max(seeds) > 2**32  # random over 0..2**64-1, not 2**31
    session.set(seed_locked=True)
    apply_osc(session, {"seed": 5})
    assert session.live.seed in seeds  # the lock leaves it
    for address, value in [("/sdxs/pause", 1), ("/sdxs/pause", 0), ("/sdxs/record", 1), ("/sdxs/snapshot", [])]:
        client.send_message(address, value)
        assert wait_for(osc, address[len("/sdxs/"):])[address[len("/sdxs/"):]] == (True if value == [] else value)
    assert osc.rejected == 0 and osc.dropped == 0


def test_wrong_types_and_ranges_are_counted_and_ignored(osc, caplog):
    client = SimpleUDPClient("127.0.0.1", osc.port)
    bad = [("/sdxs/strength", "high"), ("/sdxs/strength", 2.5), ("/sdxs/strength", -0.1), ("/sdxs/seed", 1.5),
           ("/sdxs/seed", "seven"), ("/sdxs/prompt", 3), ("/sdxs/pause", 2), ("/sdxs/transition", 61.0),
           ("/sdxs/lora/anime", "x"), ("/sdxs/snapshot", 1), ("/sdxs/seed/new", 5), ("/sdxs/nothing", 1),
           ("/sdxs/prompt", ["two", "strings"])]
    for address, value in bad:
        client.send_message(address, value)
    client.send_message("/sdxs/prompt", "still listening")
    got = wait_for(osc, "prompt")
    assert got == {"prompt": "still listening"}  # nothing of the bad ones got through
    assert osc.rejected == len(bad)
    assert "/sdxs/strength" in caplog.text and "takes one float, 0..2" in caplog.text


def test_a_bundle_timed_in_the_future_does_not_stall_the_server(osc):
    from pythonosc.osc_bundle_builder import OscBundleBuilder

    bundle = OscBundleBuilder(time.time() + 3600)  # an hour ahead: python-osc's default would sleep until then
    for text in ("first", "second"):
        msg = OscMessageBuilder("/sdxs/prompt")
        msg.add_arg(text)
        bundle.add_content(msg.build())
    SimpleUDPClient("127.0.0.1", osc.port).send(bundle.build())
    assert wait_for(osc, "prompt", timeout=2.0) == {"prompt": "second"}


def test_unknown_names_change_nothing(caplog):
    session = Session()
    assert apply_osc(session, {"style": "Nope", "lora/ghost": 1.0}) == frozenset() and session.live == LiveSettings()
    assert "no such style" in caplog.text and "no LoRA of that name" in caplog.text


def test_a_burst_of_10000_is_coalesced_and_the_server_stays_responsive(osc):
    from pythonosc.osc_message import OscMessage

    client = SimpleUDPClient("127.0.0.1", osc.port)
    osc.fps = lambda: 12.5
    for i in range(10_000):
        client.send_message("/sdxs/strength", (i % 200) / 100)
    burst_end = time.perf_counter()
    asker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # /sdxs/fps answers its sender
    asker.settimeout(0.2)
    asker.bind(("127.0.0.1", 0))
    answer = None
    while answer is None and time.perf_counter() - burst_end < 5:
        asker.sendto(OscMessageBuilder("/sdxs/fps").build().dgram, ("127.0.0.1", osc.port))  # UDP: ask again if lost
        try:
            answer = OscMessage(asker.recvfrom(1024)[0])
        except TimeoutError:
            pass
    replied = time.perf_counter() - burst_end
    asker.close()
    assert answer is not None and answer.address == "/sdxs/fps" and answer.params == [12.5]
    assert replied < 2.0, f"the server answered {replied:.2f} s after the burst"
    got = osc.take()
    assert list(got) == ["strength"] and 0 <= got["strength"] <= 2  # the whole burst is one change for the next frame
    assert osc.received > 100  # the kernel may drop part of a UDP burst; what came went into that one value
    client.send_message("/sdxs/strength", 0.5)
    assert wait_for(osc, "strength") == {"strength": 0.5}  # the newest value wins


def test_other_senders_are_dropped_unless_allowed():
    def send_from(host: str, port: int, text: str) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))  # 127.0.0.2 is loopback too, but not this machine's own address
        msg = OscMessageBuilder("/sdxs/prompt")
        msg.add_arg(text)
        s.sendto(msg.build().dgram, ("127.0.0.1", port))
        s.close()

    closed = OscControl("127.0.0.1:0")
    try:
        send_from("127.0.0.2", closed.port, "from elsewhere")
        send_from("127.0.0.1", closed.port, "from here")
        assert wait_for(closed, "prompt") == {"prompt": "from here"}
        assert closed.dropped == 1
    finally:
        closed.close()
    opened = OscControl("127.0.0.1:0", allow=["127.0.0.2"])
    try:
        send_from("127.0.0.2", opened.port, "allowed")
        assert wait_for(opened, "prompt") == {"prompt": "allowed"} and opened.dropped == 0
    finally:
        opened.close()


def test_listening_beyond_loopback_needs_an_allow_list_and_a_free_port(osc):
    with pytest.raises(UserError, match="--osc-allow"):
        OscControl("0.0.0.0:0")
    with pytest.raises(UserError, match="in use"):
        OscControl(f"127.0.0.1:{osc.port}")
    with pytest.raises(UserError, match="port from 1 to 65535"):
        OscControl("127.0.0.1:99999")


def test_stream_control_applies_changes_before_the_next_frame(osc, tmp_path):
    import numpy as np

    from app.live.loop import Frame, LiveLoop
    from app.live.osc_stream import StreamControl
    from app.live.sinks import RecorderSink, SinkSet
    from app.live.testing import stand_in

    loop = LiveLoop(stand_in(size=64), LiveSettings(prompt="before"))
    sinks = SinkSet()
    control = StreamControl(osc, loop, sinks, tmp_path, 10.0)
    client = SimpleUDPClient("127.0.0.1", osc.port)
    for address, value in [("/sdxs/prompt", "after"), ("/sdxs/strength", 1.5), ("/sdxs/record", 1), ("/sdxs/snapshot", [])]:
        client.send_message(address, value)
    end, i = time.monotonic() + 5, 0
    while len(control.recorders()) == 0 or not control.snapshots:
        assert time.monotonic() < end, "the OSC messages did not arrive"
        control.poll()
        i += 1  # a new drawing each time: a reused (unchanged) output is not recorded again
        result = loop.process(Frame(np.full((64, 64, 3), 255 - i % 200, np.uint8), time.perf_counter(), True))
        sinks.send(result)
        control.after(result.output)
        time.sleep(0.01)
    assert loop.settings.prompt == "after" and loop.engine.prompt == "after" and loop.engine.control_scale == 1.5
    assert control.snapshots[0].exists()
    rec = control.recorders()[0]
    assert isinstance(rec, RecorderSink)
    client.send_message("/sdxs/record", 0)
    end = time.monotonic() + 5
    while control.recorders():
        assert time.monotonic() < end
        control.poll()
        time.sleep(0.01)
    assert rec.path is not None and rec.path.exists() and rec.path.suffix == ".mp4"


def test_stream_pause_holds_until_resumed(osc, tmp_path):
    import threading

    from app.live.loop import LiveLoop
    from app.live.osc_stream import StreamControl
    from app.live.sinks import SinkSet
    from app.live.testing import stand_in

    control = StreamControl(osc, LiveLoop(stand_in(size=64)), SinkSet(), tmp_path, 10.0)
    client = SimpleUDPClient("127.0.0.1", osc.port)
    client.send_message("/sdxs/pause", 1)
    end = time.monotonic() + 5
    while not control.paused:
        assert time.monotonic() < end
        control.poll()
        time.sleep(0.01)
    threading.Timer(0.3, lambda: client.send_message("/sdxs/pause", 0)).start()
    t0 = time.monotonic()
    control.hold()  # returns once /sdxs/pause 0 arrives
    assert 0.25 < time.monotonic() - t0 < 5 and not control.paused
