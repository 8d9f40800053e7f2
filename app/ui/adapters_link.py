"""The window's side of the adapter list: the list's requests go to the worker, what the engine holds comes
back into the list, and the tools that need a colour-hint adapter (the canvas's colour brush, Keep colours)
are on only while one is loaded."""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot

from app.ui.adapters import spec_args
from app.ui.settings import remember


class AdaptersLink(QObject):
    """Connects app.ui.adapters.AdapterList (in the panel's Model group) to the window's pipeline."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        adapters, pipeline = window.panel.adapters, window.pipeline
        adapters.addRequested.connect(pipeline.add_adapter)
        adapters.removeRequested.connect(pipeline.remove_adapter)
        adapters.strengthChanged.connect(self._strength)
        adapters.listChanged.connect(self._changed)
        pipeline.adaptersLoaded.connect(adapters.set_loaded)
        pipeline.adaptersLoaded.connect(self._loaded)
        self._changed()

    @Slot(object)
    def _loaded(self, loaded: list) -> None:
        w = self.window
        for a in loaded:  # remembered for the Add menu's Recent section
            w.saved.recent_adapters = remember(w.saved.recent_adapters, a.spec)
        w.panel.adapters.set_recent(w.saved.recent_adapters)
        if w.output.message.startswith("Loading adapter"):  # the busy line, shown while it loaded
            w.output.set_message("")

    @Slot()
    def _strength(self) -> None:
        """A row's slider moved: the panel sends it as LiveSettings.adapters (the worker applies it to the engine
        before the next frame: a buffer fill, no reload); here a reload is told to keep it."""
        w = self.window
        if w.loaded_model is not None:
            w.wanted_adapters = spec_args(w.panel.adapters.strengths())

    @Slot()
    def _changed(self) -> None:
        """The list changed: remember it; the colour brush and Keep colours need a colour-hint adapter."""
        w = self.window
        adapters = w.panel.adapters
        if w.loaded_model is not None:
            w.wanted_adapters = spec_args(adapters.strengths())
        colour = adapters.has_colour()
        w.canvas_page.set_colour_available(colour)
        w.actions.act_colour.setEnabled(colour)
        w.panel.update_keep_colours(colour=colour)
        if w.pipeline.info:
            w.panel.set_info(w.pipeline.info)
