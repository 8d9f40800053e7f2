"""`python main.py generate`: one control image and a prompt in, one image out."""

from __future__ import annotations

import argparse

from app.cli.options import add_model_arguments, check_values, engine_options
from models.options import STRENGTH


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--image", help="control image (a sketch: black strokes on white); needed with --controlnet")
    p.add_argument("--prompt", default="", help="what to draw")
    p.add_argument("--seed", type=int, default=0, help="noise seed, any whole number (taken modulo 2**64; default 0)")
    p.add_argument("--control-scale", type=float, default=STRENGTH, help=f"adapter strength, 0..2 (default {STRENGTH:g})")
    p.add_argument("--out", required=True, help="output image, .png or .jpg")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from models.device import dtype_name
    from models.errors import UserError
    from models.imageio import check_out_path, read_rgb, write_rgb
    from models.opening import open_engine
    from models.options import check_strength

    check_values(args)  # size, seed, prompt and LoRA weights: one line each before anything loads
    check_strength(args.control_scale, "--control-scale")
    if args.controlnet and not args.image:
        raise UserError("--controlnet needs --image: pass the control image (a sketch) to follow")
    if args.image and not args.controlnet:
        args.controlnet = own_adapter(args.model)
        if args.controlnet is None:
            raise UserError(f"--image {args.image!r} needs an adapter to follow it: add --controlnet (for SDXS: "
                            "IDKiro/sdxs-512-dreamshaper-sketch), or leave out --image for text-to-image")
        print(f"using the model's own adapter {args.controlnet} for --image")
    check_out_path(args.out)
    frame = read_rgb(args.image) if args.image else np.full((64, 64, 3), 255, np.uint8)
    engine = open_engine(engine_options(args))  # its steps are log lines (stderr; -q hides them)
    engine.set_seed(args.seed)
    engine.control_scale = args.control_scale
    engine.set_prompt(args.prompt)
    out = write_rgb(args.out, engine.step(frame))
    print(f"wrote {out} ({engine.size}x{engine.size}, {engine.device.type} {dtype_name(engine.dtype)}, "
          f"{engine.timings.total:.0f} ms{', openvino ' + args.precision if engine.backend == 'openvino' else ''})")
    return 0


def own_adapter(model: str) -> str | None:
    """The adapter that obviously goes with a model: demo's own, or a controlnet/ folder inside a model folder."""
    from pathlib import Path

    if model == "demo":
        return "demo"
    inner = Path(model).expanduser() / "controlnet"
    return str(inner) if (inner / "config.json").exists() else None
