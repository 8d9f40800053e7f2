"""`python main.py serve-engine`: the engine on this machine, for clients on others (docs/remote.md).

    python main.py serve-engine --model demo --controlnet demo                      # loopback: http://127.0.0.1:8770
    python main.py serve-engine --listen 0.0.0.0:8770 --token auto --model M --controlnet A

A browser opens the printed URL to draw (a tablet too); `stream --engine URL --engine-token T` and the window use
it as their engine. It runs until Ctrl+C.
"""

from __future__ import annotations

import argparse
import logging
import threading

from app.cli.options import add_model_arguments, check_values, engine_options, with_strength
from models.errors import UserError
from models.options import KEEP_COLOURS, STRENGTH, TRANSITION, check_strength

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--listen", default="127.0.0.1:8770", metavar="[ADDR:]PORT",
                   help="where to listen (default 127.0.0.1:8770, this machine only); another address needs --token")
    p.add_argument("--token", default=None, help="the token clients must give (at least 128 bits); auto makes one")
    p.add_argument("--tls-cert", default=None, metavar="FILE", help="serve the signalling over HTTPS with this certificate")
    p.add_argument("--tls-key", default=None, metavar="FILE", help="the certificate's private key")
    p.add_argument("--prompt", default="", help="each client's starting prompt")
    p.add_argument("--seed", type=int, default=0, help="each client's starting seed")
    p.add_argument("--strength", type=float, default=None,
                   help=f"strength 0..2 of every adapter that names none with :STRENGTH (default {STRENGTH:g})")
    p.add_argument("--keep-colours", type=float, default=KEEP_COLOURS, metavar="STRENGTH",
                   help=f"colour-hint adapters: a camera frame's own colours at this strength (default {KEEP_COLOURS:g})")
    p.add_argument("--transition", type=float, default=TRANSITION, metavar="SECONDS",
                   help=f"a prompt or seed change glides over this many seconds (default {TRANSITION:g})")
    p.add_argument("--idle", type=float, default=5.0, metavar="SECONDS",
                   help="a client silent this long is dropped, freeing the engine (default 5; clients ping every second)")


def run(args: argparse.Namespace) -> int:
    from app.live.loop import LiveLoop
    from app.live.settings import LiveSettings
    from app.remote.server import EngineServer, check_listen
    from models.opening import open_engine

    _, _, token = check_listen(args.listen, args.token, args.tls_cert, args.tls_key)  # before the model loads
    check_values(args)
    if args.strength is not None:
        check_strength(args.strength, "--strength")
    check_strength(args.keep_colours, "--keep-colours")
    if not 0 <= args.transition <= 60:
        raise UserError(f"--transition {args.transition} must be between 0 and 60 seconds")
    if not 1 <= args.idle <= 600:
        raise UserError(f"--idle {args.idle} must be between 1 and 600 seconds")
    args.controlnet = with_strength(args.controlnet, args.strength)
    engine = open_engine(engine_options(args), say=log.info)
    settings = LiveSettings(prompt=args.prompt, seed=args.seed, strength=engine.control_scale, size=args.size or 0,
                            transition=args.transition, adapters=engine.adapter_strengths, keep_colours=args.keep_colours)
    server = EngineServer(LiveLoop(engine, settings, engine.fast), args.listen, token, args.tls_cert, args.tls_key,
                          idle=args.idle)
    url = server.start()
    page = f"{url}/#token={token}" if token else f"{url}/"
    print(f"serving the engine ({engine.device}, {engine.size} px) at {url}; draw in a browser: {page}", flush=True)
    if token and args.token == "auto":
        print(f"token: {token}  (stream --engine {url} --engine-token {token})", flush=True)
    try:
        threading.Event().wait()  # until Ctrl+C
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print(f"served {server.sessions} clients, {server.worker.rendered} frames", flush=True)
    return 0
