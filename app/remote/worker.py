"""The engine server's one engine thread: a LiveLoop (app/live/loop.py) that renders the newest frame it was given.

One frame is in flight: while the engine renders, a new frame replaces the one waiting (the replaced one is
dropped and counted), so a fast client never builds a queue. Pictures are JPEG-encoded on this thread, and
incoming PNG/JPEG payloads decoded here, so the network's event loop only moves bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from app.remote.messages import decode_image, encode_image
from models.errors import UserError

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Job:
    """One frame to render for a session."""

    owner: object  # the session that asked (its pending job is replaced by its next one)
    settings: LiveSettings  # the session's settings, applied before the frame
    payload: Any  # PNG or JPEG bytes, or an av.VideoFrame from a video track
    drawn: bool  # a drawing (used as it is, every pixel counts) rather than a camera frame
    header: dict  # echoed in the picture's header (seq, t)
    received: float  # perf_counter when the frame arrived
    done: Callable[[dict, bytes | None, np.ndarray | None, str | None], None]  # (header, jpeg, rgb, error)
    fmt: str = "jpeg"  # how the picture goes back: jpeg, png, or raw (RGB only: it goes on a video track)


class EngineWorker:
    """Runs jobs on a LiveLoop in its own thread, newest job wins."""

    def __init__(self, loop: LiveLoop, quality: int = 85):
        self.loop = loop
        self.quality = quality  # JPEG quality of pictures
        self.dropped = 0  # jobs replaced before they ran
        self.rendered = 0  # jobs that ran
        self._pending: Job | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sdxs-engine", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = job
            self._cond.notify()

    def cancel(self, owner: object) -> None:
        """Forget the owner's waiting job (its session closed)."""
        with self._cond:
            if self._pending is not None and self._pending.owner is owner:
                self._pending = None

    def stop(self) -> None:
        with self._cond:
            self._stop, self._pending = True, None
            self._cond.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job, self._pending = self._pending, None
            try:
                header, jpeg, rgb = self._render(job)
            except UserError as e:
                job.done(job.header, None, None, str(e))
            except Exception as e:  # noqa: BLE001 - a frame that fails must not end the server
                log.exception("engine frame failed")
                job.done(job.header, None, None, f"the engine failed on a frame: {type(e).__name__}: {e}")
            else:
                job.done(header, jpeg, rgb, None)

    def _render(self, job: Job) -> tuple[dict, bytes, np.ndarray]:
        if isinstance(job.payload, bytes):
            image = decode_image(job.payload)
        else:
            image = job.payload.to_ndarray(format="rgb24")
        if job.settings != self.loop.settings:
            self.loop.apply(job.settings)
        t0 = time.perf_counter()
        result = self.loop.process(Frame(image, job.received, job.drawn, int(job.header.get("seq", 0))))
        self.rendered += 1
        engine_ms = 1000 * (time.perf_counter() - t0)
        data = b"" if job.fmt == "raw" else encode_image(result.output, "png" if job.fmt == "png" else "jpeg", self.quality)
        header = {**job.header, "engine_ms": round(engine_ms, 2), "server_ms": round(1000 * (time.perf_counter() - job.received), 2),
                  "frames": self.loop.frames, "reused": result.reused, "format": job.fmt}
        return header, data, result.output
