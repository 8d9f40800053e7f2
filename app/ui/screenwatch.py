"""Keeps a screen capture from seeing our own windows: a feedback loop would stylize its own output.

While the source is an app.live.screen.ScreenCapture, OwnWindows tells it where the main window and the
full-screen output window are (global physical pixels) whenever they move, resize, show or hide, and shows
the capture's warning in the status bar while the captured area overlaps one of them (the capture paints
the overlap grey).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Slot
from PySide6.QtWidgets import QStatusBar, QWidget

from app.live.screen import ScreenCapture
from app.live.source_spec import Rect
from app.ui.outputs.logbar import StatusBarHandler

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
    """The main window's helper for a screen source: our windows' rectangles in, the warning out. The window
    tells it the capture (set_capture) and Actions the full-screen window (set_fullscreen)."""

    def __init__(self, main: QWidget, status: QStatusBar, logbar: StatusBarHandler):
        super().__init__(main)
        self.main, self.status = main, status
        self.sent: list[Rect] | None = None  # the rectangles last given to the capture
        self.capture: ScreenCapture | None = None  # the screen capture being fed our rectangles, else None
        self._given = None  # the capture those rectangles went to
        self._warning = ""
        self.full: QWidget | None = None  # the full-screen output window while it is open
        main.installEventFilter(self)
        logbar.shown_elsewhere(ScreenCapture.__module__)  # its overlap warning: shown here while the overlap lasts
        # the capture sets its warning in its own thread once it has opened: a slow timer picks it up
        self._timer = QTimer(self, interval=500)
        self._timer.timeout.connect(self.update)
        self._timer.start()

    def eventFilter(self, obj: QObject, e: QEvent) -> bool:
        if e.type() in WATCHED:
            QTimer.singleShot(0, self.update)  # after Qt has applied the new geometry
        return False

    def set_capture(self, capture) -> None:
        """The window's capture now (any kind, or None): only a screen capture is watched."""
        self.capture = capture if isinstance(capture, ScreenCapture) else None
        self.update()

    @Slot(object)
    def set_fullscreen(self, window: QWidget | None) -> None:
        """The full-screen output window was opened (None: closed)."""
        if window is not None:
            window.installEventFilter(self)
        self.full = window
        self.update()

    def windows(self) -> list[QWidget]:
        return [x for x in (self.main, self.full) if x is not None]

    def rects(self) -> list[Rect]:
        return [physical_rect(x) for x in self.windows() if x.isVisible() and not x.isMinimized()]

    def update(self) -> None:
        cap = self.capture
        if cap is None:
            self._given = None
            self._show_warning("")
            return
        rects = self.rects()
        if cap is not self._given or rects != self.sent:
            cap.set_own_window(rects or None)
            self._given, self.sent = cap, rects
        self._show_warning(cap.warning)

    def _show_warning(self, text: str) -> None:
        if text == self._warning:
            return
        bar = self.status
        if text:
            bar.showMessage(text)  # stays while the overlap lasts
        elif bar.currentMessage() == self._warning:
            bar.clearMessage()
        self._warning = text

    def stop(self) -> None:
        self._timer.stop()
