"""Starting Qt: is there a display, are the X11 plugin's libraries there, the one QApplication, and Qt's own
messages kept quiet."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path

from models.assets import ASSETS
from models.errors import UserError

ORGANIZATION = "sdxs-live"
APPLICATION = "SDXS Live"
XCB_LIBS = ASSETS / "qt-xcb-libs.txt"  # the libraries Qt's xcb plugin loads, with their Debian packages


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
                or sys.platform in ("win32", "darwin"))


def qt_platform() -> str:
    """The platform plugin Qt will start: QT_QPA_PLATFORM's first, else wayland in a Wayland session, else xcb
    (X11) on Linux; "" elsewhere (Windows and macOS bring their own)."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if not sys.platform.startswith("linux"):
        return ""
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    return "wayland" if wayland else "xcb"


def missing_xcb_libraries(table: Path | None = None) -> list[tuple[str, str]]:
    """(library, Debian package) for each library of Qt's xcb plugin that the dynamic loader cannot open,
    found the way Qt will look for it (dlopen: the system's paths and LD_LIBRARY_PATH)."""
    import ctypes

    missing = []
    for line in (table or XCB_LIBS).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            library, package = line.split()
            try:
                ctypes.CDLL(library)
            except OSError:
                missing.append((library, package))
    return missing


def check_platform_libraries(table: Path | None = None) -> None:
    """Before Qt starts on X11: the libraries its xcb plugin needs, all of them named in one line with the
    command that installs them (Qt itself names only the first, and suggests reinstalling Qt)."""
    if qt_platform() != "xcb":
        return
    missing = missing_xcb_libraries(table)
    if missing:
        libraries = ", ".join(lib for lib, _ in missing)
        packages = " ".join(dict.fromkeys(pkg for _, pkg in missing))
        raise UserError(f"the window needs system libraries that are missing ({libraries}): install them with "
                        f"`sudo apt install {packages}` (Debian and Ubuntu names), then start it again; or run "
                        "without a window: `python main.py stream --input camera:0 --out out.mp4`")


def quiet_qt() -> None:
    """Qt's own messages to the "qt" logger (a library's: on stderr, not in the status bar), less the offscreen
    platform's notice that it cannot propagate size hints."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    log = logging.getLogger("qt")
    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO, QtMsgType.QtWarningMsg: logging.WARNING,
              QtMsgType.QtCriticalMsg: logging.ERROR, QtMsgType.QtFatalMsg: logging.CRITICAL}

    def handler(mode, _context, message: str) -> None:
        if "propagateSizeHints" not in message:
            log.log(levels.get(mode, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def application():
    """The QApplication (made once), named so QSettings and the desktop find it."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        check_platform_libraries()
    quiet_qt()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("sdxs-live")
    return app


def close_after(window, seconds: float) -> None:
    """Close a window once the event loop has run `seconds` (a timed, scripted run)."""
    from PySide6.QtCore import QTimer

    QTimer.singleShot(int(seconds * 1000), window.close)


def close_on_signals(window) -> None:
    """SIGTERM and SIGHUP (kill, a closed terminal, systemctl stop, docker stop) close the window as Ctrl+Q does:
    a recording is finished and kept. Python runs signal handlers between bytecodes, so a timer gives it a turn
    every 200 ms while Qt's event loop waits; a second signal while closing is ignored."""
    import signal

    from PySide6.QtCore import QTimer

    log = logging.getLogger(__name__)
    got: list[str] = []

    def handle(signum, _frame) -> None:
        name = signal.Signals(signum).name
        if got:
            log.warning("%s: already closing, finishing the recording first", name)
            return
        got.append(name)
        log.warning("%s: closing the window as for Ctrl+Q (a recording is finished and kept)", name)
        QTimer.singleShot(0, window.close)

    for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, handle)
    tick = QTimer(window)
    tick.timeout.connect(lambda: None)
    tick.start(200)


class GuiThreadCollector:
    """Python's cyclic garbage collector, run on the GUI thread only while a worker thread lives.

    A collection runs on whichever thread happens to allocate when a generation fills up; when that is the
    worker thread (loading a model allocates a great deal) it can free Python wrappers of Qt objects that
    belong to the GUI thread, and Qt then crashes (a segfault "Garbage-collecting" inside a model load was
    seen in CI). While a pipeline holds it, automatic collection is off and a GUI-thread timer collects the
    generations that are due, as the usual Qt recipe does; the last release turns automatic collection back on.
    """

    _holders = 0
    _timer = None

    @classmethod
    def acquire(cls) -> None:
        from PySide6.QtCore import QCoreApplication, QTimer

        cls._holders += 1
        if cls._holders > 1:
            return
        gc.disable()
        cls._timer = QTimer(QCoreApplication.instance())
        cls._timer.timeout.connect(cls.collect)
        cls._timer.start(500)

    @classmethod
    def release(cls) -> None:
        cls._holders = max(cls._holders - 1, 0)
        if cls._holders == 0 and cls._timer is not None:
            cls._timer.stop()
            cls._timer.deleteLater()
            cls._timer = None
            gc.enable()

    @staticmethod
    def collect() -> None:
        """Collect the oldest generation whose count has passed its threshold (what gc would have done)."""
        counts, limits = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > limits[generation]:
                gc.collect(generation)
                return
