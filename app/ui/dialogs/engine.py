"""Model > Connect to engine... and Model > Use local engine: the window as a client of `serve-engine` (app/remote).

Connecting hands the worker a RemoteLoop over a RemoteEngine (app/ui/worker.py's connect_remote); the frame path,
the canvas, the sources, the outputs and recording go on as they are. A failure is one line in the status bar and
leaves the engine as it was. "Use local engine" closes the link and loads the model asked last (ModelLink).
The URL connected to last is remembered (Persisted.engine_url) and offered next time; the token is kept for
this run only, never saved (SDXS_ENGINE_TOKEN, or typed).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QMenu, QWidget

DEFAULT_URL = "http://127.0.0.1:8770"  # serve-engine's default --listen


class ConnectDialog(QDialog):
    """The engine server's URL and its token."""

    def __init__(self, parent: QWidget | None, url: str, token: str):
        super().__init__(parent)
        self.setWindowTitle("Connect to engine")
        form = QFormLayout(self)
        self.url = QLineEdit(url)
        self.url.setPlaceholderText(DEFAULT_URL)
        self.url.setToolTip("The address of `python main.py serve-engine` (an SSH tunnel's local end works too)")
        self.token = QLineEdit(token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("serve-engine's --token (none on loopback without one)")
        form.addRow("Engine URL", self.url)
        form.addRow("Token", self.token)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str]:
        return self.url.text().strip(), self.token.text().strip()


class EngineLink(QObject):
    """The two Model menu entries and what they do. It takes what it acts on: the dialog's parent, the menu, the
    Pipeline (the engine handle), the session (the model asked last), the saved settings (the URL remembered)
    and load(model, adapters) for the local engine; its lines go out as signals."""

    said = Signal(str, int)  # a status line and how long it stays (ms)
    error = Signal(str)  # a one-line error: a bad URL, the link's notices (lost, back, refused)

    def __init__(self, host: QWidget, menu: QMenu, *, pipeline, session, saved,
                 load: Callable[[str, tuple[str, ...] | None], None]):
        super().__init__(host)
        self.host, self.pipeline, self.session, self.saved, self.load = host, pipeline, session, saved, load
        self.url = ""  # the engine asked last
        self.token = ""
        self.act_connect = menu.addAction("Connect to engine...")
        self.act_connect.setStatusTip("Run the frames on `serve-engine` on another machine (the GPU box)")
        self.act_connect.triggered.connect(self.ask)
        self.act_local = menu.addAction("Use local engine")
        self.act_local.setStatusTip("Close the engine server's link and load the model asked last here")
        self.act_local.triggered.connect(self.use_local)
        self.act_local.setEnabled(False)
        pipeline.loaded.connect(self._on_loaded)
        pipeline.said.connect(self.error)  # link lost, back: one line in the status bar

    @Slot()
    def ask(self) -> None:
        d = ConnectDialog(self.host, self.default_url(), self.token or os.environ.get("SDXS_ENGINE_TOKEN", ""))
        if d.exec() == QDialog.DialogCode.Accepted:
            self.connect(*d.values())

    def default_url(self) -> str:
        """What the dialog offers: the URL asked last in this run, else the one connected to last, else loopback's."""
        return self.url or self.saved.engine_url or DEFAULT_URL

    def connect(self, url: str, token: str = "") -> None:
        """Connect (on the worker's thread); the status bar says how it went."""
        url = url.strip().rstrip("/")
        if not url:
            self.error.emit(f"Give the engine's URL, like {DEFAULT_URL}")
            return
        if "://" not in url:
            url = f"http://{url}"
        self.url, self.token = url, token
        self.said.emit(f"Connecting to {url}...", 15000)
        self.pipeline.connect_remote(url, token)

    @Slot()
    def use_local(self) -> None:
        """Back to the local engine: the model (and adapters) asked last, else the last one used, else the demo."""
        req = self.session.request
        if req.model:
            self.load(req.model, req.adapters)
        else:
            self.load(self.saved.model or "demo", None)

    @Slot(object)
    def _on_loaded(self, info: dict) -> None:
        self.act_local.setEnabled(bool(info.get("remote")))
        if info.get("remote"):  # replaces "Connecting to ...", which otherwise stayed up to 15 s after the link was live
            self.said.emit(f"Connected to the engine at {info['remote']} ({info.get('size')} px)", 5000)
            self.saved.engine_url = str(info["remote"])  # remembered; the token is not
