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
import sys
import time
from pathlib import Path

from app.cli.instrument import add_instrument_arguments, check_instrument
from app.cli.options import add_model_arguments
from models.errors import UserError
from models.options import STRENGTH, check_strength


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--input", required=True, help="camera:N (a camera by index), a video file (video:PATH or PATH), "
                   "screen[:N][@X,Y,W,H] (a monitor, or a region of it) or ndi:NAME (an NDI source)")
    p.add_argument("--out", default=None, help="the MP4 file to write (optional with --serve or --virtual-camera)")
    p.add_argument("--prompt", default="", help="the text prompt")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--strength", type=float, default=STRENGTH, help=f"control strength, 0..2 (default {STRENGTH:g})")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: the whole video; a camera runs until Ctrl+C)")
    p.add_argument("--condition", default="auto", choices=["auto", "sketch", "canny", "none"], help="how a frame becomes the adapter's input (default auto: the adapter's own)")
    p.add_argument("--canny-low", type=int, default=100, help="canny lower threshold (default 100)")
    p.add_argument("--canny-high", type=int, default=200, help="canny upper threshold (default 200)")
    p.add_argument("--mirror", action="store_true", help="flip frames left-right (front cameras)")
    p.add_argument("--side-by-side", action="store_true", help="record the input next to the output")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the MP4 (default: the video's own, 15 for a camera)")
    p.add_argument("--serve", default=None, metavar="ADDR", help="also serve the output as MJPEG over HTTP on ADDR, like "
                   "127.0.0.1:8765 (/stream.mjpg, /frame.jpg); another address than loopback needs --serve-token")
    p.add_argument("--serve-token", default=None, help="a token every URL must carry as ?token=...; auto makes one")
    p.add_argument("--virtual-camera", action="store_true", help="also send the output to a virtual camera (pyvirtualcam)")
    add_instrument_arguments(p)
    p.add_argument("--steady", default="on", help="steady a still picture: on (default), off, or NAME=VALUE pairs "
                   "(smooth, motion, skip, tiles, blend, spread), like smooth=0.5,blend=0")
    p.add_argument("--transition", type=float, default=0.5, metavar="SECONDS",
                   help="a prompt, seed or schedule change glides over this many seconds of the input (default 0.5; 0 jumps)")
    p.add_argument("--schedule", default=None, metavar="FILE",
                   help="prompt schedule: lines `SECONDS  prompt [seed=N] [lora=NAME:WEIGHT]`, applied at those times of the input")


def run(args: argparse.Namespace) -> int:
    import torch

    from app.live.loop import Frame, LiveLoop, real_loader
    from app.live.osc_stream import StreamControl, open_osc
    from app.live.recorder import Recorder
    from app.live.screen import open_capture
    from app.live.settings import ConditionSettings, LiveSettings
    from app.live.sinks import RecorderSink, open_sinks
    from app.live.sources import parse_source, read_video, video_fps
    from app.live.steady import describe, parse_steady
    from models.device import dtype_name

    spec = parse_source(args.input, default_kind=None)
    if spec.kind not in ("camera", "video", "screen", "ndi"):
        raise UserError(f"--input {args.input!r}: stream reads camera:N, a video file, screen[:N][@X,Y,W,H] or ndi:NAME")
    if not (args.out or args.serve or args.virtual_camera or args.ndi):
        raise UserError("stream needs somewhere to send the output: --out FILE.mp4, --serve ADDR, --virtual-camera or --ndi NAME")
    check_instrument(args)
    steady = parse_steady(args.steady)
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames {args.max_frames} must be at least 1")
    check_strength(args.strength, "--strength")
    if args.fps is not None and not 1 <= args.fps <= 120:
        raise UserError(f"--fps {args.fps} must be between 1 and 120")
    if not 0 <= args.transition <= 60:
        raise UserError(f"--transition {args.transition} must be between 0 and 60 seconds")
    from app.live.schedule import Playhead, apply_cue, check_loras, read_schedule

    cues = read_schedule(args.schedule) if args.schedule else []
    if torch.get_num_threads() > 1 and spec.kind in ("camera", "screen", "ndi"):
        torch.set_num_threads(max(1, torch.get_num_threads() - 1))  # leave a core to the capture thread
    fps = args.fps or (video_fps(spec.target) if spec.kind == "video" else 15.0)
    recorder = Recorder(args.out, fps) if args.out else None
    osc = None
    try:
        osc = open_osc(args)  # a port in use is one line before the model loads
        engine = real_loader(args.model, args.controlnet, args.device, args.dtype, loras=args.lora)
        check_loras(cues, engine, args.schedule)
    except BaseException:
        recorder.abort() if recorder else None
        osc.close() if osc else None
        raise
    cond = ConditionSettings(mode=args.condition, low=args.canny_low, high=args.canny_high, mirror=args.mirror)
    settings = LiveSettings(prompt=args.prompt, seed=args.seed, strength=args.strength, size=args.size or 0,
                            condition=cond, steady=steady, transition=args.transition)
    loop = LiveLoop(engine, settings, args.fast)
    playhead, in_fps, clock = Playhead(cues), video_fps(spec.target) if spec.kind == "video" else 0.0, [0.0]
    if spec.kind == "video":  # transitions and cues run on the video's time, however fast frames are made
        engine.transition.clock = lambda: clock[0]
    try:  # a backend that fails, or an output that cannot open: nothing half-written stays
        engine.set_backend(args.backend, args.precision, progress=lambda text: print(text, file=sys.stderr))
        if engine.fast != "eager":
            print(f"warming up the {engine.fast} path (the first run compiles; later runs read the cache)...", file=sys.stderr)
            engine.warm_up()
        sinks = open_sinks(args, engine.size, fps)
    except BaseException:
        recorder.abort() if recorder else None
        osc.close() if osc else None
        raise
    if recorder is not None:
        sinks.add(RecorderSink(recorder, args.side_by_side))
    folder = Path(args.out).expanduser().parent if args.out else Path.cwd()
    control = StreamControl(osc, loop, sinks, folder, fps, args.side_by_side) if osc else None
    if osc:
        osc.fps = lambda: loop.fps  # the /sdxs/fps reply
    print(f"stream: {spec} -> {args.out or 'no file'} on {engine.device} {dtype_name(engine.dtype)} ({engine.backend}), "
          f"{engine.size} px, steady {describe(steady)} (Ctrl+C stops and keeps the file)", file=sys.stderr)

    def frames():
        if spec.kind == "video":
            for i, img in enumerate(read_video(spec.target, args.max_frames)):
                yield Frame(img, time.perf_counter(), False, i + 1)
            return
        capture = open_capture(spec)
        try:
            seen, n = 0, 0
            while args.max_frames is None or n < args.max_frames:
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

    interrupted = False
    t0 = time.perf_counter()
    n = 0
    try:
        for frame in frames():
            clock[0] = (frame.seq - 1) / in_fps if in_fps else time.perf_counter() - t0
            for cue in playhead.advance(clock[0]):
                print(f"  schedule: frame {n + 1} at {clock[0]:.2f} s: line {cue.line}", file=sys.stderr)
                apply_cue(loop, cue)
            if control:
                control.poll()
                control.hold()  # /sdxs/pause 1 waits here, the input with it, until /sdxs/pause 0
            result = loop.process(frame)
            sinks.send(result)
            control.after(result.output) if control else None
            n += 1
            if n % 25 == 0:
                print(f"  {n} frames, {n / (time.perf_counter() - t0):.1f} fps", file=sys.stderr)
            if not sinks and sinks.failures:  # (a recording stopped by /sdxs/record 0 is no failure)
                raise UserError(f"every output failed ({'; '.join(sinks.failures)}): stopping")
    except KeyboardInterrupt:
        interrupted = True  # Ctrl+C keeps what was recorded, properly finished
    except BaseException:
        sinks.abort()
        raise
    finally:
        osc.close() if osc else None
    kept = [s for s in sinks if isinstance(s, RecorderSink)]
    sinks.close()
    if n == 0:
        raise UserError(f"--input {args.input!r} gave no frames: nothing was written")
    elapsed = time.perf_counter() - t0
    note = " (interrupted; the file holds what was recorded)" if interrupted else ""
    out = ",".join(str(s.path) for s in kept if s.path) or "-"
    failed = f" failed: {'; '.join(sinks.failures)}" if sinks.failures else ""
    print(f"frames={n} fps={n / elapsed:.2f} engine_frames={loop.frames} out={out}{note}{failed}")
    return 0
