"""`python main.py bench adapters`: what each extra adapter costs per frame, full and light.

Engines with 0, 1, 2 and 3 adapters of each kind share one base model (its modules are not copied) and run
the same frames in turns, one frame each per round, so their ratios hold on a busy machine. The adapters are
built by training/adapters.py from the base UNet (full: its encoder and a cross-attention mid block; light:
no attention); their weights do not change the time. Each engine runs torch's runner of --fast (auto: eager
on a CPU, CUDA graphs on a GPU), every adapter at strength 1, so none is skipped.

    python main.py bench adapters --model demo --size 256 --device cpu --json adapters.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from app.cli.bench.machine import machine, summary
from models.conditions import sketch_frames


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-adapters", type=int, default=3, help="adapters: time 0 up to this many of each kind (default 3)")


def build(base, kinds: tuple[str, ...], count: int) -> dict[str, list]:
    """count adapters of each kind for the base UNet, as models.loading.Adapter (seeded: repeatable)."""
    from models.loading import Adapter, AdapterInfo
    from training.adapters import build_adapter

    return {k: [Adapter(build_adapter(base.unet, k, seed=i), AdapterInfo(), Path("."), f"{k}-{i + 1}")
                for i in range(count)] for k in kinds}


def measure(model_engine, kinds: tuple[str, ...], count: int, frames: int, fast: str) -> dict:
    """ms per frame (median over rounds) of engines with 0..count adapters of each kind, in turns."""
    import torch

    from models.engine import Engine

    e0 = model_engine
    nets = build(e0.base, kinds, count)
    engines = {"0": e0}
    for kind in kinds:
        for n in range(1, count + 1):
            e = Engine(e0.base, str(e0.device), _dtype_arg(e0.dtype))
            e.set_adapters(nets[kind][:n], [1.0] * n)
            engines[f"{kind} {n}"] = e
    images = sketch_frames(max(2, frames), e0.size)
    warm = {}
    for name, e in engines.items():
        e.set_size(e0.size)
        e.set_prompt("a watercolor painting of a cat")
        e.set_fast(fast)
        t = time.perf_counter()
        e.warm_up(images[0])  # compiles and captures where the runner does
        e.step(images[1])
        warm[name] = time.perf_counter() - t
    times: dict[str, list[float]] = {name: [] for name in engines}
    order = list(engines)
    with torch.inference_mode():
        for r in range(frames):
            for name in order if r % 2 == 0 else order[::-1]:  # alternate the order: drift weighs on all alike
                e = engines[name]
                t = time.perf_counter()
                e.step(images[r % len(images)])
                if e.device.type == "cuda":
                    torch.cuda.synchronize(e.device)
                times[name].append(1000 * (time.perf_counter() - t))
    base_ms = statistics.median(times["0"])
    rows = {}
    for name, e in engines.items():
        ms = statistics.median(times[name])
        n = len(e.adapters)
        rows[name] = {"adapters": n, "kind": name.split()[0] if n else "none", "frame_ms": summary(times[name]),
                      "ratio": ms / base_ms, "ms_per_adapter": (ms - base_ms) / n if n else 0.0,
                      "fast": e.fast, "warmup_s": warm[name]}
    from training.adapters import count_params

    params = {k: count_params(nets[k][0].net) for k in kinds}
    return {"rows": rows, "adapter_params": params, "unet_params": sum(p.numel() for p in e0.unet.parameters())}


def _dtype_arg(dtype) -> str:
    from models.device import dtype_name

    return dtype_name(dtype)


def run(args: argparse.Namespace) -> int:
    from app.cli.options import engine_options
    from models.device import dtype_name
    from models.errors import UserError
    from models.opening import open_engine

    if args.frames < 1:
        raise UserError(f"--frames {args.frames} must be at least 1")
    if not 1 <= args.max_adapters <= 8:
        raise UserError(f"--max-adapters {args.max_adapters} must be between 1 and 8")
    args.model = args.model or "demo"
    options = engine_options(args)
    from dataclasses import replace

    engine = open_engine(replace(options, controlnets=(), fast="eager", backend="torch"))
    fast = args.fast
    result = measure(engine, ("full", "light"), args.max_adapters, args.frames, fast)
    report = {"machine": machine(),
              "config": {"model": args.model, "size": engine.size, "frames": args.frames, "device": engine.device.type,
                         "dtype": dtype_name(engine.dtype), "fast": result["rows"]["full 1"]["fast"],
                         "command": "python main.py bench adapters " + " ".join(_argv(args))},
              **result,
              "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    _print(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    out = ["--model", args.model]
    for flag, value in (("--size", args.size), ("--device", args.device), ("--dtype", args.dtype),
                        ("--fast", args.fast), ("--frames", args.frames), ("--max-adapters", args.max_adapters)):
        if value is not None:
            out += [flag, str(value)]
    return out


def _print(r: dict) -> None:
    c, m = r["config"], r["machine"]
    print(f"{c['model']} {c['size']} px, {c['device']} {c['dtype']}, {c['fast']}, {c['frames']} rounds, "
          f"{m.get('gpu', m['cpu'])} ({m['torch_threads']} threads)")
    rows = r["rows"]
    print(f"{'adapters':>8}  {'full ms':>8}  {'x base':>6}  {'light ms':>8}  {'x base':>6}")
    count = max(row["adapters"] for row in rows.values())
    base = rows["0"]
    print(f"{0:>8}  {base['frame_ms']['median']:>8.1f}  {1:>6.2f}  {base['frame_ms']['median']:>8.1f}  {1:>6.2f}")
    for n in range(1, count + 1):
        f, lt = rows[f"full {n}"], rows[f"light {n}"]
        print(f"{n:>8}  {f['frame_ms']['median']:>8.1f}  {f['ratio']:>6.2f}  {lt['frame_ms']['median']:>8.1f}  {lt['ratio']:>6.2f}")
    p = r["adapter_params"]
    print(f"parameters per adapter: full {p['full'] / 1e6:.1f} M, light {p['light'] / 1e6:.1f} M "
          f"(UNet {r['unet_params'] / 1e6:.1f} M)")
