"""The control panel: prompt and style, seed, strength, size; model, adapter and device; source and
condition; output options. Its widgets are bound to the session (app.live.session, via app.ui.session.bindings):
a move writes the session, and whatever writes the session (OSC, MIDI, restored settings) moves them. The
window acts on the session, never on these widgets' values."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.live.session import ModelInfo
from app.live.settings import CONDITION_MODES, PRESETS, LiveSettings, styled_prompt
from app.ui.panel.adapters import AdapterList
from app.ui.panel.panel_sources import SourcePicker
from app.ui.panel.steady_group import SteadyGroup
from app.ui.panel.styles import StylesGroup, transition_box
from app.ui.panel.widgets import STEPS, SeedBox, UnitSlider, guard_wheel, row
from app.ui.session.bindings import Binding, SessionBridge, bind_check, bind_data, bind_number, bind_request, bind_text
from models.bounds import BOUNDS
from models.options import BACKENDS, DEVICES, DTYPES

SIZES = ["model's own", "128", "256", "384", "512", "640", "768"]
SOURCES = [("Sketch canvas", "sketch"), ("Camera", "camera"), ("Video file (loops)", "video"), ("Image", "image"),
           ("Screen...", "screen"), ("NDI source...", "ndi")]
CONDITION_LABELS = {"auto": "Adapter's own", "sketch": "Soft line drawing", "canny": "Edges (canny)", "none": "Frame as is"}


def _slider() -> QSlider:
    return QSlider(Qt.Orientation.Horizontal)  # its range comes from models.bounds when it is bound


class ControlPanel(SourcePicker, QScrollArea):
    """All controls in a scrollable column."""

    loadRequested = Signal()  # load the model / adapter / device shown
    sourceRequested = Signal(str)  # switch to this source spec (sketch, camera:N, video:PATH, image:PATH)
    failed = Signal(str)  # a one-line error (an NDI or screen source that cannot be listed)

    def __init__(self, bridge: SessionBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.session = bridge, bridge.session
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(360)
        body = QWidget()
        col = QVBoxLayout(body)
        col.addWidget(self._prompt_group())
        self.styles = StylesGroup(bridge)  # LoRAs with live weights, the user's presets (app/ui/panel/styles.py)
        self.styles.attach(self.preset)
        col.addWidget(self.styles)
        col.addWidget(self._model_group())
        col.addWidget(self._source_group())
        self.steady = SteadyGroup()  # Steady picture: on / off, smooth, skip, blend
        Binding(bridge, "steady", self.steady, self.steady.changed, self.steady.settings, self.steady.set_settings)
        col.addWidget(self.steady)
        col.addWidget(self._output_group())
        col.addStretch(1)
        for combo in body.findChildren(QComboBox):  # long paths must not widen the panel
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        guard_wheel(*body.findChildren(QWidget))  # the wheel scrolls the panel, not the value under it
        self.setWidget(body)
        bridge.changed.connect(self._session_changed)
        self._session_changed(frozenset({"style", "source", "adapters_loaded", "seed_locked", "model"}))

    # ---- groups -------------------------------------------------------------------------------------

    def _prompt_group(self) -> QGroupBox:
        g = QGroupBox("Prompt")
        f = QFormLayout(g)
        bridge = self.bridge
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("describe the picture, e.g. a red fox in the snow")
        self.prompt.setClearButtonEnabled(True)
        bind_text(bridge, "prompt", self.prompt, debounce_ms=250)  # typing goes out 250 ms after the last key
        self.prompt.textChanged.connect(self._update_effective)
        f.addRow(self.prompt)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip("Style preset: a prompt template wrapped around your prompt")
        f.addRow("Style", self.preset)
        self.effective = QLabel()
        self.effective.setWordWrap(True)
        self.effective.setStyleSheet("color: gray; font-size: 8.5pt")
        f.addRow(self.effective)
        self.seed = SeedBox()
        self.seed.setToolTip("The noise seed, any whole number (taken modulo 2**64): the same seed and input give the "
                             "same picture")
        bind_number(bridge, "seed", self.seed)
        self.new_seed = QPushButton("New")
        self.new_seed.setToolTip("A random new seed (F5)")
        self.new_seed.clicked.connect(self.roll_seed)
        self.lock_seed = QCheckBox("Lock")
        self.lock_seed.setToolTip("Keep this seed: disables New and editing")
        bind_check(bridge, "seed_locked", self.lock_seed)
        f.addRow("Seed", row(self.seed, self.new_seed, self.lock_seed, stretch=0))  # room for 20 digits
        self.strength = _slider()
        self.strength_label = QLabel()
        self.strength.setToolTip("How strongly the sketch or camera steers the picture (0 ignores it): every adapter at once")
        self.strength.valueChanged.connect(lambda v: self.strength_label.setText(f"{v / 100:.2f}"))
        bind_number(bridge, "strength", self.strength)
        self.strength_label.setText(f"{self.strength.value() / 100:.2f}")
        f.addRow("Strength", row(self.strength, self.strength_label))
        self.transition = transition_box()
        bind_number(bridge, "transition", self.transition)
        f.addRow("Transition", self.transition)
        self.size = QComboBox()
        self.size.setEditable(True)
        self.size.addItems(SIZES)
        size = BOUNDS["size"]
        self.size.lineEdit().setValidator(QIntValidator(int(size.low), int(size.high)))
        self.size.setToolTip(f"Output size in pixels, a multiple of {size.multiple}; smaller is faster")
        size_binding = Binding(bridge, "size", self.size, self.size.activated, self.size_value,
                               lambda v: self.size.setCurrentText(str(v) if v else SIZES[0]))
        self.size.lineEdit().editingFinished.connect(size_binding.commit)  # typed sizes count once typed
        f.addRow("Size", self.size)
        return g

    def _model_group(self) -> QGroupBox:
        g = QGroupBox("Model")
        f = QFormLayout(g)
        self.model = self._specrow(
            f, "Model", "Base model: a folder, a Hugging Face id (IDKiro/sdxs-512-dreamshaper) or demo",
            "Choose a model folder", "Choose a model folder (with model_index.json)")
        self.adapters = AdapterList(self.bridge)  # the adapters loaded, each with a live strength (app/ui/panel/adapters.py)
        f.addRow("Adapters", self.adapters)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setEditable(True)  # cuda:1 picks the second GPU
        self.dtype = QComboBox()
        self.dtype.addItems(list(DTYPES))
        self.backend = QComboBox()
        self.backend.addItems(list(BACKENDS))
        for field, combo in (("model", self.model), ("device", self.device), ("dtype", self.dtype), ("backend", self.backend)):
            bind_request(self.bridge, field, combo)  # the session's ModelRequest: what Load loads
        self.backend.setToolTip("Who runs CPU frames: torch, openvino (converted once per model and size, then cached) "
                                "or auto (OpenVINO where it measured faster at load)")
        f.addRow("Device", row(self.device, self.dtype, self.backend))
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Load the model above with the adapters listed (in the background)")
        self.load_button.clicked.connect(self.loadRequested)
        f.addRow(self.load_button)
        self.readout = QLabel("No model loaded")
        self.readout.setWordWrap(True)
        self.readout.setStyleSheet("color: gray")
        f.addRow(self.readout)
        return g

    def _source_group(self) -> QGroupBox:
        g = QGroupBox("Source")
        f = QFormLayout(g)
        self.source = QComboBox()
        for label, kind in SOURCES:
            self.source.addItem(label, kind)
        self.source.activated.connect(self._source_picked)
        f.addRow("Input", self.source)
        self.camera = QComboBox()
        self.camera.setEditable(True)
        self.camera.setToolTip("Camera index (0 is the first camera); the cameras found are listed")
        self.refresh_cameras()
        open_cam = QPushButton("Open")
        open_cam.setToolTip("Open this camera")
        open_cam.clicked.connect(lambda: self.sourceRequested.emit(f"camera:{self.camera_index()}"))
        f.addRow("Camera", row(self.camera, open_cam))
        self.mirror = QCheckBox("Mirror")
        self.mirror.setToolTip("Flip the camera or video left-right")
        bind_check(self.bridge, "condition.mirror", self.mirror)
        f.addRow(self.mirror)
        self.condition = QComboBox()
        for mode in CONDITION_MODES:
            self.condition.addItem(CONDITION_LABELS[mode], mode)
        self.condition.setToolTip("How a camera, video or image frame becomes the adapter's input")
        bind_data(self.bridge, "condition.mode", self.condition)
        f.addRow("Condition", self.condition)
        keep = BOUNDS["keep_colours"]
        self.keep_colours = QCheckBox("Keep colours")
        self.keep_strength = UnitSlider(keep.low, keep.high)
        self.keep_label = QLabel("1.00")
        self.keep_strength.valueChanged.connect(self._keep_shown)
        self.keep_colours.toggled.connect(self._keep_shown)
        # one field, two widgets: the box ticked with the slider's strength, or 0 (off) unticked, the slider kept
        for w, signal in ((self.keep_colours, self.keep_colours.toggled), (self.keep_strength, self.keep_strength.valueChanged)):
            Binding(self.bridge, "keep_colours", w, signal, self._keep_value, self._show_keep)
        f.addRow(row(self.keep_colours, self.keep_strength, self.keep_label, stretch=1))
        self.fill_shapes = QCheckBox("Fill shapes")
        bind_check(self.bridge, "fill_shapes", self.fill_shapes)
        f.addRow(self.fill_shapes)
        self._feed, self._colour = False, False  # a live source is shown; a colour-hint adapter is loaded
        self.update_keep_colours()
        self.low, self.high, self.sigma = _slider(), _slider(), _slider()
        for s, name, tip in ((self.low, "condition.low", "Edges: lower threshold"),
                             (self.high, "condition.high", "Edges: upper threshold"),
                             (self.sigma, "condition.sigma", "Line drawing: softness")):
            s.setToolTip(tip)
            bind_number(self.bridge, name, s)
        f.addRow("Edges low", self.low)
        f.addRow("Edges high", self.high)
        f.addRow("Softness", self.sigma)
        return g

    def _output_group(self) -> QGroupBox:
        g = QGroupBox("Output")
        f = QVBoxLayout(g)
        self.overlay = QCheckBox("Overlay: FPS and latency")
        self.profile = QCheckBox("Per-stage timings (syncs the GPU)")
        bind_check(self.bridge, "profile", self.profile)
        self.record_side = QCheckBox("Record source and output side by side")
        bind_check(self.bridge, "overlay", self.overlay)
        bind_check(self.bridge, "record_side", self.record_side)
        for w in (self.overlay, self.profile, self.record_side):
            f.addWidget(w)
        return g

    # ---- behaviour ----------------------------------------------------------------------------------

    def _session_changed(self, names: frozenset[str]) -> None:
        """What follows the session besides the bound widgets: the Style box, the prompt shown, the seed lock,
        the source shown, Keep colours and Fill shapes, the model readout."""
        s = self.session
        if names & {"style", "presets"}:
            self.styles.show_style(s.live.style)
        if names & {"prompt", "style", "template"}:
            self._update_effective()
        if "seed_locked" in names:
            self.seed.setEnabled(not s.seed_locked)
            self.new_seed.setEnabled(not s.seed_locked)
        if "source" in names:
            self.show_source(s.source.split(":")[0])
            self.set_feed_controls(s.source != "sketch")
        if "adapters_loaded" in names:
            self.update_keep_colours(colour=s.has_colour())
        if names & {"model", "adapters_loaded"} and s.model is not None:
            self.set_info(s.model)

    def _update_effective(self, *_) -> None:
        live = self.session.live
        self.effective.setText(styled_prompt(self.prompt.text(), live.style, live.template))

    def _keep_value(self) -> float:
        return self.keep_strength.value() / STEPS if self.keep_colours.isChecked() else 0.0

    def _show_keep(self, value: float) -> None:
        self.keep_colours.setChecked(value > 0)
        if value > 0:
            self.keep_strength.setValue(round(value * STEPS))

    def _keep_shown(self, *_) -> None:
        self.keep_label.setText(f"{self.keep_strength.value() / STEPS:.2f}")
        self.keep_strength.setEnabled(self.keep_colours.isEnabled() and self.keep_colours.isChecked())

    def update_keep_colours(self, feed: bool | None = None, colour: bool | None = None) -> None:
        """Keep colours works for a live source (feed) with a colour-hint adapter loaded (colour); off, it says why."""
        self._feed = self._feed if feed is None else feed
        self._colour = self._colour if colour is None else colour
        on = self._feed and self._colour
        if not self._colour:
            tip = "Keep colours is off: load an adapter trained on colour-hints, e.g. the demo's, to keep a source's colours"
        elif not self._feed:
            tip = "Keep colours is for a camera, video, image or screen; on the canvas, paint colour with the colour brush"
        else:
            tip = ("Feed the colour-hint adapter the source's own colours, so the picture keeps them while the prompt "
                   "and LoRAs set the style; the slider is its strength (0..2)")
        for w in (self.keep_colours, self.keep_strength, self.keep_label):
            w.setEnabled(on)
            w.setToolTip(tip)
        self.keep_strength.setEnabled(on and self.keep_colours.isChecked())
        self.fill_shapes.setEnabled(self._colour and not self._feed)
        self.fill_shapes.setToolTip(
            "On the canvas, a dab of colour fills the shape of your drawing it sits in (a paint bucket bounded by your "
            "lines; gaps of about 2% are bridged); off, the colour layer goes to the colour-hint adapter as painted"
            if self._colour else "Fill shapes is off: load an adapter trained on colour-hints, e.g. the demo's")

    def roll_seed(self) -> None:
        self.session.roll_seed()  # a random seed in 0..2**64-1, unless locked

    def _specrow(self, form: QFormLayout, label: str, tip: str, browse_tip: str, title: str) -> QComboBox:
        """An editable model spec (folder, hub id or demo) with a "..." button that picks a folder."""
        combo = QComboBox()
        combo.setEditable(True)
        combo.setToolTip(tip)
        browse = QToolButton(text="...")
        browse.setToolTip(browse_tip)
        browse.clicked.connect(lambda: self._pick_folder(combo, title))
        form.addRow(label, row(combo, browse))
        return combo

    def _pick_folder(self, combo: QComboBox, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title)
        if folder:
            combo.setCurrentText(folder)
            self.loadRequested.emit()

    def show_source(self, kind: str) -> None:
        self.source.setCurrentIndex(max(0, self.source.findData(kind)))

    def set_feed_controls(self, on: bool) -> None:
        """Camera, mirror, condition and steady controls only matter for a camera, video, image or screen source."""
        for w in (self.mirror, self.condition, self.low, self.high, self.sigma, self.steady):
            w.setEnabled(on)
        self.update_keep_colours(feed=on)

    def size_value(self) -> int:
        """The size shown: pixels, or 0 for the model's own."""
        text = self.size.currentText().strip()
        return int(text) if text.isdigit() else 0

    def live_settings(self) -> LiveSettings:
        """The session's live settings (what these widgets show)."""
        self.bridge.flush()
        return self.session.live

    def set_info(self, info: ModelInfo) -> None:
        conds = info.conditions
        adapter = (f"adapters: {' + '.join(conds)}" if len(conds) > 1 else
                   f"adapter: {info.condition}, {info.polarity.replace('_', ' ')}" if info.controlnet and info.condition else
                   "the server's adapters" if info.controlnet else "no adapter")  # a remote engine names no condition
        parts = [info.device, info.dtype, "OpenVINO" if info.backend == "openvino" else "", f"{info.size} px", adapter]
        self.readout.setText(" · ".join(p for p in parts if p))

    def set_recent(self, models: str, adapters: str) -> None:
        """The recently used model and adapter specs the pickers offer ("\n"-separated); the model shown stays
        the session's request."""
        self.model.blockSignals(True)  # refilling the list is no user's choice
        self.model.clear()
        self.model.addItems([x for x in models.split("\n") if x])
        self.model.blockSignals(False)
        self.model.setCurrentText(self.session.request.model)
        self.adapters.set_recent(adapters)
