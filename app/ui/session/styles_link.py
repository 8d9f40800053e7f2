"""The window's side of styles: the LoRAs the session wants are asked of the worker, what the engine holds
comes back into the session (the Styles group follows it), and a running transition is shown under the
output and played to its end.

A transition changes every frame for a still input too, so while one runs (Result.glide < 1) the same
input goes again after each result (offer_again); a camera or video keeps sending frames anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Slot

from app.live.loop import Result
from app.ui.outputs.views import ImageView
from app.ui.panel.styles import StylesGroup
from app.ui.session.bindings import SessionBridge


class StylesLink(QObject):
    """Connects the session's LoRAs and the Styles group to the worker, and shows a transition's progress."""

    def __init__(self, bridge: SessionBridge, pipeline, group: StylesGroup, output: ImageView,
                 offer_again: Callable[[], None]):
        super().__init__(group)
        self.session, self.pipeline, self.group, self.output, self.offer_again = bridge.session, pipeline, group, output, offer_again
        self.asked: set[str] = set()  # LoRA specs asked of the worker and not reported yet
        group.removeRequested.connect(pipeline.remove_lora)
        pipeline.lorasLoaded.connect(self._on_loras)
        pipeline.loaded.connect(self._on_model)
        pipeline.busy.connect(self._on_busy)
        pipeline.resultReady.connect(self._on_result)
        bridge.changed.connect(self._changed)

    @Slot(object)
    def _changed(self, names: frozenset[str]) -> None:
        """A LoRA the session wants that the engine does not hold (added, or a preset's): the worker loads it,
        also while a model loads (it runs after the load; a LoRA the load restored is left as it is). Before
        any model, the worker keeps it for the load (LiveSettings.loras)."""
        if "loras" not in names:
            return
        held = {lo.spec for lo in self.session.loras_loaded}
        for spec, weight in self.session.live.loras.items():
            if spec not in held and spec not in self.asked:
                self.asked.add(spec)
                self.pipeline.add_lora(spec, weight)

    @Slot(object)
    def _on_model(self, info: dict) -> None:
        """A remote engine's LoRAs are its server's: their weights go to it; adding or removing is not offered."""
        self.group.set_remote(f"The engine server's LoRAs ({info['remote']}): add or remove them where it runs "
                              "(serve-engine --lora)" if info.get("remote") else "")

    @Slot(object)
    def _on_loras(self, loaded: list) -> None:
        self.asked.clear()
        self.group.set_loaded(loaded)  # the session: the settings go out with the new list
        if self.output.message.startswith("Loading LoRA"):
            self.output.set_message("")

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        self.group.set_busy(bool(text))

    @Slot(object)
    def _on_result(self, result: Result) -> None:
        if result.reused:
            return
        gliding = result.glide < 1
        self.output.progress = result.glide if gliding else None
        self.output.update()
        if gliding and not self.session.paused:
            self.offer_again()
