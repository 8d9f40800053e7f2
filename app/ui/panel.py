"""The control panel: prompt and style, seed, strength, size; model, adapter and device; source and
condition; output options. It only holds widgets and turns them into settings; the window acts on them."""

from __future__ import annotations

import random

from PySide6.QtCore import Qt, QTimer, Signal
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
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.live.settings import CONDITION_MODES, PRESETS, ConditionSettings, LiveSettings, styled_prompt
from app.ui.adapters import AdapterList
from app.ui.panel_sources import SourcePicker
from app.ui.settings import Persisted
from app.ui.steady_group import SteadyGroup
from app.ui.styles import StylesGroup, transition_box
from app.ui.widgets import STEPS, UnitSlider, guard_wheel, row
from models.options import BACKENDS, DEVICES, DTYPES, MAX_STRENGTH, STRENGTH

SIZES = ["model's own", "128", "256", "384", "512", "640", "768"]
SOURCES = [("Sketch canvas", "sketch"), ("Camera", "camera"), ("Video file (loops)", "video"), ("Image", "image"),
           ("Screen...", "screen"), ("NDI source...", "ndi")]
CONDITION_LABELS = {"auto": "Adapter's own", "sketch": "Soft line drawing", "canny": "Edges (canny)", "none": "Frame as is"}


def _slider(lo: int, hi: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class ControlPanel(SourcePicker, QScrollArea):
    """All controls in a scrollable column."""

    changed = Signal()  # a live setting changed (debounced: prompt typing waits 250 ms)
    loadRequested = Signal()  # load the model / adapter / device shown
    sourceRequested = Signal(str)  # switch to this source spec (sketch, camera:N, video:PATH, image:PATH)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(360)
        body = QWidget()
        col = QVBoxLayout(body)
        col.addWidget(self._prompt_group())
        self.styles = StylesGroup()  # LoRAs with live weights, the user's presets (app/ui/styles.py)
        self.styles.attach(self.preset)
        self.styles.changed.connect(self._now)
        col.addWidget(self.styles)
        col.addWidget(self._model_group())
        col.addWidget(self._source_group())
        self.steady = SteadyGroup()  # Steady picture: on / off, smooth, skip, blend
        self.steady.changed.connect(self._now)
        col.addWidget(self.steady)
        col.addWidget(self._output_group())
        col.addStretch(1)
        for combo in body.findChildren(QComboBox):  # long paths must not widen the panel
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        guard_wheel(*body.findChildren(QWidget))  # the wheel scrolls the panel, not the value under it
        self.setWidget(body)
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.changed)
        self._threshold = LiveSettings().threshold  # no widget: kept as remembered

    # ---- groups -------------------------------------------------------------------------------------

    def _prompt_group(self) -> QGroupBox:
        g = QGroupBox("Prompt")
        f = QFormLayout(g)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("describe the picture, e.g. a red fox in the snow")
        self.prompt.setClearButtonEnabled(True)
        self.prompt.textChanged.connect(self._debounce_start)
        f.addRow(self.prompt)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip("Style preset: a prompt template wrapped around your prompt")
        self.preset.currentIndexChanged.connect(self._now)
        f.addRow("Style", self.preset)
        self.effective = QLabel()
        self.effective.setWordWrap(True)
        self.effective.setStyleSheet("color: gray; font-size: 8.5pt")
        f.addRow(self.effective)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The noise seed: the same seed and input give the same picture")
        self.seed.valueChanged.connect(self._now)
        self.new_seed = QPushButton("New")
        self.new_seed.setToolTip("A random new seed (F5)")
        self.new_seed.clicked.connect(self.roll_seed)
        self.lock_seed = QCheckBox("Lock")
        self.lock_seed.setToolTip("Keep this seed: disables New and editing")
        self.lock_seed.toggled.connect(self._lock_changed)
        f.addRow("Seed", row(self.seed, self.new_seed, self.lock_seed))
        self.strength = _slider(0, round(MAX_STRENGTH * 100), round(STRENGTH * 100))
        self.strength_label = QLabel(f"{STRENGTH:.2f}")
        self.strength.setToolTip("How strongly the sketch or camera steers the picture (0 ignores it): every adapter at once")
        self.strength.valueChanged.connect(self._strength_changed)
        f.addRow("Strength", row(self.strength, self.strength_label))
        self.transition = transition_box()
        self.transition.valueChanged.connect(self._now)
        f.addRow("Transition", self.transition)
        self.size = QComboBox()
        self.size.setEditable(True)
        self.size.addItems(SIZES)
        self.size.lineEdit().setValidator(QIntValidator(64, 2048))
        self.size.setToolTip("Output size in pixels, a multiple of 8; smaller is faster")
        self.size.currentTextChanged.connect(self._debounce_start)
        f.addRow("Size", self.size)
        return g

    def _model_group(self) -> QGroupBox:
        g = QGroupBox("Model")
        f = QFormLayout(g)
        self.model = self._specrow(
            f, "Model", "Base model: a folder, a Hugging Face id (IDKiro/sdxs-512-dreamshaper) or demo",
            "Choose a model folder", "Choose a model folder (with model_index.json)")
        self.adapters = AdapterList()  # the adapters loaded, each with a live strength (app/ui/adapters.py)
        self.adapters.strengthChanged.connect(self._now)  # LiveSettings.adapters: applied in the worker, no reload
        self.adapters.listChanged.connect(self._now)
        f.addRow("Adapters", self.adapters)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setEditable(True)  # cuda:1 picks the second GPU
        self.dtype = QComboBox()
        self.dtype.addItems(list(DTYPES))
        self.backend = QComboBox()
        self.backend.addItems(list(BACKENDS))
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
        self.mirror.toggled.connect(self._now)
        f.addRow(self.mirror)
        self.condition = QComboBox()
        for mode in CONDITION_MODES:
            self.condition.addItem(CONDITION_LABELS[mode], mode)
        self.condition.setToolTip("How a camera, video or image frame becomes the adapter's input")
        self.condition.currentIndexChanged.connect(self._now)
        f.addRow("Condition", self.condition)
        self.keep_colours = QCheckBox("Keep colours")
        self.keep_strength = UnitSlider(0.0, MAX_STRENGTH)
        self.keep_label = QLabel("1.00")
        self.keep_colours.setChecked(True)
        self.keep_colours.toggled.connect(self._keep_changed)
        self.keep_strength.valueChanged.connect(self._keep_changed)
        f.addRow(row(self.keep_colours, self.keep_strength, self.keep_label, stretch=1))
        self.fill_shapes = QCheckBox("Fill shapes")
        self.fill_shapes.setChecked(True)
        self.fill_shapes.toggled.connect(self._now)
        f.addRow(self.fill_shapes)
        self._feed, self._colour = False, False  # a live source is shown; a colour-hint adapter is loaded
        self.update_keep_colours()
        self.low = _slider(0, 255, 100)
        self.high = _slider(0, 255, 200)
        self.sigma = _slider(1, 30, 6)
        for s, tip in ((self.low, "Edges: lower threshold"), (self.high, "Edges: upper threshold"),
                       (self.sigma, "Line drawing: softness")):
            s.setToolTip(tip)
            s.valueChanged.connect(self._now)
        f.addRow("Edges low", self.low)
        f.addRow("Edges high", self.high)
        f.addRow("Softness", self.sigma)
        return g

    def _output_group(self) -> QGroupBox:
        g = QGroupBox("Output")
        f = QVBoxLayout(g)
        self.overlay = QCheckBox("Overlay: FPS and latency")
        self.profile = QCheckBox("Per-stage timings (syncs the GPU)")
        self.profile.toggled.connect(self._now)
        self.record_side = QCheckBox("Record source and output side by side")
        for w in (self.overlay, self.profile, self.record_side):
            f.addWidget(w)
        return g

    # ---- behaviour ----------------------------------------------------------------------------------

    def _debounce_start(self, *_) -> None:
        self._update_effective()
        self._debounce.start()

    def _now(self, *_) -> None:
        self._update_effective()
        self._debounce.start(0)

    def _update_effective(self) -> None:
        self.effective.setText(styled_prompt(self.prompt.text(), self.preset.currentText(), self.styles.template()))

    def _strength_changed(self, v: int) -> None:
        self.strength_label.setText(f"{v / 100:.2f}")
        for r in self.adapters.rows.values():  # every adapter at once; each row's slider then sets its own
            r.set_strength(v / 100)
        self._now()

    def _keep_changed(self, *_) -> None:
        self.keep_label.setText(f"{self.keep_strength.value() / STEPS:.2f}")
        self.keep_strength.setEnabled(self.keep_colours.isEnabled() and self.keep_colours.isChecked())
        self._now()

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

    def _lock_changed(self, locked: bool) -> None:
        self.seed.setEnabled(not locked)
        self.new_seed.setEnabled(not locked)

    def roll_seed(self) -> None:
        if not self.lock_seed.isChecked():
            self.seed.setValue(random.randrange(2**31 - 1))

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

    def size_value(self) -> int | None:
        text = self.size.currentText().strip()
        return int(text) if text.isdigit() else None

    def live_settings(self) -> LiveSettings:
        cond = ConditionSettings(mode=self.condition.currentData() or "auto", low=self.low.value(), high=self.high.value(),
                                 sigma=float(self.sigma.value()), mirror=self.mirror.isChecked())
        return LiveSettings(prompt=self.prompt.text(), style=self.preset.currentText(), seed=self.seed.value(),
                            strength=self.strength.value() / 100, size=self.size_value() or 0, condition=cond,
                            threshold=self._threshold, profile=self.profile.isChecked(), steady=self.steady.settings(),
                            template=self.styles.template(), transition=self.transition.value(), loras=self.styles.loras(),
                            adapters={name: r.strength for name, r in self.adapters.rows.items()}, keep_colours=self.keep_strength.value() / STEPS if self.keep_colours.isChecked() else 0.0,
                            fill_shapes=self.fill_shapes.isChecked())

    def set_info(self, info: dict) -> None:
        conds = info.get("conditions") or []
        adapter = (f"adapters: {' + '.join(conds)}" if len(conds) > 1 else
                   f"adapter: {info['condition']}, {info['polarity'].replace('_', ' ')}" if info.get("controlnet") else "no adapter")
        backend = " · OpenVINO" if info.get("backend") == "openvino" else ""
        self.readout.setText(f"{info['device']} · {info['dtype']}{backend} · {info['size']} px · {adapter}")

    # ---- persistence --------------------------------------------------------------------------------

    def restore(self, s: Persisted) -> None:
        self.model.clear()
        self.model.addItems([x for x in s.recent_models.split("\n") if x])
        self.model.setCurrentText(s.model)
        self.adapters.set_recent(s.recent_adapters)
        self.device.setCurrentText(s.device)
        self.dtype.setCurrentText(s.dtype)
        self.backend.setCurrentText(s.backend)
        live, cond = s.live, s.live.condition
        self._threshold = live.threshold
        self.prompt.setText(live.prompt)
        self.styles.set_user_presets(s.presets)
        self.styles.select_style(live.style)
        self.styles.set_pending(live.loras)
        self.transition.setValue(live.transition)
        self.seed.setValue(live.seed)
        self.lock_seed.setChecked(s.seed_locked)
        self.strength.setValue(round(live.strength * 100))
        self.size.setCurrentText(str(live.size) if live.size else SIZES[0])
        self.condition.setCurrentIndex(max(0, self.condition.findData(cond.mode)))
        self.low.setValue(cond.low)
        self.high.setValue(cond.high)
        self.sigma.setValue(round(cond.sigma))
        self.mirror.setChecked(cond.mirror)
        self.keep_colours.setChecked(live.keep_colours > 0)
        self.keep_strength.setValue(round((live.keep_colours or 1.0) * STEPS))
        self.fill_shapes.setChecked(live.fill_shapes)
        self.overlay.setChecked(s.overlay)
        self.profile.setChecked(live.profile)
        self.steady.set_settings(live.steady)
        self.record_side.setChecked(s.record_side)
        self._update_effective()

    def store(self, s: Persisted) -> None:
        s.live = self.live_settings()
        s.presets = self.styles.presets_json()
        s.device, s.dtype, s.backend = self.device.currentText(), self.dtype.currentText(), self.backend.currentText()
        s.seed_locked, s.overlay, s.record_side = self.lock_seed.isChecked(), self.overlay.isChecked(), self.record_side.isChecked()
