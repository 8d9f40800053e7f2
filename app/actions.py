"""Menus, toolbar, keyboard shortcuts and the commands behind them (snapshot, record, pause, sketch files)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMessageBox, QSlider, QToolButton, QVBoxLayout, QWidget

from app.modelpick import SDXS, SDXS_SKETCH, Choice, DownloadDialog
from models.errors import UserError

if TYPE_CHECKING:
    from app.window import MainWindow

SHORTCUTS = [  # (keys, what) for Help > Keyboard shortcuts and the README
    ("Ctrl+Z", "undo the last stroke"), ("Ctrl+Shift+Z / Ctrl+Y", "redo"), ("Ctrl+Backspace", "clear the sketch"),
    ("B / E", "brush / eraser"), ("[ / ]", "smaller / larger brush"), ("Ctrl+O", "load an image to trace"),
    ("Ctrl+Shift+S", "save the sketch"),
    ("Ctrl+S", "snapshot the output to PNG"), ("Ctrl+R", "start / stop recording MP4"), ("Space (outside text fields), Pause", "pause / resume"),
    ("F5", "new seed"), ("Ctrl+1 / Ctrl+2", "side by side / output only"), ("F11 or double-click the output", "full-screen output (Esc leaves)"),
    ("Ctrl+I", "show / hide the overlay"), ("F1", "this list"), ("Ctrl+Q", "quit"),
]


def _act(w: MainWindow, text: str, keys, slot, tip: str = "", checkable: bool = False) -> QAction:
    a = QAction(text, w)
    if keys:
        a.setShortcuts([QKeySequence(k) for k in (keys if isinstance(keys, list) else [keys])])
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(f"{tip} ({a.shortcut().toString()})" if keys else tip)
    a.setCheckable(checkable)
    (a.toggled if checkable else a.triggered).connect(slot)
    w.addAction(a)
    return a


def canvas_page(w: MainWindow) -> QWidget:
    """The sketch canvas with its tool row: brush, eraser, size, undo, redo, clear, trace, load, save."""
    page = QWidget()
    col = QVBoxLayout(page)
    col.setContentsMargins(0, 0, 0, 0)
    row = QHBoxLayout()
    c = w.canvas

    def button(text: str, tip: str, slot, checkable: bool = False) -> QToolButton:
        b = QToolButton(text=text)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        (b.toggled if checkable else b.clicked).connect(slot)
        row.addWidget(b)
        return b

    w.brush_button = button("Brush", "Draw black strokes (B)", lambda on: set_eraser(w, not on), True)
    w.eraser_button = button("Eraser", "Erase to white (E)", lambda on: set_eraser(w, on), True)
    w.brush_button.setChecked(True)
    w.brush_slider = QSlider(Qt.Orientation.Horizontal)
    w.brush_slider.setRange(1, 60)
    w.brush_slider.setValue(int(c.brush))
    w.brush_slider.setMinimumWidth(50)
    w.brush_slider.setMaximumWidth(110)
    w.brush_slider.setToolTip("Brush size ([ and ])")
    w.brush_slider.valueChanged.connect(lambda v: c.set_brush(v))
    row.addWidget(QLabel("Size"))
    row.addWidget(w.brush_slider)
    button("\u21b6", "Undo (Ctrl+Z)", c.undo)
    button("\u21b7", "Redo (Ctrl+Shift+Z)", c.redo)
    button("Clear", "Clear the sketch (Ctrl+Backspace)", c.clear)
    button("Trace", "Show an image faintly under the sketch to trace over it (Ctrl+O)", lambda: load_image(w, trace=True))
    button("Load", "Use an image as the sketch itself", lambda: load_image(w, trace=False))
    button("Save", "Save the sketch as PNG (Ctrl+Shift+S)", lambda: save_sketch(w))
    row.addStretch(1)
    col.addLayout(row)
    col.addWidget(c, 1)
    return page


def install(w: MainWindow) -> None:
    c = w.canvas
    m = w.menuBar()
    f = m.addMenu("&File")
    f.addAction(_act(w, "Load image to trace...", "Ctrl+O", lambda: load_image(w, True), "Show an image under the sketch to trace"))
    f.addAction(_act(w, "Use image as sketch...", None, lambda: load_image(w, False), "Load an image as the sketch"))
    f.addAction(_act(w, "Save sketch...", "Ctrl+Shift+S", lambda: save_sketch(w), "Save the sketch as PNG"))
    f.addSeparator()
    w.act_snapshot = _act(w, "Snapshot", "Ctrl+S", lambda: snapshot(w), "Save the output as PNG")
    w.act_record = _act(w, "Record", "Ctrl+R", lambda on: record(w, on), "Record the output to MP4", checkable=True)
    f.addActions([w.act_snapshot, w.act_record])
    f.addSeparator()
    f.addAction(_act(w, "Quit", "Ctrl+Q", w.close))
    e = m.addMenu("&Edit")
    e.addAction(_act(w, "Undo", "Ctrl+Z", c.undo))
    e.addAction(_act(w, "Redo", ["Ctrl+Shift+Z", "Ctrl+Y"], c.redo))
    e.addAction(_act(w, "Clear sketch", "Ctrl+Backspace", c.clear))
    e.addAction(_act(w, "Remove tracing image", None, lambda: c.set_trace(None), "Hide the picture under the sketch"))
    e.addSeparator()
    e.addAction(_act(w, "Brush", "B", lambda: w.brush_button.setChecked(True)))
    e.addAction(_act(w, "Eraser", "E", lambda: w.eraser_button.setChecked(True)))
    e.addAction(_act(w, "Smaller brush", "[", lambda: w.brush_slider.setValue(w.brush_slider.value() - 2)))
    e.addAction(_act(w, "Larger brush", "]", lambda: w.brush_slider.setValue(w.brush_slider.value() + 2)))
    e.addAction(_act(w, "New seed", "F5", w.panel.roll_seed, "A random new seed"))
    v = m.addMenu("&View")
    group = QActionGroup(w)
    w.act_side = _act(w, "Side by side", "Ctrl+1", lambda on: on and w.set_view("side"), "Source and output", True)
    w.act_output = _act(w, "Output only", "Ctrl+2", lambda on: on and w.set_view("output"), "Only the output", True)
    group.addAction(w.act_side)
    group.addAction(w.act_output)
    w.act_full = _act(w, "Full-screen output", "F11", w.toggle_fullscreen, "The output alone, full screen (for a projector)")
    w.act_pause = _act(w, "Pause", ["Pause", "Space"], lambda on: set_paused(w, on), "Stop sending frames", True)
    w.act_overlay = _act(w, "Overlay", "Ctrl+I", lambda on: w.panel.overlay.setChecked(on), "FPS and latency", True)
    w.act_overlay.setChecked(w.saved.overlay)
    w.panel.overlay.toggled.connect(w.act_overlay.setChecked)
    v.addActions([w.act_side, w.act_output, w.act_full, w.act_pause, w.act_overlay])
    md = m.addMenu("&Model")
    md.addAction(_act(w, "Open model folder...", None, lambda: pick(w, w.panel.model), "A diffusers model folder"))
    md.addAction(_act(w, "Open adapter folder...", None, lambda: pick(w, w.panel.adapter), "A trained adapter folder"))
    md.addAction(_act(w, "Download SDXS", None, lambda: download_sdxs(w), "Download SDXS and its sketch adapter"))
    md.addAction(_act(w, "Use demo model", None, lambda: use_demo(w), "The small built-in model"))
    h = m.addMenu("&Help")
    h.addAction(_act(w, "Keyboard shortcuts", "F1", lambda: show_shortcuts(w)))
    style = w.style()
    for act, icon in ((w.act_pause, "SP_MediaPause"), (w.act_snapshot, "SP_DialogSaveButton"), (w.act_full, "SP_TitleBarMaxButton")):
        act.setIcon(style.standardIcon(getattr(style.StandardPixmap, icon)))
    w.act_record.setIcon(record_icon())
    tb = w.addToolBar("Main")
    tb.setObjectName("main-toolbar")
    tb.setMovable(False)
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tb.addActions([w.act_pause, w.act_snapshot, w.act_record])
    tb.addSeparator()
    tb.addActions([w.act_side, w.act_output, w.act_full])


def record_icon():
    """A red dot, the universal record sign."""
    from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

    pix = QPixmap(32, 32)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(220, 40, 40))
    p.setPen(QColor(120, 20, 20))
    p.drawEllipse(5, 5, 22, 22)
    p.end()
    return QIcon(pix)


def use_demo(w: MainWindow) -> None:
    from app.modelpick import DEMO_NOTICE, demo_available

    base, adapter = demo_available()
    w.set_notice(DEMO_NOTICE)
    w.load("demo", "demo" if adapter or not base else None)  # without a base this shows how to build it


def set_eraser(w: MainWindow, on: bool) -> None:
    w.canvas.eraser = on
    w.eraser_button.setChecked(on)
    w.brush_button.setChecked(not on)


def set_paused(w: MainWindow, on: bool) -> None:
    w.paused = on
    w.output.set_message("Paused" if on else "")
    if not on:
        w.offer_current()


def load_image(w: MainWindow, trace: bool) -> None:
    from models.imageio import read_rgb

    path, _ = QFileDialog.getOpenFileName(w, "Trace an image" if trace else "Use an image as the sketch", "",
                                          "Images (*.png *.jpg *.jpeg *.bmp *.webp)")
    if not path:
        return
    try:
        img = read_rgb(path)
    except UserError as e:
        w.show_error(str(e))
        return
    w.set_source("sketch")
    if trace:
        w.canvas.set_trace(img)
    else:
        w.canvas.set_drawing(img)


def open_path(w: MainWindow, path: str) -> None:
    """A dropped file: a video becomes the source; an image is traced on the canvas, or becomes the source
    when a camera, video or image is the source."""
    from models.imageio import read_rgb
    from models.sources import VIDEO_EXTS

    try:
        if Path(path).suffix.lower() in VIDEO_EXTS:
            w.set_source(f"video:{path}")
        elif w.source_spec == "sketch":
            w.canvas.set_trace(read_rgb(path))
            w.statusBar().showMessage(f"Tracing {Path(path).name} (Edit > Remove tracing image hides it)", 8000)
        else:
            w.set_source(f"image:{path}")
    except UserError as e:
        w.show_error(str(e))


def save_sketch(w: MainWindow) -> None:
    from models.imageio import write_rgb

    path, _ = QFileDialog.getSaveFileName(w, "Save the sketch", "sketch.png", "PNG (*.png)")
    if path:
        try:
            write_rgb(path if Path(path).suffix else path + ".png", w.canvas.frame())
            w.statusBar().showMessage(f"Saved the sketch to {path}", 8000)
        except UserError as e:
            w.show_error(str(e))


def snapshot(w: MainWindow) -> Path | None:
    from models.imageio import write_rgb

    if w.last_result is None:
        w.statusBar().showMessage("Nothing to save yet: no output so far", 5000)
        return None
    try:
        w.snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = write_rgb(w.snapshot_dir / time.strftime("sdxs-%Y%m%d-%H%M%S.png"), w.last_result.output)
    except (UserError, OSError) as e:
        w.show_error(f"could not save the snapshot: {e}")
        return None
    w.statusBar().showMessage(f"Saved {path}", 8000)
    return path


def record(w: MainWindow, on: bool) -> None:
    if on == w.pipeline.recording:
        return
    if not on:
        w.pipeline.stop_recording()
        return
    try:
        w.video_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        w.show_error(f"cannot record into {w.video_dir}: {e.strerror}")
        w.act_record.setChecked(False)
        return
    path = w.video_dir / time.strftime("sdxs-%Y%m%d-%H%M%S.mp4")
    fps = min(max(round(w.fps) or 10, 1), 30)
    w.pipeline.start_recording(str(path), float(fps), w.panel.record_side.isChecked())
    w.statusBar().showMessage(f"Recording to {path} at {fps} fps (Ctrl+R stops)", 8000)


def pick(w: MainWindow, combo) -> None:
    folder = QFileDialog.getExistingDirectory(w, "Choose a folder")
    if folder:
        combo.setCurrentText(folder)
        w.load_from_panel()


def download_sdxs(w: MainWindow) -> None:
    from app.modelpick import hub_offline

    if hub_offline():
        w.show_error("HF_HUB_OFFLINE is set: unset it to download SDXS, or open a model folder")
        return
    download(w, SDXS, SDXS_SKETCH)


def ask_download(w: MainWindow, fallback: Choice) -> bool:
    """Offer to download SDXS; True when the download started."""
    other = "the small demo model" if fallback.model == "demo" else "no model (choose a folder later)"
    answer = QMessageBox.question(
        w, "Download SDXS?",
        f"SDXS ({SDXS} with its sketch adapter, about 3 GB) is not on this computer.\n\n"
        f"Download it now from Hugging Face? Otherwise the window starts with {other}.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
    if answer != QMessageBox.StandardButton.Yes:
        return False
    w.fallback = fallback  # loaded instead if the download fails or is cancelled
    download(w, SDXS, SDXS_SKETCH)
    return True


def download(w: MainWindow, model: str, controlnet: str | None) -> None:
    w.download_dialog = DownloadDialog(model, w)
    w.pipeline.progress.connect(w.download_dialog.on_progress)
    w.download_dialog.cancelRequested.connect(w.pipeline.cancel)
    w.download_dialog.show()
    w.load(model, controlnet)


def toggle_fullscreen(w: MainWindow) -> None:
    """The output alone, full screen; on a second screen (a projector) when there is one."""
    from PySide6.QtGui import QGuiApplication

    from app.qimage import from_rgb
    from app.views import OutputWindow

    if w.fullscreen is not None:
        w.fullscreen.close()
        return
    w.fullscreen = OutputWindow()
    w.fullscreen.setWindowIcon(w.windowIcon())
    w.fullscreen.closed.connect(w._fullscreen_closed)
    if w.last_result is not None:
        w.fullscreen.view.set_image(from_rgb(w.last_result.output))
    mine = w.screen()
    other = [s for s in QGuiApplication.screens() if s is not mine]
    w.fullscreen.setGeometry((other[0] if other else mine).geometry())
    w.fullscreen.showFullScreen()


def overlay_lines(w: MainWindow) -> list[str]:
    """FPS, end-to-end latency, engine time (by stage when profiling), device, recording and pause state."""
    lines = []
    if w.last_result is not None:
        t = w.last_result.timings
        fps = f"{w.fps:5.1f}" if w.fps else "   --"
        lines.append(f"{fps} fps   latency {w.latency_ms:4.0f} ms")
        stages = " ".join(f"{k} {t[k]:.0f}" for k in ("extract", "condition", "unet", "decode", "output") if t.get(k))
        lines.append(f"engine {t.get('total', 0):.0f} ms" + (f"  ({stages})" if w.panel.profile.isChecked() else ""))
    info = w.pipeline.info
    if info:
        lines.append(f"{info['device']} {info['dtype']} {info['size']} px  seed {w.panel.seed.value()}")
    if w.pipeline.recording:
        lines.append("● REC")
    if w.paused:
        lines.append("PAUSED")
    return lines


def show_shortcuts(w: MainWindow) -> None:
    rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;{d}</td></tr>" for k, d in SHORTCUTS)
    QMessageBox.information(w, "Keyboard shortcuts", f"<table>{rows}</table>")
