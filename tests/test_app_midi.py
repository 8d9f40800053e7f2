"""MIDI learn in the window (app.ui.session.midi_link), with mido messages fed in as a port's callback would: the
slider moves over its range, pads press buttons, the context menu shows and forgets the mapping, and the
mapping is remembered by the next window. Without a MIDI system the menu entry says why."""

from __future__ import annotations

import pytest

mido = pytest.importorskip("mido")

from PySide6.QtWidgets import QMenu  # noqa: E402

from app.live.testing import stand_in  # noqa: E402
from tests.test_app_window import make_window  # noqa: E402
from tests.test_midi import jack_server  # noqa: E402, F401  (the fixture: a JACK server of our own)

pytestmark = pytest.mark.timeout(120)


def cc(control, value, channel=0):
    return mido.Message("control_change", channel=channel, control=control, value=value)


def texts(link, target):
    menu = QMenu()
    link.entries(menu, target)
    return [a.text() for a in menu.actions()]


def test_learn_a_knob_for_a_slider_and_pads_for_buttons(qtbot, tmp_path):
    engine = stand_in(size=64)
    w = make_window(qtbot, tmp_path, lambda *a: engine)
    link, panel = w.midi, w.panel
    link.why = ""  # as if a port were open: this machine has none
    link.learn("strength")
    link._incoming(cc(21, 5))  # from "mido's thread": queued to the GUI thread
    qtbot.waitUntil(lambda: link.map.get("strength") is not None, timeout=5000)
    assert "CC 21 on channel 1 now moves Strength" in w.statusBar().currentMessage()
    for value in (0, 40, 127):
        link._incoming(cc(21, value))
    qtbot.waitUntil(lambda: panel.strength.value() == panel.strength.maximum(), timeout=5000)
    qtbot.waitUntil(lambda: w.pipeline.worker.loop.settings.strength == panel.strength.maximum() / 100, timeout=5000)
    link.feed(cc(21, 0))
    assert panel.strength.value() == panel.strength.minimum()
    link.learn("transition")
    link.feed(cc(22, 1))
    link.feed(cc(22, 127))
    assert panel.transition.value() == panel.transition.maximum()
    panel.styles.set_loaded([("anime", "hub/anime-lora", 1.0)])
    link._hook_loras([])
    link.learn("lora/anime")
    link.feed(cc(23, 0))
    link.feed(cc(23, 127))
    assert panel.styles.rows["hub/anime-lora"].weight == panel.styles.rows["hub/anime-lora"].number.maximum()
    qtbot.waitUntil(lambda: "fake" in panel.adapters.rows, timeout=5000)  # the stand-in's adapter, hooked when listed
    assert panel.adapters.rows["fake"].slider.property("midi")  # right-click > Learn MIDI
    link.learn("adapter/fake")
    link.feed(cc(24, 0))
    link.feed(cc(24, 127))
    assert panel.adapters.rows["fake"].strength == 2.0
    qtbot.waitUntil(lambda: engine.adapter_strengths == {"fake": 2.0}, timeout=5000)
    assert texts(link, "adapter/fake")[0] == "Learn MIDI for adapter fake"
    link.learn("keep_colours")
    link.feed(cc(25, 0))
    link.feed(cc(25, 64))
    assert panel.keep_strength.value() == round(200 * 64 / 127)
    seed = panel.seed.value()
    link.learn("seed/new")
    link.feed(mido.Message("note_on", channel=9, note=36, velocity=90))
    link.feed(mido.Message("note_on", channel=9, note=36, velocity=90))
    assert panel.seed.value() != seed
    link.learn("snapshot")
    link.feed(mido.Message("note_on", channel=9, note=38, velocity=90))
    link.feed(mido.Message("note_on", channel=9, note=38, velocity=90))
    qtbot.waitUntil(lambda: bool(list(tmp_path.glob("sdxs-*.png"))), timeout=5000)
    assert texts(link, "strength") == ["Learn MIDI for Strength", "Mapped to CC 21 on channel 1", "Forget MIDI mapping"]
    link.forget("transition")
    assert texts(link, "transition") == ["Learn MIDI for Transition"]
    w.close()  # remembered with the window's settings
    w2 = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    assert set(w2.midi.map.bindings) == {"strength", "lora/anime", "adapter/fake", "keep_colours", "seed/new", "snapshot"}
    w2.midi.feed(cc(21, 0))
    assert w2.panel.strength.value() == 0
    w2.close()


def test_without_midi_the_entry_says_why(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    w.midi.open(None)
    if w.midi.ports:
        pytest.skip("this machine has MIDI inputs")
    entry = texts(w.midi, "strength")[0]
    assert entry.startswith("Learn MIDI (") and w.midi.why in entry and "\n" not in entry
    w.midi.open("no-such-port")
    assert "no-such-port" in w.midi.why or w.midi.why.startswith("no MIDI")
    w.close()


@pytest.mark.usefixtures("jack_server")
def test_a_jack_controller_is_heard_by_the_window(qtbot, tmp_path):
    """No ALSA sequencer here, a controller on JACK: the window listens to it, and a knob learns and moves a slider."""
    out = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("sdxs-jack-knobs", virtual=True)
    w = make_window(qtbot, tmp_path, lambda *a: stand_in(size=64))
    try:
        w.midi.open(None)
        assert w.midi.why == "" and any("sdxs-jack-knobs" in p.name for p in w.midi.ports)
        assert texts(w.midi, "strength")[0] == "Learn MIDI for Strength"
        w.midi.learn("strength")
        qtbot.wait(300)  # JACK connects the ports on its next cycle
        out.send(cc(21, 0))
        qtbot.waitUntil(lambda: w.midi.map.get("strength") is not None, timeout=5000)
        out.send(cc(21, 127))
        qtbot.waitUntil(lambda: w.panel.strength.value() == w.panel.strength.maximum(), timeout=5000)
    finally:
        w.close()
        out.close()
    assert w.midi.ports == []
