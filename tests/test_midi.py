"""MIDI learn (app.live.midi) with mido messages fed in directly (this machine has no sound devices), and
end to end through a virtual port: ALSA's where a sequencer exists, JACK's on a JACK server of our own (its dummy
driver, no sound card; skipped where jackd is not installed: tests/system_deps.sh installs jackd2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

mido = pytest.importorskip("mido")

from app.live.midi import Binding, MidiMap, input_names, on_range, open_input  # noqa: E402


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
    with open_input(names[0], lambda msg: got.extend(m.feed(msg))):
        out.send(cc(7, 10))
        out.send(cc(7, 127))
        end = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < end:
            time.sleep(0.01)
    out.close()
    assert got == [("learned", None), ("strength", 1.0)]


@pytest.fixture()
def jack_server(monkeypatch):
    """A JACK server with the dummy driver (no sound card), named for this test; libjack finds it by name."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (Debian: apt-get install jackd2; tests/system_deps.sh does it)")
    name = f"sdxs-test-{os.getpid()}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    proc = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jack = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    end = time.monotonic() + 20
    while True:
        try:
            jack.get_input_names()
            break
        except Exception:
            if time.monotonic() > end or proc.poll() is not None:
                proc.kill()
                pytest.skip("jackd did not start here")
            time.sleep(0.2)
    yield jack
    proc.terminate()
    proc.wait(10)


def test_a_jack_port_is_found_without_an_alsa_sequencer(jack_server, capfd):
    """A controller on JACK (what the issue's user had): listed and opened, and ALSA's complaint about its missing
    sequencer is not printed on the terminal."""
    out = jack_server.open_output("sdxs-jack-controller", virtual=True)
    try:
        names, why = input_names("sdxs-jack-controller")
        assert why == "" and len(names) == 1 and "sdxs-jack-controller" in names[0]
        got = []
        m = MidiMap()
        m.learn("strength")
        with open_input(names[0], lambda msg: got.extend(m.feed(msg))):
            time.sleep(0.3)  # JACK connects the ports on its next cycle
            out.send(cc(7, 10))
            out.send(cc(7, 127))
            end = time.monotonic() + 5
            while len(got) < 2 and time.monotonic() < end:
                time.sleep(0.01)
    finally:
        out.close()
    assert got == [("learned", None), ("strength", 1.0)]
    err = capfd.readouterr().err
    assert "ALSA lib" not in err and "Cannot connect" not in err
