"""The panel's "Steady picture" group: on / off and the three stages of app.live.steady (smooth, skip, blend)
as sliders, turned into LiveSettings.steady. The defaults are the ones `python main.py bench steady` chose."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSlider, QWidget

from app.live.steady import SteadySettings

# name, label, slider range, slider steps per unit, tooltip
SLIDERS = (
    ("smooth", "Smooth", (1, 100), 100, "Weight of the newest line drawing where the frame is still (1.00: no smoothing)"),
    ("skip", "Skip", (0, 150), 10, "Reuse the last picture while no part of the input moved more than this many grey "
                                   "levels (0: render every frame)"),
    ("blend", "Blend", (0, 95), 100, "Share of the previous picture kept where the scene is still (0: off)"),
)


class SteadyGroup(QGroupBox):
    """Steady picture controls for camera, video and screen frames (a drawing is never steadied)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Steady picture", parent)
        f = QFormLayout(self)
        self.on = QCheckBox("Keep a still scene still")
        self.on.setToolTip("Less flicker from a still camera or screen; moving parts still follow at once")
        self.on.setChecked(True)
        self.on.toggled.connect(self._toggled)
        f.addRow(self.on)
        self.rest = SteadySettings()  # motion, tiles, spread: no widgets, kept as remembered
        self.sliders: dict[str, QSlider] = {}
        self.labels: dict[str, QLabel] = {}
        for name, label, (lo, hi), _, tip in SLIDERS:
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(lo, hi)
            s.setToolTip(tip)
            text = QLabel()
            text.setMinimumWidth(32)
            s.valueChanged.connect(lambda v, n=name: self._moved(n))
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(s)
            lay.addWidget(text)
            f.addRow(label, row)
            self.sliders[name], self.labels[name] = s, text
        self.set_settings(SteadySettings())

    def _scale(self, name: str) -> int:
        return next(scale for n, _, _, scale, _ in SLIDERS if n == name)

    def value(self, name: str) -> float:
        return self.sliders[name].value() / self._scale(name)

    def _moved(self, name: str) -> None:
        self.labels[name].setText(f"{self.value(name):.2f}" if self._scale(name) == 100 else f"{self.value(name):.1f}")
        self.changed.emit()

    def _toggled(self, on: bool) -> None:
        for s in self.sliders.values():
            s.setEnabled(on)
        self.changed.emit()

    def settings(self) -> SteadySettings | None:
        """LiveSettings.steady: None when off."""
        if not self.on.isChecked():
            return None
        return replace(self.rest, **{name: self.value(name) for name in self.sliders})

    def set_settings(self, steady: SteadySettings | None) -> None:
        s = steady or SteadySettings()
        self.rest = s
        for name, slider in self.sliders.items():
            slider.setValue(round(getattr(s, name) * self._scale(name)))
            self._moved(name)  # the label, also when the value did not change
        self.on.setChecked(steady is not None)
        self._toggled(self.on.isChecked())
