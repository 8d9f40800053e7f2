"""The panel's "Styles" group: LoRAs with a live weight each, the user's own style presets, and the
transition time, bound to the session (app.live.session): the rows are the session's loras_loaded, their
weights LiveSettings.loras, the Style box's entries the built-in styles and the session's presets. The
window's StylesLink (app/ui/session/styles_link.py) asks the worker for the LoRAs the session wants and writes
back what the engine holds.

A row is a LoRA the engine holds: its name, a weight slider (double-click: 1), the weight as a number and
a remove button. A slider move goes out as LiveSettings.loras on the next frame (a buffer fill in the
engine, no reload). LoRAs remembered from the last session wait in LiveSettings.loras until the model has
loaded them (the worker re-adds them after the base).
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
    QVBoxLayout,
    QWidget,
)

from app.live.session import LoadedLora
from app.live.settings import PRESETS
from app.live.styles import Preset, check_preset_name
from app.ui.panel.widgets import ValueRow, ask_spec
from app.ui.session.bindings import Binding, SessionBridge
from models.bounds import BOUNDS
from models.errors import UserError


def transition_box() -> QDoubleSpinBox:
    """Seconds a prompt or seed change glides over (LiveSettings.transition); 0 jumps. Its range, decimals and
    unit come from models.bounds when it is bound (app.ui.session.bindings.bind_number)."""
    box = QDoubleSpinBox()
    box.setSingleStep(0.1)
    box.setSpecialValueText("jump")
    box.setToolTip("How long a new prompt or seed glides from the old picture to the new (0: jump at once)")
    return box


class LoraRow(ValueRow):
    """One loaded LoRA: name, slider, number, remove."""

    def __init__(self, bridge: SessionBridge, name: str, spec: str):
        limit = BOUNDS["lora_weight"].high
        super().__init__(bridge, "loras", spec, -limit, limit,
                         "LoRA weight: 1 is the style as trained, 0 off, negative the opposite (double-click: 1)",
                         "LoRA weight", f"Remove this LoRA ({spec})")
        self.spec = spec
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(name)
        self.label.setToolTip(spec)
        self.label.setMinimumWidth(60)
        self.label.setMaximumWidth(110)
        for w in (self.label, self.slider, self.number, self.remove):
            lay.addWidget(w)
        lay.setStretch(1, 1)

    @property
    def weight(self) -> float:
        return self.value

    def set_weight(self, weight: float) -> None:
        """Set the weight as a user would (the session, then the engine, follow)."""
        self.session.set_lora_weight(self.spec, weight)


class StylesGroup(QGroupBox):
    """LoRA rows, "Add LoRA...", and "Save style as preset..." for the Style box it is attached to."""

    removeRequested = Signal(str)  # take this LoRA spec out
    failed = Signal(str)  # a one-line error for the window's status bar

    def __init__(self, bridge: SessionBridge, parent: QWidget | None = None):
        super().__init__("Styles", parent)
        self.bridge, self.session = bridge, bridge.session
        col = QVBoxLayout(self)
        self.rows_box = QVBoxLayout()
        col.addLayout(self.rows_box)
        self.empty = QLabel("No LoRA: add a style LoRA (a .safetensors file, a folder or a hub id)")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: gray; font-size: 8.5pt")
        col.addWidget(self.empty)
        self.remote_note = QLabel()  # while on a remote engine: why adding and removing are not offered
        self.remote_note.setWordWrap(True)
        self.remote_note.setStyleSheet("color: gray; font-size: 8.5pt")
        self.remote_note.hide()
        col.addWidget(self.remote_note)
        self.remote = False  # the rows are a remote engine's LoRAs: their weights go to it, nothing is added or removed
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
        self.style_box: QComboBox | None = None
        bridge.changed.connect(self._session_changed)

    # ---- LoRAs -------------------------------------------------------------------------------------

    @property
    def user(self) -> dict[str, Preset]:
        """The user's presets by name (the session's)."""
        return {p.name: p for p in self.session.presets}

    def loras(self) -> dict[str, float]:
        """LiveSettings.loras: spec -> weight of every row, and of those still waiting to load."""
        return dict(self.session.live.loras)

    def set_loaded(self, loaded: list[tuple[str, str, float]]) -> None:
        """What the engine holds now, into the session: a LoRA kept keeps its live weight, a new one comes at
        the engine's, one that did not load leaves LiveSettings.loras (the rows follow the session)."""
        live = self.session.live.loras
        self.session.set(loras_loaded=tuple(LoadedLora(name=n, spec=s, weight=w) for n, s, w in loaded),
                         loras={s: live.get(s, w) for _, s, w in loaded})

    def _session_changed(self, names: frozenset[str]) -> None:
        if "loras_loaded" in names:
            self._rows(self.session.loras_loaded)
        if names & {"loras", "loras_loaded"}:
            waiting = [s for s in self.session.live.loras if s not in self.rows]
            self.empty.setText(self._empty_text(waiting))
            self.empty.setVisible(not self.rows)
        if "presets" in names and self.style_box is not None:
            self._fill_box()

    def _empty_text(self, waiting: list[str]) -> str:
        if self.remote:
            return "The engine server has no LoRA"
        if waiting and not self.rows:
            return "Loading with the model: " + ", ".join(waiting)
        return "No LoRA: add a style LoRA (a .safetensors file, a folder or a hub id)"

    def _rows(self, loaded: tuple[LoadedLora, ...]) -> None:
        specs = [lo.spec for lo in loaded]
        for spec in [s for s in self.rows if s not in specs]:
            self.rows.pop(spec).deleteLater()
        for lo in loaded:
            if lo.spec not in self.rows:
                row = LoraRow(self.bridge, lo.name, lo.spec)
                row.removeRequested.connect(self._remove)
                row.remove.setEnabled(not self.remote)
                self.rows[lo.spec] = row
                self.rows_box.addWidget(row)

    def request(self, spec: str, weight: float = 1.0) -> None:
        """Ask for a LoRA at a weight: the session wants it, the window's StylesLink has the worker load it
        (a row appears once it has)."""
        spec = spec.strip()
        if spec:
            self.session.set_lora_weight(spec, weight)

    def _remove(self, spec: str) -> None:
        row = self.rows.pop(spec, None)
        if row is not None:
            row.deleteLater()
        self.empty.setVisible(not self.rows)
        self.session.set(loras_loaded=tuple(lo for lo in self.session.loras_loaded if lo.spec != spec))
        self.session.drop_lora(spec)
        self.removeRequested.emit(spec)

    def set_busy(self, busy: bool) -> None:
        self.add_button.setEnabled(not busy and not self.remote)

    def set_remote(self, note: str) -> None:
        """On a remote engine (note: one line saying why adding and removing are not offered), or local ("")."""
        self.remote = bool(note)
        self.empty.setText(self._empty_text([]))
        self.remote_note.setText(note)
        self.remote_note.setVisible(self.remote)
        self.add_button.setEnabled(not self.remote)
        for row in self.rows.values():
            row.remove.setEnabled(not self.remote)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a LoRA file", "", "LoRA weights (*.safetensors *.bin)")
        self.request(path)

    def _pick_folder(self) -> None:
        self.request(QFileDialog.getExistingDirectory(self, "Choose a LoRA folder (adapter_config.json or pytorch_lora_weights.safetensors)"))

    def _type_spec(self) -> None:
        self.request(ask_spec(self, "Add LoRA", "Hugging Face id, folder or file:", "IDKiro/sdxs-512-dreamshaper-anime"))

    # ---- presets in the Style box ------------------------------------------------------------------

    def attach(self, box: QComboBox) -> None:
        """Put the user's presets in the Style box after the built-in ones; the box shows the session's style,
        and choosing one as a user does (activated) applies its LoRAs too (Session.choose_style)."""
        self.style_box = box
        Binding(self.bridge, "style", box, box.currentIndexChanged, box.currentText, self.show_style,
                write=lambda name: self.session.set(style=name, template=self._template(name)))
        box.activated.connect(lambda i: self.session.choose_style(box.itemText(i)) if self.preset(box.itemText(i)) else None)
        self._fill_box()

    def _fill_box(self) -> None:
        box = self.style_box
        box.blockSignals(True)
        while box.count() > len(PRESETS):
            box.removeItem(box.count() - 1)
        if self.user:
            box.insertSeparator(box.count())
            for name in self.user:
                box.addItem(name, name)
        box.blockSignals(False)
        self.show_style(self.session.live.style)

    def show_style(self, name: str) -> None:
        """Show a style (built-in or the user's; else None) in the box, without loading its LoRAs."""
        known = name in PRESETS or name in self.user
        self.style_box.setCurrentIndex(max(0, self.style_box.findText(name if known else "None")))

    select_style = show_style

    def preset(self, name: str) -> Preset | None:
        return self.session.preset(name)

    def _template(self, name: str) -> str:
        p = self.user.get(name)
        return p.template if p is not None and name not in PRESETS else ""

    def template(self) -> str:
        """LiveSettings.template: a user's preset's template ("" for a built-in style, which the engine knows)."""
        return self.session.live.template

    def save_preset(self, name: str) -> Preset:
        """The current template, LoRAs and weights under a name (replacing the user's preset of that name)."""
        name = check_preset_name(name)
        live = self.session.live
        template = live.template or PRESETS.get(live.style, "{prompt}")
        preset = Preset(name=name, template=template, loras={spec: live.loras.get(spec, row.weight) for spec, row in self.rows.items()})
        self.session.set(presets=tuple(p for p in self.session.presets if p.name != name) + (preset,))
        self.session.set(style=name, template=template)
        return preset

    def _ask_preset_name(self) -> None:
        current = self.style_box.currentText()
        name, ok = QInputDialog.getText(self, "Save style as preset", "Name:", text=current if current in self.user else "")
        if not ok:
            return
        try:
            self.save_preset(name)
        except UserError as e:
            self.failed.emit(str(e))
