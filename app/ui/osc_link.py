"""The window's side of OSC (app.live.osc): a message moves the widget a user would move, so it takes the
same path as the window's own controls (panel -> LiveSettings -> worker before the next frame), a new prompt
glides over the transition, and the window shows what was sent.

The OSC server calls on_pending from its own thread; a queued Qt signal brings the changes to the GUI
thread, where take() collects everything that arrived meanwhile: a burst is one change of each widget.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.live.osc import NEW_SEED, OscControl, find_name

log = logging.getLogger(__name__)


class OscLink(QObject):
    """Applies an OscControl's changes to a main window's panel and actions."""

    arrived = Signal()  # emitted from the OSC thread; queued to the GUI thread

    def __init__(self, window, osc: OscControl):
        super().__init__(window)
        self.w = window
        self.osc = osc
        self.applied = 0  # changes applied to the window
        self.batches = 0  # times the changes were taken (a burst of messages is one or a few)
        self.arrived.connect(self.apply, Qt.ConnectionType.QueuedConnection)
        osc.on_pending = self.arrived.emit
        osc.fps = lambda: float(window.fps)  # the shown frame rate, for /sdxs/fps replies
        self.arrived.emit()  # what came before the window was ready

    @Slot()
    def apply(self) -> None:
        changes = self.osc.take()
        self.batches += bool(changes)
        w, panel = self.w, self.w.panel
        for key, value in changes.items():
            if key == "prompt":
                panel.prompt.setText(value)
            elif key == "seed":
                if panel.lock_seed.isChecked():
                    log.warning("OSC /sdxs/seed: the seed is locked in the window (untick Lock)")
                    continue
                panel.roll_seed() if value == NEW_SEED else panel.seed.setValue(int(value))
            elif key == "strength":
                panel.strength.setValue(round(value * 100))
            elif key == "keep_colours":  # the Keep colours box and its slider (0: unticked)
                panel.keep_colours.setChecked(value > 0)
                if value > 0:
                    panel.keep_strength.setValue(round(value * 100))
            elif key == "transition":
                panel.transition.setValue(value)  # the box's range (0..10 s) holds a larger value at its top
            elif key == "style":
                self._style(value)
            elif key.startswith("lora/"):
                self._lora(key[5:], value)
            elif key == "pause":
                w.actions.act_pause.setChecked(bool(value))
            elif key == "snapshot":
                w.actions.act_snapshot.trigger()
            elif key == "record":
                w.actions.act_record.setChecked(bool(value))
            self.applied += 1
        if changes:
            panel._now()  # the settings go out at once (typing waits 250 ms; a sent prompt does not)

    def _style(self, name: str) -> None:
        box = self.w.panel.preset
        names = [box.itemText(i) for i in range(box.count()) if box.itemText(i)]
        found = find_name(name, names)
        if found is None:
            log.warning("OSC /sdxs/style %r: no such style; the window has %s", name, ", ".join(names))
            return
        index = box.findText(found)
        box.setCurrentIndex(index)
        box.activated.emit(index)  # as a user's choice: a preset's LoRAs come with it

    def _lora(self, name: str, weight: float) -> None:
        rows = {row.label.text(): row for row in self.w.panel.styles.rows.values()}
        found = find_name(name, rows)
        if found is None:
            log.warning("OSC /sdxs/lora/%s: no LoRA of that name is loaded (the window shows: %s)", name,
                        ", ".join(rows) or "none")
            return
        rows[found].set_weight(weight)

    def close(self) -> None:
        self.osc.on_pending = None
        self.osc.close()
