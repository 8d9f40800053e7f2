"""The Train dialog's right column: the run's progress bar and time left, the loss curves (the discriminator's
on their own plot), the newest validation grid and the trainer's log. It only shows what it is given
(app.ui.dialogs.train_dialog feeds it the run's progress events)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QProgressBar, QVBoxLayout, QWidget

NOT_CURVES = {"event", "step", "steps", "lr", "seconds", "seconds_left", "disc_acc"}  # step fields that are not losses
CURVE_COLOURS = ["#e4572e", "#17bebb", "#ffc914", "#76b041", "#8e6c8a", "#2e86ab"]


class TrainWatch(QWidget):
    """What a run shows while it learns."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.curves: dict[str, pg.PlotDataItem] = {}  # loss name -> its curve
        self.points: dict[str, tuple[list[float], list[float]]] = {}  # loss name -> (steps, values)
        col = QVBoxLayout(self)
        self.bar = QProgressBar()
        self.bar.setFormat("step %v of %m")
        self.eta = QLabel("Not started")
        self.eta.setWordWrap(True)  # a long error wraps instead of widening the dialog past the screen
        col.addWidget(self.bar)
        col.addWidget(self.eta)
        self.plot = _plot("adapter loss")
        self.disc_plot = _plot("discriminator")  # the adversarial game's other player, on its own scale
        self.disc_plot.hide()
        self.plot.setMinimumWidth(280)  # the curves stay readable in a small dialog
        col.addWidget(self.plot, 3)
        col.addWidget(self.disc_plot, 2)
        self.validation = QLabel("The validation grid (condition | target | output) appears here as it is written")
        self.validation.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.validation.setWordWrap(True)
        self.validation.setMinimumWidth(200)
        self.validation.setMinimumHeight(140)
        col.addWidget(self.validation, 2)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(2000)
        col.addWidget(self.log, 1)

    def clear(self, steps: int) -> None:
        """A new run of this many steps: no curves yet."""
        self.curves.clear()
        self.points.clear()
        for plot in (self.plot, self.disc_plot):
            plot.clear()
        self.disc_plot.hide()
        self.bar.setRange(0, steps)

    def show_event(self, ev: dict) -> None:
        """A step (the bar, the time left, every loss term the trainer reports) or a validation grid."""
        kind = ev.get("event")
        if kind == "step":
            self.bar.setValue(int(ev["step"]))
            left = ev.get("seconds_left")
            self.eta.setText(f"step {ev['step']} of {ev['steps']}" + (f", about {duration(left)} left" if left is not None else ""))
            for name, value in ev.items():  # whatever the objective
                if name not in NOT_CURVES and isinstance(value, (int, float)):
                    self.point(name, float(ev["step"]), float(value))
        elif kind == "validation":
            pix = QPixmap(ev["path"])
            if not pix.isNull():
                self.validation.setPixmap(pix.scaled(self.validation.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation))

    def point(self, name: str, x: float, y: float) -> None:
        xs, ys = self.points.setdefault(name, ([], []))
        xs.append(x)
        ys.append(y)
        if name not in self.curves:
            plot = self.disc_plot if name.startswith("disc") else self.plot
            plot.show()
            pen = pg.mkPen(CURVE_COLOURS[len(self.curves) % len(CURVE_COLOURS)], width=2)
            self.curves[name] = plot.plot([], [], pen=pen, name=name)
        self.curves[name].setData(xs, ys)

    def add_line(self, text: str) -> None:
        """A line of the trainer's log; the view follows the newest."""
        self.log.appendPlainText(text)
        bar = self.log.verticalScrollBar()
        bar.setValue(bar.maximum())


def _plot(what: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setLabel("bottom", "step")
    plot.setLabel("left", what)
    plot.addLegend(offset=(10, 5), colCount=4)  # one row across the top, clear of the curves
    plot.showGrid(x=True, y=True, alpha=0.3)
    return plot


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
