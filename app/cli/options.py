"""Command-line options shared by generate, bench and stream, and their checks."""

from __future__ import annotations

import argparse

from models.bounds import BOUNDS
from models.opening import EngineOptions
from models.options import BACKENDS, FAST, PRECISIONS

# an option that takes a bounded value -> its bound in models.bounds (its type, range and default come from there)
OPTION_BOUNDS = {"--seed": "seed", "--strength": "strength", "--control-scale": "strength",
                 "--keep-colours": "keep_colours", "--transition": "transition", "--size": "size",
                 "--canny-low": "canny_low", "--canny-high": "canny_high"}
_TABLE = object()  # add_bounded's default: the table's


def add_bounded(p: argparse.ArgumentParser, flag: str, text: str, default: object = _TABLE, **kw) -> None:
    """An option for a bounded value: int or float, and the default, as models.bounds says; the help text gets
    the range and the default. check_bounded checks the value against the same bound."""
    b = BOUNDS[OPTION_BOUNDS[flag]]
    value = b.default if default is _TABLE else default
    said = f"; default {value:g}" if isinstance(value, (int, float)) else ""
    p.add_argument(flag, type=int if b.whole else float, default=value,
                   help=f"{text} ({b.range_text()}{said})", **kw)


def check_bounded(args: argparse.Namespace) -> None:
    """Every bounded option given a value, checked against its bound: a one-line UserError naming the option
    (a seed is any whole number, reduced modulo 2**64 in place)."""
    from models.options import check_size

    given = vars(args)
    for flag, name in OPTION_BOUNDS.items():
        dest = flag[2:].replace("-", "_")
        if given.get(dest) is None:
            continue
        if name == "size":  # its own lines: "too large: at most 2048 (memory grows ...)", made from the same bound
            check_size(given[dest])
        else:
            setattr(args, dest, BOUNDS[name].check(given[dest], flag))


def add_model_arguments(p: argparse.ArgumentParser, model_required: bool = True) -> None:
    p.add_argument("--model", required=model_required, help="base model: hub id (IDKiro/sdxs-512-dreamshaper), folder or demo")
    p.add_argument("--controlnet", action="append", default=[], metavar="SPEC[:STRENGTH]",
                   help="a control adapter: hub id (IDKiro/sdxs-512-dreamshaper-sketch), folder, or demo (the demo's "
                   "sketch and colour-hint adapters; demo-sketch, demo-colour alone), optionally with its strength "
                   "0..2 (default 1); repeat for several (their residuals add up, each at its strength: docs/adapters.md)")
    add_bounded(p, "--size", "output size in pixels (default: the model's own)", default=None)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16 (default auto)")
    p.add_argument("--fast", default="auto", choices=FAST,
                   help="per-frame path: auto (graphs on a GPU, eager on a CPU), eager, fused, graphs (CUDA graphs), "
                   "compile (torch.compile + CUDA graphs; the first run compiles for minutes, later runs read the cache)")
    p.add_argument("--lora", action="append", default=[], metavar="SPEC[:WEIGHT]",
                   help="a LoRA style (hub id like IDKiro/sdxs-512-dreamshaper-anime, folder or .safetensors file), "
                   "optionally with its weight (default 1); repeat for several")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="who runs CPU frames: torch, openvino (converted once per model and size, then cached) or auto "
                   "(OpenVINO where it measured faster at load); needs the openvino extra")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="OpenVINO's precision on the CPU: fp32 (default) or int8 (ControlNet and the UNet's down and mid "
                   "blocks in int8; on the demo model 46 dB PSNR from fp32; quantized once, then cached)")


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The models.opening.EngineOptions of the options add_model_arguments added."""
    return EngineOptions(model=args.model, controlnets=tuple(args.controlnet), size=args.size, device=args.device,
                         dtype=args.dtype, fast=args.fast, backend=args.backend, precision=args.precision,
                         loras=tuple(args.lora))


def check_values(args: argparse.Namespace) -> None:
    """The values generate and stream check before anything loads: size, seed (reduced modulo 2**64 in place),
    prompt, LoRA weights and adapter strengths, each a one-line error."""
    from models.lora import parse_lora_arg
    from models.options import check_text, parse_adapter_arg

    check_bounded(args)
    check_text(args.prompt, "--prompt")
    for spec in args.lora:
        parse_lora_arg(check_text(spec, "--lora"))
    for spec in args.controlnet:
        parse_adapter_arg(check_text(spec, "--controlnet"))


def with_strength(controlnets: list[str], strength: float | None) -> list[str]:
    """The --controlnet values with `strength` (--strength, --control-scale) for those that name none; None
    leaves them (each its own, else 1)."""
    from models.options import adapter_arg, parse_adapter_arg

    if strength is None:
        return list(controlnets)
    return [arg if parse_adapter_arg(arg)[0] != arg else adapter_arg(arg, strength) for arg in controlnets]


def adapter_count(controlnets: list[str]) -> int:
    """How many adapters the --controlnet values load (`demo` is two where its colour-hint adapter is built)."""
    from models.loading import expand_adapter_spec
    from models.options import parse_adapter_arg

    return sum(len(expand_adapter_spec(parse_adapter_arg(arg)[0])) for arg in controlnets)
