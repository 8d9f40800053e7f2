"""Several adapters in the live loop (app.live.loop): each adapter's own condition, the canvas's colour layer,
keep colours for live sources, and the stand-in engine's adapter list (app.live.testing.stand_in: the real engine on a stand-in runner)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from app.live.loop import Frame, LiveLoop, extract
from app.live.settings import LiveSettings
from app.live.testing import stand_in
from models.errors import UserError
from models.hints import frame_hints


def photo(seed: int = 0, size: int = 96) -> np.ndarray:
    """A colourful picture: blocks of strong colours, which the line extractors and the colour hints both see."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 250, np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, size - 24, 2)
        img[y:y + 24, x:x + 24] = rng.integers(0, 200, 3)
    return img


def test_the_stand_in_engine_keeps_a_real_adapter_list():
    e = stand_in(size=64)
    assert [a.name for a in e.adapters] == ["fake"] and e.adapter is e.adapters[0]
    names = e.add_adapter("demo", 0.5)
    assert names == ["demo-sketch", "demo-colour"]
    assert [a.info.condition for a in e.adapters] == ["sketch", "sketch", "colour-hints"]
    assert e.adapter_strengths == {"fake": 0.8, "demo-sketch": 0.5, "demo-colour": 0.5}
    assert e.adapter_specs == {"fake": "fake", "demo-sketch": "demo-sketch", "demo-colour": "demo-colour"}
    assert e.add_adapter("demo-sketch") == ["demo-sketch-2"]  # names stay unique
    before = e.settings
    e.set_adapter_strength("demo-colour", 1.5)
    assert e.adapter_strengths["demo-colour"] == 1.5 and e.settings != before
    e.remove_adapter("demo-sketch-2")
    assert list(e.adapter_strengths) == ["fake", "demo-sketch", "demo-colour"]
    with pytest.raises(UserError, match="no adapter named 'nope'"):
        e.set_adapter_strength("nope", 1.0)
    with pytest.raises(UserError, match="must be between 0"):
        e.set_adapter_strength("fake", 3.0)
    e.control_scale = 0.3  # every adapter at once
    assert set(e.adapter_strengths.values()) == {0.3}
    with pytest.raises(UserError, match="2 condition images for 3 adapters"):
        e.step([photo(), photo()])
    e.step([photo(1), photo(2), photo(3)], [None, 2.0, 0.0])
    assert e.runners[0].last_strengths == [0.3, 2.0, 0.0] and len(e.runners[0].last_frames) == 3


def test_each_adapter_sees_its_own_condition_from_a_live_frame():
    """A canny adapter sees canny lines, a sketch adapter the sketch, the colour-hint adapter the frame's own
    colours (frame_hints) at the keep-colours strength, not at its own."""
    e = stand_in(size=64, condition="canny")
    e.add_adapter("demo")  # demo-sketch (the fake's condition: canny) and demo-colour
    e.adapters[1].info = replace(e.adapters[1].info, condition="sketch")
    loop = LiveLoop(e, LiveSettings(keep_colours=0.6, adapters={"fake": 1.0, "demo-sketch": 0.9, "demo-colour": 1.4}))
    img = photo()
    r = loop.process(Frame(img, time.perf_counter()))
    s = loop.settings.condition
    assert np.array_equal(e.runners[0].last_frames[0], extract(img, s, "canny"))
    assert np.array_equal(e.runners[0].last_frames[1], extract(img, s, "sketch"))
    assert np.array_equal(e.runners[0].last_frames[2], frame_hints(img))
    assert e.runners[0].last_strengths == [1.0, 0.9, 0.6]  # keep colours, not the list's 1.4
    assert e.adapter_strengths["demo-colour"] == 1.4  # the list strength is left as the user set it
    assert len(r.conditions) == 3 and r.condition is r.conditions[0]
    assert np.array_equal(r.conditions[2], frame_hints(img))


def test_keep_colours_zero_feeds_white_at_strength_zero_and_a_change_renders_again():
    e = stand_in(size=64, colour=True)
    loop = LiveLoop(e, LiveSettings(keep_colours=0.0, steady=None))
    img = photo(3)
    loop.process(Frame(img, time.perf_counter()))
    assert e.runners[0].last_strengths[1] == 0.0 and (e.runners[0].last_frames[1] == 255).all()
    steps = e.runners[0].steps
    assert loop.process(Frame(img, time.perf_counter())).reused  # nothing changed
    loop.apply(replace(loop.settings, keep_colours=1.2))
    r = loop.process(Frame(img, time.perf_counter()))  # the same frame, a new keep-colours strength: rendered
    assert not r.reused and e.runners[0].steps == steps + 1 and e.runners[0].last_strengths[1] == 1.2
    assert np.array_equal(e.runners[0].last_frames[1], frame_hints(img))


def test_the_canvas_feeds_its_colour_layer_to_the_colour_adapter_at_its_own_strength():
    e = stand_in(size=64, colour=True)
    loop = LiveLoop(e, LiveSettings(keep_colours=0.3, adapters={"fake": 1.0, "demo-colour": 1.7}))
    drawing = np.full((80, 80, 3), 255, np.uint8)
    drawing[20:60, 40] = 0
    r = loop.process(Frame(drawing, time.perf_counter(), drawn=True))
    assert np.array_equal(e.runners[0].last_frames[0], drawing) and (e.runners[0].last_frames[1] == 255).all()  # no layer: white
    assert e.runners[0].last_strengths == [1.0, 1.7]
    colour = np.full((80, 80, 3), 255, np.uint8)
    colour[10:30, 10:30] = (200, 30, 30)
    r = loop.process(Frame(drawing, time.perf_counter(), drawn=True, layers={"colour": colour}))
    assert not r.reused, "a colour blob alone is a change"
    assert np.array_equal(e.runners[0].last_frames[1], colour) and np.array_equal(r.conditions[1], colour)
    assert loop.process(Frame(drawing, time.perf_counter(), drawn=True, layers={"colour": colour})).reused


def test_fill_shapes_grows_a_canvas_dab_to_the_shape_it_sits_in_and_off_sends_it_as_painted():
    import cv2

    e = stand_in(size=64, colour=True)
    loop = LiveLoop(e, LiveSettings())
    drawing = np.full((80, 80, 3), 255, np.uint8)
    cv2.rectangle(drawing, (20, 20), (60, 60), (0, 0, 0), 2)
    colour = np.full((80, 80, 3), 255, np.uint8)
    colour[36:44, 36:44] = (40, 90, 220)
    loop.process(Frame(drawing, time.perf_counter(), drawn=True, layers={"colour": colour}))
    hints = e.runners[0].last_frames[1]
    assert (hints[24:57, 24:57] == (40, 90, 220)).all()  # the square's inside, to its lines
    assert (hints[:15] == 255).all() and (hints[:, :15] == 255).all()  # the paper outside stays white
    loop.apply(replace(loop.settings, fill_shapes=False))
    loop.process(Frame(drawing, time.perf_counter(), drawn=True, layers={"colour": colour}))
    assert np.array_equal(e.runners[0].last_frames[1], colour)


def test_settings_strengths_per_adapter_and_strength_for_all():
    e = stand_in(size=64, colour=True)
    loop = LiveLoop(e, LiveSettings(strength=0.4))
    assert e.adapter_strengths == {"fake": 0.4, "demo-colour": 0.4}  # no list: one strength for all
    loop.apply(replace(loop.settings, adapters={"demo-colour": 1.1, "not-loaded": 2.0}))
    assert e.adapter_strengths == {"fake": 0.4, "demo-colour": 1.1}  # a name not loaded is left for later


def test_one_adapter_loops_as_before():
    e = stand_in(size=64)
    loop = LiveLoop(e, LiveSettings(strength=0.7))
    img = photo(5)
    r = loop.process(Frame(img, time.perf_counter()))
    assert e.control_scale == 0.7 and e.runners[0].last_strengths == [0.7]
    assert np.array_equal(r.condition, extract(img, loop.settings.condition, "sketch"))


def test_generates_one_image_for_all_gives_a_colour_hint_adapter_white_beside_a_line_adapter():
    from app.cli.generate import conditions

    sketch = np.full((70, 70, 3), 255, np.uint8)
    sketch[10:60, 30] = 0
    both = conditions(stand_in(size=64, colour=True), [sketch])
    assert np.array_equal(both[0], sketch) and (both[1] == 255).all() and both[1].shape == sketch.shape
    colour_only = stand_in(size=64)
    colour_only.use_adapter("demo-colour")
    assert conditions(colour_only, [sketch])[0] is sketch  # alone, it gets the image it was given
    assert conditions(stand_in(size=64, colour=True), [sketch, sketch]) == [sketch, sketch]
