"""Which model the window starts with, and the download progress dialog.

Order: --model from the command line; the model used last time; SDXS dreamshaper (+ its sketch adapter)
when it is in the Hugging Face cache; when the hub answers (HubProbe, never with HF_HUB_OFFLINE=1), an offer
to download it; the small built-in demo model, with a visible notice; otherwise a message asking for a model
folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from models.assets import DEMO_DIR

log = logging.getLogger(__name__)

SDXS = "IDKiro/sdxs-512-dreamshaper"
SDXS_SKETCH = "IDKiro/sdxs-512-dreamshaper-sketch"
DEMO_NOTICE = "Small demo model, not SDXS quality. Model > Download SDXS, or open a model folder, for real results."
NO_MODEL = ("No model yet: choose a model folder (Model > Open model folder...), or download SDXS "
            "(Model > Download SDXS) when online.")


@dataclass
class Choice:
    """The model the window loads first."""

    model: str | None  # spec to load, or None: nothing to load yet
    controlnet: str | tuple[str, ...] | None = None  # adapter spec, or several as SPEC[:STRENGTH] each
    notice: str = ""  # shown to the user (the demo notice, or how to get a model)
    offer_download: bool = False  # ask whether to download SDXS first (the window asks only when the hub answers)


@dataclass
class StartOptions:
    """What the command line asks for; None keeps the remembered setting."""

    choice: Choice  # the model to load first (app.ui.panel.modelpick.startup_choice)
    source: str | None = None  # sketch, camera:N, video:PATH, image:PATH
    prompt: str | None = None  # the prompt
    size: int | None = None  # output size
    device: str | None = None  # auto, cpu, cuda
    dtype: str | None = None  # auto, float32, bfloat16, float16
    loras: tuple[str, ...] = ()  # SPEC[:WEIGHT] each; given, they replace the remembered LoRAs


def in_hub_cache(repo_id: str, filename: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except Exception:
        return False


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_answers(timeout: float = 2.0, endpoint: str | None = None) -> bool:
    """Whether the Hugging Face hub (HF_ENDPOINT, default huggingface.co) answers SDXS's model page within
    timeout seconds: offline, no DNS, a firewall or a hub error is False."""
    import urllib.error
    import urllib.request

    if endpoint is None:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    url = f"{endpoint.rstrip('/')}/api/models/{SDXS}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as r:
            return r.status < 400
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, refused, no DNS; a bad HF_ENDPOINT
        log.info("the Hugging Face hub does not answer (%s): no download offered", getattr(e, "reason", e))
        return False


class HubProbe:
    """hub_answers() on a thread of its own, asked while the window is built: the GUI thread waits at most
    the rest of `timeout` for the answer, and offline that is at once (no DNS) or the timeout (a silent network)."""

    def __init__(self, timeout: float = 2.0, endpoint: str | None = None):
        import threading

        self.answer: bool | None = None  # None: no answer yet
        self._end = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._ask, args=(timeout, endpoint), name="hub-probe", daemon=True)
        self._thread.start()

    def _ask(self, timeout: float, endpoint: str | None) -> None:
        self.answer = hub_answers(timeout, endpoint)

    def answered(self) -> bool:
        """True when the hub answered; waits for the probe until its deadline, then counts silence as no."""
        self._thread.join(max(0.0, self._end - time.monotonic()))
        return bool(self.answer)


def demo_available() -> tuple[bool, bool]:
    """(base model built, adapter built) for the demo in assets/models/demo."""
    return (DEMO_DIR / "model_index.json").exists(), (DEMO_DIR / "adapter" / "config.json").exists()


def notice_for(model: str | None) -> str:
    return DEMO_NOTICE if model == "demo" else ""


def startup_choice(model: str | None, controlnet: str | tuple[str, ...] | None, saved_model: str = "",
                   saved_adapter: str | tuple[str, ...] = "") -> Choice:
    if model:
        return Choice(model, controlnet, notice_for(model))
    if saved_model:
        return Choice(saved_model, controlnet or saved_adapter or None, notice_for(saved_model))
    if in_hub_cache(SDXS, "model_index.json"):
        sketch = SDXS_SKETCH if in_hub_cache(SDXS_SKETCH, "config.json") else None
        return Choice(SDXS, controlnet or sketch)
    base, adapter = demo_available()
    fallback = Choice("demo", controlnet or ("demo" if adapter else None), DEMO_NOTICE) if base else Choice(None, None, NO_MODEL)
    if not hub_offline():
        fallback.offer_download = True
    return fallback


class DownloadDialog(QProgressDialog):
    """Progress of a model download (bytes), with Cancel; it closes itself when loading ends."""

    cancelRequested = Signal()

    def __init__(self, what: str, parent: QWidget | None = None):
        super().__init__(f"Downloading {what}...", "Cancel", 0, 1000, parent)
        self.setWindowTitle("Downloading model")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.what = what
        self.canceled.connect(self._on_cancel)

    @Slot(str, float, float)
    def on_progress(self, desc: str, done: float, total: float) -> None:
        if total > 0:
            self.setValue(int(1000 * min(done / total, 1.0)))
            self.setLabelText(f"Downloading {self.what}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB")
        else:
            self.setLabelText(f"Downloading {self.what}: {desc}")

    @Slot()
    def _on_cancel(self) -> None:
        self.setLabelText("Cancelling... (the partial download is kept and resumes next time)")
        self.cancelRequested.emit()
