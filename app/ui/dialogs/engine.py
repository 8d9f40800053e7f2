"""Model > Connect to engine... and Model > Use local engine: the window as a client of `serve-engine` (app/remote).

Connecting hands the worker a RemoteLoop over a RemoteEngine (app/ui/worker.py's connect_remote); the frame path,
the canvas, the sources, the outputs and recording go on as they are. A failure is one line in the status bar and
leaves the engine as it was. "Use local engine" closes the link and loads the model asked last (ModelLink).
The URL connected to last is remembered (Persisted.engine_url) and offered next time; the token is kept for
this run only, never saved (SDXS_ENGINE_TOKEN, or typed).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Slot
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
    """The two Model menu entries and what they do, for one main window."""

    def __init__(self, w, menu: QMenu):
        super().__init__(w)
        self.w = w
        self.url = ""  # the engine asked last
        self.token = ""
        self.act_connect = menu.addAction("Connect to engine...")
        self.act_connect.setStatusTip("Run the frames on `serve-engine` on another machine (the GPU box)")
        self.act_connect.triggered.connect(self.ask)
        self.act_local = menu.addAction("Use local engine")
        self.act_local.setStatusTip("Close the engine server's link and load the model asked last here")
        self.act_local.triggered.connect(self.use_local)
        self.act_local.setEnabled(False)
        w.pipeline.loaded.connect(self._on_loaded)
        w.pipeline.said.connect(w.show_error)  # link lost, back: one line in the status bar

    @Slot()
    def ask(self) -> None:
        d = ConnectDialog(self.w, self.default_url(), self.token or os.environ.get("SDXS_ENGINE_TOKEN", ""))
        if d.exec() == QDialog.DialogCode.Accepted:
            self.connect(*d.values())

    def default_url(self) -> str:
        """What the dialog offers: the URL asked last in this run, else the one connected to last, else loopback's."""
        return self.url or self.w.saved.engine_url or DEFAULT_URL

    def connect(self, url: str, token: str = "") -> None:
        """Connect (on the worker's thread); the status bar says how it went."""
        url = url.strip().rstrip("/")
        if not url:
            self.w.show_error(f"Give the engine's URL, like {DEFAULT_URL}")
            return
        if "://" not in url:
            url = f"http://{url}"
        self.url, self.token = url, token
        self.w.statusBar().showMessage(f"Connecting to {url}...", 15000)
        self.w.pipeline.connect_remote(url, token)

    @Slot()
    def use_local(self) -> None:
        """Back to the local engine: the model (and adapters) asked last, else the last one used, else the demo."""
        req = self.w.session.request
        if req.model:
            self.w.load(req.model, req.adapters)
        else:
            self.w.load(self.w.saved.model or "demo", None)

    @Slot(object)
    def _on_loaded(self, info: dict) -> None:
        self.act_local.setEnabled(bool(info.get("remote")))
        if info.get("remote"):  # replaces "Connecting to ...", which otherwise stayed up to 15 s after the link was live
            self.w.statusBar().showMessage(f"Connected to the engine at {info['remote']} ({info.get('size')} px)", 5000)
            self.w.saved.engine_url = str(info["remote"])  # remembered; the token is not
