"""Keeps a screen capture from seeing our own windows: a feedback loop would stylize its own output.

While the source is an app.live.screen.ScreenCapture, OwnWindows tells it where the main window and the
full-screen output window are (global physical pixels) whenever they move, resize, show or hide, and shows
the capture's warning in the status bar while the captured area overlaps one of them (the capture paints
the overlap grey).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QMainWindow, QWidget

from app.live.screen import ScreenCapture
from app.live.source_spec import Rect

WATCHED = (QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Hide, QEvent.Type.WindowStateChange)


def physical_rect(win: QWidget) -> Rect:
    """A window's frame on the desktop in physical pixels (what mss captures). Qt keeps a screen's top-left in
    native pixels and divides sizes by its devicePixelRatio, so offsets inside a screen are scaled back."""
    g = win.frameGeometry()
    screen = win.screen()
    s, dpr = screen.geometry(), screen.devicePixelRatio()
    return (round(s.x() + (g.x() - s.x()) * dpr), round(s.y() + (g.y() - s.y()) * dpr),
            round(g.width() * dpr), round(g.height() * dpr))


class OwnWindows(QObject):
    """The main window's helper for a screen source: our windows' rectangles in, the warning out."""

    def __init__(self, w: QMainWindow):
        super().__init__(w)
        self.w = w
        self.sent: list[Rect] | None = None  # the rectangles last given to the capture
        self._capture = None
        self._warning = ""
        self._full: QWidget | None = None  # the full-screen output window being watched
        w.installEventFilter(self)
        w.logbar.shown_elsewhere(ScreenCapture.__module__)  # its overlap warning: shown here while the overlap lasts
        # the full-screen window comes and goes (Actions owns it), and the capture sets its warning in its own
        # thread once it has opened: a slow timer picks both up
        self._timer = QTimer(self, interval=500)
        self._timer.timeout.connect(self.update)
        self._timer.start()

    def eventFilter(self, obj: QObject, e: QEvent) -> bool:
        if e.type() in WATCHED:
            QTimer.singleShot(0, self.update)  # after Qt has applied the new geometry
        return False

    def windows(self) -> list[QWidget]:
        full = self.w.actions.fullscreen  # made after the window's actions, so they are there
        return [x for x in (self.w, full) if x is not None]

    def rects(self) -> list[Rect]:
        return [physical_rect(x) for x in self.windows() if x.isVisible() and not x.isMinimized()]

    def update(self) -> None:
        cap = self.w.capture
        if not isinstance(cap, ScreenCapture):
            self._capture = None
            self._show_warning("")
            return
        full = self.windows()[1:]
        if full and full[0] is not self._full:  # a new full-screen window: watch it too
            full[0].installEventFilter(self)
        self._full = full[0] if full else None
        rects = self.rects()
        if cap is not self._capture or rects != self.sent:
            cap.set_own_window(rects or None)
            self._capture, self.sent = cap, rects
        self._show_warning(cap.warning)

    def _show_warning(self, text: str) -> None:
        if text == self._warning:
            return
        bar = self.w.statusBar()
        if text:
            bar.showMessage(text)  # stays while the overlap lasts
        elif bar.currentMessage() == self._warning:
            bar.clearMessage()
        self._warning = text

    def stop(self) -> None:
        self._timer.stop()
