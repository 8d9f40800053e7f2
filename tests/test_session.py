"""The session (app.live.session) without Qt: observers hear exactly what changed, bounded values are checked
against models.bounds (a seed is any whole number, modulo 2**64), Strength moves every adapter, a style's
preset brings its LoRAs, a schedule's cue writes it, and writers on several threads lose nothing."""

from __future__ import annotations

import sys
import threading

import pytest

from app.live.schedule import apply_cue, parse_schedule
from app.live.session import LoadedAdapter, LoadedLora, ModelInfo, Session
from app.live.settings import ConditionSettings, LiveSettings
from app.live.styles import Preset
from models.errors import UserError


def heard(session: Session) -> list[frozenset[str]]:
    calls: list[frozenset[str]] = []
    session.subscribe(calls.append)
    return calls


def test_observers_hear_what_changed_and_nothing_else():
    s = Session()
    calls = heard(s)
    assert s.set(prompt="a fox", seed=7) == {"prompt", "seed"} and calls == [{"prompt", "seed"}]
    assert s.set(prompt="a fox") == frozenset() and len(calls) == 1  # the same value: no change, no call
    s.set({"condition.low": 50, "condition.mirror": True})
    assert calls[-1] == {"condition", "condition.low", "condition.mirror"}
    assert s.live.condition == ConditionSettings(low=50, mirror=True) and s.get("condition.low") == 50
    s.set(paused=True, fps=12.5)
    assert calls[-1] == {"paused", "fps"} and s.paused and s.fps == 12.5


def test_unsubscribe_and_a_failing_observer_leave_the_others():
    s = Session()
    calls = heard(s)
    stop = s.subscribe(lambda names: 1 / 0)  # logged, not raised into the writer
    s.set(prompt="x")
    stop()
    s.set(prompt="y")
    assert calls == [{"prompt"}, {"prompt"}]


@pytest.mark.parametrize("seed, kept", [(-1, 2**64 - 1), (2**64, 0), (2**70 + 3, 3), (7.0, 7), ("12", 12)])
def test_any_whole_seed_is_taken_modulo_2_64(seed, kept):
    s = Session()
    s.set(seed=seed)
    assert s.live.seed == kept


@pytest.mark.parametrize("name, value", [("seed", 1.5), ("seed", "x"), ("strength", 2.5), ("strength", -0.01),
                                         ("transition", 61.0), ("keep_colours", float("nan")), ("size", 100),
                                         ("size", 4096), ("condition.low", 256), ("condition.sigma", 0)])
def test_a_value_out_of_bounds_raises_and_changes_nothing(name, value):
    s = Session()
    calls = heard(s)
    with pytest.raises(UserError):
        s.set({name: value, "prompt": "not taken either"})
    assert s.live == LiveSettings() and calls == []


def test_strength_moves_every_adapter_and_a_lora_weight_is_checked():
    s = Session(live=LiveSettings(adapters={"a": 0.3, "b": 1.7}))
    s.set(strength=1.25)
    assert s.live.adapters == {"a": 1.25, "b": 1.25}
    s.set_adapter_strength("b", 0.5)
    assert s.live.adapters == {"a": 1.25, "b": 0.5} and s.live.strength == 1.25
    s.set_lora_weight("hub/ink", -2.0)
    assert s.live.loras == {"hub/ink": -2.0}
    with pytest.raises(UserError, match="LoRA hub/ink's weight 5"):
        s.set_lora_weight("hub/ink", 5.0)
    with pytest.raises(UserError, match="adapter b's strength"):
        s.set_adapter_strength("b", 3.0)


def test_roll_seed_covers_64_bits_unless_locked():
    s = Session()
    seeds = set()
    for _ in range(30):
        s.roll_seed()
        seeds.add(s.live.seed)
    assert len(seeds) > 25 and max(seeds) >= 2**33
    s.set(seed_locked=True)
    seed = s.live.seed
    assert not s.roll_seed() and s.live.seed == seed


def test_choosing_a_preset_brings_its_loras_and_zeroes_the_others():
    s = Session(live=LiveSettings(loras={"hub/old": 0.8}),
                presets=(Preset(name="my ink", template="{prompt}, ink", loras={"hub/ink": 0.7}),))
    assert "my ink" in s.style_names() and "Watercolor" in s.style_names()
    s.choose_style("my ink")
    assert s.live.style == "my ink" and s.live.template == "{prompt}, ink"
    assert s.live.loras == {"hub/old": 0.0, "hub/ink": 0.7}
    s.choose_style("Watercolor")  # a built-in style: its template is the engine's, no LoRAs
    assert s.live.template == "" and s.live.loras == {"hub/old": 0.0, "hub/ink": 0.7}
    with pytest.raises(UserError, match="no style 'Nope'"):
        s.choose_style("Nope")


def test_the_loaded_model_is_a_typed_value():
    info = ModelInfo.from_report({"model": "demo", "device": "cpu", "dtype": "float32", "size": 64, "native": 64,
                                  "adapters": ("demo-sketch",), "conditions": ["sketch"], "polarity": "black_on_white",
                                  "backend": "torch", "controlnet": "demo-sketch", "condition": "sketch"})
    assert info.controlnet == "demo-sketch" and info.condition == "sketch" and info.conditions == ("sketch",)
    both = info.with_adapters([LoadedAdapter(name="s", spec="demo-sketch", strength=1.0, condition="sketch"),
                               LoadedAdapter(name="c", spec="demo-colour", strength=1.0, condition="colour-hints")])
    s = Session(model=both, adapters_loaded=())
    assert s.model.adapters == ("demo-sketch", "demo-colour") and not s.has_colour()
    s.set(adapters_loaded=(LoadedAdapter(name="c", spec="demo-colour", strength=1.0, condition="colour-hints"),))
    assert s.has_colour()


def test_a_schedule_cue_writes_the_session():
    s = Session(loras_loaded=(LoadedLora(name="anime", spec="hub/anime", weight=1.0),))
    (first, second) = parse_schedule("0 a city seed=-1 lora=anime:0.5\n2 seed=18446744073709551621\n")
    apply_cue(s, first)
    assert s.live.prompt == "a city" and s.live.seed == 2**64 - 1 and s.live.loras == {"hub/anime": 0.5}
    apply_cue(s, second)
    assert s.live.prompt == "a city" and s.live.seed == 5


def test_writers_on_many_threads_lose_no_change():
    """OSC's and MIDI's threads write while the GUI thread reads: every LoRA each thread set is there at the end,
    and every observer call saw a consistent value."""
    s = Session()
    seen_bad = []

    def check(names):
        live = s.live
        if not isinstance(live.loras, dict):
            seen_bad.append(live)

    s.subscribe(check)

    def writer(k: int) -> None:
        for i in range(400):
            s.set_lora_weight(f"t{k}/{i % 5}", (i % 8) / 4)
            s.set(fps=float(i))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a read-modify-write outside the lock loses LoRAs here
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert set(s.live.loras) == {f"t{k}/{i}" for k in range(4) for i in range(5)} and not seen_bad
