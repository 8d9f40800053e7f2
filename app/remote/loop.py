"""RemoteLoop: LiveLoop's face (process, apply, settings, frames, fps, engine) over a RemoteEngine, so stream's frame
path, its sinks, its schedule and its OSC control (app.live.osc_stream.StreamControl) run unchanged on an
engine server. Steadying (--steady) and transitions' clock are the server's; the condition image stays there
(Result.condition is the frame as sent)."""

from __future__ import annotations

import time
from dataclasses import replace

from app.live.loop import Frame, Result
from app.live.settings import LiveSettings
from app.remote.client import RemoteEngine
from models.errors import UserError


class RemoteLoop:
    """Turns frames into results on a remote engine, one frame in flight."""

    def __init__(self, remote: RemoteEngine, settings: LiveSettings):
        self.engine = remote  # what StreamControl reads: lora_weights, lora_specs (RemoteEngine has both)
        self.settings = replace(settings, adapters={k: v for k, v in settings.adapters.items() if k in remote.adapters})
        self.frames = 0  # pictures received
        self.first_start = 0.0
        self.last_end = 0.0
        self.last_latency_ms = 0.0  # the newest frame's capture-to-picture time

    def apply(self, settings: LiveSettings) -> None:
        """Keep the settings; they go with the next frame (only when they changed)."""
        unknown = [name for name in settings.loras if name not in self.engine.loras]
        if unknown:
            raise UserError(f"LoRA {unknown[0]!r} is not offered by the engine; offered: "
                            f"{', '.join(self.engine.loras) or 'none'}")
        self.settings = settings

    def process(self, frame: Frame) -> Result:
        start = time.perf_counter()
        picture = self.engine.step(frame, self.settings)
        self.last_end = time.perf_counter()
        if not self.frames:
            self.first_start = start
        self.frames += 1
        self.last_latency_ms = picture.latency_ms
        timings = {"total": picture.latency_ms, "engine": picture.engine_ms, "server": picture.server_ms}
        source = self.settings.condition.orient(frame.image, frame.drawn)
        return Result(picture.image, source, source, frame.captured, picture.reused, timings, self.frames)

    @property
    def fps(self) -> float:
        elapsed = self.last_end - self.first_start
        return self.frames / elapsed if self.frames and elapsed > 0 else 0.0
