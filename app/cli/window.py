"""`python main.py [options]`: the window.

    python main.py                                   # last model, or SDXS if cached, or the demo model
    python main.py --model demo --controlnet demo --source camera:0 --prompt "oil painting"
    python main.py --model demo --controlnet demo-sketch --controlnet demo-colour:0.8   # two adapters
    python main.py --source video:clip.mp4 --size 256 --exit-after 30
    python main.py --engine http://gpu-box:8770 --engine-token T   # the frames on `serve-engine` (docs/remote.md)

On exit it prints `frames=N fps=X` (frames the engine processed, and their mean rate).
"""

from __future__ import annotations

import argparse
import logging

from app.cli.instrument import add_instrument_arguments, check_instrument
from app.cli.options import add_bounded, check_bounded
from models.errors import UserError
from models.options import check_device, check_dtype

log = logging.getLogger(__name__)

NO_DISPLAY = ("no display found (DISPLAY and WAYLAND_DISPLAY are unset): run the window with "
              "QT_QPA_PLATFORM=offscreen python main.py ..., or use `python main.py stream --input camera:0 --out out.mp4` "
              "for the live loop without a window")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="base model: hub id, folder or demo (default: the last one, SDXS if cached, else demo)")
    p.add_argument("--controlnet", action="append", default=[], metavar="SPEC[:STRENGTH]",
                   help="a control adapter (hub id, folder, demo-sketch, demo-colour; demo: both of the demo's) with its "
                   "strength 0..2 (default 1); repeat for several (default: the last session's)")
    p.add_argument("--source", default=None, help="sketch, camera:N, video:PATH (loops), image:PATH or screen[:N][@X,Y,W,H] (default: the last one)")
    p.add_argument("--prompt", default=None, help="the text prompt (default: the last one)")
    add_bounded(p, "--size", "output size in pixels (default: the model's own)", default=None)
    p.add_argument("--device", default=None, help="auto, cpu or cuda (default: the last one, else auto)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16 or float16 (default: the last one, else auto)")
    p.add_argument("--lora", action="append", default=[], metavar="SPEC[:WEIGHT]",
                   help="a LoRA style (hub id, folder or .safetensors file) with its weight (default 1); repeat for several "
                   "(default: the last session's)")
    add_instrument_arguments(p, midi=True)
    p.add_argument("--exit-after", type=float, default=None, metavar="SECONDS", help="quit by itself after this many seconds")
    p.add_argument("--serve", default=None, metavar="ADDR", help="serve the output as MJPEG over HTTP on ADDR from the "
                   "start, like 127.0.0.1:8765 (as Output > Stream to OBS); another address than loopback needs --serve-token")
    p.add_argument("--serve-token", default=None, help="a token every URL must carry as ?token=...; auto makes one")
    p.add_argument("--engine", default=None, metavar="URL", help="run the frames on the engine of `serve-engine` at URL "
                   "(like http://127.0.0.1:8770) instead of loading a model here; Model > Use local engine goes back")
    p.add_argument("--engine-token", default=None, help="serve-engine's --token (default: $SDXS_ENGINE_TOKEN)")
    p.add_argument("--settings", default=None, help=argparse.SUPPRESS)  # an INI file instead of the user's settings (tests)


def check(args: argparse.Namespace) -> None:
    from app.live.source_spec import parse_source

    check_bounded(args)
    if args.source:
        parse_source(args.source)
    if args.exit_after is not None and args.exit_after <= 0:
        raise UserError(f"--exit-after {args.exit_after} must be a positive number of seconds")
    from app.live.serve import check_serve

    check_serve(args.serve, args.serve_token)  # address, token and a free port, before any model loads
    if args.device:
        check_device(args.device)
    if args.dtype:
        check_dtype(args.dtype)
    if args.controlnet:
        from models.options import parse_adapter_arg

        for arg in args.controlnet:
            parse_adapter_arg(arg)  # a bad strength stops here; an adapter that does not load is a message in the window
    if args.lora:
        from models.lora import parse_lora_arg

        for arg in args.lora:
            parse_lora_arg(arg)  # a bad weight stops here; a LoRA that does not load is a message in the window
    check_instrument(args)


def run(args: argparse.Namespace) -> int:
    from app.ui.qtapp import application, check_platform_libraries, close_after, close_on_signals, has_display

    check(args)
    if not has_display():
        raise UserError(NO_DISPLAY)
    check_platform_libraries()  # X11: every library Qt's xcb plugin lacks, and the one command that installs them
    from app.live.osc_stream import open_osc
    from app.ui.panel.modelpick import HubProbe, startup_choice
    from app.ui.session.settings import Persisted, open_settings
    from app.ui.window import MainWindow, StartOptions

    osc = open_osc(args.osc, args.osc_allow)  # a port in use is one line before the window opens
    app = application()
    qs = open_settings(args.settings)
    saved = Persisted.load(qs)
    from app.ui.panel.adapters import spec_args

    choice = startup_choice(args.model, tuple(args.controlnet) or None, saved.model,
                            spec_args(saved.adapters) or saved.controlnet)
    if args.exit_after or args.engine:
        choice.offer_download = False  # a timed, scripted run asks no questions; a remote engine needs no download
    if args.engine:  # nothing loads here: the engine server's model runs the frames
        choice.model, choice.notice = None, ""
    probe = HubProbe() if choice.offer_download else None  # is the hub there? asked while the window is built
    window = MainWindow(qs)
    if args.serve:  # as Output > Stream to OBS, from the start (a show started by a launcher script)
        try:
            server = window.actions.output.start_server(args.serve, args.serve_token)
        except UserError:  # the port was taken since check(): one line, nothing left running
            window.shutdown()
            raise
        log.info("serving %s (also %s, the page %s)", server.url(), server.url("/frame.jpg"), server.url("/"))
    window.show()
    if osc is not None:
        from app.ui.session.osc_link import OscLink

        window.osc = OscLink(window.session, osc, window)
    if args.ndi:
        window.actions.output.start_ndi(args.ndi)
    window.midi.open(args.midi)  # no MIDI system or port: the Learn MIDI entries say why
    if probe is not None:
        choice.offer_download = probe.answered()  # offline: no 3 GB offer, the demo model starts
    window.start(StartOptions(choice, args.source, args.prompt, args.size, args.device, args.dtype, tuple(args.lora)))
    if args.engine:  # a wrong token or nothing listening: one line in the status bar, the window stays
        import os

        window.actions.engine.connect(args.engine, args.engine_token or os.environ.get("SDXS_ENGINE_TOKEN") or "")
    if args.exit_after:
        close_after(window, args.exit_after)
    close_on_signals(window)  # SIGTERM, SIGHUP: as Ctrl+Q, a recording finished and kept
    app.exec()
    if osc is not None:
        window.osc.close()
    from app.ui.pipeline import finish_all

    finish_all()
    loop = window.pipeline.worker.loop
    frames = loop.frames if loop is not None else 0
    print(f"frames={frames} fps={loop.fps if loop is not None else 0.0:.2f}")
    return 0
