"""`python main.py stream`: the live loop without a window. Camera or video in, MP4 out.

    python main.py stream --model demo --controlnet demo --input camera:0 --out live.mp4 --prompt "a watercolor"
    python main.py stream --model M --controlnet A --input clip.mp4 --out styled.mp4 --max-frames 300

The same condition extraction and change check as the window (app.live.loop). A video file is read frame by
frame (none dropped, the output keeps its frame rate); a camera is read in its own thread, which wakes the frame
path (app.live.framepath, the window's too) to take the newest frame each time. The MP4 is written crash-safe
(app.live.recorder): Ctrl+C, SIGTERM and SIGHUP finish it and keep what was recorded; after kill -9 or a power cut
NAME.recording.mp4 holds all but the last second.
The screen (screen[:N][@X,Y,W,H], app.live.screen) is read like a camera; --serve and --virtual-camera send
each output frame to other apps too (app.live.sinks), and --steady keeps a still picture still (app.live.steady).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from app.cli.instrument import add_instrument_arguments, check_instrument
from app.cli.options import add_bounded, add_model_arguments, check_values, engine_options, with_strength
from app.cli.signals import StopSignals
from app.live.framepath import FramePath
from app.live.loop import Frame, LiveLoop
from app.live.recorder import Recorder
from app.live.schedule import Cue, Playhead, apply_cue, check_loras, read_schedule
from app.live.session import LoadedLora, Session
from app.live.settings import CONDITION_MODES, ConditionSettings, LiveSettings
from app.live.sinks import RecorderSink, SinkSet
from app.live.source_spec import SourceSpec, parse_source
from app.live.steady import SteadySettings, describe, parse_steady
from app.live.styles import loaded
from models.errors import UserError
from models.options import check_strength

log = logging.getLogger(__name__)

def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, model_required=False)  # required unless --engine
    p.add_argument("--input", required=True, help="camera:N (a camera by index), a video file (video:PATH or PATH), "
                   "screen[:N][@X,Y,W,H] (a monitor, or a region of it) or ndi:NAME (an NDI source)")
    p.add_argument("--out", default=None, help="the MP4 file to write (optional with --serve or --virtual-camera)")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists (without it, an existing "
                   "file is refused before the model loads)")
    p.add_argument("--prompt", default="", help="the text prompt")
    add_bounded(p, "--seed", "noise seed, taken modulo 2**64")
    add_bounded(p, "--strength", "strength of every adapter that names none with :STRENGTH (default: 1)", default=None)
    add_bounded(p, "--keep-colours", "with a colour-hint adapter, feed it the frame's own colours at this strength, "
                "so the picture keeps the scene's colours (0: off)", metavar="STRENGTH")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: the whole video; a camera runs until Ctrl+C)")
    p.add_argument("--condition", default="auto", choices=CONDITION_MODES, help="how a frame becomes the adapter's input (default auto: the adapter's own)")
    add_bounded(p, "--canny-low", "canny lower threshold")
    add_bounded(p, "--canny-high", "canny upper threshold")
    p.add_argument("--mirror", action="store_true", help="flip frames left-right (front cameras)")
    p.add_argument("--side-by-side", action="store_true", help="record the input next to the output")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the MP4 (default: the video's own, 15 for a camera)")
    p.add_argument("--serve", default=None, metavar="ADDR", help="also serve the output as MJPEG over HTTP on ADDR, like "
                   "127.0.0.1:8765 (/stream.mjpg, /frame.jpg); another address than loopback needs --serve-token")
    p.add_argument("--serve-token", default=None, help="a token every URL must carry as ?token=...; auto makes one")
    p.add_argument("--virtual-camera", action="store_true", help="also send the output to a virtual camera (pyvirtualcam)")
    p.add_argument("--steady", default="on", help="steady a still picture: on (default), off, or NAME=VALUE pairs "
                   "(smooth, motion, skip, tiles, blend, spread), like smooth=0.5,blend=0")
    add_bounded(p, "--transition", "seconds a prompt, seed or schedule change glides over, on the input's time; 0 jumps",
                metavar="SECONDS")
    p.add_argument("--schedule", default=None, metavar="FILE",
                   help="prompt schedule: lines `SECONDS  prompt [seed=N] [lora=NAME:WEIGHT]`, applied at those times of the input")
    p.add_argument("--engine", default=None, metavar="URL", help="use the engine of `serve-engine` at URL (like "
                   "http://gpu-box:8770) instead of loading one here; the model options are then the server's")
    p.add_argument("--engine-token", default=None, help="serve-engine's --token (default: $SDXS_ENGINE_TOKEN)")
    add_instrument_arguments(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from app.live.osc_stream import StreamControl, open_osc
    from app.live.sinks import open_sinks
    from app.live.sources import video_fps
    from models.device import dtype_name
    from models.opening import open_engine

    # 1. the input, the outputs' options, the steadying and the schedule, checked before any model loads
    spec, steady, cues = check(args)
    if torch.get_num_threads() > 1 and spec.kind in ("camera", "screen", "ndi"):
        torch.set_num_threads(max(1, torch.get_num_threads() - 1))  # leave a core to the capture thread
    fps = args.fps or (video_fps(spec.target) if spec.kind == "video" else 15.0)
    # checks the folder (writable, with room); a video's frames keep its timing, a live input's the clock's
    recorder = Recorder(args.out, fps, real_time=spec.kind != "video") if args.out else None
    osc = None
    if args.engine:
        return run_remote(args, spec, steady, cues, fps, recorder)

    # 2. OSC, the engine, the loop on it and the other outputs; a failure leaves no half-written file
    try:
        osc = open_osc(args.osc, args.osc_allow)  # a port in use is one line before the model loads
        args.controlnet = with_strength(args.controlnet, args.strength)
        engine = open_engine(engine_options(args), say=log.info)
        check_loras(cues, engine, args.schedule)
        cond = ConditionSettings(mode=args.condition, low=args.canny_low, high=args.canny_high, mirror=args.mirror)
        settings = LiveSettings(prompt=args.prompt, seed=args.seed, strength=engine.control_scale, size=args.size or 0,
                                condition=cond, steady=steady, transition=args.transition,
                                adapters=engine.adapter_strengths, keep_colours=args.keep_colours)
        loop = LiveLoop(engine, settings, engine.fast)
        session = Session(live=settings, loras_loaded=tuple(LoadedLora(name=n, spec=sp, weight=w) for n, sp, w in loaded(engine)))
        sinks = open_sinks(args, engine.size, fps)
    except BaseException:
        recorder.abort() if recorder else None
        osc.close() if osc else None
        raise
    record = sinks.add(RecorderSink(recorder, args.side_by_side)) if recorder else None
    folder = Path(args.out).expanduser().parent if args.out else Path.cwd()
    control = StreamControl(osc, loop, sinks, folder, fps, args.side_by_side, session) if osc else None
    in_fps, clock = video_fps(spec.target) if spec.kind == "video" else 0.0, [0.0]
    if spec.kind == "video":  # transitions and cues run on the video's time, however fast frames are made
        engine.transition.clock = lambda: clock[0]
    log.info("stream: %s -> %s on %s %s (%s), %s px, steady %s (Ctrl+C stops and keeps the file)", spec,
             args.out or "no file", engine.device, dtype_name(engine.dtype), engine.backend, engine.size, describe(steady))

    return finish(args, spec, loop, cues, in_fps, clock, sinks, record, control, osc, session)


def run_remote(args: argparse.Namespace, spec: SourceSpec, steady: SteadySettings | None, cues: list[Cue], fps: float,
               recorder: Recorder | None) -> int:
    """stream --engine URL: the same frame path and sinks, the engine on an engine server (app.remote)."""
    import os

    from app.live.osc_stream import StreamControl, open_osc
    from app.live.sinks import open_sinks
    from app.remote.client import RemoteEngine
    from app.remote.loop import RemoteLoop

    token = args.engine_token or os.environ.get("SDXS_ENGINE_TOKEN") or None
    remote, osc = RemoteEngine(args.engine, token), None
    cond = ConditionSettings(mode=args.condition, low=args.canny_low, high=args.canny_high, mirror=args.mirror)
    try:
        osc = open_osc(args.osc, args.osc_allow)
        remote.connect()
        for cue in cues:
            for name in cue.loras:
                if name not in remote.loras:
                    raise UserError(f"{args.schedule} line {cue.line}: LoRA {name!r} is not offered by the engine")
        strength = remote.adapters if args.strength is None else dict.fromkeys(remote.adapters, args.strength)
        settings = LiveSettings(prompt=args.prompt, seed=args.seed, strength=args.strength or 1.0, size=0, condition=cond,
                                steady=steady, transition=args.transition, adapters=strength, keep_colours=args.keep_colours)
        loop = RemoteLoop(remote, settings)
        session = Session(live=settings)
        sinks = open_sinks(args, remote.size, fps)
    except BaseException:
        remote.close()
        recorder.abort() if recorder else None
        osc.close() if osc else None
        raise
    record = sinks.add(RecorderSink(recorder, args.side_by_side)) if recorder else None
    folder = Path(args.out).expanduser().parent if args.out else Path.cwd()
    control = StreamControl(osc, loop, sinks, folder, fps, args.side_by_side, session) if osc else None
    log.info("stream: %s -> %s on the engine at %s (%s px)", spec, args.out or "no file", args.engine, remote.size)
    in_fps = video_fps_of(spec)
    try:
        return finish(args, spec, loop, cues, in_fps, [0.0], sinks, record, control, osc, session)
    finally:
        remote.close()


def video_fps_of(spec: SourceSpec) -> float:
    from app.live.sources import video_fps

    return video_fps(spec.target) if spec.kind == "video" else 0.0


def finish(args: argparse.Namespace, spec: SourceSpec, loop, cues: list[Cue], in_fps: float, clock: list[float],
           sinks: SinkSet, record: RecorderSink | None, control, osc, session: Session) -> int:
    """3. every frame through the loop (local, or app.remote's RemoteLoop) to the sinks (the file among them), until
    the input ends, Ctrl+C, SIGTERM or SIGHUP."""
    run_ = Run(loop, Playhead(cues), in_fps, clock, record, control, args.max_frames, session)
    run_.path.sinks = sinks  # one frame path, the same as the window's, feeding every sink on its thread
    with StopSignals() as stop:
        try:
            n, elapsed, interrupted = play(run_, spec, args.max_frames)
        finally:
            stop.finishing()  # a signal from here on does not cut the file's finishing short
            osc.close() if osc else None
        kept = [s for s in sinks if isinstance(s, RecorderSink)]
        sinks.close()
    if n == 0:
        raise UserError(f"--input {args.input!r} gave no frames: nothing was written")
    note = " (interrupted; the file holds what was recorded)" if interrupted else ""
    out = ",".join(str(s.path) for s in kept if s.path) or "-"
    failed = f" failed: {'; '.join(sinks.failures)}" if sinks.failures else ""
    print(f"frames={n} fps={n / elapsed:.2f} engine_frames={loop.frames} out={out}{note}{failed}")
    return 0


def check(args: argparse.Namespace) -> tuple[SourceSpec, SteadySettings | None, list[Cue]]:
    """The parsed input, steadying and schedule; a bad option is a one-line UserError before anything loads."""
    if not (args.model or args.engine):
        raise UserError("stream needs --model (an engine here) or --engine URL (an engine server's)")
    spec = parse_source(args.input, default_kind=None)
    if spec.kind not in ("camera", "video", "screen", "ndi"):
        raise UserError(f"--input {args.input!r}: stream reads camera:N, a video file, screen[:N][@X,Y,W,H] or ndi:NAME")
    check_instrument(args)  # first: --ndi "" is its own line, not "needs somewhere to send"
    if not (args.out or args.serve or args.virtual_camera or args.ndi):
        raise UserError("stream needs somewhere to send the output: --out FILE.mp4, --serve ADDR, --virtual-camera or "
                        "--ndi NAME")
    if args.out:
        from models.outfiles import check_new

        check_new(args.out, "--out", args.overwrite)  # never replaced without a word
    steady = parse_steady(args.steady)
    from app.live.serve import check_serve

    check_serve(args.serve, args.serve_token)  # address, token and a free port, before any model loads
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames {args.max_frames} must be at least 1")
    if args.strength is not None:
        check_strength(args.strength, "--strength")
    check_strength(args.keep_colours, "--keep-colours")
    if args.fps is not None and not 1 <= args.fps <= 120:
        raise UserError(f"--fps {args.fps} must be between 1 and 120")
    if not 0 <= args.transition <= 60:
        raise UserError(f"--transition {args.transition} must be between 0 and 60 seconds")
    check_values(args)
    if spec.kind == "video":
        probe_video(args.input, spec.target)
    return spec, steady, read_schedule(args.schedule) if args.schedule else []



def probe_video(given: str, path: str) -> None:
    """Open a video file and read its first frame before any model loads; FFmpeg's own complaints stay
    off the terminal (OPENCV_FFMPEG_LOGLEVEL, read when FFmpeg is first used), ours is one line."""
    import os

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    from app.live.sources import check_frame_size

    cap = cv2.VideoCapture(path)
    if cap.isOpened():
        check_frame_size(cap, f"--input {given!r}")
    try:
        ok = cap.isOpened() and cap.read()[0]
    finally:
        cap.release()
    if not ok:
        raise UserError(f"--input {given!r} is not a video that can be read (no frame decodes): "
                        "use an MP4, AVI, MKV or WebM file")
class Run:
    """One `stream` run on the frame path (app.live.framepath): the hooks it calls on its thread around each
    frame (the schedule's cues and OSC's changes before, the snapshot, the count and the recording's health
    after) and what the main thread waits for (done: the input ended, max_frames were made, or an error)."""

    def __init__(self, loop: LiveLoop, playhead: Playhead, in_fps: float, clock: list[float], record: RecorderSink | None,
                 control=None, max_frames: int | None = None, session: Session | None = None):
        self.loop, self.playhead, self.in_fps, self.clock = loop, playhead, in_fps, clock
        self.session = session or Session(live=loop.settings)  # what the schedule and OSC write; the loop follows it
        self.record = record  # the --out recording, whose failure stops the command
        self.control = control  # app.live.osc_stream.StreamControl or None
        self.max_frames = max_frames  # stop after this many (a live source; a video file stops by itself)
        self.n = 0  # frames made
        self.t0 = time.perf_counter()
        self.error: BaseException | None = None  # what stopped it, raised again on the main thread
        self.done = threading.Event()
        self.path = FramePath(on_error=self.failed, before=self.before, after=self.after, name="sdxs-stream")
        self.path.set_loop(loop)

    def before(self, frame: Frame) -> None:
        self.clock[0] = (frame.seq - 1) / self.in_fps if self.in_fps else time.perf_counter() - self.t0
        for cue in self.playhead.advance(self.clock[0]):
            log.info("  schedule: frame %d at %.2f s: line %d", self.n + 1, self.clock[0], cue.line)
            apply_cue(self.session, cue)
        if not self.control and self.session.live != self.loop.settings:
            self.loop.apply(self.session.live)
        if self.control:
            self.control.poll()
            while self.control.paused and not self.done.is_set():  # /sdxs/pause 1 waits here until /sdxs/pause 0
                time.sleep(0.05)  # (StreamControl.hold, but Ctrl+C on the main thread ends it through done)
                self.control.poll()

    def after(self, result) -> None:
        if self.record is not None and self.record.error is not None:
            raise self.record.error  # the recorder stopped itself and kept what it could: exit 2 with its line
        self.control.after(result.output) if self.control else None
        self.n += 1
        if self.n % 25 == 0:
            log.info("  %d frames, %.1f fps", self.n, self.n / (time.perf_counter() - self.t0))
        sinks = self.path.sinks
        if not sinks and sinks.failures:  # (a recording stopped by /sdxs/record 0 is no failure)
            raise UserError(f"every output failed ({'; '.join(sinks.failures)}): stopping")
        if self.max_frames is not None and self.n >= self.max_frames:
            self.finish()

    def failed(self, err: BaseException) -> None:
        self.error = self.error or err
        self.finish()

    def finish(self) -> None:
        self.path.stop(0)  # on its own thread: it ends after this frame
        self.done.set()


def play(run: Run, spec: SourceSpec, max_frames: int | None) -> tuple[int, float, bool]:
    """Every frame through the frame path to the sinks, until the input ends, max_frames, an error or Ctrl+C. A video
    file is handed over frame by frame (none dropped, in order); a camera, the screen or NDI wakes the path with
    each new frame (newest wins). Returns the frames made, the seconds it took and whether Ctrl+C stopped it. A
    recording that fails (a full disk) stops the command with its one line, the frames so far kept playable;
    any other failure leaves no half-written file."""
    from app.live.capture import open_capture
    from app.live.sources import read_video

    interrupted, capture, path = False, None, run.path
    path.start()
    try:
        if spec.kind == "video":
            for i, img in enumerate(read_video(spec.target, max_frames)):
                while not path.offer(Frame(img, time.perf_counter(), False, i + 1), block=True, timeout=0.1):
                    if run.done.is_set():
                        break
                if run.done.is_set():
                    break
            while not run.done.is_set() and path.busy:
                run.done.wait(0.005)
            run.finish()
        else:
            capture = open_capture(spec)
            path.set_capture(capture)
            while not run.done.wait(0.1):
                if capture.state == "failed":
                    run.failed(UserError(capture.error))
    except KeyboardInterrupt:
        interrupted = True  # Ctrl+C keeps what was recorded, properly finished
    finally:
        run.done.set()  # a paused path stops waiting
        path.stop(60.0)  # a frame in flight finishes first
        capture.stop() if capture is not None else None
    if run.error is not None:
        path.sinks.abort()
        raise run.error
    return run.n, time.perf_counter() - run.t0, interrupted
