"""The window's side of loading models: what to load goes into the session (ModelRequest) and to the worker,
the loaded model's info comes back into the session (ModelInfo), a download shows its progress dialog, and
an offered download that fails loads the fallback instead. It talks back to the window by signals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QWidget

from app.live.session import ModelInfo
from app.ui.panel.modelpick import Choice, DownloadDialog, notice_for
from app.ui.pipeline import Pipeline
from app.ui.session.bindings import SessionBridge
from app.ui.session.settings import Persisted, remember


class ModelLink(QObject):
    """Loads for one session: the session's model request (the panel's pickers are bound to it) -> the worker
    -> the session's model."""

    loading = Signal(str)  # "Loading NAME...": the window shows it as busy
    loaded = Signal(str)  # the loaded model's short name (a folder's name, else the spec)
    notice = Signal(str)  # the banner's text ("" hides it)
    failed = Signal(str)  # a one-line error

    def __init__(self, bridge: SessionBridge, pipeline: Pipeline, saved: Persisted, dialog_parent: QWidget):
        super().__init__(dialog_parent)
        self.bridge, self.session, self.pipeline, self.saved = bridge, bridge.session, pipeline, saved
        self.dialog_parent = dialog_parent  # the download dialog's parent widget
        self.download_dialog: DownloadDialog | None = None
        self.fallback: Choice | None = None  # what to load when the offered download fails
        self.fallback_note = ""  # why the fallback was loaded, shown in the banner with its notice
        pipeline.loaded.connect(self._on_loaded)
        pipeline.failed.connect(self._on_failed)
        pipeline.busy.connect(self._on_busy)

    def load(self, model: str, controlnet: str | tuple[str, ...] | list[str] | None) -> None:
        """Load a model with adapters: one spec, or several as SPEC[:STRENGTH] (demo: the demo's two)."""
        adapters = (controlnet,) if isinstance(controlnet, str) else tuple(controlnet or ())
        self.bridge.flush()  # a size typed a moment ago loads with the model
        req = replace(self.session.request, model=model, adapters=adapters)  # the pickers' device, dtype, backend
        self.session.set(request=req)  # the model picker follows
        self.pipeline.load(req)
        self.loading.emit(f"Loading {model}...")

    @Slot()
    def load_requested(self) -> None:
        """Load what the session's request names (the panel's Load button, Model > Open model folder)."""
        model = self.session.request.model
        if not model:
            self.failed.emit("Choose a model first: a folder, a Hugging Face id or demo")
            return
        self.notice.emit(notice_for(model))
        self.load(model, self.session.request.adapters)

    def download(self, model: str, controlnet: str | None, fallback: Choice | None = None) -> None:
        """Download (then load) a hub model with a progress dialog; fallback loads instead if it fails."""
        self.fallback = fallback
        self.download_dialog = DownloadDialog(model, self.dialog_parent)
        self.pipeline.progress.connect(self.download_dialog.on_progress)
        self.download_dialog.cancelRequested.connect(self.pipeline.cancel)
        self.download_dialog.show()
        self.load(model, controlnet)

    @Slot(object)
    def _on_loaded(self, info: dict) -> None:
        model = ModelInfo.from_report(info)
        self.session.set(model=model)  # the panel's readout follows
        if info.get("remote"):  # an engine server (app/ui/dialogs/engine.py): not a model to load next time
            self.loaded.emit(f"the engine at {model.model}")
            return
        self.saved.model = model.model
        self.saved.recent_models = remember(self.saved.recent_models, model.model)
        note, self.fallback_note = self.fallback_note, ""
        self.notice.emit(" ".join(x for x in (note, notice_for(model.model)) if x))
        self.loaded.emit(Path(model.model).name if Path(model.model).exists() else model.model)

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        if not text and self.download_dialog is not None:
            self.download_dialog.close()
            self.download_dialog = None

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        fallback, self.fallback = self.fallback, None
        if fallback is not None and fallback.model and self.session.model is None:  # the offered download failed
            self.fallback_note = f"{text.rstrip('.')}. Using the demo model instead."
            self.load(fallback.model, fallback.controlnet)
