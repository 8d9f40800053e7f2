"""The engine's threads: the frame path (app.live.framepath, a plain thread: input -> loop -> every sink) and one
long-lived Worker QObject on a QThread for what is slow (model, adapter and LoRA loads, settings, recording,
a remote engine's connection); the Pipeline the window talks to is in app/ui/pipeline.py.

The Pipeline lives on the GUI thread. It hands the frame path the canvas's drawing (newest wins) and its
capture (which wakes the path itself), and forwards loads, settings and recording commands to the worker as
queued signals; the worker changes the engine under the path's lock, so changes land between frames. The
GUI thread never feeds a sink and never waits for a frame: the path posts its newest result and one queued
signal (coalesced: at most one waiting) tells the Pipeline to show it. The worker's signals go to the
Pipeline's slots (never to lambdas: a lambda runs in the emitting thread). QImages are made on the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from app.live import styles
from app.live.framepath import FramePath
from app.live.loop import LiveLoop, Loader
from app.live.session import LoadedAdapter, ModelRequest
from app.live.settings import LiveSettings
from app.live.sinks import RecorderSink
from app.ui.panel.adapters import adapter_args, loaded_adapters, use_adapters
from app.ui.worker_load import leave_a_core, progress_class
from models.errors import UserError, first_line
from models.opening import open_engine

if TYPE_CHECKING:
    from models.engine import Engine

class Worker(QObject):
    """Loads and changes the engine held by the frame path (under its lock); every slot runs on the worker thread."""

    loaded = Signal(object)  # dict: model, controlnet, device, dtype, size, condition, polarity
    busy = Signal(str)  # what it is doing ("" when done)
    failed = Signal(str)  # a message for the user
    progress = Signal(str, float, float)  # download: description, done, total (bytes)
    recorded = Signal(str, int)  # a finished recording: path ("" when nothing was kept), frames
    recordingFailed = Signal()  # a recording could not start
    lorasLoaded = Signal(object)  # [(name, spec, weight)] the engine holds, after a LoRA add or remove or a model load
    adaptersLoaded = Signal(object)  # [app.ui.panel.adapters.LoadedAdapter] the engine holds, after an add, remove or load
    remoteSaid = Signal(str)  # the remote link's one-line notices (lost, back): emitted on the client's own thread

    def __init__(self, loader: Loader | None = None, path: FramePath | None = None):
        super().__init__()
        self.path = path if path is not None else FramePath()  # runs the frames; its lock guards the engine
        self.loader = loader or open_engine
        self.request: ModelRequest | None = None
        self.settings = LiveSettings()
        self.cancel = threading.Event()
        self.recorder = None  # app.live.sinks.RecorderSink while recording, in the path's sinks
        self.remote = None  # app.remote.client.RemoteEngine while the frame path runs a RemoteLoop

    @property
    def loop(self) -> LiveLoop | None:
        return self.path.loop

    @property
    def sinks(self):
        return self.path.sinks

    @Slot(object)
    def load(self, req: ModelRequest) -> None:
        self.cancel.clear()
        self.close_remote()  # a local model replaces a remote engine
        same_base = self.loop is not None and self.request is not None and (
            (req.model, req.device, req.dtype) == (self.request.model, self.request.device, self.request.dtype))
        try:
            if same_base:
                self.busy.emit(f"Loading adapters {', '.join(req.adapters) or '(none)'}...")
                e = self.loop.engine
                with self.path.lock:  # between frames
                    use_adapters(e, req.adapters, progress_class(self, self.cancel))
                    if req.backend != "torch" or e.backend != "torch":  # converts here, not in the GUI
                        self.busy.emit("Converting for OpenVINO..." if req.backend != "torch" else "Switching to torch...")
                        e.set_backend(req.backend, req.precision, progress=self.busy.emit)
            else:
                self.busy.emit(f"Loading {req.model}...")
                self.path.set_loop(None)  # free the old model before the new one loads
                progress = progress_class(self, self.cancel)
                restored = {"kept": {}, "lost": ""}

                def before_warm_up(engine: Engine) -> None:  # the LoRAs remembered, before a GPU captures the frame
                    leave_a_core(engine)
                    restored["kept"], restored["lost"] = styles.restore(engine, self.settings.loras, progress, self.busy.emit)

                engine = self.loader(req.engine_options(self.settings.size or None), progress, self.busy.emit, before_warm_up)
                # the adapters at the strengths they were loaded with (the list shows them once loaded)
                self.path.set_loop(LiveLoop(engine, replace(self.settings, loras=restored["kept"],
                                                             adapters=engine.adapter_strengths), req.fast))
                self.lorasLoaded.emit(styles.loaded(engine))
                if restored["lost"]:
                    self.failed.emit(restored["lost"])
            from models.device import dtype_name

            self.request = req
            e = self.loop.engine
            adapter = e.adapter
            self.adaptersLoaded.emit(loaded_adapters(e))
            self.loaded.emit({
                "model": req.model, "controlnet": next(iter(e.adapter_specs.values()), None),
                "adapters": tuple(e.adapter_specs.values()), "conditions": [a.info.condition for a in e.adapters],
                "device": str(e.device), "dtype": dtype_name(e.dtype), "size": e.size, "backend": e.backend,
                "condition": adapter.info.condition if adapter is not None else "", "polarity":
                adapter.info.polarity if adapter is not None else "", "native": e.native_size,
            })
        except UserError as err:  # Cancelled too: its message says the partial download is kept
            self.failed.emit(str(err))
        except Exception as err:  # a broken model must not kill the worker
            self.failed.emit(f"could not load {req.model!r}: {type(err).__name__}: {first_line(err)}")
        finally:
            self.busy.emit("")
            self.path.refresh()  # the current input, with the model as it is now

    @Slot(object)
    def configure(self, settings: LiveSettings) -> None:
        """New settings; they apply before the next frame."""
        self.settings = settings
        if self.loop is not None:
            try:
                with self.path.lock:
                    self.loop.apply(self._remote_settings(settings) if self.remote is not None
                                    else styles.only_loaded(self.loop.engine, settings))
            except UserError as err:
                self.failed.emit(str(err))
            self.path.refresh()

    @Slot(str, str)
    def connect_remote(self, url: str, token: str) -> None:
        """Run the frames on the engine server at url (app.remote) instead of the local engine, which is freed;
        a failure (wrong token, nothing listening) is one line and leaves the engine as it was."""
        from app.remote.client import RemoteEngine
        from app.remote.loop import RemoteLoop

        self.busy.emit(f"Connecting to {url}...")
        try:
            remote = RemoteEngine(url, token or None, timeout=10.0, say=self.remoteSaid.emit).connect()
        except UserError as err:
            self.failed.emit(str(err))
            return
        except Exception as err:
            self.failed.emit(f"could not connect to {url}: {type(err).__name__}: {first_line(err)}")
            return
        finally:
            self.busy.emit("")
        self.close_remote()
        self.path.set_loop(None)  # free the local model
        self.remote, self.request = remote, None
        self.path.set_loop(RemoteLoop(remote, self._remote_settings(self.settings)))
        self._emit_remote_lists()
        self.loaded.emit({"model": url, "device": "remote", "dtype": "", "size": remote.size, "backend": "remote",
                          "adapters": tuple(remote.adapters), "remote": url,
                          "conditions": tuple(remote.adapter_conditions.get(n, "") for n in remote.adapters)})
        self.path.refresh()

    def _emit_remote_lists(self) -> None:
        """The adapters and LoRAs the server offers, as the panel lists them (names: no client sends a path)."""
        r = self.remote
        self.lorasLoaded.emit([(name, name, weight) for name, weight in r.loras.items()])
        self.adaptersLoaded.emit([LoadedAdapter(name=name, spec=name, strength=strength,
                                                condition=r.adapter_conditions.get(name, "sketch"))
                                  for name, strength in r.adapters.items()])

    def _remote_settings(self, settings: LiveSettings) -> LiveSettings:
        """The settings as the server can take them: its adapters (at our strengths where we have them), its LoRAs."""
        r = self.remote
        return replace(settings, adapters={**r.adapters, **{k: v for k, v in settings.adapters.items() if k in r.adapters}},
                       loras={k: v for k, v in settings.loras.items() if k in r.loras})

    @Slot()
    def close_remote(self) -> None:
        """Close the remote engine, if any: the frame path runs nothing until a model loads."""
        remote, self.remote = self.remote, None
        if remote is not None:
            remote.close()  # first: a frame waiting on the link ends now, so the lock is free
            self.path.set_loop(None)

    @Slot(str, float)
    def add_lora(self, spec: str, weight: float) -> None:
        """Load a LoRA into the running engine (app.live.styles.add); a failure leaves the list as it was.
        Asked before a model is loaded (or while one loads: this runs after it), it comes with the model:
        the settings carry it and the load restores it; one the engine holds already is left as it is."""
        if self.remote is None and (self.loop is None or spec in {s for _, s, _ in styles.loaded(self.loop.engine)}):
            if self.loop is not None:
                self.lorasLoaded.emit(styles.loaded(self.loop.engine))
            return
        self.cancel.clear()
        self.busy.emit(f"Loading LoRA {spec}...")
        try:
            if self.remote is not None:
                raise UserError(f"LoRA {spec!r}: the remote engine uses the LoRAs its server loaded")
            with self.path.lock:
                styles.add(self.loop.engine, spec, weight, progress_class(self, self.cancel))
        except UserError as err:
            self.failed.emit(str(err))
        except Exception as err:
            self.failed.emit(f"could not load LoRA {spec!r}: {type(err).__name__}: {first_line(err)}")
        finally:
            if self.remote is not None:
                self._emit_remote_lists()
            else:
                self.lorasLoaded.emit(styles.loaded(self.loop.engine) if self.loop is not None else [])
            self.busy.emit("")

    @Slot(str)
    def remove_lora(self, spec: str) -> None:
        if self.remote is None and self.loop is not None and spec in {s for _, s, _ in styles.loaded(self.loop.engine)}:
            with self.path.lock:
                self.loop.engine.remove_lora(spec)
            self.lorasLoaded.emit(styles.loaded(self.loop.engine))

    @Slot(str)
    def add_adapter(self, arg: str) -> None:
        """Load an adapter (SPEC[:STRENGTH]) next to those held; a failure leaves the list as it was."""
        from models.options import parse_adapter_arg

        self.cancel.clear()
        self.busy.emit(f"Loading adapter {arg}...")
        try:
            if self.remote is not None:
                raise UserError(f"adapter {arg!r}: the remote engine uses the adapters its server loaded")
            if self.loop is None:
                raise UserError(f"adapter {arg!r}: load a model first")
            spec, strength = parse_adapter_arg(arg, "adapter")
            with self.path.lock:
                self.loop.engine.add_adapter(spec, strength, progress_class(self, self.cancel))
        except UserError as err:
            self.failed.emit(str(err))
        except Exception as err:
            self.failed.emit(f"could not load adapter {arg!r}: {type(err).__name__}: {first_line(err)}")
        finally:
            self._adapters_changed()
            self.busy.emit("")

    @Slot(str)
    def remove_adapter(self, name: str) -> None:
        if self.remote is None and self.loop is not None and name in self.loop.engine.adapter_strengths:
            with self.path.lock:
                self.loop.engine.remove_adapter(name)
        self._adapters_changed()

    def _adapters_changed(self) -> None:
        if self.remote is not None:
            self._emit_remote_lists()
            return
        e = self.loop.engine if self.loop is not None and self.remote is None else None
        self.adaptersLoaded.emit(loaded_adapters(e) if e is not None else [])
        if e is not None and self.request is not None:
            self.request = replace(self.request, adapters=adapter_args(e))  # what a reload of this model keeps

    @Slot()
    def new_source(self) -> None:
        """Another source: forget the previous one's frames (steadying average, last output, change check)."""
        with self.path.lock:
            if self.loop is not None and self.remote is None:  # a remote engine's steadying is the server's
                self.loop.detector.reset()
                if self.loop.steady is not None:
                    self.loop.steady.reset()

    @Slot(str, float, bool)
    def start_recording(self, path: str, fps: float, side_by_side: bool) -> None:
        from app.live.recorder import Recorder

        self.stop_recording()
        try:
            last = self.path.latest().result  # a still drawing is recorded from now, not from its next change
            self.recorder = self.sinks.add(RecorderSink(Recorder(path, fps), side_by_side, skip_reused=True),
                                           on_failure=self._sink_failed, first=last)  # fed on the frame path's thread
        except UserError as err:
            self.recordingFailed.emit()  # first: the window's "Recording stopped" line, then the reason over it
            self.failed.emit(str(err))

    @Slot()
    def stop_recording(self) -> None:
        rec, self.recorder = self.recorder, None
        if rec is not None:
            failures = len(self.sinks.failures)
            self.sinks.remove(rec)  # finishes the file (a failure is one line, through _sink_failed)
            if len(self.sinks.failures) == failures:
                self.recorded.emit(str(rec.path or ""), rec.recorder.frames)

    def _sink_failed(self, sink, text: str) -> None:
        """A write or the finishing failed (a full disk): one line; the recording is discarded, the picture goes on.
        Called on the thread that found it (the frame path's for a write): it only emits signals."""
        if sink is self.recorder:
            self.recorder = None
            if sink.error is not None:  # the disk filled: the recorder kept a playable file of the frames so far
                self.recorded.emit(str(sink.error.kept or ""), sink.error.frames)
                text = str(sink.error)  # its own line names the file, the cause and what was kept
            else:
                self.recordingFailed.emit()  # first: the window's "Recording stopped" line, then the reason over it
        self.failed.emit(text)
