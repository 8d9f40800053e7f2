"""`python main.py stream`: the live loop without a window. Camera or video in, MP4 out.

    python main.py stream --model demo --controlnet demo --input camera:0 --out live.mp4 --prompt "a watercolor"
    python main.py stream --model M --controlnet A --input clip.mp4 --out styled.mp4 --max-frames 300

The same condition extraction and change check as the window (app.live.loop). A video file is read frame by
frame (none dropped, the output keeps its frame rate); a camera is read in its own thread and the loop
takes the newest frame each time. The MP4 is written atomically: Ctrl+C keeps what was recorded.
The screen (screen[:N][@X,Y,W,H], app.live.screen) is read like a camera; --serve and --virtual-camera send
each output frame to other apps too (app.live.sinks), and --steady keeps a still picture still (app.live.steady).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from app.cli.instrument import add_instrument_arguments, check_instrument
from app.cli.options import add_bounded, add_model_arguments, check_values, engine_options, with_strength
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

log = logging.getLogger(__name__)

def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--input", required=True, help="camera:N (a camera by index), a video file (video:PATH or PATH), "
                   "screen[:N][@X,Y,W,H] (a monitor, or a region of it) or ndi:NAME (an NDI source)")
    p.add_argument("--out", default=None, help="the MP4 file to write (optional with --serve or --virtual-camera)")
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
    recorder = Recorder(args.out, fps) if args.out else None  # checks the folder: writable, with room
    osc = None

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

    # 3. every frame through the loop to the sinks (the file among them), until the input ends or Ctrl+C
    try:
        n, elapsed, interrupted = play(loop, input_frames(spec, args.max_frames), Playhead(cues), in_fps, clock,
                                       sinks, record, control, session)
    finally:
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
    spec = parse_source(args.input, default_kind=None)
    if spec.kind not in ("camera", "video", "screen", "ndi"):
        raise UserError(f"--input {args.input!r}: stream reads camera:N, a video file, screen[:N][@X,Y,W,H] or ndi:NAME")
    if not (args.out or args.serve or args.virtual_camera or args.ndi):
        raise UserError("stream needs somewhere to send the output: --out FILE.mp4, --serve ADDR, --virtual-camera or "
                        "--ndi NAME")
    check_instrument(args)
    steady = parse_steady(args.steady)
    from app.live.serve import check_serve

    check_serve(args.serve, args.serve_token)  # address, token and a free port, before any model loads
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames {args.max_frames} must be at least 1")
    if args.fps is not None and not 1 <= args.fps <= 120:
        raise UserError(f"--fps {args.fps} must be between 1 and 120")
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

    cap = cv2.VideoCapture(path)
    try:
        ok = cap.isOpened() and cap.read()[0]
    finally:
        cap.release()
    if not ok:
        raise UserError(f"--input {given!r} is not a video that can be read (no frame decodes): "
                        "use an MP4, AVI, MKV or WebM file")
def input_frames(spec: SourceSpec, max_frames: int | None) -> Iterator[Frame]:
    """A video's every frame in order; a camera's or the screen's newest frame each time one is new."""
    from app.live.capture import open_capture
    from app.live.sources import read_video

    if spec.kind == "video":
        for i, img in enumerate(read_video(spec.target, max_frames)):
            yield Frame(img, time.perf_counter(), False, i + 1)
        return
    capture = open_capture(spec)
    try:
        seen, n = 0, 0
        while max_frames is None or n < max_frames:
            f = capture.latest()
            if capture.state == "failed":
                raise UserError(capture.error)
            if f is None or f.seq == seen:
                time.sleep(0.005)
                continue
            seen, n = f.seq, n + 1
            yield f
    finally:
        capture.stop()


def play(loop: LiveLoop, frames: Iterator[Frame], playhead: Playhead, in_fps: float, clock: list[float],
         sinks: SinkSet, record: RecorderSink | None, control=None, session: Session | None = None) -> tuple[int, float, bool]:
    """Each frame: the schedule's cues due at its time, OSC's changes, the loop, then the sinks. Returns the frames
    made, the seconds it took and whether Ctrl+C stopped it. A recording that fails (a full disk) stops the
    command with its one line, the frames so far kept playable; any other failure leaves no half-written file."""
    interrupted = False
    session = session or Session(live=loop.settings)  # what the schedule and OSC write; the loop follows it
    t0 = time.perf_counter()
    n = 0
    try:
        for frame in frames:
            clock[0] = (frame.seq - 1) / in_fps if in_fps else time.perf_counter() - t0
            for cue in playhead.advance(clock[0]):
                log.info("  schedule: frame %d at %.2f s: line %d", n + 1, clock[0], cue.line)
                apply_cue(session, cue)
            if control:
                control.poll()
                control.hold()  # /sdxs/pause 1 waits here, the input with it, until /sdxs/pause 0
            elif session.live != loop.settings:
                loop.apply(session.live)
            result = loop.process(frame)
            sinks.send(result)
            if record is not None and record.error is not None:
                raise record.error  # the recorder stopped itself and kept what it could: exit 2 with its line
            control.after(result.output) if control else None
            n += 1
            if n % 25 == 0:
                log.info("  %d frames, %.1f fps", n, n / (time.perf_counter() - t0))
            if not sinks and sinks.failures:  # (a recording stopped by /sdxs/record 0 is no failure)
                raise UserError(f"every output failed ({'; '.join(sinks.failures)}): stopping")
    except KeyboardInterrupt:
        interrupted = True  # Ctrl+C keeps what was recorded, properly finished
    except BaseException:
        sinks.abort()
        raise
    return n, time.perf_counter() - t0, interrupted
