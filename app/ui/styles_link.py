"""The window's side of styles: the Styles group's requests go to the worker, what the engine holds comes
back into the group, and a running transition is shown under the output and played to its end.

A transition changes every frame for a still input too, so while one runs (Result.glide < 1) the window
hands the same input again after each result; a camera or video keeps sending frames anyway.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot

from app.live.loop import Result


class StylesLink(QObject):
    """Connects app.ui.styles.StylesGroup and the output pane to the window's pipeline."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        group, pipeline = window.panel.styles, window.pipeline
        group.addRequested.connect(pipeline.add_lora)
        group.removeRequested.connect(pipeline.remove_lora)
        pipeline.lorasLoaded.connect(self._on_loras)
        pipeline.busy.connect(self._on_busy)
        pipeline.resultReady.connect(self._on_result)

    @Slot(object)
    def _on_loras(self, loaded: list) -> None:
        self.window.panel.styles.set_loaded(loaded)  # emits changed: the settings go out with the new list
        if self.window.output.message.startswith("Loading LoRA"):
            self.window.output.set_message("")

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        self.window.panel.styles.set_busy(bool(text))

    @Slot(object)
    def _on_result(self, result: Result) -> None:
        if result.reused:
            return
        w = self.window
        gliding = result.glide < 1
        w.output.progress = result.glide if gliding else None
        w.output.update()
        if not gliding or w.paused:
            return
        if w.source_spec == "sketch":  # the drawing again, with its own time: a glide is no input change ("--")
            w.pipeline.offer(w.canvas_frame())
        else:
            w.offer_current()
