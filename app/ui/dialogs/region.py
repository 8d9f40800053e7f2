"""The screen region picker: which monitor (a menu), then drag a rectangle over a dimmed screenshot of it.

pick_screen() gives the --source text (app.live.source_spec.format_spec): screen:N for a whole monitor, or
screen:N@X,Y,W,H, X,Y,W,H in the monitor's own pixels from its top-left corner. The screenshot is in physical
pixels and the picker's widget in Qt's device-independent ones; the picker maps between the two by their
sizes, so a display scaled 2x (devicePixelRatio 2) still gives the pixels mss captures.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QCursor, QGuiApplication, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QApplication, QDialog, QMenu, QWidget

from app.live.screen import check_display, list_monitors, screenshot
from app.live.source_spec import Rect, format_spec
from app.ui.outputs.qimage import from_rgb

HINT = "Drag a rectangle to capture  ·  Enter: the whole monitor  ·  Esc: cancel"
MIN_SIDE = 8  # pixels: the smallest region app.live.source_spec accepts


class RegionPicker(QDialog):
    """A full-screen, dimmed screenshot of one monitor: drag a rectangle (release accepts), Enter accepts the
    rectangle or, without one, the whole monitor; Esc cancels. `spec` holds the result once accepted."""

    def __init__(self, image: np.ndarray, monitor: int, rect: Rect, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint | Qt.WindowType.Tool)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMouseTracking(True)
        self.monitor = monitor
        self.rect_on_desktop = rect  # the monitor's rectangle on the desktop, in physical pixels
        self.shot = QPixmap.fromImage(from_rgb(image))
        self.size_px = (image.shape[1], image.shape[0])  # the screenshot's width, height
        self.spec: str | None = None  # the chosen --source text, once accepted
        self._a: QPoint | None = None  # where the drag started (widget coordinates)
        self._b: QPoint | None = None  # where it is now

    # ---- where it appears ---------------------------------------------------------------------------

    def cover_monitor(self) -> None:
        """Show over the monitor that was captured (the screen whose top-left matches), full screen."""
        screens = QGuiApplication.screens()
        if self.monitor == 0 or not screens:  # all monitors together: one window over the whole desktop
            self.setGeometry(QGuiApplication.primaryScreen().virtualGeometry())
            self.show()
        else:
            x, y = self.rect_on_desktop[:2]
            # Qt keeps a screen's top-left in native pixels on X11 and scales only its size
            best = min(screens, key=lambda s: abs(s.geometry().x() - x) + abs(s.geometry().y() - y))
            self.setGeometry(best.geometry())
            self.showFullScreen()
        self.activateWindow()
        self.raise_()

    # ---- the rectangle ------------------------------------------------------------------------------

    def selection(self) -> QRect | None:
        """The dragged rectangle in widget coordinates (None before a drag)."""
        if self._a is None or self._b is None:
            return None
        a, b = self._a, self._b  # the drag's ends as edges: from 50 to 160 is 110 pixels wide
        x0, y0 = min(a.x(), b.x()), min(a.y(), b.y())
        return QRect(x0, y0, max(a.x(), b.x()) - x0, max(a.y(), b.y()) - y0).intersected(self.rect())

    def region(self) -> Rect | None:
        """The dragged rectangle in the screenshot's (physical) pixels, None when there is none or it is
        smaller than MIN_SIDE."""
        sel = self.selection()
        if sel is None or self.width() <= 0 or self.height() <= 0:
            return None
        sx, sy = self.size_px[0] / self.width(), self.size_px[1] / self.height()
        x0, y0 = round(sel.left() * sx), round(sel.top() * sy)
        # QRect's right() is inclusive: the far edge is left + width
        x1 = min(round((sel.left() + sel.width()) * sx), self.size_px[0])
        y1 = min(round((sel.top() + sel.height()) * sy), self.size_px[1])
        if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
            return None
        return x0, y0, x1 - x0, y1 - y0

    def finish(self, whole: bool = False) -> None:
        region = None if whole else self.region()
        if region is None and not whole:
            return
        self.spec = format_spec(self.monitor, region)
        self.accept()

    # ---- events -------------------------------------------------------------------------------------

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._a = self._b = e.position().toPoint()
            self.update()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self._a is not None and e.buttons() & Qt.MouseButton.LeftButton:
            self._b = e.position().toPoint()
            self.update()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton and self._a is not None:
            self._b = e.position().toPoint()
            if self.region() is not None:
                self.finish()
            else:  # a click, not a drag: start again
                self._a = self._b = None
                self.update()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish(whole=self.region() is None)
        elif e.key() == Qt.Key.Key_Escape:
            self.reject()
        else:
            super().keyPressEvent(e)

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        p.drawPixmap(self.rect(), self.shot)
        sel = self.selection()
        dim = QColor(0, 0, 0, 150)
        if sel is None or sel.isEmpty():
            p.fillRect(self.rect(), dim)
        else:  # dim everything but the selection
            r = self.rect()
            p.fillRect(QRect(r.left(), r.top(), r.width(), sel.top() - r.top()), dim)
            p.fillRect(QRect(r.left(), sel.bottom() + 1, r.width(), r.bottom() - sel.bottom()), dim)
            p.fillRect(QRect(r.left(), sel.top(), sel.left() - r.left(), sel.height()), dim)
            p.fillRect(QRect(sel.right() + 1, sel.top(), r.right() - sel.right(), sel.height()), dim)
            p.setPen(QPen(QColor(80, 200, 255), 2))
            p.drawRect(sel.adjusted(0, 0, -1, -1))
            region = self.region()
            if region is not None:
                p.setPen(Qt.GlobalColor.white)
                p.drawText(sel.left() + 4, max(sel.top() - 6, 14), f"{region[2]} x {region[3]} at {region[0]},{region[1]}")
        box = p.fontMetrics().boundingRect(HINT).adjusted(-12, -6, 12, 6)
        box.moveCenter(QPoint(self.width() // 2, 24))
        p.fillRect(box, QColor(0, 0, 0, 200))
        p.setPen(Qt.GlobalColor.white)
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, HINT)
        p.end()


def pick_screen(parent: QWidget | None = None) -> str | None:
    """Ask which monitor, whole or a region of it (then the picker); the --source text, or None if cancelled.
    Raises UserError (one line) where the screen cannot be captured, such as Wayland without X."""
    check_display()
    monitors = list_monitors()
    if len(monitors) == 2:  # one monitor: "all together" is the same thing
        monitors = monitors[:1]
    menu = QMenu(parent)
    for n, (_, _, w, h) in monitors:
        name = "All monitors together" if n == 0 else f"Monitor {n}"
        menu.addAction(f"{name} ({w} x {h}): choose a region...").setData(("region", n))
        menu.addAction(f"{name} ({w} x {h}): the whole of it").setData(("whole", n))
        menu.addSeparator()
    chosen = menu.exec(QCursor.pos())
    if chosen is None:
        return None
    kind, n = chosen.data()
    if kind == "whole":
        return format_spec(n)
    QApplication.processEvents()  # let the menu disappear before the screenshot
    image, rect = screenshot(n)
    picker = RegionPicker(image, n, rect, parent)
    picker.cover_monitor()
    picker.exec()
    return picker.spec
