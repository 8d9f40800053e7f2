"""Starting Qt: is there a display, the one QApplication, and Qt's own messages kept quiet."""

from __future__ import annotations

import os
import sys

ORGANIZATION = "sdxs-live"
APPLICATION = "SDXS Live"


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
                or sys.platform in ("win32", "darwin"))


def quiet_qt() -> None:
    """Drop the offscreen platform's notice that it cannot propagate size hints; keep every other message."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(mode, context, message: str) -> None:
        if "propagateSizeHints" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def application():
    """The QApplication (made once), named so QSettings and the desktop find it."""
    from PySide6.QtWidgets import QApplication

    quiet_qt()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("sdxs-live")
    return app
