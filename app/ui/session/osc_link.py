"""The window's side of OSC (app.live.osc): what arrives is written to the session by OSC's one interpreter
(app.live.osc_session, `stream`'s too); the widgets bound to the session move, and the settings go to the
worker the usual way, so a new prompt glides over the transition and the window shows what was sent.

The OSC server calls on_pending from its own thread; a queued Qt signal brings the changes to the GUI
thread, where take() collects everything that arrived meanwhile: a burst is one change of each field.
/sdxs/fps is answered on the OSC thread from the session's fps, a value the window publishes.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.live.osc import OscControl
from app.live.osc_session import apply_osc
from app.live.session import Session

log = logging.getLogger(__name__)


class OscLink(QObject):
    """Writes an OscControl's changes to a session."""

    arrived = Signal()  # emitted from the OSC thread; queued to the GUI thread

    def __init__(self, session: Session, osc: OscControl, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.osc = osc
        self.applied = 0  # changes applied to the session
        self.batches = 0  # times the changes were taken (a burst of messages is one or a few)
        self.arrived.connect(self.apply, Qt.ConnectionType.QueuedConnection)
        osc.on_pending = self.arrived.emit
        osc.fps = lambda: session.fps  # the shown frame rate, for /sdxs/fps replies: a float, read whole
        self.arrived.emit()  # what came before the window was ready

    @Slot()
    def apply(self) -> None:
        changes = self.osc.take()
        self.batches += bool(changes)
        apply_osc(self.session, changes)
        self.applied += len(changes)

    def close(self) -> None:
        self.osc.on_pending = None
        self.osc.close()
