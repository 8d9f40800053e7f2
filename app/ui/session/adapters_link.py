"""The window's side of the adapter list: the list's requests go to the worker, what the engine holds comes
back into the session (the list follows it), a reload is told the adapters and strengths held now, and the
loaded model's info follows the adapters."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Slot

from app.ui.panel.adapters import AdapterList, spec_args
from app.ui.session.bindings import SessionBridge
from app.ui.session.settings import Persisted, remember


class AdaptersLink(QObject):
    """Connects app.ui.panel.adapters.AdapterList (in the panel's Model group) and the session to the worker."""

    def __init__(self, bridge: SessionBridge, pipeline, adapters: AdapterList, saved: Persisted):
        super().__init__(adapters)
        self.session, self.adapters, self.saved, self.pipeline = bridge.session, adapters, saved, pipeline
        adapters.addRequested.connect(pipeline.add_adapter)
        adapters.removeRequested.connect(pipeline.remove_adapter)
        pipeline.adaptersLoaded.connect(self._loaded)
        pipeline.loaded.connect(self._on_model)
        bridge.changed.connect(self._changed)

    @Slot(object)
    def _loaded(self, loaded: list) -> None:
        self.adapters.set_loaded(loaded)
        for a in ([] if self.pipeline.remote is not None else loaded):  # remembered for the Add menu's Recent section
            self.saved.recent_adapters = remember(self.saved.recent_adapters, a.spec)
        self.adapters.set_recent(self.saved.recent_adapters)

    @Slot(object)
    def _on_model(self, info: dict) -> None:
        """A remote engine's adapters are its server's: their strengths go to it; adding or removing is not offered."""
        self.adapters.set_remote(f"The engine server's adapters ({info['remote']}): add or remove them where it runs "
                                 "(serve-engine --controlnet)" if info.get("remote") else "")

    @Slot(object)
    def _changed(self, names: frozenset[str]) -> None:
        """The adapters or a strength changed: a reload keeps them (ModelRequest.adapters), the info says them."""
        s = self.session
        if not names & {"adapters", "adapters_loaded"} or s.model is None:
            return
        values = {"request": replace(s.request, adapters=spec_args(self.adapters.strengths()))}
        if "adapters_loaded" in names:
            values["model"] = s.model.with_adapters(s.adapters_loaded)
        s.set(values)
