"""The main window: source pane (sketch canvas or camera / video / image feed), output pane, control panel.

Frames flow canvas (offered) or capture (wakes the path) -> the frame path's thread (app.live.framepath: loop, then
every sink) -> its newest result -> resultReady (coalesced) -> output pane. The GUI thread never feeds a sink;
nothing here blocks: models load in the worker, cameras open in their capture thread.
"""

from __future__ import annotations

import collections
import time
from dataclasses import replace

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QIcon, QImage
from PySide6.QtWidgets import QLabel, QMainWindow, QProgressBar, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from app.live.loop import Loader, Result
from app.live.session import CONDITION, LIVE, Session
from app.ui.actions import Actions, Folders
from app.ui.canvas.canvas import SketchCanvas
from app.ui.canvas.canvas_tools import CanvasPage
from app.ui.dialogs.engine import EngineLink
from app.ui.outputs import logbar
from app.ui.outputs.qimage import from_rgb
from app.ui.outputs.views import FeedView, ImageView, Latency, overlay_lines
from app.ui.panel.modelpick import StartOptions
from app.ui.panel.panel import ControlPanel
from app.ui.pipeline import Pipeline
from app.ui.screenwatch import OwnWindows
from app.ui.session.adapters_link import AdaptersLink
from app.ui.session.bindings import SessionBridge
from app.ui.session.midi_link import MidiLink
from app.ui.session.model_link import ModelLink
from app.ui.session.settings import Persisted, bytes_hex, from_session, hex_bytes, to_session
from app.ui.session.styles_link import StylesLink
from app.ui.window_sources import SourcesMixin
from models.assets import ICON_SVG
from models.errors import UserError
from models.options import COLOUR_HINTS


class MainWindow(SourcesMixin, QMainWindow):
    def __init__(self, qsettings: QSettings, loader: Loader | None = None):
        super().__init__()
        self.qsettings = qsettings
        self.saved = Persisted.load(qsettings)
        self.setWindowTitle("SDXS Live")
        self.setWindowIcon(QIcon(str(ICON_SVG)))
        self.setAcceptDrops(True)
        self.session = Session()  # what the user plays: widgets, OSC, MIDI and the saved settings write it
        self.bridge = SessionBridge(self.session, self)  # its changes, on the GUI thread
        self.pipeline = Pipeline(loader, self)
        self.capture = None  # app.live.sources.Capture or StillImage while a feed is the source
        self.last_result: Result | None = None
        self.shown_times: collections.deque[float] = collections.deque(maxlen=60)  # GUI thread only
        self.latency = Latency()  # of frames rendered after an input change
        self.folders = Folders.users()  # SDXS Live in the user's Pictures and Movies
        self._build()
        self.logbar = logbar.install(self.statusBar())  # our warnings, from any thread, in the status bar
        to_session(self.saved, self.session)  # the remembered settings; the bound widgets follow
        self.panel.set_recent(self.saved.recent_models, self.saved.recent_adapters)
        self.models = ModelLink(self.bridge, self.pipeline, self.saved, self)  # the session's request -> worker -> session
        self.actions = self._actions()
        self.canvas.set_brush(self.saved.brush)
        self.canvas.set_brush(self.saved.colour_brush, "colour")
        self._apply = QTimer(self, singleShot=True, interval=0)  # a burst of session changes goes out once
        self._apply.timeout.connect(self.apply_settings)
        self._connect()
        # LoRAs <-> worker, and the transition shown under the output; adapters <-> worker
        self.styles = StylesLink(self.bridge, self.pipeline, self.panel.styles, self.output, self._offer_again)
        self.adapters = AdaptersLink(self.bridge, self.pipeline, self.panel.adapters, self.saved)
        self.own_windows = OwnWindows(self, self.statusBar(), self.logbar)  # a screen source must not capture our own windows
        self.actions.fullscreenChanged.connect(self.own_windows.set_fullscreen)
        self.midi = MidiLink(self.bridge, self.panel, self.saved)  # MIDI learn: right-click a slider; midi.open() opens ports
        self.midi.said.connect(self.statusBar().showMessage)
        self.menuBar().addMenu(self.midi.menu)
        self._hud = QTimer(self, interval=250)
        self._hud.timeout.connect(self._update_overlay)
        self._hud.start()
        if self.saved.geometry:
            self.restoreGeometry(bytes_hex(self.saved.geometry))
        else:
            self.resize(1280, 720)
        if self.saved.splitter:
            self.splitter.restoreState(bytes_hex(self.saved.splitter))
        self.set_view(self.saved.view)

    # ---- layout -------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.canvas = SketchCanvas(512)
        self.feed = FeedView()
        self.stack = QStackedWidget()
        self.canvas_page = CanvasPage(self.canvas)
        self.stack.addWidget(self.canvas_page)
        self.stack.addWidget(self.feed)
        self.output = ImageView("The output appears here once a model is loaded")
        self.output.inset_label = "colour hints"  # on the canvas: what the colour-hint adapter gets (_colour_inset)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.output)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.panel = ControlPanel(self.bridge)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fff3c4; color: #5a4500; padding: 6px; border-radius: 3px")
        self.banner.hide()
        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(6, 6, 0, 6)
        lay.addWidget(self.banner)
        lay.addWidget(self.splitter, 1)
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(left)
        outer.addWidget(self.panel)
        outer.setStretchFactor(0, 1)
        outer.setSizes([850, 430])
        self.setCentralWidget(outer)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.hide()
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        self.statusBar().addPermanentWidget(self.busy_bar)

    def _actions(self) -> Actions:
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        a = Actions(self, self.menuBar(), tb, bridge=self.bridge, pipeline=self.pipeline, models=self.models,
                    canvas_page=self.canvas_page, adapters=self.panel.adapters, folders=self.folders,
                    qsettings=self.qsettings, engine_entries=self._engine_link)
        a.said.connect(self.statusBar().showMessage)
        a.error.connect(self.show_error)
        a.notice.connect(self.set_notice)
        a.sourceRequested.connect(self._source_requested)
        a.viewChosen.connect(self.set_view)
        return a

    def _engine_link(self, menu) -> EngineLink:
        link = EngineLink(self, menu, pipeline=self.pipeline, session=self.session, saved=self.saved, load=self.load)
        link.said.connect(self.statusBar().showMessage)
        link.error.connect(self.show_error)
        return link

    def _connect(self) -> None:
        p = self.pipeline
        p.resultReady.connect(self._on_result)
        p.inputShown.connect(self._on_input)
        p.busy.connect(self._on_busy)
        p.failed.connect(self.show_error)
        self.panel.loadRequested.connect(self.models.load_requested)
        self.models.loading.connect(self._on_busy)
        self.models.loaded.connect(self._on_loaded)
        self.models.notice.connect(self.set_notice)
        self.models.failed.connect(self.show_error)
        p.recorded.connect(self._on_recorded)
        self.canvas.changed.connect(self.offer_canvas)
        self.bridge.changed.connect(self._session_changed)
        self.panel.styles.failed.connect(self.show_error)
        p.adaptersLoaded.connect(self._clear_loading)
        self.panel.sourceRequested.connect(self._source_requested)
        self.panel.failed.connect(self.show_error)
        self._show_overlay(self.session.get("overlay"))
        self.feed.retry.connect(self.retry_source)
        self.output.doubleClicked.connect(self.actions.toggle_fullscreen)
        for view in (self.output, self.feed):  # Ctrl+click: the eyedropper for the colour brush, as on the canvas
            view.colourPicked.connect(self.canvas_page.pick_colour)

    # ---- start --------------------------------------------------------------------------------------

    def start(self, opts: StartOptions) -> None:
        self.session.set({k: v for k, v in (("prompt", opts.prompt), ("size", opts.size)) if v is not None})
        if opts.device or opts.dtype:  # the pickers follow the session's request
            req = self.session.request
            self.session.set(request=replace(req, device=opts.device or req.device, dtype=opts.dtype or req.dtype))
        if opts.loras:
            from models.lora import parse_lora_arg

            self.session.set(loras=dict(parse_lora_arg(a) for a in opts.loras))  # loaded with the model
        self.apply_settings()
        try:
            self.set_source(opts.source or self.saved.source or "sketch")
        except UserError as e:
            self.show_error(str(e))
            self.set_source("sketch")
        choice = opts.choice
        self.set_notice(choice.notice)
        if choice.offer_download and self.actions.ask_download(choice):
            return
        if choice.model:
            self.load(choice.model, choice.controlnet)
        else:
            self.output.set_message(choice.notice)

    # ---- models (app/ui/session/model_link.py loads them) --------------------------------------------------

    def load(self, model: str, controlnet: str | tuple[str, ...] | list[str] | None) -> None:
        self.models.load(model, controlnet)

    def load_from_panel(self) -> None:
        """What the Load button does: load the session's request (the pickers show it)."""
        self.models.load_requested()

    @Slot(str)
    def _on_loaded(self, name: str) -> None:
        self.latency.reset()
        self.setWindowTitle(f"SDXS Live: {name}")
        self.output.set_message("")
        self.apply_settings()

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        self.busy_bar.setVisible(bool(text))
        self.panel.load_button.setEnabled(not text)
        self.panel.adapters.set_busy(bool(text))
        self.status_label.setText(text)
        if text:
            self.output.set_message(text)

    def show_error(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)
        if self.loaded_model is None or self.last_result is None:
            self.output.set_message(text)

    def set_notice(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    # ---- the session ----------------------------------------------------------------------------------

    # the session's, read where the window's parts (and SourcesMixin) read them
    live = property(lambda self: self.session.live)  # the live settings now: a LiveSettings
    paused = property(lambda self: self.session.paused)
    source_spec = property(lambda self: self.session.source, lambda self, spec: self.session.set(source=spec))
    loaded_model = property(lambda self: self.session.model.model if self.session.model is not None else None)
    # where snapshots and recordings go (Actions writes them; tests and benchmarks point them elsewhere)
    snapshot_dir = property(lambda self: self.folders.snapshots, lambda self, p: setattr(self.folders, "snapshots", p))
    video_dir = property(lambda self: self.folders.videos, lambda self, p: setattr(self.folders, "videos", p))

    @Slot(object)
    def _session_changed(self, names: frozenset[str]) -> None:
        if names & (LIVE | CONDITION):
            self._apply.start()
        if "paused" in names:
            self.pipeline.set_paused(self.paused)  # the frame path holds its picture; the feed still moves
            self.output.set_message("Paused" if self.paused else "")
            if not self.paused:
                self.offer_current()
        if "overlay" in names:
            self._show_overlay(self.session.get("overlay"))
        if "adapters_loaded" in names:  # the colour brush needs a colour-hint adapter
            colour = self.session.has_colour()
            self.canvas_page.set_colour_available(colour)
            self.actions.act_colour.setEnabled(colour)

    @Slot()
    def apply_settings(self) -> None:
        self.pipeline.configure(self.session.live)
        self.offer_current()

    def _offer_again(self) -> None:
        """The same input again (a transition plays to its end): the drawing with its own time, so a glide is
        no input change (latency "--"), or the capture's newest frame."""
        if self.source_spec == "sketch":
            self.pipeline.offer(self.canvas_frame())
        else:
            self.offer_current()

    @Slot(object)
    def _clear_loading(self, *_) -> None:
        if self.output.message.startswith("Loading adapter"):  # the busy line, shown while it loaded
            self.output.set_message("")

    # ---- results ------------------------------------------------------------------------------------

    @Slot(object)
    def _on_result(self, result: Result) -> None:
        """The newest new result, to show (the sinks already had it, on the frame path's thread)."""
        self.last_result = result
        now = time.perf_counter()
        self.latency.shown(result.captured, now)
        self.shown_times.append(now)
        image = from_rgb(result.output)
        self.output.set_image(image)
        self.actions.show_output(image)
        if self.source_spec != "sketch":
            self.feed.inset = from_rgb(result.condition)
            self.feed.inset_label = "adapter input"
        self.output.inset = self._colour_inset(result)

    def _colour_inset(self, result: Result) -> QImage | None:
        """On the canvas, with the overlay on: what the colour-hint adapter gets (the colour layer, its dabs
        filling their shapes with Fill shapes), small in the output's corner while it holds any colour."""
        kinds = [a.condition for a in self.session.adapters_loaded]
        if (self.source_spec != "sketch" or not self.output.show_overlay or COLOUR_HINTS not in kinds
                or len(result.conditions) != len(kinds)):
            return None
        hints = result.conditions[kinds.index(COLOUR_HINTS)]
        return from_rgb(hints) if (hints != 255).any() else None

    @property
    def fps(self) -> float:
        t = [x for x in self.shown_times if x > time.perf_counter() - 3.0]
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    @Slot()
    def _update_overlay(self) -> None:
        fps = self.fps
        self.session.set(fps=fps)  # a value: OSC's thread answers /sdxs/fps from it, never from shown_times
        t = self.last_result.timings if self.last_result is not None else None
        self.output.overlay = overlay_lines(t, fps, self.latency.ms, self.session.live.profile, self.session.model,
                                            self.session.live.seed, self.pipeline.recording, self.paused, self.pipeline.remote)
        self.output.update()

    def _show_overlay(self, on: bool) -> None:
        self.output.show_overlay = on
        if self.last_result is not None:
            self.output.inset = self._colour_inset(self.last_result)
        self.output.update()

    @Slot(str, int)
    def _on_recorded(self, path: str, frames: int) -> None:
        msg = f"Recorded {frames} frames to {path}" if path else "Recording stopped: no frames were recorded"
        self.statusBar().showMessage(msg, 10000)
        self.session.set(recording=self.pipeline.recording)

    # ---- views --------------------------------------------------------------------------------------

    def set_view(self, view: str) -> None:
        self.saved.view = "output" if view == "output" else "side"
        self.stack.setVisible(self.saved.view == "side")
        self.actions.act_side.setChecked(self.saved.view == "side")
        self.actions.act_output.setChecked(self.saved.view == "output")

    @Slot(bool)
    def set_paused(self, on: bool) -> None:
        self.session.set(paused=on)  # _session_changed shows it and, resumed, sends the input again

    # ---- drag and drop: an image to trace (or as the source), a video to play ----------------------
    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.actions.files.open_path(urls[0])
            e.acceptProposedAction()

    # ---- shutdown -----------------------------------------------------------------------------------

    def closeEvent(self, e: QCloseEvent) -> None:
        self.bridge.flush()  # a prompt typed a moment ago is saved too
        self.shutdown()
        req = self.pipeline.worker.request  # the worker has stopped: its last successful load
        if req is not None:
            self.saved.model = req.model
            self.saved.adapters = self.panel.adapters.strengths()
            self.saved.controlnet = next(iter(self.saved.adapters), "")
        from_session(self.saved, self.session)
        self.saved.brush, self.saved.colour_brush = self.canvas.brushes["lines"], self.canvas.brushes["colour"]
        self.saved.source = self.source_spec
        self.saved.geometry = hex_bytes(self.saveGeometry())
        self.saved.splitter = hex_bytes(self.splitter.saveState())
        self.saved.save(self.qsettings)
        super().closeEvent(e)

    def shutdown(self) -> None:
        """Stop the stream, the capture, a training run, the worker and any recording within 2 seconds in every
        state: each is told to stop at once, then waited for against one deadline."""
        end, capture = time.perf_counter() + 1.5, self.capture

        def left() -> float:
            return max(0.0, end - time.perf_counter())

        self.logbar.remove()
        self._hud.stop()
        self.actions.stop_training(grace_ms=None)  # Ctrl+C now: the run saves its step while the rest stops
        self.stop_capture(wait=0.0)
        self.actions.output.shutdown()  # its clients' connections are shut at once
        self.midi.close()
        if self.actions.fullscreen is not None:
            self.actions.fullscreen.close()
        self.pipeline.stop(int(1000 * left()))
        if capture is not None:
            capture.stop(left())
        self.actions.stop_training(grace_ms=int(1000 * left()))  # killed if it has not finished by now
