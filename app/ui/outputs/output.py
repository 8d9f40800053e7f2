"""The window's Output menu: the output picture into other apps while it runs.

    Output > Stream to OBS (MJPEG)...   an app.live.serve.MjpegServer (127.0.0.1:8765 by default), with a small
                                        dialog: address, token, the URLs with Copy buttons, how to add it in OBS
    Output > Virtual camera             an app.live.virtualcam.VirtualCamera (pyvirtualcam), on / off
    Output > NDI...                     an app.live.ndi.NdiSender (cyndilib) under a name; Stop NDI

The sinks are added to the frame path's one app.live.sinks.SinkSet (app.live.framepath) and fed there, on the
path's thread, never by the GUI: a busy window does not stall them. They take a frame without waiting for a
reader (the server and NDI only keep a reference); one that fails is one line in the status bar (a queued
signal), the others go on. The window calls shutdown() when it closes.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QSettings, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenuBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.panel.widgets import row
from app.ui.pipeline import Pipeline
from models.errors import UserError

log = logging.getLogger(__name__)
DEFAULT_ADDRESS = "127.0.0.1:8765"
OBS_HELP = ("<b>In OBS</b>: Sources &gt; + &gt; <i>Media Source</i>, untick <i>Local File</i>, paste the stream URL "
            "into <i>Input</i>. Or + &gt; <i>Browser Source</i> with the page URL (width and height as the output). "
            "VLC (Media &gt; Open Network Stream) and browsers open the stream URL too.")


class OutputMenu(QObject):
    """The Output menu of a main window, and the sinks it opened (the MJPEG server, the virtual camera, NDI).
    host: the dialogs' parent; pipeline: the frame path's handle (its sinks, the output shown last); qsettings:
    where the address and the NDI name are remembered (None: nowhere)."""

    sinkFailed = Signal(object, str)  # from the frame path's thread: a sink and its one line
    said = Signal(str, int)  # a status line and how long it stays (ms)

    def __init__(self, host: QWidget, menubar: QMenuBar, pipeline: Pipeline, qsettings: QSettings | None = None):
        super().__init__(host)
        self.host, self.pipeline, self.qsettings = host, pipeline, qsettings
        w = host
        self.server = None  # app.live.serve.MjpegServer while streaming
        self.camera = None  # app.live.virtualcam.VirtualCamera while on
        self.ndi = None  # app.live.ndi.NdiSender while sending
        self.sinks = pipeline.path.sinks  # the frame path's sinks: the ones above are added there
        self.sinkFailed.connect(self._sink_failed)  # queued: the menu changes on the GUI thread
        self.dialog: ServeDialog | None = None
        menu = menubar.addMenu("O&utput")
        self.act_serve = QAction("Stream to OBS (MJPEG)...", w)
        self.act_serve.setStatusTip("Serve the output as an MJPEG stream over HTTP, for OBS, VLC or a browser")
        self.act_serve.triggered.connect(self.open_dialog)
        self.act_stop_serve = QAction("Stop the stream", w)
        self.act_stop_serve.triggered.connect(self.stop_server)
        self.act_stop_serve.setEnabled(False)
        self.act_camera = QAction("Virtual camera", w, checkable=True)
        self.act_camera.setStatusTip("Send the output to a virtual camera (v4l2loopback, OBS Virtual Camera)")
        self.act_camera.toggled.connect(self.set_camera)
        menu.addActions([self.act_serve, self.act_stop_serve])
        menu.addSeparator()
        menu.addAction(self.act_camera)
        self.act_ndi = QAction("NDI...", w)
        self.act_ndi.setStatusTip("Send the output as an NDI source, for OBS (NDI plugin), TouchDesigner, Resolume, vMix. "
                                  "Unlike the MJPEG stream, NDI is seen by every computer on the network")
        self.act_ndi.triggered.connect(self.ask_ndi)
        self.act_stop_ndi = QAction("Stop NDI", w)
        self.act_stop_ndi.triggered.connect(self.stop_ndi)
        self.act_stop_ndi.setEnabled(False)
        menu.addSeparator()
        menu.addActions([self.act_ndi, self.act_stop_ndi])
        self.menu = menu

    # ---- the window's hooks ---------------------------------------------------------------------------

    def _add(self, sink):
        """Into the frame path's sinks: it gets every output frame (a reused one too: the stream's readers keep
        getting frames while the picture is still); a failure comes back through sinkFailed."""
        return self.sinks.add(sink, on_failure=self.sinkFailed.emit)

    @Slot(object, str)
    def _sink_failed(self, sink, text: str) -> None:
        """A sink raised (a device went away): one line; the menu shows it off."""
        self._message(text)
        if sink is self.camera:
            self.camera = None
            self.act_camera.setChecked(False)
        elif sink is self.server:
            self.server = None
            self.stop_server()
        elif sink is self.ndi:
            self.ndi = None
            self.stop_ndi()

    def shutdown(self) -> None:
        """The window closes: stop the server (its clients' streams end), close the camera and NDI."""
        self.stop_server()
        self.act_camera.setChecked(False)
        self.stop_ndi()
        if self.dialog is not None:
            self.dialog.close()

    # ---- MJPEG server ---------------------------------------------------------------------------------

    @Slot()
    def open_dialog(self) -> None:
        if self.dialog is None:
            self.dialog = ServeDialog(self, self.host)
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()

    def start_server(self, address: str = DEFAULT_ADDRESS, token: str | None = None):
        """Start serving (stops a running server first); raises UserError with one line (port in use...)."""
        from app.live.serve import MjpegServer

        self.stop_server()
        server = MjpegServer(address, token=token or None).start()
        self.server = self._add(server)
        if self.pipeline.shown_output is not None:  # a client connecting now sees the picture at once
            server.publish(self.pipeline.shown_output)
        self.act_stop_serve.setEnabled(True)
        self.act_serve.setText(f"Stream to OBS (MJPEG): on {server.host}:{server.port}...")
        self._message(f"Streaming the output: {server.url()}")
        self._remember("address", address)
        return server

    @Slot()
    def stop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            self.sinks.remove(server)  # stops it
            self._message("Stopped the stream")
        self.act_stop_serve.setEnabled(False)
        self.act_serve.setText("Stream to OBS (MJPEG)...")
        if self.dialog is not None:
            self.dialog.refresh()

    # ---- virtual camera -------------------------------------------------------------------------------

    @Slot(bool)
    def set_camera(self, on: bool) -> None:
        from app.live.virtualcam import VirtualCamera

        if not on:
            cam, self.camera = self.camera, None
            if cam is not None:
                self.sinks.remove(cam)  # closes it
                self._message("Virtual camera off")
            return
        if self.camera is not None:
            return
        size = self._output_size()
        try:
            self.camera = VirtualCamera(size, size, 30.0)
        except UserError as e:  # the status bar is one short line: what to install first, the details in the log
            from app.live.virtualcam import install_hint

            log.warning("%s", e)
            self._message(f"no virtual camera is available: {install_hint()}")
            self.act_camera.setChecked(False)  # calls us again with on=False: nothing to close
            return
        self._add(self.camera)
        self._message(f"Virtual camera: {self.camera.device}, {size}x{size}")

    # ---- NDI ------------------------------------------------------------------------------------------

    @Slot()
    def ask_ndi(self) -> None:
        from app.live.ndi import REACH

        name, ok = QInputDialog.getText(self.host, "Send over NDI", f"{REACH}.\n\nSource name (receivers list it as "
                                        "HOST (NAME)):", text=self.remembered("ndi", "SDXS Live"))
        if not ok or not name.strip():
            return
        try:
            self.start_ndi(name)
        except UserError as e:
            log.warning("%s", e)
            self._message(str(e))

    def start_ndi(self, name: str):
        """Send the output as an NDI source called name (replacing a running one); UserError in one line."""
        from app.live.ndi import NdiSender

        self.stop_ndi(quiet=True)
        ndi = NdiSender(name, 30.0)
        self.ndi = self._add(ndi)
        if self.pipeline.shown_output is not None:  # a receiver connecting now sees the picture at once
            ndi.send(self.pipeline.shown_output)
        self.act_ndi.setText(f"NDI: sending as {ndi.name!r}...")
        self.act_stop_ndi.setEnabled(True)
        self._message(f"Sending the output over NDI as {ndi.name!r}, to every computer on the network")
        self._remember("ndi", ndi.name)
        return ndi

    @Slot()
    def stop_ndi(self, quiet: bool = False) -> None:
        ndi, self.ndi = self.ndi, None
        if ndi is not None:
            self.sinks.remove(ndi)
            if not quiet:
                self._message("Stopped NDI")
        self.act_ndi.setText("NDI...")
        self.act_stop_ndi.setEnabled(False)

    def _output_size(self) -> int:
        last = self.pipeline.shown_output
        if last is not None:
            return int(last.shape[0])
        return int(self.pipeline.info.get("size") or 512)

    # ---- helpers --------------------------------------------------------------------------------------

    def _message(self, text: str) -> None:
        self.said.emit(text, 15000)

    def _remember(self, name: str, value: str) -> None:
        if self.qsettings is not None:
            self.qsettings.setValue(f"output/{name}", value)

    def remembered(self, name: str, default: str) -> str:
        qs = self.qsettings
        value = qs.value(f"output/{name}", default) if qs is not None else default
        return str(value or default)


class ServeDialog(QDialog):
    """Address and token, Start / Stop, the URLs with Copy buttons, and how to add the stream in OBS."""

    def __init__(self, owner: OutputMenu, parent: QWidget | None = None):
        super().__init__(parent)
        self.owner = owner
        self._kept_token = ""  # the token a loopback address cleared, given back when the address is remote again
        self.setWindowTitle("Stream to OBS (MJPEG)")
        self.setMinimumWidth(520)
        col = QVBoxLayout(self)
        form = QFormLayout()
        self.address = QLineEdit(owner.remembered("address", DEFAULT_ADDRESS))
        self.address.setToolTip("HOST:PORT; 127.0.0.1 is this computer only, 0.0.0.0 every network (needs a token)")
        self.address.textChanged.connect(self._address_changed)
        form.addRow("Address", self.address)
        self.token = QLineEdit()
        self.token.setPlaceholderText("only needed when other computers may watch")
        self.token.setToolTip("Every URL must then end in ?token=...")
        self.new_token = new_token = QPushButton("New")
        new_token.setToolTip("Make a random token")
        new_token.clicked.connect(self._new_token)
        form.addRow("Token", row(self.token, new_token))
        col.addLayout(form)
        buttons = QHBoxLayout()
        self.start = QPushButton("Start")
        self.start.clicked.connect(self._start)
        self.stop = QPushButton("Stop")
        self.stop.clicked.connect(owner.stop_server)
        buttons.addWidget(self.start)
        buttons.addWidget(self.stop)
        buttons.addStretch(1)
        col.addLayout(buttons)
        self.state = QLabel()
        self.state.setWordWrap(True)
        col.addWidget(self.state)
        self.urls: dict[str, QLineEdit] = {}
        urls = QFormLayout()
        for path, label in (("/stream.mjpg", "Stream"), ("/frame.jpg", "Newest frame"), ("/", "Page")):
            field = QLineEdit(readOnly=True)
            copy = QPushButton("Copy")
            copy.clicked.connect(lambda _=False, f=field: QGuiApplication.clipboard().setText(f.text()))
            urls.addRow(label, row(field, copy))
            self.urls[path] = field
        col.addLayout(urls)
        how = QLabel(OBS_HELP)
        how.setWordWrap(True)
        how.setStyleSheet("color: gray")
        col.addWidget(how)
        self._address_changed(self.address.text())

    def _address_changed(self, text: str) -> None:
        from app.live.serve import is_loopback, parse_address

        try:
            host, _ = parse_address(text)
        except UserError:
            return
        remote = not is_loopback(host)
        self.token.setEnabled(remote)
        self.new_token.setEnabled(remote)
        if not remote and self.token.text():  # loopback needs none: no greyed token left behind (kept for a remote one)
            self._kept_token = self.token.text()
            self.token.clear()
        elif remote and not self.token.text():
            self.token.setText(self._kept_token) if self._kept_token else self._new_token()

    def _new_token(self) -> None:
        import secrets

        self.token.setText(secrets.token_urlsafe(16))

    def _start(self) -> None:
        try:
            self.owner.start_server(self.address.text().strip() or DEFAULT_ADDRESS,
                                    self.token.text().strip() if self.token.isEnabled() else None)
        except UserError as e:
            self.state.setText(f"<span style='color:#b00020'>{_escape(str(e))}</span>")
            self.owner._message(str(e))
            return
        self.refresh()

    def refresh(self) -> None:
        server = self.owner.server
        self.start.setEnabled(server is None)
        self.stop.setEnabled(server is not None)
        self.address.setEnabled(server is None)
        for path, field in self.urls.items():
            field.setText(server.url(path) if server is not None else "")
        if server is not None:
            where = "this computer only" if server.token is None else "other computers too, with the token"
            self.state.setText(f"Streaming on {server.host}:{server.port} ({where}).")
        elif not self.state.text().startswith("<span"):
            self.state.setText("Not streaming.")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
