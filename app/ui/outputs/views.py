"""Image panes: the output (with the FPS / latency overlay), the camera or video feed (with the condition
preview and a retry button for a failed camera), and the full-screen output window."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QPushButton, QSizePolicy, QWidget

from app.live.session import ModelInfo


class ImageView(QWidget):
    """Shows one QImage scaled to fit (letterboxed), with an optional text overlay and a corner inset."""

    doubleClicked = Signal()
    colourPicked = Signal(QColor)  # Ctrl+click: the picture's colour under the pointer

    def __init__(self, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.image: QImage | None = None
        self.inset: QImage | None = None  # small picture in the lower right corner (the condition preview)
        self.inset_label = ""
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click takes focus from the prompt (Ctrl+Z: the drawing)
        self.overlay: list[str] = []  # lines drawn in the upper left corner
        self.show_overlay = True
        self.placeholder = placeholder  # text shown while there is no image
        self.message = ""  # a centred message over everything (errors, "paused", "loading")
        self.progress: float | None = None  # 0..1 of a running prompt or seed transition (a line under the picture)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        self.update()

    def set_message(self, text: str) -> None:
        if text != self.message:
            self.message = text
            self.update()

    def target_rect(self) -> QRectF:
        if self.image is None or self.image.isNull():
            return QRectF(self.rect())
        iw, ih = self.image.width(), self.image.height()
        k = min(self.width() / iw, self.height() / ih)
        w, h = iw * k, ih * k
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 34))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.image is not None and not self.image.isNull():
            p.drawImage(self.target_rect(), self.image)
        elif self.placeholder and not self.message:
            p.setPen(QColor(150, 150, 160))
            p.drawText(self.rect().adjusted(20, 20, -20, -20), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        if self.progress is not None and self.image is not None:
            self._draw_progress(p)
        if self.inset is not None:
            self._draw_inset(p)
        if self.show_overlay and self.overlay:
            self._draw_overlay(p)
        if self.message:
            self._draw_message(p)
        p.end()

    def _draw_overlay(self, p: QPainter) -> None:
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        size = 9.5
        while True:  # shrink the text until it fits a narrow pane
            font.setPointSizeF(size)
            p.setFont(font)
            fm = p.fontMetrics()
            w = max(fm.horizontalAdvance(line) for line in self.overlay) + 16
            if w <= self.width() - 16 or size <= 6.5:
                break
            size -= 0.5
        h = fm.height() * len(self.overlay) + 10
        p.fillRect(QRectF(8, 8, w, h), QColor(0, 0, 0, 150))
        p.setPen(QColor(235, 235, 235))
        for i, line in enumerate(self.overlay):
            p.drawText(16, 13 + fm.ascent() + i * fm.height(), line)

    def _draw_progress(self, p: QPainter) -> None:
        """A thin line along the picture's lower edge, as far as the transition has come, and its percentage."""
        r = self.target_rect()
        p.fillRect(QRectF(r.x(), r.bottom() - 4, r.width(), 4), QColor(0, 0, 0, 140))
        p.fillRect(QRectF(r.x(), r.bottom() - 4, r.width() * self.progress, 4), QColor(120, 200, 255))
        label = f"gliding {self.progress:.0%}"
        box = QRectF(r.x() + 6, r.bottom() - 24, p.fontMetrics().horizontalAdvance(label) + 10, 18)
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor(200, 230, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, label)

    def _draw_inset(self, p: QPainter) -> None:
        side = max(64, min(self.width(), self.height()) // 4)
        r = QRectF(self.width() - side - 10, self.height() - side - 10, side, side)
        p.fillRect(r.adjusted(-2, -2, 2, 2), QColor(255, 255, 255, 200))
        p.drawImage(r, self.inset)
        if self.inset_label:
            label = QRectF(r.x(), r.bottom() - 18, r.width(), 18)
            p.fillRect(label, QColor(0, 0, 0, 150))
            p.setPen(QColor(235, 235, 235))
            text = p.fontMetrics().elidedText(self.inset_label, Qt.TextElideMode.ElideRight, int(r.width()) - 4)
            p.drawText(label, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_message(self, p: QPainter) -> None:
        r = self.rect().adjusted(24, 0, -24, 0)
        box = p.fontMetrics().boundingRect(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        p.fillRect(box.adjusted(-12, -8, 12, 8), QColor(0, 0, 0, 170))
        p.setPen(QColor(255, 220, 160))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)

    def colour_at(self, x: float, y: float) -> QColor | None:
        """The shown picture's colour at widget point (x, y); None off the picture."""
        if self.image is None or self.image.isNull():
            return None
        r = self.target_rect()
        px, py = int((x - r.x()) * self.image.width() / r.width()), int((y - r.y()) * self.image.height() / r.height())
        if not (0 <= px < self.image.width() and 0 <= py < self.image.height()):
            return None
        return self.image.pixelColor(px, py)

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton and e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            colour = self.colour_at(e.position().x(), e.position().y())
            if colour is not None:
                self.colourPicked.emit(colour)
        super().mousePressEvent(e)

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:
        self.doubleClicked.emit()


class FeedView(ImageView):
    """The camera / video / image pane: the frame, the condition preview, and Retry when the source failed."""

    retry = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("No source", parent)
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.setToolTip("Open the camera again")
        self.retry_button.hide()
        self.retry_button.clicked.connect(self.retry)

    def set_failed(self, message: str) -> None:
        self.set_message(message)
        self.retry_button.setVisible(bool(message))
        self._place_button()

    def resizeEvent(self, e) -> None:
        self._place_button()
        super().resizeEvent(e)

    def _place_button(self) -> None:
        b = self.retry_button
        b.adjustSize()
        b.move((self.width() - b.width()) // 2, self.height() // 2 + 48)


class OutputWindow(QWidget):
    """The output alone, full screen, for projecting or screen capture. Esc, F11 or a double click closes it."""

    closed = Signal()

    def __init__(self):
        super().__init__(None, Qt.WindowType.Window)
        self.setWindowTitle("SDXS Live: output")
        self.view = ImageView("Waiting for the first frame...", self)
        self.view.show_overlay = False
        self.view.doubleClicked.connect(self.close)
        self.setStyleSheet("background: black")

    def resizeEvent(self, e) -> None:
        self.view.setGeometry(self.rect())
        super().resizeEvent(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in (Qt.Key.Key_Escape, Qt.Key.Key_F11):
            self.close()
        else:
            super().keyPressEvent(e)

    def closeEvent(self, e) -> None:
        self.closed.emit()
        super().closeEvent(e)


class Latency:
    """End-to-end latency (input change -> picture shown) of frames rendered after an input change; None for a
    picture rendered again from an input already shown (a settings change, a resume) or from one that changed
    before the model was ready (a load or a start), whose waiting was idle time, not latency."""

    def __init__(self):
        self.ms: float | None = None  # the newest frame's latency, None: "--"
        self._since = time.perf_counter()  # inputs older than this (the last load) do not count
        self._last = -math.inf  # capture time of the newest input shown

    def reset(self) -> None:
        """A model (or adapter) was loaded: what waited for it is not latency."""
        self.ms, self._since = None, time.perf_counter()

    def shown(self, captured: float, now: float) -> None:
        new_input = captured > self._last and captured >= self._since
        self.ms = 1000 * (now - captured) if new_input else None
        self._last = max(self._last, captured)


def overlay_lines(timings: dict | None, fps: float, latency_ms: float | None, stages: bool, info: ModelInfo | None,
                  seed: int, recording: bool, paused: bool, remote=None) -> list[str]:
    """The overlay's text: FPS, end-to-end latency, engine time (by stage when asked), device, the remote link
    (an app.remote.client.RemoteEngine: its state and round trip), REC, PAUSED."""
    lines = []
    if timings is not None:
        latency = f"{latency_ms:4.0f} ms" if latency_ms is not None else "  -- ms"
        lines.append(f"{f'{fps:5.1f}' if fps else '   --'} fps   latency {latency}")
        parts = " ".join(f"{k} {timings[k]:.0f}" for k in ("extract", "condition", "unet", "decode", "output") if timings.get(k))
        engine = timings.get("engine", timings.get("total", 0))  # a remote engine's: the server's time, not the round trip
        lines.append(f"engine {engine:.0f} ms" + (f"  ({parts})" if stages else ""))
    if info is not None:
        lines.append(f"{info.device} {info.dtype} {info.size} px  seed {seed}")
    if remote is not None:
        lines.append(f"remote {remote.state}  rtt {remote.rtt_ms:.0f} ms")
    if recording:
        lines.append("● REC")
    if paused:
        lines.append("PAUSED")
    return lines


def record_icon() -> QIcon:
    """A red dot, the universal record sign."""
    pix = QPixmap(32, 32)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(220, 40, 40))
    p.setPen(QColor(120, 20, 20))
    p.drawEllipse(5, 5, 22, 22)
    p.end()
    return QIcon(pix)
