"""Training from the window: the JSON progress stream (a public contract), and the Train dialog driving a real
trainer process on a tiny model (offscreen): inline checks, progress and plot, Stop and Resume, Use this adapter,
and closing the window during a run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.test_training import make_images

ROOT = Path(__file__).resolve().parent.parent
TINY_RUN = ["--resolution", "64", "--batch-size", "2", "--device", "cpu", "--workers", "0", "--threads", "1",
            "--lr-warmup", "0", "--validation-images", "2"]


def test_progress_stream_is_one_json_object_per_line(tmp_path, tiny_base):
    data, out = make_images(tmp_path / "data"), tmp_path / "run"
    r = subprocess.run([sys.executable, "main.py", "train", "--base", tiny_base, "--data", str(data), "--out", str(out),
                        "--condition", "canny", "--steps", "4", "--checkpoint-every", "2", "--validate-every", "2",
                        "--progress", "jsonl", *TINY_RUN], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]  # every stdout line is a JSON object
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("step") == 4
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4] and all(e["steps"] == 4 for e in steps)
    assert all({"loss", "lr", "seconds_left"} <= set(e) for e in steps) and steps[-1]["seconds_left"] == 0
    for e in events:
        if e["event"] in ("checkpoint", "validation"):
            assert Path(e["path"]).exists(), e
        if e["event"] == "checkpoint":  # each checkpoint holds a usable diffusers adapter
            assert (Path(e["path"]) / "adapter" / "config.json").exists() and (Path(e["path"]) / "adapter" / "adapter.json").exists()
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [2, 4]
    assert Path(events[-1]["adapter"]).is_dir() and (out / "run.json").exists()
    assert "adapter saved" in r.stderr  # what people read goes to stderr


@pytest.fixture()
def window(qtbot, tmp_path, tiny_base):
    from app.ui.panel.modelpick import Choice
    from app.ui.session.settings import open_settings
    from app.ui.window import MainWindow, StartOptions

    w = MainWindow(open_settings(str(tmp_path / "settings.ini")))
    w.snapshot_dir = w.video_dir = tmp_path
    qtbot.addWidget(w)
    w.show()
    w.start(StartOptions(Choice(tiny_base), "sketch", "a disc", 64, "cpu", "float32"))
    qtbot.waitUntil(lambda: w.pipeline.worker.loop is not None, timeout=60000)
    w.actions.training_root = lambda: tmp_path / "adapters"
    return w


def dialog_for(w, tmp_path, steps: int):
    w.actions.open_training()
    d = w.actions.train_dialog
    d.data.setText(str(make_images(tmp_path / "data", n=6)))
    d.condition.setCurrentText("canny")
    d.resolution.setValue(64)
    d.steps.setValue(steps)
    d.batch.setValue(2)
    d.device.setCurrentText("cpu")
    d.objective.setCurrentIndex(d.objective.findData(0.0))  # regression only: the quickest
    d.out.setText(str(tmp_path / "adapters" / "discs"))
    d.pause_live.setChecked(False)
    return d


def test_dialog_checks_inputs_inline_with_the_command_lines_words(window, tmp_path, qtbot):
    window.actions.open_training()
    d = window.actions.train_dialog
    d.data.setText(str(tmp_path / "nowhere"))
    assert d.check_inputs() is None and "is not a folder" in d.problem.text() and not d.start_button.isEnabled()
    (tmp_path / "empty").mkdir()
    d.data.setText(str(tmp_path / "empty"))
    assert d.check_inputs() is None and "holds no images" in d.problem.text()
    d.data.setText(str(make_images(tmp_path / "data", n=3)))
    d.base.setText("demo")
    d.out.setText(str(tmp_path / "out"))
    assert d.check_inputs() is not None and d.problem.text() == "" and d.start_button.isEnabled()
    assert d.data_summary.text().startswith("3 pictures") and "1 unreadable" in d.data_summary.text()
    d.watch.eta.setText("Training failed: error: " + "a long message " * 30)  # wraps: the dialog still fits a small screen
    d.problem.setText("a long problem " * 30)
    assert d.minimumSizeHint().width() < 800
    window.close()


def test_train_stop_resume_and_use_from_the_dialog(window, tmp_path, qtbot):
    from training.checkpoints import list_checkpoints, read_step

    d = dialog_for(window, tmp_path, steps=400)
    assert d.check_inputs() is not None, d.problem.text()
    d.start()
    qtbot.waitUntil(lambda: d.watch.bar.value() >= 3, timeout=300000)  # progress reaches the window
    assert d.watch.curves and len(d.watch.points["loss"][0]) >= 3  # the plot has points
    with qtbot.waitSignal(d.proc.ended, timeout=60000) as ended:
        d.stop()
    assert ended.args == [130]
    found = list_checkpoints(tmp_path / "adapters" / "discs" / "checkpoints")
    stopped = read_step(found[-1])
    assert stopped >= 3 and (found[-1] / "adapter" / "config.json").exists()
    assert d.runs.count() == 1 and "stopped at step" in d.runs.itemText(0)
    d.steps.setValue(7)  # the form changed since: picking the run shows the run's own settings again
    d.resolution.setValue(256)
    d.objective.setCurrentIndex(0)
    d.runs.activated.emit(0)
    assert (d.steps.value(), d.resolution.value(), d.batch.value(), d.objective.currentData()) == (400, 64, 2, 0.0)
    d.steps.setValue(7)
    first = []
    d.proc.event.connect(lambda ev: first.append(ev["step"]) if ev.get("event") == "step" else None)
    d.resume()
    assert (d.steps.value(), d.condition.currentText(), d.device.currentText()) == (400, "canny", "cpu")  # what runs
    qtbot.waitUntil(lambda: bool(first), timeout=300000)
    assert first[0] == stopped + 1  # Resume continues the step count
    with qtbot.waitSignal(d.proc.ended, timeout=60000):
        d.stop()
    assert d.use_button.isEnabled()
    d.use()  # the newest checkpoint's adapter, into the live window
    qtbot.waitUntil(lambda: (window.pipeline.info.get("controlnet") or "").endswith("adapter"), timeout=60000)
    assert "checkpoint-" in window.pipeline.info["controlnet"]
    step = Path(window.pipeline.info["controlnet"]).parent.name.removeprefix("checkpoint-")
    qtbot.waitUntil(lambda: f"discs-step{step}" in window.panel.adapters.rows, timeout=10000)  # named after its run
    qtbot.waitUntil(lambda: window.pipeline.worker.loop.engine.adapter is not None, timeout=10000)
    window.close()


def test_ctrl_q_in_the_train_dialog_stops_training_within_two_seconds(window, tmp_path, qtbot):
    from models.loading import load_adapter
    from training.checkpoints import list_checkpoints

    d = dialog_for(window, tmp_path, steps=40)
    assert not d.cuda and d.cpu_note.isVisibleTo(d)  # no GPU: it says training and live output share the cores
    d.pause_live.setChecked(True)
    d.start()
    assert window.paused and window.actions.act_pause.isChecked()  # and pauses the live output while it trains
    seen = []
    d.proc.event.connect(lambda ev: seen.append(ev["event"]))
    qtbot.waitUntil(lambda: "checkpoint" in seen, timeout=300000)  # every 10 steps (a quarter of the run)
    trainer = psutil.Process(d.proc.proc.processId())
    workers = trainer.children(recursive=True)  # the data loader's (the dialog's default: 2)
    d.activateWindow()  # Ctrl+Q in the Train dialog quits the app (an application-wide shortcut)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is d, timeout=5000)
    t0 = time.perf_counter()
    qtbot.keyClick(d.data, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    closed = time.perf_counter() - t0
    assert not window.isVisible()
    alive = [trainer, *workers]
    while alive and time.perf_counter() - t0 < 5:  # ended or a zombie (ended, its parent not told yet)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.01)
    gone = time.perf_counter() - t0
    assert workers and closed < 2.0 and gone < 2.0, f"window closed after {closed:.2f} s, every trainer process gone after {gone:.2f} s"
    qtbot.waitUntil(lambda: not d.proc.running, timeout=5000)
    newest = list_checkpoints(tmp_path / "adapters" / "discs" / "checkpoints")[-1]
    assert load_adapter(str(newest / "adapter")).net is not None  # usable


def test_a_trained_adapter_is_named_after_its_run():
    from models.loading import adapter_name

    assert adapter_name("/home/me/SDXS Live/adapters/discs/adapter") == "discs"
    assert adapter_name("/home/me/adapters/discs/checkpoints/checkpoint-200/adapter/") == "discs-step200"
    assert adapter_name("/home/me/models/my-sketch-adapter") == "my-sketch-adapter"  # any other folder: its name
    assert adapter_name("IDKiro/sdxs-512-dreamshaper-sketch") == "sdxs-512-dreamshaper-sketch"


def test_the_dialog_takes_a_dataset_and_shards_as_train_does(window, tmp_path, qtbot):
    """Pictures is `train --data`: a Parquet dataset or WebDataset shards are opened the way the trainer opens them."""
    import datasets

    folder = make_images(tmp_path / "photos", n=4)
    packed = subprocess.run([sys.executable, "main.py", "train-data", "pack", str(folder), str(tmp_path / "shards"),
                             "--shard-size", "2"], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parent.parent)
    assert packed.returncode == 0, packed.stderr
    files = sorted(folder.glob("img*.png"))
    rows = {"image": [{"bytes": p.read_bytes(), "path": None} for p in files],
            "text": [p.with_suffix(".txt").read_text() for p in files]}
    datasets.Dataset.from_dict(rows, features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
                               ).to_parquet(str(tmp_path / "train.parquet"))
    window.actions.open_training()
    d = window.actions.train_dialog
    d.base.setText("demo")
    d.out.setText(str(tmp_path / "out"))
    d.data.setText(str(tmp_path / "shards" / "shard-{000000..000001}.tar"))
    assert d.check_inputs() is not None, d.problem.text()
    assert d.data_summary.text().startswith("2 WebDataset shards") and d.start_button.isEnabled()
    d.data.setText(str(tmp_path / "train.parquet"))
    assert d.check_inputs() is not None, d.problem.text()
    assert d.data_summary.text().startswith("dataset: 4 rows")
    d.data.setText(str(tmp_path / "shards" / "shard-{000000..000009}.tar"))  # 8 of its 10 shards are missing
    assert d.check_inputs() is None and "8 of its 10 shards do not exist" in d.problem.text()
    window.close()
