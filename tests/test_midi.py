"""MIDI learn (app.live.midi) with mido messages fed in directly (this machine has no sound devices), and
end to end through a virtual port only where an ALSA sequencer exists."""

from __future__ import annotations

import pytest

mido = pytest.importorskip("mido")

from app.live.midi import Binding, MidiMap, input_names, on_range  # noqa: E402


def cc(control: int, value: int, channel: int = 0):
    return mido.Message("control_change", channel=channel, control=control, value=value)


def note(n: int, velocity: int = 100, channel: int = 9):
    return mido.Message("note_on", channel=channel, note=n, velocity=velocity)


def test_learn_binds_the_next_knob_and_maps_its_range():
    m = MidiMap()
    assert m.feed(cc(21, 10)) == []  # nothing bound yet
    m.learn("strength")
    assert m.feed(note(36)) == []  # a slider waits for a knob or fader
    assert m.feed(cc(21, 64)) == [("learned", None)]
    assert m.get("strength") == Binding(kind="cc", channel=0, number=21, target="strength")
    assert m.feed(cc(21, 0)) == [("strength", 0.0)]
    assert m.feed(cc(21, 127)) == [("strength", 1.0)]
    assert m.feed(cc(21, 127, channel=1)) == []  # another channel is another control
    assert on_range(0.0, 0, 2) == 0 and on_range(1.0, 0, 2) == 2 and on_range(64 / 127, 0, 2) == pytest.approx(1.008, abs=1e-3)
    assert m.get("strength").describe() == "CC 21 on channel 1"


def test_notes_and_buttons_trigger_and_one_control_moves_one_thing():
    m = MidiMap()
    m.learn("snapshot")
    m.feed(note(36))
    m.learn("record")
    m.feed(cc(64, 127))  # a button sending control changes
    assert m.feed(note(36)) == [("snapshot", None)]
    assert m.feed(note(36, velocity=0)) == []  # note off
    assert m.feed(mido.Message("note_off", channel=9, note=36)) == []
    assert m.feed(cc(64, 127)) == [("record", None)] and m.feed(cc(64, 0)) == []  # press, not release
    m.learn("seed/new")
    m.feed(note(36))  # the pad moves to New seed: Snapshot loses it
    assert m.get("snapshot") is None and m.feed(note(36)) == [("seed/new", None)]
    assert m.get("seed/new").describe() == "note C2 on channel 10"


def test_bindings_are_removable_and_survive_a_restart():
    m = MidiMap()
    for target, control in (("strength", 1), ("transition", 2), ("lora/anime", 3)):
        m.learn(target)
        m.feed(cc(control, 1))
    m.remove("transition")
    again = MidiMap.from_json(m.to_json())
    assert again.bindings == m.bindings and set(again.bindings) == {"strength", "lora/anime"}
    assert again.feed(cc(3, 127)) == [("lora/anime", 1.0)]
    assert MidiMap.from_json("not json").bindings == {}
    assert set(MidiMap.from_json('[{"kind": "cc", "channel": 99, "number": 1, "target": "x"}, {"oops": 1}]').bindings) == set()


def test_without_a_midi_system_the_reason_is_one_line():
    names, why = input_names()
    if names:
        pytest.skip(f"this machine has MIDI inputs: {names}")
    assert why and "\n" not in why


def test_a_virtual_port_end_to_end():
    import time

    try:
        out = mido.open_output("sdxs-test-controller", virtual=True)
    except Exception as e:  # rtmidi raises SystemError without an ALSA sequencer
        pytest.skip(f"no virtual MIDI port here (no ALSA sequencer, /dev/snd/seq): {str(e).splitlines()[0]}")
    names, _ = input_names("sdxs-test-controller")
    got = []
    m = MidiMap()
    m.learn("strength")
    with mido.open_input(names[0], callback=lambda msg: got.extend(m.feed(msg))):
        out.send(cc(7, 10))
        out.send(cc(7, 127))
        end = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < end:
            time.sleep(0.01)
    out.close()
    assert got == [("learned", None), ("strength", 1.0)]
