"""The control panel's source picking: the Source list's choices (camera, video or image file, a screen region,
an NDI source) turned into a source spec, and the camera list. A mixin of app.ui.panel.panel.ControlPanel, which owns
the widgets used here (source, camera) and the sourceRequested signal."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from models.errors import UserError


class SourcePicker:
    """Picking a source and a camera (a mixin of app.ui.panel.panel.ControlPanel: its failed signal says what went wrong)."""

    def _source_picked(self, index: int) -> None:
        kind = self.source.itemData(index)
        if kind == "camera":
            self.refresh_cameras()
            self.sourceRequested.emit(f"camera:{self.camera_index()}")
        elif kind == "screen":
            self.sourceRequested.emit(self._pick_screen() or "")  # "": cancelled, the window re-selects the current one
        elif kind == "ndi":
            self.sourceRequested.emit(self._pick_ndi() or "")
        elif kind in ("video", "image"):
            filt = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v)" if kind == "video" else "Images (*.png *.jpg *.jpeg *.bmp *.webp)"
            path, _ = QFileDialog.getOpenFileName(self, f"Choose a {kind} file", "", filt)
            if path:
                self.sourceRequested.emit(f"{kind}:{path}")
            else:
                self.sourceRequested.emit("")  # cancelled: the window re-selects the current source
        else:
            self.sourceRequested.emit("sketch")

    def _pick_screen(self) -> str | None:
        from app.ui.dialogs.region import pick_screen

        try:
            return pick_screen(self)
        except UserError as e:  # Wayland without X, no display
            self._tell(str(e))
            return None

    def _pick_ndi(self) -> str | None:
        """An NDI source from those seen in 2 seconds (or typed): ndi:NAME, None when cancelled."""
        from PySide6.QtWidgets import QInputDialog

        from app.live.ndi_in import list_sources

        try:
            names = list_sources(2.0)
        except UserError as e:  # no cyndilib
            self._tell(str(e))
            return None
        name, ok = QInputDialog.getItem(self, "NDI source", "Sources on the network (or type a name):",
                                        names or ["SDXS Live"], 0, True)
        return f"ndi:{name.strip()}" if ok and name.strip() else None

    def _tell(self, text: str) -> None:
        """One line for the window's status bar (ControlPanel.failed)."""
        self.failed.emit(text)

    def refresh_cameras(self) -> None:
        from app.live.sources import list_cameras

        current = self.camera.currentText()
        self.camera.clear()
        cams = list_cameras()
        self.camera.addItems([f"{i}: {name}" for i, name in cams] or ["0"])
        if current:
            self.camera.setCurrentText(current)

    def camera_index(self) -> int:
        head = self.camera.currentText().split(":")[0].strip()  # "1: HD Webcam" or just "1"
        return int(head) if head.isdigit() else 0

    def set_camera(self, index: int) -> None:
        match = [i for i in range(self.camera.count()) if self.camera.itemText(i).split(":")[0] == str(index)]
        if match:
            self.camera.setCurrentIndex(match[0])
        else:
            self.camera.setCurrentText(str(index))
