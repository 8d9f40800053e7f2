"""The panel's "Styles" group: LoRAs with a live weight each, the user's own style presets, and the
transition time. Widgets only: the window's StylesLink (app/ui/styles_link.py) sends the requests to the
worker and feeds back what the engine holds.

A row is a LoRA the engine holds: its name, a weight slider (double-click: 1), the weight as a number and
a remove button. A slider move goes out as LiveSettings.loras on the next frame (a buffer fill in the
engine, no reload). LoRAs remembered from the last session wait as `pending` until the model has loaded
them (the worker re-adds them after the base).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.live.settings import PRESETS
from app.live.styles import Preset, builtin, check_preset_name, read_presets, write_presets
from app.ui.widgets import SliderNumber, ask_spec
from models.errors import UserError
from models.options import TRANSITION


def max_weight() -> float:
    from models.lora import MAX_WEIGHT  # imported late: models.lora brings torch, which the window loads later

    return MAX_WEIGHT


def transition_box() -> QDoubleSpinBox:
    """Seconds a prompt or seed change glides over (LiveSettings.transition); 0 jumps."""
    box = QDoubleSpinBox()
    box.setRange(0.0, 10.0)
    box.setDecimals(1)
    box.setSingleStep(0.1)
    box.setSuffix(" s")
    box.setSpecialValueText("jump")
    box.setValue(TRANSITION)
    box.setToolTip("How long a new prompt or seed glides from the old picture to the new (0: jump at once)")
    return box


class LoraRow(QWidget):
    """One loaded LoRA: name, slider, number, remove."""

    moved = Signal()
    removeRequested = Signal(str)  # its spec

    def __init__(self, name: str, spec: str, weight: float):
        super().__init__()
        self.spec = spec
        limit = max_weight()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(name)
        self.label.setToolTip(spec)
        self.label.setMinimumWidth(60)
        self.label.setMaximumWidth(110)
        self.pair = SliderNumber(-limit, limit, self.moved.emit,
                                 "LoRA weight: 1 is the style as trained, 0 off, negative the opposite (double-click: 1)",
                                 "LoRA weight")
        self.slider, self.number = self.pair.slider, self.pair.number
        self.remove = QToolButton(text="✕")
        self.remove.setToolTip(f"Remove this LoRA ({spec})")
        for w in (self.label, self.slider, self.number, self.remove):
            lay.addWidget(w)
        lay.setStretch(1, 1)
        self.set_weight(weight)
        self.remove.clicked.connect(lambda: self.removeRequested.emit(self.spec))

    @property
    def weight(self) -> float:
        return self.pair.value

    def set_weight(self, weight: float) -> None:
        self.pair.show(weight)
        self.moved.emit()


class StylesGroup(QGroupBox):
    """LoRA rows, "Add LoRA...", and "Save style as preset..." for the Style box it is attached to."""

    changed = Signal()  # a weight, the list or the preset changed: send the settings
    addRequested = Signal(str, float)  # load this LoRA spec at this weight (in the worker)
    removeRequested = Signal(str)  # take this LoRA spec out

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Styles", parent)
        col = QVBoxLayout(self)
        self.rows_box = QVBoxLayout()
        col.addLayout(self.rows_box)
        self.empty = QLabel("No LoRA: add a style LoRA (a .safetensors file, a folder or a hub id)")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: gray; font-size: 8.5pt")
        col.addWidget(self.empty)
        self.add_button = QPushButton("Add LoRA...")
        self.add_button.setToolTip("Load a LoRA style: a .safetensors file, a PEFT or diffusers folder, or a hub id")
        menu = QMenu(self.add_button)
        menu.addAction("File (.safetensors)...", self._pick_file)
        menu.addAction("Folder (PEFT or diffusers)...", self._pick_folder)
        menu.addAction("Hub id or path...", self._type_spec)
        self.add_button.setMenu(menu)
        self.save_button = QPushButton("Save as preset...")
        self.save_button.setToolTip("Keep the prompt template, the LoRAs and their weights under a name in the Style box")
        self.save_button.clicked.connect(self._ask_preset_name)
        buttons = QWidget()
        lay = QHBoxLayout(buttons)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.add_button)
        lay.addWidget(self.save_button)
        col.addWidget(buttons)
        self.rows: dict[str, LoraRow] = {}  # spec -> row, in the engine's order
        self.pending: dict[str, float] = {}  # remembered LoRAs the model has not loaded yet
        self.user: dict[str, Preset] = {}  # the user's presets by name
        self.style_box: QComboBox | None = None

    # ---- LoRAs -------------------------------------------------------------------------------------

    def loras(self) -> dict[str, float]:
        """LiveSettings.loras: spec -> weight of every row, and of those still waiting to load."""
        return self.pending | {spec: row.weight for spec, row in self.rows.items()}

    def set_pending(self, loras: dict[str, float]) -> None:
        """The LoRAs remembered from the last session: loaded with the next model."""
        self.pending = dict(loras)
        self.empty.setText("Loading with the model: " + ", ".join(self.pending) if self.pending else self.empty.text())

    def set_loaded(self, loaded: list[tuple[str, str, float]]) -> None:
        """What the engine holds now: new rows at the engine's weight, kept rows at their slider's."""
        self.pending = {}
        specs = [spec for _, spec, _ in loaded]
        for spec in [s for s in self.rows if s not in specs]:
            self.rows.pop(spec).deleteLater()
        for name, spec, weight in loaded:
            if spec not in self.rows:
                row = LoraRow(name, spec, weight)
                row.moved.connect(self.changed)
                row.removeRequested.connect(self._remove)
                self.rows[spec] = row
                self.rows_box.addWidget(row)
        self.empty.setText("No LoRA: add a style LoRA (a .safetensors file, a folder or a hub id)")
        self.empty.setVisible(not self.rows)
        self.changed.emit()

    def request(self, spec: str, weight: float = 1.0) -> None:
        """Ask for a LoRA (the worker loads it; a row appears once it has)."""
        spec = spec.strip()
        if spec in self.rows:
            self.rows[spec].set_weight(weight)
        elif spec:
            self.addRequested.emit(spec, weight)

    def _remove(self, spec: str) -> None:
        row = self.rows.pop(spec, None)
        if row is not None:
            row.deleteLater()
        self.empty.setVisible(not self.rows)
        self.removeRequested.emit(spec)
        self.changed.emit()

    def set_busy(self, busy: bool) -> None:
        self.add_button.setEnabled(not busy)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a LoRA file", "", "LoRA weights (*.safetensors *.bin)")
        self.request(path)

    def _pick_folder(self) -> None:
        self.request(QFileDialog.getExistingDirectory(self, "Choose a LoRA folder (adapter_config.json or pytorch_lora_weights.safetensors)"))

    def _type_spec(self) -> None:
        self.request(ask_spec(self, "Add LoRA", "Hugging Face id, folder or file:", "IDKiro/sdxs-512-dreamshaper-anime"))

    # ---- presets in the Style box ------------------------------------------------------------------

    def attach(self, box: QComboBox) -> None:
        """Put the user's presets in the Style box after the built-in ones; choosing one applies its LoRAs."""
        self.style_box = box
        box.activated.connect(self._preset_chosen)

    def set_user_presets(self, presets: list[Preset] | str) -> None:
        presets = read_presets(presets) if isinstance(presets, str) else presets
        self.user = {p.name: p for p in presets}
        box = self.style_box
        current = box.currentText()
        box.blockSignals(True)
        while box.count() > len(PRESETS):
            box.removeItem(box.count() - 1)
        if self.user:
            box.insertSeparator(box.count())
            for name in self.user:
                box.addItem(name, name)
        box.setCurrentIndex(max(0, box.findText(current)))
        box.blockSignals(False)

    def presets_json(self) -> str:
        return write_presets(list(self.user.values()))

    def select_style(self, name: str) -> None:
        """Show a remembered style (built-in or the user's; else None) without loading its LoRAs again."""
        known = name in PRESETS or name in self.user
        self.style_box.setCurrentIndex(max(0, self.style_box.findText(name if known else "None")))

    def preset(self, name: str) -> Preset | None:
        return self.user.get(name) or (builtin(name) if name in PRESETS else None)

    def template(self) -> str:
        """LiveSettings.template: a user's preset's template ("" for a built-in style, which the engine knows)."""
        p = self.user.get(self.style_box.currentText()) if self.style_box is not None else None
        return p.template if p is not None and self.style_box.currentText() not in PRESETS else ""

    def _preset_chosen(self, index: int) -> None:
        p = self.preset(self.style_box.itemText(index))
        if p is not None and p.loras:
            self.apply_loras(p.loras)

    def apply_loras(self, loras: dict[str, float]) -> None:
        """A preset's LoRAs at its weights; every other loaded LoRA goes to 0 (kept, so it can come back)."""
        for spec, row in self.rows.items():
            if spec not in loras:
                row.set_weight(0.0)
        for spec, weight in loras.items():
            self.request(spec, weight)
        self.changed.emit()

    def save_preset(self, name: str) -> Preset:
        """The current template, LoRAs and weights under a name (replacing the user's preset of that name)."""
        name = check_preset_name(name)
        style = self.style_box.currentText()
        template = self.template() or PRESETS.get(style, "{prompt}")
        preset = Preset(name=name, template=template, loras={spec: row.weight for spec, row in self.rows.items()})
        self.set_user_presets([p for p in self.user.values() if p.name != name] + [preset])
        self.style_box.setCurrentIndex(self.style_box.findText(name))
        self.changed.emit()
        return preset

    def _ask_preset_name(self) -> None:
        current = self.style_box.currentText()
        name, ok = QInputDialog.getText(self, "Save style as preset", "Name:", text=current if current in self.user else "")
        if not ok:
            return
        try:
            self.save_preset(name)
        except UserError as e:
            win = self.window()
            if hasattr(win, "show_error"):
                win.show_error(str(e))
