"""`python main.py generate`: one control image and a prompt in, one image out."""

from __future__ import annotations

import argparse

from models.common_args import add_model_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--image", help="control image (a sketch: black strokes on white); needed with --controlnet")
    p.add_argument("--prompt", default="", help="what to draw")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--control-scale", type=float, default=0.8, help="adapter strength, 0..2 (default 0.8)")
    p.add_argument("--out", required=True, help="output image, .png or .jpg")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from models.common_args import quiet_libraries
    from models.engine import Engine, check_size
    from models.errors import UserError
    from models.imageio import check_out_path, read_rgb, write_rgb

    if args.size is not None:
        check_size(args.size)
    if args.controlnet and not args.image:
        raise UserError("--controlnet needs --image: pass the control image (a sketch) to follow")
    check_out_path(args.out)
    frame = read_rgb(args.image) if args.image else np.full((64, 64, 3), 255, np.uint8)
    quiet_libraries()
    engine = Engine.load(args.model, args.controlnet, args.device, args.dtype, loras=args.lora)
    engine.set_size(args.size or engine.base.native_size)
    engine.set_seed(args.seed)
    engine.control_scale = args.control_scale
    engine.set_prompt(args.prompt)
    if engine.set_fast(args.fast) != "eager":
        print(f"warming up the {engine.fast} path (the first run compiles; later runs read the cache)...")
        engine.warm_up(frame)
    out = write_rgb(args.out, engine.step(frame))
    print(f"wrote {out} ({engine.size}x{engine.size}, {engine.device.type} {str(engine.dtype).removeprefix('torch.')}, "
          f"{engine.timings.total:.0f} ms)")
    return 0
