"""OSC into the window (app.ui.session.osc_link): a real python-osc client on loopback writes the window's session,
the widgets bound to it follow and the settings go out the usual way; a burst is coalesced; pause, snapshot
and record act like the menu; any whole seed is taken, modulo 2**64."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pythonosc")
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from app.live.osc import OscControl  # noqa: E402
from app.live.testing import stand_in  # noqa: E402
from app.ui.session.osc_link import OscLink  # noqa: E402
from tests.test_app_window import make_window  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def window(qtbot, tmp_path):
    engine = stand_in(size=64)
    w = make_window(qtbot, tmp_path, lambda *a: engine)
    link = OscLink(w.session, OscControl("127.0.0.1:0"), w)
    yield w, link, SimpleUDPClient("127.0.0.1", link.osc.port), engine
    link.close()
    w.close()


def test_osc_moves_the_widgets_and_the_engine_follows(qtbot, window, tmp_path):
    w, link, client, engine = window
    panel = w.panel
    client.send_message("/sdxs/prompt", "a lighthouse at night")
    qtbot.waitUntil(lambda: panel.prompt.text() == "a lighthouse at night", timeout=5000)
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.prompt == "a lighthouse at night", timeout=5000)
    qtbot.waitUntil(lambda: engine.prompt == "a lighthouse at night", timeout=5000)  # on the next frame
    client.send_message("/sdxs/strength", 1.25)
    client.send_message("/sdxs/transition", 2.0)
    client.send_message("/sdxs/seed", 4242)
    client.send_message("/sdxs/style", "watercolor")
    qtbot.waitUntil(lambda: panel.seed.value() == 4242 and panel.strength.value() == 125, timeout=5000)
    assert panel.transition.value() == 2.0 and panel.preset.currentText() == "Watercolor"
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.strength == 1.25, timeout=5000)
    client.send_message("/sdxs/keep_colours", 0.4)
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.keep_colours == 0.4, timeout=5000)
    assert panel.keep_colours.isChecked() and panel.keep_strength.value() == 40
    client.send_message("/sdxs/keep_colours", 0.0)
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.keep_colours == 0.0, timeout=5000)
    assert not panel.keep_colours.isChecked() and panel.keep_strength.value() == 40
    s = w.pipeline.worker.loop.settings
    assert s.seed == 4242 and s.transition == 2.0 and s.style == "Watercolor"
    client.send_message("/sdxs/seed/new", [])
    qtbot.waitUntil(lambda: panel.seed.value() != 4242, timeout=5000)
    client.send_message("/sdxs/seed", -1)  # any whole number: taken modulo 2**64, in the box and the engine
    qtbot.waitUntil(lambda: panel.seed.value() == 2**64 - 1, timeout=5000)
    assert panel.seed.text() == str(2**64 - 1)
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.seed == 2**64 - 1, timeout=5000)
    client.send_message("/sdxs/seed", str(2**70 + 3))  # past OSC's 64-bit ints: as text
    qtbot.waitUntil(lambda: w.session.live.seed == 3 and panel.seed.value() == 3, timeout=5000)
    panel.styles.set_loaded([("anime", "hub/anime-lora", 1.0)])  # a LoRA row as the window shows it
    client.send_message("/sdxs/lora/anime", -0.5)
    qtbot.waitUntil(lambda: panel.styles.rows["hub/anime-lora"].weight == -0.5, timeout=5000)
    client.send_message("/sdxs/pause", 1)
    qtbot.waitUntil(lambda: w.paused and w.actions.act_pause.isChecked(), timeout=5000)
    client.send_message("/sdxs/pause", 0)
    qtbot.waitUntil(lambda: not w.paused, timeout=5000)
    client.send_message("/sdxs/snapshot", [])
    qtbot.waitUntil(lambda: bool(list(tmp_path.glob("sdxs-*.png"))), timeout=5000)
    client.send_message("/sdxs/record", 1)
    qtbot.waitUntil(lambda: w.pipeline.recording, timeout=5000)
    for i in range(3):  # strokes make frames for the recording
        w.canvas.set_drawing(w.canvas.frame() // 2 + 60 * i)
        qtbot.wait(150)
    client.send_message("/sdxs/record", 0)
    qtbot.waitUntil(lambda: bool(list(tmp_path.glob("sdxs-*.mp4"))), timeout=10000)
    assert link.osc.rejected == 0


def test_a_burst_is_one_change_and_bad_values_leave_the_widgets_alone(qtbot, window):
    w, link, client, engine = window
    panel = w.panel
    qtbot.wait(300)
    frames = w.pipeline.worker.loop.frames
    for i in range(10_000):
        client.send_message("/sdxs/strength", (i % 200) / 100)
    end = time.monotonic() + 10
    while panel.strength.value() != 75:  # the kernel may drop part of a UDP burst: send the last value until it lands
        assert time.monotonic() < end, "the window did not take the last value"
        client.send_message("/sdxs/strength", 0.75)
        qtbot.wait(200)
    assert link.batches < 200, f"{link.batches} batches for a burst of 10,000"  # coalesced: far fewer than messages
    for address, value in [("/sdxs/strength", "loud"), ("/sdxs/strength", 7.0), ("/sdxs/seed", 1.5), ("/sdxs/pause", 3)]:
        client.send_message(address, value)
    client.send_message("/sdxs/prompt", "after the noise")
    qtbot.waitUntil(lambda: panel.prompt.text() == "after the noise", timeout=5000)
    assert panel.strength.value() == 75 and not w.paused and link.osc.rejected == 4
    w.offer_canvas()
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.frames > frames, timeout=5000)  # the engine still runs
