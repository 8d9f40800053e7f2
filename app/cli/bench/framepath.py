"""`python main.py bench framepath`: what the one frame path (app.live.framepath) costs beyond the engine.

For each stand-in runner cost (--path-costs, ms a frame: 0, 1, 6) and each way the path is run (--path-modes):

    window   app.ui.pipeline.Pipeline: the window's frame path with its worker, a Qt event loop taking the
             coalesced posts and making a QImage of each shown result (as the output pane does)
    stream   app.cli.stream.Run: `stream`'s hooks (schedule, OSC, the recording's health) around the same path

every sink attached: the MJPEG server with a real HTTP client reading /stream.mjpg on loopback, the virtual
camera (skipped with its reason where there is no device), NDI (where cyndilib runs) and an MP4 recording.
Each sink works on a thread of its own (app.live.sinkthread; MJPEG on its client's), so a sink "has" a picture
when it made its output of it: encoded to JPEG, handed to NDI or the camera, encoded into the file (each sink's
on_output), not when the path put it in the sink's mailbox. Reported, as JSON and a table:

    alone_fps        the stand-in engine's step called back to back (no path): the runner-alone rate
    path_fps         frames through the path when an input is always waiting (a feeder offers the next frame)
    ratio            path_fps / min(alone_fps, 500): the floor is 0.9
    sink_fps         per sink, pictures it made a second meanwhile (below path_fps: its mailbox dropped the rest)
    runner_ms p50/95 one step alone
    latency_ms p50/95  capture (the frame's time stamp) to the last sink making its output, over the frames every
                     sink made, with a capture thread publishing at about half the slowest rate above (the path's
                     or a sink's: latency_source_fps), so the path and the sinks are idle when a frame comes (a
                     faster source adds the wait behind the frames in flight, which is throughput, not latency)
    sink_latency_ms  per sink, capture to its output, p50/p95 over the frames it made
    handoff_ms p50/95  capture to the path having handed the frame to every sink (the path's own part)
    added_ms p95     latency p95 - runner p95: the floor is 2 ms

The stand-in runner sleeps its cost (as a GPU runner waits on the device, the GIL released) and returns the drawing
it was given, tinted; the frames are drawings (the canvas's route: the condition is the frame as it is), so
no edge extractor's cost is counted. The stand-in is the real Engine on tiny parts with the stand-in runner
(models/runners/standin.py); the runner-alone rate is that engine's own `step`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from app.live.sinks import RecorderSink, SinkSet
from app.live.sinkthread import SinkThread
from app.live.sources import FrameThread

CAP = 500.0  # the floor holds up to this rate (the issue: at least 0.9 of the runner alone up to 500 FPS)
PICTURES = 4  # premade frames and outputs, cycled: every frame differs from the one before


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path-costs", default="0,1,6", help="framepath: the stand-in runner's ms a frame (default 0,1,6)")
    p.add_argument("--path-modes", default="window,stream", help="framepath: window, stream or both (default both)")
    p.add_argument("--path-seconds", type=float, default=3.0, help="framepath: seconds per measurement (default 3)")
    p.add_argument("--path-size", type=int, default=512, help="framepath: frame and output size (default 512)")
    p.add_argument("--path-sinks", default="all", choices=("all", "none"),
                   help="framepath: every sink (default), or none but the probe (the path's own cost, without the sinks')")


def stand_in(cost_ms: float, size: int):
    """The real Engine on tiny parts whose frames run on the stand-in runner (models.runners.standin): it sleeps
    cost_ms and tints the drawing it is given, so each new drawing is a new picture."""
    from models.tiny import tiny_engine

    return tiny_engine(size, cost_ms)


class Drawings(FrameThread):
    """A capture publishing premade drawings at `rate` a second, each stamped when it is published."""

    def __init__(self, frames: list[np.ndarray], rate: float):
        from app.live.source_spec import parse_source

        super().__init__(parse_source("camera:0"), "bench-source")
        self.frames, self.period = frames, 1.0 / rate

    def _run(self) -> None:
        self._set_state("running")
        due = time.perf_counter()
        while not self._stop.is_set():
            with self._lock:
                self._seq += 1
                self._frame = Frame(self.frames[self._seq % len(self.frames)], time.perf_counter(), True, self._seq)
            self._woken()
            due = self._pace(due, self.period)


class Probe:
    """Two places in the path's SinkSet: first (mark), it notes each new output's capture time for Outputs; last,
    when the path had handed the frame to every sink (the hand-over latency)."""

    label = "probe"

    def __init__(self, outputs: Outputs | None = None):
        self.outputs = outputs  # the first place: mark the frame; None: the last place
        self.latencies: list[float] = []
        self.count = 0

    def picture(self, result):
        if not result.reused:
            if self.outputs is not None:
                self.outputs.mark(result.output, result.captured)
            else:
                self.count += 1
                self.latencies.append(1000 * (time.perf_counter() - result.captured))
        return None

    def send(self, rgb):
        pass

    def close(self):
        pass


class Outputs:
    """When each sink made its output of each picture (its on_output hook, on the sink's thread), from the picture's
    capture time; and how many pictures each made."""

    KEEP = 512  # pictures remembered (a sink's output of an older one is counted, not timed)

    def __init__(self, names: list[str]):
        self.names = names
        self.counts = dict.fromkeys(names, 0)  # outputs made per sink
        self.latencies: dict[str, list[float]] = {n: [] for n in names}
        self.last: list[float] = []  # per picture every sink made: capture to the last sink's output
        self._lock = threading.Lock()
        self._frames: dict[int, tuple[np.ndarray, float, set]] = {}  # id(output) -> (output, captured, sinks done)

    def mark(self, rgb: np.ndarray, captured: float) -> None:
        with self._lock:
            self._frames[id(rgb)] = (rgb, captured, set())
            while len(self._frames) > self.KEEP:
                del self._frames[next(iter(self._frames))]

    def hook(self, name: str):
        return lambda rgb: self.made(name, rgb)

    def made(self, name: str, rgb: np.ndarray) -> None:
        t = time.perf_counter()
        with self._lock:
            self.counts[name] += 1
            entry = self._frames.get(id(rgb))
            if entry is None or entry[0] is not rgb:
                return
            ms = 1000 * (t - entry[1])
            self.latencies[name].append(ms)
            entry[2].add(name)
            if len(entry[2]) == len(self.names):
                self.last.append(ms)  # this sink was the last to make it

    def clear(self) -> None:
        with self._lock:
            self.last.clear()
            for v in self.latencies.values():
                v.clear()


def open_sinks(size: int, folder: Path, which: str = "all") -> tuple[dict, dict, object]:
    """Every sink (which="none": none): ({short name: sink}, what was skipped and why, the MJPEG client or None)."""
    from app.live.recorder import Recorder
    from app.live.serve import MjpegServer
    from models.errors import UserError

    sinks, skipped = {}, {}
    if which == "none":
        return sinks, {"every sink": "--path-sinks none"}, None
    server = MjpegServer("127.0.0.1:0").start()
    sinks["mjpeg"] = server
    client = MjpegClient(server.port)
    client.start()
    try:
        from app.live.virtualcam import VirtualCamera

        sinks["camera"] = VirtualCamera(size, size, 30.0)
    except UserError as e:
        skipped["virtual camera"] = str(e).splitlines()[0]
    try:
        from app.live.ndi import NdiSender

        sinks["ndi"] = NdiSender("sdxs-bench", 30.0)
    except (UserError, ImportError) as e:
        skipped["ndi"] = str(e).splitlines()[0]
    folder = Path(tempfile.mkdtemp(dir=folder))  # one recording per measurement
    sinks["recording"] = RecorderSink(Recorder(folder / "bench.mp4", 30.0), skip_reused=True)
    return sinks, skipped, client


class MjpegClient(threading.Thread):
    """Reads /stream.mjpg on loopback and counts the parts (a real client keeps the server encoding)."""

    def __init__(self, port: int):
        super().__init__(daemon=True, name="bench-mjpeg-client")
        self.port, self.parts = port, 0

    def run(self) -> None:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                f = s.makefile("rb")
                while True:
                    line = f.readline()
                    if not line:
                        return
                    if line.lower().startswith(b"content-length:"):
                        f.readline()
                        f.read(int(line.split(b":")[1]))
                        self.parts += 1
        except OSError:
            return


def runner_alone(engine, frames: list[np.ndarray], seconds: float) -> tuple[float, list[float]]:
    times, n, t0 = [], 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a = time.perf_counter()
        engine.step(frames[n % len(frames)])
        times.append(1000 * (time.perf_counter() - a))
        n += 1
    return n / (time.perf_counter() - t0), times


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure(mode: str, cost: float, size: int, seconds: float, folder: Path, which: str = "all") -> dict:
    engine = stand_in(cost, size)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(PICTURES)]
    alone, step_ms = runner_alone(engine, frames, min(seconds, 2.0))
    sinks, skipped, client = open_sinks(size, folder, which)
    outputs = Outputs(list(sinks))
    for name, sink in sinks.items():
        sink.on_output = outputs.hook(name)  # on the sink's thread, once its output of a picture is made
    probe = Probe()
    loop = LiveLoop(engine, LiveSettings(size=size, steady=None))
    spin, stop = _start(mode, loop, SinkSet([Probe(outputs), *sinks.values(), probe]))
    path = stop.path
    try:
        # 1. the rate: a feeder keeps one frame waiting (the canvas's route: newest wins, never empty)
        fed = threading.Event()

        def feed() -> None:
            i = 0
            while not fed.is_set():
                i += 1
                path.offer(Frame(frames[i % PICTURES], time.perf_counter(), True, i), block=True, timeout=0.2)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        spin(0.3)
        n0, parts0, made0, t0 = probe.count, client.parts if client else 0, dict(outputs.counts), time.perf_counter()
        spin(seconds)
        n, parts, elapsed = probe.count - n0, (client.parts if client else 0) - parts0, time.perf_counter() - t0
        made = {k: outputs.counts[k] - made0[k] for k in outputs.counts}
        fed.set()
        feeder.join(2)
        path.wait_idle(5)
        for sink in sinks.values():
            if isinstance(sink, SinkThread):  # (the MJPEG server has no mailbox to drain)
                sink.drain(10)
        path_fps = n / elapsed
        sink_fps = {k: v / elapsed for k, v in made.items()}
        # 2. the latency: a capture at about half the slowest rate wakes an idle path with idle sinks
        rate = min(max(min([path_fps, *sink_fps.values()]), 1.0) / 2, 250.0)
        source = Drawings(frames, rate).start()
        path.set_capture(source)
        spin(0.3)
        probe.latencies.clear()
        outputs.clear()
        spin(seconds)
        handoff = list(probe.latencies)
        lat = list(outputs.last) if sinks else handoff  # no sink: the last one is the probe
        per_sink = {k: list(v) for k, v in outputs.latencies.items()}
        path.set_capture(None)
        source.stop()
    finally:
        stop()
        for s in sinks.values():
            try:
                s.close()
            except Exception:  # a recording of a bench is thrown away anyway
                pass
    rec = sinks.get("recording")
    target = min(alone, CAP)
    added = pct(lat, 95) - pct(step_ms, 95)
    return {
        "mode": mode, "cost_ms": cost, "size": size, "sinks": [getattr(s, "label", k) for k, s in sinks.items()],
        "skipped": skipped, "alone_fps": round(alone, 1), "path_fps": round(path_fps, 1),
        "ratio": round(path_fps / target, 3), "sink_fps": {k: round(v, 1) for k, v in sink_fps.items()},
        "runner_ms_p50": round(pct(step_ms, 50), 3), "runner_ms_p95": round(pct(step_ms, 95), 3),
        "latency_ms_p50": round(pct(lat, 50), 3), "latency_ms_p95": round(pct(lat, 95), 3),
        "added_ms_p95": round(added, 3), "latency_frames": len(lat), "latency_source_fps": round(rate, 1),
        "sink_latency_ms": {k: {"p50": round(pct(v, 50), 3), "p95": round(pct(v, 95), 3), "frames": len(v)}
                            for k, v in per_sink.items()},
        "handoff_ms_p50": round(pct(handoff, 50), 3), "handoff_ms_p95": round(pct(handoff, 95), 3),
        "mjpeg_parts_per_s": round(parts / elapsed, 1),
        "recording_dropped": rec.dropped if rec is not None else None,
        "floors": {"ratio >= 0.9": path_fps / target >= 0.9, "added p95 <= 2 ms": added <= 2.0},
    }


def _start(mode: str, loop: LiveLoop, sinks: SinkSet):
    """The path as the window or `stream` runs it: (spin(seconds): let it run, stop() with .path)."""
    if mode == "stream":
        from app.cli.stream import Run
        from app.live.schedule import Playhead

        run = Run(loop, Playhead([]), 0.0, [0.0], None)
        run.path.sinks = sinks
        run.path.start()

        def stop() -> None:
            run.path.stop(5)

        stop.path = run.path
        return time.sleep, stop
    from app.ui.bench import window_path  # Qt lives in app/ui

    return window_path(loop, sinks)


def run(args: argparse.Namespace) -> int:
    from models.errors import UserError

    try:
        costs = [float(c) for c in args.path_costs.split(",") if c.strip()]
    except ValueError:
        raise UserError(f"--path-costs {args.path_costs!r}: give milliseconds separated by commas, like 0,1,6") from None
    modes = [m.strip() for m in args.path_modes.split(",") if m.strip()]
    if not costs or any(c < 0 for c in costs) or any(m not in ("window", "stream") for m in modes) or not modes:
        raise UserError(f"--path-costs {args.path_costs!r} / --path-modes {args.path_modes!r}: costs >= 0 ms, modes "
                        "window and/or stream")
    from app.cli.bench.machine import machine

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for mode in modes:
            for cost in costs:
                rows.append(measure(mode, cost, args.path_size, args.path_seconds, Path(folder), args.path_sinks))
                r = rows[-1]
                made = ", ".join(f"{k} {v:.0f}" for k, v in r["sink_fps"].items())
                print(f"{mode:6} {cost:4g} ms: alone {r['alone_fps']:8.1f} fps, path {r['path_fps']:8.1f} fps "
                      f"({r['ratio']:.2f}){f' [made/s: {made}]' if made else ''}, latency to the last sink's output "
                      f"p50 {r['latency_ms_p50']:.2f} p95 {r['latency_ms_p95']:.2f} ms (hand-over p95 "
                      f"{r['handoff_ms_p95']:.2f}), runner p95 {r['runner_ms_p95']:.2f}, added p95 "
                      f"{r['added_ms_p95']:.2f} ms", flush=True)
    skipped = rows[0]["skipped"] if rows else {}
    for what, why in skipped.items():
        print(f"skipped {what}: {why}")
    out = {"kind": "framepath", "machine": machine(), "results": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0
