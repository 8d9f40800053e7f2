"""The window's adapter list, the colour layer on its way to the engine, and Keep colours (pytest-qt, offscreen):
with the stand-in engine (app.live.testing.stand_in: the real engine on a stand-in runner keeps a real adapter list with strengths) and the tiny
real model."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from app.live.testing import stand_in
from app.ui.canvas.canvas_tools import NO_COLOUR_ADAPTER, PALETTE
from app.ui.outputs.qimage import to_rgb
from app.ui.panel.modelpick import Choice
from app.ui.pipeline import wait_idle
from app.ui.session.settings import Persisted, open_settings
from app.ui.window import MainWindow, StartOptions


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


class Loader:
    """Makes a stand-in engine holding the adapters the load asks for (EngineOptions.controlnets), as the real
    loader does; remembers each engine and the options."""

    def __init__(self):
        self.engines: list = []
        self.options = []

    def __call__(self, options, *rest):
        from models.options import parse_adapter_arg

        e = stand_in(size=64)
        e.set_adapter(None)
        for arg in options.controlnets:
            e.add_adapter(*parse_adapter_arg(arg))
        self.engines.append(e)
        self.options.append(options)
        return e


def open_window(qtbot, ini, loader, adapters=("demo",), source="sketch"):
    w = MainWindow(open_settings(str(ini)), loader)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.start(StartOptions(Choice("stand-in", adapters), source, "a test", 64))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None and wait_idle(w.pipeline, 5), timeout=60000)
    return w


def engine_of(w):
    return w.pipeline.worker.loop.engine


def settle(qtbot, w, check, timeout=10000):
    qtbot.waitUntil(lambda: check() and wait_idle(w.pipeline, 5), timeout=timeout)


def draw(canvas, points):
    canvas.stroke_to(QPointF(*points[0]), start=True)
    for p in points[1:]:
        canvas.stroke_to(QPointF(*p))
    canvas.end_stroke()


def test_the_demo_loads_both_adapters_and_the_list_rides_the_engine(qtbot, tmp_path):
    loader = Loader()
    w = open_window(qtbot, tmp_path / "s.ini", loader)
    e, rows = engine_of(w), w.panel.adapters.rows
    settle(qtbot, w, lambda: list(rows) == ["demo-sketch", "demo-colour"])
    assert loader.options[0].controlnets == ("demo",)
    assert [r.condition for r in rows.values()] == ["sketch", "colour-hints"] and not w.panel.adapters.empty.isVisible()
    assert "sketch + colour-hints" in w.panel.readout.text()

    rows["demo-colour"].slider.setValue(40)  # live: through LiveSettings.adapters, applied in the worker
    settle(qtbot, w, lambda: e.adapter_strengths == {"demo-sketch": 1.0, "demo-colour": 0.4})
    rows["demo-sketch"].number.setValue(1.7)  # the number box moves the slider too
    settle(qtbot, w, lambda: e.adapter_strengths["demo-sketch"] == 1.7)
    assert rows["demo-sketch"].slider.value() == 170 and e.runners[0].last_strengths == [1.7, 0.4]
    rows["demo-colour"].slider.mouseDoubleClickEvent(None)  # double-click: 1
    settle(qtbot, w, lambda: e.adapter_strengths["demo-colour"] == 1.0)

    w.panel.adapters.request("my-canny:0.6")  # Add adapter... (hub id or path), at a strength
    settle(qtbot, w, lambda: list(rows) == ["demo-sketch", "demo-colour", "my-canny"])
    assert e.adapter_strengths["my-canny"] == 0.6 and rows["my-canny"].strength == 0.6
    assert not w.output.message.startswith("Loading adapter")  # the busy line goes once it has loaded
    rows["demo-sketch"].remove.click()
    settle(qtbot, w, lambda: list(e.adapter_strengths) == ["demo-colour", "my-canny"])
    assert list(rows) == ["demo-colour", "my-canny"] and w.pipeline.info["controlnet"] == "demo-colour"
    w.panel.strength.setValue(150)  # the Prompt group's Strength: every adapter at once
    settle(qtbot, w, lambda: e.adapter_strengths == {"demo-colour": 1.5, "my-canny": 1.5})
    assert [r.strength for r in rows.values()] == [1.5, 1.5]
    assert len(loader.engines) == 1  # no reload for any of it
    w.close()


def test_a_bad_adapter_is_one_line_and_changes_nothing(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path / "s.ini", Loader())
    w.panel.adapters.request("demo-colour:7")
    settle(qtbot, w, lambda: "strength" in w.statusBar().currentMessage())
    msg = w.statusBar().currentMessage()
    assert "7" in msg and "\n" not in msg and list(w.panel.adapters.rows) == ["demo-sketch", "demo-colour"]
    w.close()


def test_the_list_and_strengths_persist_and_load_again(qtbot, tmp_path):
    ini = tmp_path / "s.ini"
    w = open_window(qtbot, ini, Loader())
    rows = w.panel.adapters.rows
    settle(qtbot, w, lambda: len(rows) == 2)
    rows["demo-colour"].slider.setValue(70)
    w.panel.adapters.request("my-canny:0.3")
    settle(qtbot, w, lambda: "my-canny" in rows)
    rows["demo-sketch"].remove.click()
    settle(qtbot, w, lambda: "demo-sketch" not in engine_of(w).adapter_strengths)
    w.close()
    saved = Persisted.load(open_settings(str(ini)))
    assert saved.adapters == {"demo-colour": 0.7, "my-canny": 0.3} and saved.controlnet == "demo-colour"

    from app.ui.panel.adapters import spec_args
    from app.ui.panel.modelpick import startup_choice

    choice = startup_choice(None, None, saved.model, spec_args(saved.adapters) or saved.controlnet)  # as main.py
    assert choice.controlnet == ("demo-colour:0.7", "my-canny:0.3")
    loader = Loader()
    w2 = MainWindow(open_settings(str(ini)), loader)
    qtbot.addWidget(w2)
    w2.start(StartOptions(choice, "sketch", "a test", 64))
    qtbot.waitUntil(lambda: w2.pipeline.worker.loop is not None and wait_idle(w2.pipeline, 5), timeout=20000)
    settle(qtbot, w2, lambda: list(w2.panel.adapters.rows) == ["demo-colour", "my-canny"])
    assert engine_of(w2).adapter_strengths == {"demo-colour": 0.7, "my-canny": 0.3}
    assert [r.strength for r in w2.panel.adapters.rows.values()] == [0.7, 0.3]
    w2.load_from_panel()  # Load again: the same model with the listed adapters, nothing reloads
    settle(qtbot, w2, lambda: w2.pipeline.worker.request is not None)
    assert engine_of(w2).adapter_strengths == {"demo-colour": 0.7, "my-canny": 0.3} and len(loader.engines) == 1
    # the Add menu offers the adapters used before that are not loaded now (the removed demo-sketch), newest first
    adapters = w2.panel.adapters
    adapters.menu.aboutToShow.emit()
    offered = [a.text() for a in adapters.menu.actions() if not a.isSeparator()]
    assert offered[:3] == ["Folder...", "Hub id or path...", "Demo adapters (sketch and colour)"]
    assert offered[3:] == ["demo-sketch"]
    next(a for a in adapters.menu.actions() if a.text() == "demo-sketch").trigger()
    settle(qtbot, w2, lambda: list(adapters.rows) == ["demo-colour", "my-canny", "demo-sketch"])
    w2.close()


def test_the_colour_layer_reaches_the_colour_adapter_and_the_lines_the_sketch_one(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path / "s.ini", Loader())
    e, page = engine_of(w), w.canvas_page
    settle(qtbot, w, lambda: page.colour_button.isEnabled())
    assert not page.colour_note.isVisible() and w.actions.act_colour.isEnabled()
    draw(w.canvas, [(50, 250), (450, 250)])
    settle(qtbot, w, lambda: e.runners[0].last_frames and e.runners[0].last_frames[0].min() < 50)
    lines = e.runners[0].last_frames[0].copy()
    assert e.runners[0].last_frames[1].min() == 255  # no colour yet: white, no hint
    n = e.runners[0].steps
    page.pick_colour(QColor(*PALETTE[7][1]))
    draw(w.canvas, [(250, 50), (250, 450)])
    settle(qtbot, w, lambda: e.runners[0].steps > n and (e.runners[0].last_frames[1] != 255).any())
    colour = e.runners[0].last_frames[1]
    painted = (colour != 255).any(axis=2)
    assert np.array_equal(e.runners[0].last_frames[0], lines)  # the sketch adapter saw the same lines
    ys, xs = np.nonzero(painted)
    blue = colour[painted].astype(int).mean(axis=0)
    assert blue[2] > 150 and blue[0] < 100 and abs(np.median(xs) - 250) < 8  # the blue stroke, where it was drawn
    w.canvas.undo()  # the colour stroke
    settle(qtbot, w, lambda: e.runners[0].last_frames[1].min() == 255)
    w.close()


def test_fill_shapes_fills_the_drawn_shape_a_dab_sits_in_and_is_remembered(qtbot, tmp_path):
    ini = tmp_path / "s.ini"
    w = open_window(qtbot, ini, Loader())
    e, page, panel = engine_of(w), w.canvas_page, w.panel
    settle(qtbot, w, lambda: page.colour_button.isEnabled())
    assert panel.fill_shapes.isEnabled() and panel.fill_shapes.isChecked() and w.live.fill_shapes
    draw(w.canvas, [(100, 100), (400, 100), (400, 400), (100, 400), (100, 100)])  # a closed square
    page.pick_colour(QColor(*PALETTE[7][1]))
    n = e.runners[0].steps
    draw(w.canvas, [(240, 250), (260, 250)])  # a small dab inside it
    settle(qtbot, w, lambda: e.runners[0].steps > n and (e.runners[0].last_frames[1] != 255).any())
    filled = (e.runners[0].last_frames[1] != 255).any(axis=2)
    side = filled.shape[0]
    assert filled[side // 4 + 4 : 3 * side // 4 - 4, side // 4 + 4 : 3 * side // 4 - 4].mean() > 0.95  # the square
    assert not filled[: side // 6].any()  # not the paper around it
    qtbot.waitUntil(lambda: w.output.inset is not None)  # the output's corner shows what the colour adapter got
    assert np.array_equal(to_rgb(w.output.inset), w.last_result.conditions[1]) and w.output.inset_label == "colour hints"
    panel.overlay.setChecked(False)  # the overlay off: no inset either
    assert w.output.inset is None
    panel.overlay.setChecked(True)
    assert w.output.inset is not None
    panel.fill_shapes.setChecked(False)  # as painted: the dab alone
    settle(qtbot, w, lambda: not w.live.fill_shapes and (e.runners[0].last_frames[1] != 255).any(axis=2).mean() < 0.05)
    w.set_source("image:" + str(_picture(tmp_path)))
    assert not panel.fill_shapes.isEnabled()  # a canvas option: greyed for a live source
    assert w.output.inset is None
    w.close()
    assert not Persisted.load(open_settings(str(ini))).live.fill_shapes


def test_without_a_colour_adapter_the_colour_brush_and_keep_colours_say_why(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path / "s.ini", Loader(), adapters=("demo-sketch",))
    page, panel = w.canvas_page, w.panel
    settle(qtbot, w, lambda: list(panel.adapters.rows) == ["demo-sketch"])
    assert not page.colour_button.isEnabled() and NO_COLOUR_ADAPTER in page.colour_button.toolTip()
    assert page.colour_note.isVisible() and not w.actions.act_colour.isEnabled()
    w.actions.act_colour.trigger()
    assert w.canvas.active == "lines"
    w.set_source("image:" + str(_picture(tmp_path)))
    assert not panel.keep_colours.isEnabled() and "colour-hints" in panel.keep_colours.toolTip()
    panel.adapters.request("demo-colour")  # a colour-hint adapter arrives: both come on
    settle(qtbot, w, lambda: panel.keep_colours.isEnabled())
    assert page.colour_button.isEnabled() and not page.colour_note.isVisible()
    panel.adapters.rows["demo-colour"].remove.click()
    settle(qtbot, w, lambda: not panel.keep_colours.isEnabled())
    assert not page.colour_button.isEnabled()
    w.close()


def _picture(tmp_path):
    from models.imageio import write_rgb

    img = np.full((96, 96, 3), 255, np.uint8)
    img[20:76, 20:76] = (200, 40, 40)
    img[40:56, 40:56] = (30, 60, 210)
    return write_rgb(tmp_path / "still.png", img)


def test_keep_colours_sets_the_strength_of_the_colour_adapter_for_a_live_source(qtbot, tmp_path):
    ini = tmp_path / "s.ini"
    w = open_window(qtbot, ini, Loader(), source="image:" + str(_picture(tmp_path)))
    e, panel = engine_of(w), w.panel
    settle(qtbot, w, lambda: panel.keep_colours.isEnabled())
    assert panel.keep_colours.isChecked()  # on by default with a colour-hint adapter
    settle(qtbot, w, lambda: len(e.runners[0].last_strengths) == 2)
    assert e.runners[0].last_strengths[1] == w.live.keep_colours == 1.0
    assert (e.runners[0].last_frames[1] != 255).any()  # the picture's own colours as hints
    panel.keep_strength.setValue(60)
    settle(qtbot, w, lambda: e.runners[0].last_strengths[1:] == [0.6])
    assert w.live.keep_colours == 0.6 and panel.keep_label.text() == "0.60"
    panel.keep_colours.setChecked(False)  # off: 0, and the slider waits
    settle(qtbot, w, lambda: e.runners[0].last_strengths[1:] == [0.0])
    assert w.live.keep_colours == 0.0 and not panel.keep_strength.isEnabled()
    w.set_source("sketch")  # the canvas: the colour layer instead, Keep colours is greyed
    assert not panel.keep_colours.isEnabled() and "colour brush" in panel.keep_colours.toolTip()
    w.close()
    saved = Persisted.load(open_settings(str(ini)))
    assert saved.live.keep_colours == 0.0
    w2 = MainWindow(open_settings(str(ini)), Loader())
    qtbot.addWidget(w2)
    assert not w2.panel.keep_colours.isChecked() and w2.panel.keep_strength.value() == 100
    w2.shutdown()


def test_two_real_adapters_with_live_strengths_and_the_colour_layer(qtbot, tmp_path, tiny_base, tiny_controlnet):
    """The tiny real model with a sketch adapter and a colour-hint one (the same tiny weights, adapter.json saying
    colour-hints): a strength slider and a colour stroke each change the picture, with no new recipe."""
    import json
    import shutil

    colour = tmp_path / "colour-adapter"
    shutil.copytree(tiny_controlnet, colour)
    (colour / "adapter.json").write_text(json.dumps({"condition": "colour-hints"}))
    w = MainWindow(open_settings(str(tmp_path / "s.ini")))
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice(tiny_base, (tiny_controlnet, f"{colour}:0.5")), "sketch", "a test", 64, "cpu", "float32"))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None and w.last_result is not None, timeout=120000)
    rows = w.panel.adapters.rows
    settle(qtbot, w, lambda: len(rows) == 2, 30000)
    sketch, hints = list(rows)
    e = engine_of(w)
    assert e.adapter_strengths == {sketch: 1.0, hints: 0.5} and rows[hints].condition == "colour-hints"
    assert w.canvas_page.colour_button.isEnabled()
    draw(w.canvas, [(60, 60), (400, 300)])
    settle(qtbot, w, lambda: w.pipeline.frames >= 2, 60000)
    before, recipe = w.last_result.output.copy(), e.recipe
    rows[hints].slider.setValue(200)
    settle(qtbot, w, lambda: e.adapter_strengths[hints] == 2.0 and not np.array_equal(w.last_result.output, before), 60000)
    strong = w.last_result.output.copy()
    w.canvas_page.pick_colour(QColor(*PALETTE[0][1]))
    w.canvas.set_brush(60, "colour")
    draw(w.canvas, [(100, 400), (450, 400)])  # a red band: only the colour-hint adapter sees it
    settle(qtbot, w, lambda: not np.array_equal(w.last_result.output, strong), 60000)
    assert w.last_result.conditions[1][400, 200, 0] > 150 and w.last_result.conditions[1][400, 200, 1] < 100
    assert w.last_result.conditions[0].min() < 50 and (w.last_result.conditions[0] < 250).all(axis=2).sum() < 0.2 * 512 * 512
    assert e.recipe is recipe  # strengths and hints are inputs, not a new recipe
    w.close()


def test_the_window_command_takes_controlnet_repeated(qtbot, tmp_path, tiny_base, tiny_controlnet, capsys):
    """`python main.py --controlnet A --controlnet B:0.5`: both load at their strengths and are remembered; a bad
    strength is one line before anything loads."""
    import shutil

    from main import main

    other = tmp_path / "other-adapter"
    shutil.copytree(tiny_controlnet, other)
    ini = str(tmp_path / "s.ini")
    assert main(["--controlnet", "demo-sketch", "--controlnet", "demo-colour:9", "--settings", ini]) == 2
    err = capsys.readouterr().err
    assert "demo-colour:9" in err and "strength" in err and err.count("\n") == 1
    assert main(["--model", tiny_base, "--controlnet", tiny_controlnet, "--controlnet", f"{other}:0.5", "--size", "64",
                 "--device", "cpu", "--dtype", "float32", "--source", "sketch", "--exit-after", "20", "--settings", ini]) == 0
    saved = Persisted.load(open_settings(ini))
    assert saved.adapters == {tiny_controlnet: 1.0, str(other): 0.5} and saved.controlnet == tiny_controlnet
