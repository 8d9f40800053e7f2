"""`python main.py generate`: control images (one per adapter, or one for all) and a prompt in, one image out.

    python main.py generate --model demo --controlnet demo-sketch:1 --controlnet demo-colour:0.8 \
        --image sketch.png --image colours.png --prompt "a house" --out house.png
"""

from __future__ import annotations

import argparse

from app.cli.options import adapter_count, add_bounded, add_model_arguments, check_values, engine_options, with_strength


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--image", action="append", default=[],
                   help="control image (a sketch: black strokes on white; colour hints: colour on white; a drawing "
                   "saved by the window as .ora: its lines to line adapters, its colour, shapes filled, to colour-hint "
                   "adapters); needed with --controlnet; repeat for one per adapter, in the --controlnet order, or give "
                   "one for all")
    p.add_argument("--prompt", default="", help="what to draw")
    add_bounded(p, "--seed", "noise seed, taken modulo 2**64")
    add_bounded(p, "--control-scale", "strength of every adapter that names none with :STRENGTH (default: 1)", default=None)
    p.add_argument("--out", required=True, help="output image, .png or .jpg")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists (without it, an existing "
                   "file is refused before the model loads)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from models.device import dtype_name
    from models.errors import UserError
    from models.imageio import check_out_path, read_rgb, write_rgb
    from models.opening import open_engine
    from models.openraster import read_drawing
    from models.options import check_strength
    from models.outfiles import check_new

    check_values(args)  # size, seed, prompt, LoRA weights, adapter strengths: one line each before anything loads
    if args.control_scale is not None:
        check_strength(args.control_scale, "--control-scale")
    if args.controlnet and not args.image:
        raise UserError("--controlnet needs --image: pass the control image (a sketch) to follow")
    if args.image and not args.controlnet:
        own = own_adapter(args.model)
        if own is None:
            raise UserError(f"--image {args.image[0]!r} needs an adapter to follow it: add --controlnet (for SDXS: "
                            "IDKiro/sdxs-512-dreamshaper-sketch), or leave out --image for text-to-image")
        args.controlnet = [own]
        print(f"using the model's own adapter {own} for --image")
    count = adapter_count(args.controlnet)
    if len(args.image) not in (0, 1, count):
        from models.loading import expand_adapter_spec
        from models.options import parse_adapter_arg

        demo = [arg for arg in args.controlnet if parse_adapter_arg(arg)[0] == "demo"]
        said = f"; demo loads {' and '.join(expand_adapter_spec('demo'))}" if demo else ""
        raise UserError(f"{len(args.image)} --image for {count} adapter{'s' * (count != 1)} ({', '.join(args.controlnet)}"
                        f"{said}): give one --image per adapter, in the --controlnet order, or one for all")
    args.controlnet = with_strength(args.controlnet, args.control_scale)
    check_out_path(args.out)
    check_new(args.out, "--out", args.overwrite)  # never replaced without a word
    images = [read_drawing(path) if path.lower().endswith(".ora") else read_rgb(path) for path in args.image]
    images = images or [np.full((64, 64, 3), 255, np.uint8)]
    engine = open_engine(engine_options(args))  # its steps are log lines (stderr; -q hides them)
    engine.set_seed(args.seed)
    engine.set_prompt(args.prompt)
    out = write_rgb(args.out, engine.step(conditions(engine, images)))
    print(f"wrote {out} ({engine.size}x{engine.size}, {engine.device.type} {dtype_name(engine.dtype)}, "
          f"{engine.timings.total:.0f} ms{', openvino ' + args.precision if engine.backend == 'openvino' else ''})")
    return 0


def conditions(engine, images: list) -> list:
    """One condition image per adapter. One image serves every adapter, except a colour-hint adapter beside
    a line adapter: a sketch is no colour hint, so it gets white (no hints). A drawing (.ora) gives each adapter
    its layer: the lines, or the colour on white with its dabs filling their shapes (the window's Fill shapes)."""
    import numpy as np

    from models.hints import fill_shapes
    from models.imageio import over_white
    from models.openraster import Drawing

    def layer(image, colour: bool) -> np.ndarray:
        if not isinstance(image, Drawing):
            return image
        if not colour:
            return image.lines
        if image.colour is None:
            return np.full_like(image.lines, 255)
        return fill_shapes(image.lines, over_white(image.colour))

    adapters = engine.adapters
    if not adapters:
        return [layer(image, False) for image in images]
    if len(images) > 1:
        if not any(isinstance(image, Drawing) for image in images):
            return images
        return [layer(image, a.colour_hints) for image, a in zip(images, adapters, strict=True)]
    if isinstance(images[0], Drawing):
        return [layer(images[0], a.colour_hints) for a in adapters]
    lines = any(not a.colour_hints for a in adapters)
    white = np.full_like(images[0][:, :, :3], 255)
    return [white if lines and a.colour_hints else images[0] for a in adapters]


def own_adapter(model: str) -> str | None:
    """The adapter that obviously goes with a model: demo's own, or a controlnet/ folder inside a model folder."""
    from pathlib import Path

    if model == "demo":
        return "demo"
    inner = Path(model).expanduser() / "controlnet"
    return str(inner) if (inner / "config.json").exists() else None
