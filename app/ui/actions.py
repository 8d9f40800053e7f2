"""The window's commands and the QActions that trigger them (menus, toolbar, shortcuts): snapshot, record,
pause, views, full-screen output, sketch files, model menu.

Actions owns its QActions and the full-screen output window. It takes what it acts on as explicit arguments:
the session (what the user plays), the Pipeline (the engine handle), the ModelLink (loads), the canvas, the
adapter list and the folders files go to; it tells the window what to show by signals (said, error, notice,
sourceRequested, viewChosen) and never reads the window's members (no import of app.ui.window).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMenuBar, QMessageBox, QToolBar, QWidget

from app.ui.canvas.canvas_tools import CanvasPage
from app.ui.canvas.sketch_files import SketchFiles
from app.ui.outputs.output import OutputMenu
from app.ui.outputs.qimage import from_rgb
from app.ui.outputs.views import OutputWindow, record_icon
from app.ui.panel.adapters import AdapterList
from app.ui.panel.modelpick import SDXS, SDXS_SKETCH, Choice
from app.ui.pipeline import Pipeline
from app.ui.session.bindings import SessionBridge, bind_check
from app.ui.session.model_link import ModelLink
from models.errors import UserError

SHORTCUTS = [  # (keys, what) for Help > Keyboard shortcuts and the README
    ("Ctrl+Z", "undo the last stroke (of the layer being drawn)"), ("Ctrl+Shift+Z / Ctrl+Y", "redo"),
    ("Ctrl+Backspace", "clear the layer being drawn"), ("Ctrl+Shift+Backspace", "clear the lines and the colour"),
    ("B / C / E", "line brush / colour brush / eraser"), ("[ / ]", "smaller / larger brush"), ("Ctrl+O", "load an image to trace"),
    ("Ctrl+Shift+S", "save the sketch"),
    ("Ctrl+S", "snapshot the output to PNG"), ("Ctrl+R", "start / stop recording MP4"), ("Space (outside text fields), Pause", "pause / resume"),
    ("F5", "new seed"), ("Ctrl+1 / Ctrl+2", "side by side / output only"), ("F11 or double-click the output", "full-screen output (Esc leaves)"),
    ("Ctrl+I", "show / hide the overlay"), ("F1", "this list"), ("Ctrl+Q", "quit"),
]


@dataclass(kw_only=True)
class Folders:
    """Where the window's files go (tests and benchmarks point them at their own folder)."""

    snapshots: Path  # Snapshot's PNGs
    videos: Path  # Record's MP4s

    @classmethod
    def users(cls) -> Folders:
        """SDXS Live in the user's Pictures and Movies folders (in the home folder without them)."""
        from PySide6.QtCore import QStandardPaths

        def folder(where: QStandardPaths.StandardLocation) -> Path:
            return Path(QStandardPaths.writableLocation(where) or Path.home()) / "SDXS Live"

        return cls(snapshots=folder(QStandardPaths.StandardLocation.PicturesLocation),
                   videos=folder(QStandardPaths.StandardLocation.MoviesLocation))


class Actions(QObject):
    """Menus, toolbar and shortcuts of one main window, and what they do."""

    said = Signal(str, int)  # a status line and how long it stays (ms)
    error = Signal(str)  # a one-line error
    notice = Signal(str)  # the banner's text ("" hides it)
    sourceRequested = Signal(str)  # switch to this source spec (the window opens it; a bad one is an error)
    viewChosen = Signal(str)  # side (source and output) or output (output only)
    fullscreenChanged = Signal(object)  # the full-screen output window, opened; None once closed

    def __init__(self, host: QWidget, menubar: QMenuBar, toolbar: QToolBar, *, bridge: SessionBridge,
                 pipeline: Pipeline, models: ModelLink, canvas_page: CanvasPage, adapters: AdapterList,
                 folders: Folders, qsettings: QSettings | None, engine_entries: Callable[[QMenu], QObject]):
        """host: the widget the shortcuts belong to and the dialogs' parent; qsettings: where the Output menu
        remembers its address and NDI name; engine_entries(menu) adds Model > Connect to engine... and Use local
        engine (app.ui.dialogs.engine.EngineLink) where they belong in the Model menu."""
        super().__init__(host)
        self.host, self.bridge, self.session = host, bridge, bridge.session
        self.pipeline, self.models, self.adapters, self.folders = pipeline, models, adapters, folders
        self.page, self.canvas = canvas_page, canvas_page.canvas
        self._snapshots = self.session.get("snapshots")  # the snapshots asked of the session that were taken
        self.fullscreen: OutputWindow | None = None  # the output alone, full screen, while it is shown
        self.train_dialog = None  # app.ui.dialogs.train_dialog.TrainDialog, made when first opened
        self._paused_for_training = False  # the live output was paused by the Train dialog (and is resumed by it)
        self.files = files = SketchFiles(self.canvas, self.session, host)  # the canvas's files (app/ui/canvas/sketch_files.py)
        for mine, theirs in ((self.said, files.said), (self.error, files.error), (self.sourceRequested, files.sourceRequested)):
            theirs.connect(mine)
        canvas_page.traceRequested.connect(lambda: files.load_image(trace=True))
        canvas_page.useRequested.connect(lambda: files.load_image(trace=False))
        canvas_page.saveRequested.connect(files.save_sketch)
        self._menus(menubar, toolbar, engine_entries, qsettings)

    def _act(self, text: str, keys, slot, tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self.host)
        if keys:
            a.setShortcuts([QKeySequence(k) for k in (keys if isinstance(keys, list) else [keys])])
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{tip} ({a.shortcut().toString()})" if keys else tip)
        a.setCheckable(checkable)
        if slot is not None:  # None: bound to the session instead (app.ui.session.bindings)
            (a.toggled if checkable else a.triggered).connect(slot)
        self.host.addAction(a)
        return a

    def _menus(self, m: QMenuBar, tb: QToolBar, engine_entries, qsettings: QSettings | None) -> None:
        act, c, page, files = self._act, self.canvas, self.page, self.files
        f = m.addMenu("&File")
        f.addAction(act("Load image to trace...", "Ctrl+O", lambda: files.load_image(True), "Show an image under the sketch to trace"))
        f.addAction(act("Open drawing or image as sketch...", None, lambda: files.load_image(False),
                        "Open a saved drawing (.ora: lines and colour) or an image as the line layer"))
        f.addAction(act("Save sketch...", "Ctrl+Shift+S", files.save_sketch,
                        "Save the drawing: .ora keeps the lines and the colour, PNG the lines only"))
        f.addSeparator()
        # Snapshot, Record and Pause write the session; OSC and MIDI do the same, and _session_changed acts on it
        self.act_snapshot = act("Snapshot", "Ctrl+S", self.session.snapshot, "Save the output as PNG")
        self.act_record = act("Record", "Ctrl+R", None, "Record the output to MP4", checkable=True)
        bind_check(self.bridge, "recording", self.act_record)
        f.addActions([self.act_snapshot, self.act_record])
        f.addSeparator()
        self.act_quit = act("Quit", "Ctrl+Q", self.host.close)
        self.act_quit.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)  # from any of its windows (Train dialog)
        f.addAction(self.act_quit)
        e = m.addMenu("&Edit")
        e.addAction(act("Undo", "Ctrl+Z", c.undo))
        e.addAction(act("Redo", ["Ctrl+Shift+Z", "Ctrl+Y"], c.redo))
        e.addAction(act("Clear layer", "Ctrl+Backspace", c.clear, "Clear the layer being drawn (lines or colour)"))
        e.addAction(act("Clear all", "Ctrl+Shift+Backspace", c.clear_all, "Clear the lines and the colour"))
        e.addAction(act("Remove tracing image", None, lambda: c.set_trace(None), "Hide the picture under the sketch"))
        e.addSeparator()
        e.addAction(act("Line brush", "B", lambda: page.set_tool("lines"), "Draw black lines: the sketch"))
        self.act_colour = act("Colour brush", "C", lambda: page.set_tool("colour"), "Paint colour hints on the colour layer")
        e.addAction(self.act_colour)
        e.addAction(act("Eraser", "E", lambda: page.set_eraser(True), "Erase on the layer being drawn"))
        e.addAction(act("Smaller brush", "[", lambda: page.grow_brush(-2)))
        e.addAction(act("Larger brush", "]", lambda: page.grow_brush(2)))
        e.addAction(act("New seed", "F5", self.session.roll_seed, "A random new seed"))
        v = m.addMenu("&View")
        group = QActionGroup(self)
        self.act_side = act("Side by side", "Ctrl+1", lambda on: on and self.viewChosen.emit("side"), "Source and output", True)
        self.act_output = act("Output only", "Ctrl+2", lambda on: on and self.viewChosen.emit("output"), "Only the output", True)
        group.addAction(self.act_side)
        group.addAction(self.act_output)
        self.act_full = act("Full-screen output", "F11", self.toggle_fullscreen, "The output alone, full screen (for a projector)")
        self.act_pause = act("Pause", ["Pause", "Space"], None, "Stop sending frames", True)
        bind_check(self.bridge, "paused", self.act_pause)
        self.bridge.changed.connect(self._session_changed)
        self.act_overlay = act("Overlay", "Ctrl+I", None, "FPS and latency", True)
        bind_check(self.bridge, "overlay", self.act_overlay)  # as the panel's Overlay box: one session field
        v.addActions([self.act_side, self.act_output, self.act_full, self.act_pause, self.act_overlay])
        md = m.addMenu("&Model")
        md.addAction(act("Open model folder...", None, self.pick_model, "A diffusers model folder"))
        md.addAction(act("Add adapter folder...", None, self.adapters.pick_folder, "Load a trained adapter next to those loaded"))
        md.addAction(act("Download SDXS", None, self.download_sdxs, "Download SDXS and its sketch adapter"))
        md.addAction(act("Use demo model", None, self.use_demo, "The small built-in model"))
        md.addSeparator()
        self.engine = engine_entries(md)  # Connect to engine..., Use local engine (app/remote's serve-engine)
        md.addSeparator()
        md.addAction(act("Train adapter...", None, self.open_training, "Train a control adapter on your own pictures"))
        self.trained_menu = md.addMenu("Trained adapters")
        self.trained_menu.aboutToShow.connect(self._list_trained)
        self.output = OutputMenu(self.host, m, self.pipeline, qsettings)  # Output: stream to OBS (MJPEG), virtual camera, NDI
        self.output.said.connect(self.said)
        h = m.addMenu("&Help")
        h.addAction(act("Keyboard shortcuts", "F1", self.show_shortcuts))
        style = self.host.style()
        for a, icon in ((self.act_pause, "SP_MediaPause"), (self.act_snapshot, "SP_DialogSaveButton"), (self.act_full, "SP_TitleBarMaxButton")):
            a.setIcon(style.standardIcon(getattr(style.StandardPixmap, icon)))
        self.act_record.setIcon(record_icon())
        tb.addActions([self.act_pause, self.act_snapshot, self.act_record])
        tb.addSeparator()
        tb.addActions([self.act_side, self.act_output, self.act_full])

    # ---- output ---------------------------------------------------------------------------------------

    def _session_changed(self, names: frozenset[str]) -> None:
        if "recording" in names:
            self.record(self.session.recording)
        if "snapshots" in names and self.session.get("snapshots") != self._snapshots:
            self._snapshots = self.session.get("snapshots")
            self.snapshot()

    def snapshot(self) -> Path | None:
        from models.imageio import write_rgb

        output = self.pipeline.shown_output
        if output is None:
            self.said.emit("Nothing to save yet: no output so far", 5000)
            return None
        try:
            self.folders.snapshots.mkdir(parents=True, exist_ok=True)
            path = write_rgb(self.folders.snapshots / time.strftime("sdxs-%Y%m%d-%H%M%S.png"), output)
        except (UserError, OSError) as e:
            self.error.emit(f"could not save the snapshot: {e}")
            return None
        self.said.emit(f"Saved {path}", 8000)
        return path

    def record(self, on: bool) -> None:
        p, folder = self.pipeline, self.folders.videos
        if on == p.recording:
            return
        if not on:
            p.stop_recording()
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.error.emit(f"cannot record into {folder}: {e.strerror}")
            self.session.set(recording=False)
            return
        path = folder / time.strftime("sdxs-%Y%m%d-%H%M%S.mp4")
        fps = min(max(round(self.session.fps) or 10, 1), 30)  # the frames shown a second, as the window publishes them
        p.start_recording(str(path), float(fps), bool(self.session.get("record_side")))
        self.said.emit(f"Recording to {path} at {fps} fps (Ctrl+R stops)", 8000)

    def toggle_fullscreen(self) -> None:
        """The output alone, full screen; on a second screen (a projector) when there is one."""
        from PySide6.QtGui import QGuiApplication

        if self.fullscreen is not None:
            self.fullscreen.close()
            return
        self.fullscreen = OutputWindow()
        self.fullscreen.setWindowIcon(self.host.windowIcon())
        self.fullscreen.closed.connect(self._fullscreen_closed)
        if self.pipeline.shown_output is not None:
            self.fullscreen.view.set_image(from_rgb(self.pipeline.shown_output))
        mine = self.host.screen()
        other = [s for s in QGuiApplication.screens() if s is not mine]
        self.fullscreen.setGeometry((other[0] if other else mine).geometry())
        self.fullscreen.showFullScreen()
        self.fullscreenChanged.emit(self.fullscreen)

    @Slot()
    def _fullscreen_closed(self) -> None:
        self.fullscreen = None
        self.fullscreenChanged.emit(None)

    def show_output(self, image) -> None:
        """A new output picture (a QImage) for the full-screen window, when it is open."""
        if self.fullscreen is not None:
            self.fullscreen.view.set_image(image)

    # ---- models -----------------------------------------------------------------------------------------

    def pick_model(self) -> None:
        """Model > Open model folder...: the folder becomes the session's request, which loads."""
        folder = QFileDialog.getExistingDirectory(self.host, "Choose a folder")
        if folder:
            self.session.set(request=replace(self.session.request, model=folder))
            self.models.load_requested()

    def use_demo(self) -> None:
        from app.ui.panel.modelpick import DEMO_NOTICE, demo_available

        base, adapter = demo_available()
        self.notice.emit(DEMO_NOTICE)
        self.models.load("demo", "demo" if adapter or not base else None)  # without a base this shows how to build it

    def download_sdxs(self) -> None:
        from app.ui.panel.modelpick import hub_offline

        if hub_offline():
            self.error.emit("HF_HUB_OFFLINE is set: unset it to download SDXS, or open a model folder")
            return
        self.models.download(SDXS, SDXS_SKETCH)

    def ask_download(self, fallback: Choice) -> bool:
        """Offer to download SDXS; True when the download started (fallback loads if it fails)."""
        other = "the small demo model" if fallback.model == "demo" else "no model (choose a folder later)"
        answer = QMessageBox.question(
            self.host, "Download SDXS?",
            f"SDXS ({SDXS} with its sketch adapter, about 3 GB) is not on this computer.\n\n"
            f"Download it now from Hugging Face? Otherwise the window starts with {other}.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.models.download(SDXS, SDXS_SKETCH, fallback)
        return True

    # ---- training ---------------------------------------------------------------------------------------

    def training_root(self) -> Path:
        from PySide6.QtCore import QStandardPaths

        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
        return Path(docs) / "SDXS Live" / "adapters"

    def open_training(self) -> None:
        from app.ui.dialogs.train_dialog import TrainDialog

        if self.train_dialog is None:
            model, req = self.session.model, self.session.request  # the loaded model's ModelInfo, the one asked for
            cuda = model is not None and model.device.startswith("cuda")
            d = TrainDialog(req.model or "demo", req.device, cuda, self.training_root(), self.host, size=model.native if model is not None else 512)
            d.useAdapter.connect(self.use_adapter)
            d.pauseLive.connect(self._pause_for_training)
            self.train_dialog = d
        self.train_dialog.show()
        self.train_dialog.raise_()

    @Slot(str)
    def use_adapter(self, path: str) -> None:
        """A trained adapter joins those loaded (its row's remove button takes it out again)."""
        self.adapters.request(path)

    @Slot(bool)
    def _pause_for_training(self, on: bool) -> None:
        if on and not self.session.paused:
            self._paused_for_training = True
            self.session.set(paused=True)
        elif not on and self._paused_for_training:
            self._paused_for_training = False
            self.session.set(paused=False)

    def _list_trained(self) -> None:
        """Model > Trained adapters: every run under the training folder, with its condition and date."""
        from training.runs import find_runs

        self.trained_menu.clear()
        runs = [r for r in find_runs(self.training_root()) if r.adapter is not None]
        for run in runs:
            a = self.trained_menu.addAction(run.label())
            a.triggered.connect(lambda _=False, path=str(run.adapter): self.use_adapter(path))
        if not runs:
            self.trained_menu.addAction("(none yet: Model > Train adapter...)").setEnabled(False)

    def stop_training(self, grace_ms: int | None = 1500) -> None:
        """The app is closing: a running training gets Ctrl+C (grace_ms None: only that), and is killed after
        grace_ms; its newest checkpoint stays usable."""
        if self.train_dialog is not None:
            self.train_dialog.shutdown(grace_ms)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;{d}</td></tr>" for k, d in SHORTCUTS)
        QMessageBox.information(self.host, "Keyboard shortcuts", f"<table>{rows}</table>")

