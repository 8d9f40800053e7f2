"""The window's styles (pytest-qt, offscreen, tiny real models and tiny LoRAs): adding a LoRA in the worker,
the live slider without a reload, a bad LoRA, remembered LoRAs and presets, and the transition display."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.live.loop import Frame
from app.live.session import ModelRequest
from app.live.settings import LiveSettings
from app.ui.panel.modelpick import Choice
from app.ui.pipeline import wait_idle
from app.ui.session.settings import Persisted, open_settings
from app.ui.window import MainWindow, StartOptions
from app.ui.worker import Worker
from tests.tiny_lora import save_lora

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def loras(tiny_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("styles")
    return {"kohya": str(save_lora(tiny_base, root / "ink_style.safetensors", "kohya", rank=4, seed=0)),
            "peft": str(save_lora(tiny_base, root / "peft_style", "peft", rank=4, seed=3))}


class Counting:
    """The real loader (models.opening.open_engine), counting the models it loads."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        from models.opening import open_engine

        return open_engine(*args)


def spy(monkeypatch, cls, name):
    """Count calls of a method that still runs as it is."""
    calls = []
    real = getattr(cls, name)

    def wrapper(self, *a, **k):
        calls.append(a)
        return real(self, *a, **k)

    monkeypatch.setattr(cls, name, wrapper)
    return calls


def open_window(qtbot, ini, model, adapter, loader=None):
    w = MainWindow(open_settings(str(ini)), loader)
    w.snapshot_dir = w.video_dir = ini.parent
    qtbot.addWidget(w)
    w.resize(1100, 700)
    w.show()
    w.start(StartOptions(Choice(model, adapter), "sketch", "a red fox", 64))
    qtbot.waitUntil(lambda: w.last_result is not None and wait_idle(w.pipeline, 30), timeout=60000)
    return w


def next_output(qtbot, w, action) -> np.ndarray:
    """Do something, then wait for the frame rendered after it."""
    assert wait_idle(w.pipeline, 30)
    n = w.pipeline.frames
    action()
    qtbot.waitUntil(lambda: w.pipeline.frames > n and wait_idle(w.pipeline, 30), timeout=30000)
    return w.last_result.output.copy()


def engine_of(w):
    return w.pipeline.worker.loop.engine


def add(qtbot, w, spec, weight=1.0):
    with qtbot.waitSignal(w.pipeline.lorasLoaded, timeout=30000):
        w.panel.styles.request(spec, weight)
    assert wait_idle(w.pipeline, 30)


def test_add_lora_and_ride_its_slider(qtbot, tmp_path, tiny_base, tiny_controlnet, loras, monkeypatch):
    from models.engine import Engine

    adds = spy(monkeypatch, Engine, "add_lora")
    loader = Counting()
    w = open_window(qtbot, tmp_path / "s.ini", tiny_base, tiny_controlnet, loader)
    plain = w.last_result.output.copy()
    assert w.panel.styles.rows == {} and w.panel.styles.empty.isVisible()
    n = w.pipeline.frames
    add(qtbot, w, loras["kohya"])
    qtbot.waitUntil(lambda: w.pipeline.frames > n and wait_idle(w.pipeline, 30), timeout=30000)
    styled = w.last_result.output.copy()
    row = w.panel.styles.rows[loras["kohya"]]
    assert row.label.text() == "ink_style" and row.weight == 1.0 and not w.panel.styles.empty.isVisible()
    assert int(np.abs(styled.astype(int) - plain).max()) > 5  # the LoRA changes the picture
    assert len(adds) == 1 and engine_of(w).lora_weights == {"ink_style": 1.0}

    off = next_output(qtbot, w, lambda: row.slider.setValue(0))  # the slider, on the next frame
    assert np.array_equal(off, plain) and engine_of(w).lora_weights == {"ink_style": 0.0}
    strong = next_output(qtbot, w, lambda: row.number.setValue(2.5))  # the number box moves the slider too
    assert row.slider.value() == 250 and int(np.abs(strong.astype(int) - styled).max()) > 5
    row.slider.mouseDoubleClickEvent(None)  # double-click: back to 1
    qtbot.waitUntil(lambda: engine_of(w).lora_weights == {"ink_style": 1.0} and wait_idle(w.pipeline, 30), timeout=30000)
    assert np.array_equal(w.last_result.output, styled)
    assert len(adds) == 1 and loader.calls == 1  # no reload for a weight

    gone = next_output(qtbot, w, lambda: row.remove.click())  # removed: the base model's own picture again
    assert np.array_equal(gone, plain) and engine_of(w).lora_weights == {} and w.panel.styles.rows == {}
    assert w.live.loras == {}
    w.close()


def test_slider_in_the_worker_keeps_the_fast_path(qtbot, tiny_base, tiny_controlnet, loras, sketch_image, monkeypatch):
    """On the fused fast path a weight change builds nothing: one build for the model, one for the LoRA's layers."""
    from models.runners.fused import FusedRunner

    builds = spy(monkeypatch, FusedRunner, "_build")  # the runner builds lazily, on the first frame of a new recipe
    w = Worker()
    w.configure(LiveSettings(prompt="a fox", size=64))
    w.load(ModelRequest(model=tiny_base, adapters=(tiny_controlnet,), device="cpu", dtype="float32", fast="fused"))
    frame = Frame(sketch_image, time.perf_counter(), True)

    def render(**loras):
        w.configure(LiveSettings(prompt="a fox", size=64, loras=loras))
        return w.loop.process(frame).output  # as the frame path runs it

    plain = render()
    with qtbot.waitSignal(w.lorasLoaded) as got:
        w.add_lora(loras["peft"], 1.0)
    assert [(name, weight) for name, _, weight in got.args[0]] == [("peft_style", 1.0)] and len(builds) == 1
    spec = loras["peft"]
    one, zero, neg = (render(**{spec: x}) for x in (1.0, 0.0, -1.5))
    assert len(builds) == 2 and w.loop.engine.fast == "fused"
    assert np.array_equal(zero, plain) and not np.array_equal(one, plain) and not np.array_equal(neg, one)


def test_a_bad_lora_is_one_line_and_changes_nothing(qtbot, tmp_path, tiny_base, tiny_controlnet, loras):
    import torch
    from safetensors.torch import save_file

    w = open_window(qtbot, tmp_path / "s.ini", tiny_base, tiny_controlnet)
    add(qtbot, w, loras["kohya"], 0.5)
    key = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"  # an SDXL layer
    save_file({f"{key}.lora_down.weight": torch.zeros(4, 640), f"{key}.lora_up.weight": torch.zeros(640, 4)},
              tmp_path / "sdxl.safetensors")
    for spec, says in ((str(tmp_path / "missing.safetensors"), "neither an existing file"),
                       (str(tmp_path / "sdxl.safetensors"), "does not fit base model")):
        with qtbot.waitSignal(w.pipeline.failed, timeout=30000) as failed:
            w.pipeline.add_lora(spec, 1.0)  # what the group asks for (for a loaded one it moves the row instead)
        assert wait_idle(w.pipeline, 30)
        msg = w.statusBar().currentMessage()
        assert says in failed.args[0] and msg == failed.args[0] and "\n" not in msg and "Traceback" not in msg
        assert list(w.panel.styles.rows) == [loras["kohya"]] and engine_of(w).lora_weights == {"ink_style": 0.5}
    said = []
    w.pipeline.failed.connect(said.append)
    with qtbot.waitSignal(w.pipeline.lorasLoaded, timeout=30000):  # one it holds (asked twice in a race): left as it is
        w.pipeline.add_lora(loras["kohya"], 1.0)
    assert said == [] and engine_of(w).lora_weights == {"ink_style": 0.5}
    assert not w.busy_bar.isVisible() and w.panel.styles.add_button.isEnabled()
    assert not w.output.message.startswith("Loading LoRA")
    w.close()


def test_loras_persist_are_readded_and_follow_a_new_model(qtbot, tmp_path, tiny_base, tiny_controlnet, loras):
    ini = tmp_path / "s.ini"
    w = open_window(qtbot, ini, tiny_base, tiny_controlnet)
    add(qtbot, w, loras["kohya"])
    add(qtbot, w, loras["peft"])
    w.panel.styles.rows[loras["kohya"]].slider.setValue(40)
    qtbot.waitUntil(lambda: engine_of(w).lora_weights.get("ink_style") == 0.4, timeout=10000)
    w.close()
    saved = Persisted.load(open_settings(str(ini)))
    assert saved.live.loras == {loras["kohya"]: 0.4, loras["peft"]: 1.0}
    saved.live = LiveSettings(**{**vars(saved.live), "loras": saved.live.loras | {str(tmp_path / "deleted"): 0.8}})
    saved.save(open_settings(str(ini)))  # one that no longer exists

    w2 = open_window(qtbot, ini, tiny_base, tiny_controlnet)  # re-added after the base, in the worker
    assert engine_of(w2).lora_weights == {"ink_style": 0.4, "peft_style": 1.0}
    assert list(w2.panel.styles.rows) == [loras["kohya"], loras["peft"]] and w2.panel.styles.rows[loras["kohya"]].weight == 0.4
    qtbot.waitUntil(lambda: "Dropped from Styles" in w2.statusBar().currentMessage(), timeout=10000)
    assert "deleted" in w2.statusBar().currentMessage() and "\n" not in w2.statusBar().currentMessage()
    assert w2.live.loras == {loras["kohya"]: 0.4, loras["peft"]: 1.0}

    copy = tmp_path / "other-base"  # another base of the same layout: both fit again
    import shutil

    shutil.copytree(tiny_base, copy)
    with qtbot.waitSignal(w2.pipeline.loaded, timeout=60000):
        w2.load(str(copy), tiny_controlnet)
    assert wait_idle(w2.pipeline, 30) and engine_of(w2).base.spec == str(copy)
    assert engine_of(w2).lora_weights == {"ink_style": 0.4, "peft_style": 1.0}
    with qtbot.waitSignal(w2.pipeline.loaded, timeout=60000):
        w2.load("demo", "demo")  # another layout: neither fits, and the message says which
    assert wait_idle(w2.pipeline, 30)
    msg = w2.statusBar().currentMessage()
    assert "ink_style.safetensors" in msg and "peft_style" in msg and "does not fit base model 'demo'" in msg
    assert w2.panel.styles.rows == {} and engine_of(w2).lora_weights == {} and w2.last_result is not None
    w2.close()


def test_a_saved_preset_restores_template_and_weights(qtbot, tmp_path, tiny_base, tiny_controlnet, loras):
    ini = tmp_path / "s.ini"
    w = open_window(qtbot, ini, tiny_base, tiny_controlnet)
    styles, box = w.panel.styles, w.panel.preset
    add(qtbot, w, loras["kohya"], 0.7)
    box.setCurrentText("Watercolor")
    styles.save_preset("my ink")
    assert box.currentText() == "my ink" and box.findText("my ink") > box.findText("Neon")  # after the built-in ones
    box.setCurrentText("None")
    styles.rows[loras["kohya"]].slider.setValue(-100)
    qtbot.waitUntil(lambda: engine_of(w).lora_weights == {"ink_style": -1.0} and engine_of(w).prompt == "a red fox",
                    timeout=10000)
    w.close()
    assert '"my ink"' in Persisted.load(open_settings(str(ini))).presets

    w2 = open_window(qtbot, ini, tiny_base, tiny_controlnet)
    styles, box = w2.panel.styles, w2.panel.preset
    styles.rows[loras["kohya"]].remove.click()
    qtbot.waitUntil(lambda: engine_of(w2).lora_weights == {}, timeout=10000)
    i = box.findText("my ink")
    assert i > 0
    with qtbot.waitSignal(w2.pipeline.lorasLoaded, timeout=30000):  # as a user picks it: the LoRA loads again
        box.setCurrentIndex(i)
        box.activated.emit(i)
    qtbot.waitUntil(lambda: engine_of(w2).lora_weights == {"ink_style": 0.7} and wait_idle(w2.pipeline, 30), timeout=30000)
    assert engine_of(w2).prompt.startswith("a red fox, watercolor painting") and w2.live.template.startswith("{prompt}, watercolor")
    assert w2.panel.effective.text() == engine_of(w2).prompt
    assert styles.rows[loras["kohya"]].weight == 0.7
    from models.errors import UserError

    with pytest.raises(UserError, match="built-in style"):
        styles.save_preset("Watercolor")
    w2.close()


def test_a_builtin_preset_names_its_lora(qtbot, tmp_path, tiny_base, tiny_controlnet):
    from app.live.settings import PRESET_LORAS

    w = open_window(qtbot, tmp_path / "s.ini", tiny_base, tiny_controlnet)
    box = w.panel.preset
    name, (spec,) = next((k, list(v)) for k, v in PRESET_LORAS.items())
    i = box.findText(name)
    with qtbot.waitSignal(w.pipeline.failed, timeout=30000) as failed:  # offline in tests: the hub LoRA is not there
        box.setCurrentIndex(i)
        box.activated.emit(i)
    assert spec in failed.args[0] and "\n" not in failed.args[0]
    assert wait_idle(w.pipeline, 30) and w.panel.styles.rows == {}
    w.close()


def test_transition_reaches_the_engine_and_is_shown(qtbot, tmp_path, tiny_base, tiny_controlnet):
    w = open_window(qtbot, tmp_path / "s.ini", tiny_base, tiny_controlnet)
    assert w.panel.transition.value() == 0.5 and engine_of(w).transition.seconds == 0.5
    w.panel.transition.setValue(1.5)
    qtbot.waitUntil(lambda: engine_of(w).transition.seconds == 1.5, timeout=10000)
    glides, shown = [], []
    w.pipeline.resultReady.connect(lambda r: (glides.append(r.glide), shown.append(w.output.progress)))
    w.panel.seed.setValue(w.panel.seed.value() + 1)  # a new seed glides; the window plays it to its end
    qtbot.waitUntil(lambda: len(glides) > 2 and glides[-1] == 1.0, timeout=30000)
    inner = glides[:-1]
    assert all(0 <= g < 1 for g in inner) and inner == sorted(inner) and len(inner) >= 2
    assert any(p is not None and 0 < p < 1 for p in shown) and w.output.progress is None  # the line under the output
    w.panel.lock_seed.setChecked(True)  # Lock still freezes the seed
    seed = w.panel.seed.value()
    w.panel.roll_seed()
    assert w.panel.seed.value() == seed and not w.panel.new_seed.isEnabled()
    w.panel.transition.setValue(0)  # jump
    assert w.panel.transition.text() == "jump"
    qtbot.waitUntil(lambda: engine_of(w).transition.seconds == 0 and wait_idle(w.pipeline, 30), timeout=10000)
    glides.clear()
    w.panel.prompt.setText("a blue fox")
    qtbot.waitUntil(lambda: engine_of(w).prompt == "a blue fox" and bool(glides) and wait_idle(w.pipeline, 30), timeout=10000)
    assert glides == [1.0]
    w.close()
    assert Persisted.load(open_settings(str(tmp_path / "s.ini"))).live.transition == 0


def test_window_lora_option(qtbot, tmp_path, tiny_base, tiny_controlnet, loras, capsys):
    from main import main

    w = MainWindow(open_settings(str(tmp_path / "s.ini")))
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice(tiny_base, tiny_controlnet), "sketch", "a fox", 64, loras=(f"{loras['peft']}:-0.5",)))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None and wait_idle(w.pipeline, 30), timeout=60000)
    assert engine_of(w).lora_weights == {"peft_style": -0.5} and w.panel.styles.rows[loras["peft"]].weight == -0.5
    w.close()
    assert main(["--lora", f"{loras['peft']}:9", "--settings", str(tmp_path / "s.ini")]) == 2
    assert "between -4 and 4" in capsys.readouterr().err
