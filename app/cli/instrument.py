"""Command-line options that make the live picture an instrument, shared by the window and `stream`:
OSC in (--osc, --osc-allow), NDI out (--ndi) and, for the window, the MIDI input port (--midi)."""

from __future__ import annotations

import argparse

from models.errors import UserError


def add_instrument_arguments(p: argparse.ArgumentParser, midi: bool = False) -> None:
    p.add_argument("--osc", default=None, metavar="[ADDR:]PORT",
                   help="take OSC messages (/sdxs/prompt, /sdxs/seed, /sdxs/strength, ...: docs/instrument.md) on this "
                   "UDP port, on loopback unless ADDR says otherwise (another address needs --osc-allow)")
    p.add_argument("--osc-allow", default=None, metavar="HOST[,HOST...]",
                   help="the other computers whose OSC messages are taken (messages from others are dropped and counted)")
    p.add_argument("--ndi", default=None, metavar="NAME", help="also send the output as an NDI source of this name "
                   "(needs the cyndilib package). Unlike --serve and --osc, which stay on this machine unless told "
                   "otherwise, NDI listens on every network interface (TCP 5960 and up): any computer on the network "
                   "can watch it, and NDI has no setting that keeps it to this machine")
    if midi:
        p.add_argument("--midi", default=None, metavar="PORT", help="the MIDI input port to listen to (default: all; "
                       "needs mido and python-rtmidi); map sliders with a right click > Learn MIDI")


def check_instrument(args: argparse.Namespace) -> None:
    """One line for a bad --osc, --osc-allow or --ndi, before anything loads."""
    if getattr(args, "osc", None):
        from app.live.osc import parse_address

        parse_address(args.osc)
        try:
            import pythonosc  # noqa: F401
        except ImportError:
            raise UserError("--osc needs the python-osc package: pip install python-osc==1.10.2") from None
    elif getattr(args, "osc_allow", None):
        raise UserError("--osc-allow only means something with --osc [ADDR:]PORT")
    if getattr(args, "ndi", None) is not None:  # --ndi "" too: one line, not silently no NDI
        from app.live.ndi import _cyndilib, check_name

        check_name(args.ndi)
        _cyndilib()
