"""`python main.py bench [engine]`: our engine per frame, stage by stage, against diffusers' stock pipeline.

Both run on the same synthetic sketch frames in one process, so their ratio holds on a noisy machine.
The stock pipeline is called per frame the way the official SDXS demo calls it: a PIL image in, one
step, guidance 0, a seeded CPU generator, a PIL image out; fp16 on a GPU, fp32 on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.cli.bench.machine import machine, peak_mb, summary
from models.conditions import sketch_frames

STAGES = ("condition", "unet", "decode", "output", "total")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compare-diffusers", action="store_true", help="also time diffusers' stock pipeline on the same frames")
    p.add_argument("--prompt", default="a watercolor painting of a cat", help="prompt for every frame")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames first (default 2)")
    p.add_argument("--also-dtype", default=None, help="with --backend openvino: time torch once more in this dtype (e.g. bfloat16)")


def frame_gflop(engine, frame: np.ndarray) -> float:
    """Arithmetic of one eager frame (convolutions, matmuls, attention), counted by torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        engine.eager(frame)
    return counter.get_total_flops() / 1e9


def time_engine(engine, frames: list[np.ndarray], warmup: int, fast: str) -> tuple[dict, list[np.ndarray]]:
    """Median ms per stage from a profiled pass of the eager recipe, then ms per frame of the chosen path
    (unprofiled on a GPU, where stage syncs would cost time; the same pass on a CPU, where they cost none)."""
    import torch

    engine.set_fast("eager")
    for f in frames[:warmup]:
        engine.step(f)
    engine.profile = True
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    outs = []
    for f in frames:
        outs.append(engine.step(f))
        for s in STAGES:
            stages[s].append(getattr(engine.timings, s))
    engine.profile = False
    result = {"ms": {s: statistics.median(v) for s, v in stages.items()}, "eager_frame_ms": summary(stages["total"])}
    mode = engine.set_fast(fast)
    totals = stages["total"]
    if mode != "eager" or engine.device.type == "cuda":
        t = time.perf_counter()
        engine.warm_up(frames[0])  # compiles and captures; falls back to eager if that fails here
        result["warmup_s"] = time.perf_counter() - t
        for f in frames[1:warmup]:
            engine.step(f)
        totals, outs = [], []
        for f in frames:
            t = time.perf_counter()
            outs.append(engine.step(f))
            totals.append(1000 * (time.perf_counter() - t))
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
    result["fast"] = engine.fast
    result["frame_ms"] = summary(totals)
    result["fps"] = 1000 / result["frame_ms"]["median"]
    return result, outs


def time_openvino(engine, frames: list[np.ndarray], warmup: int, precision: str) -> tuple[dict, list[np.ndarray]]:
    """ms per frame of the OpenVINO runner (models.runners.openvino) on the same frames, with conversion time (a
    cache hit makes it small), and torch's ms on each frame in turns with it (torch, OpenVINO, OpenVINO, torch,
    ...), so that their ratio holds while the machine gets busier or quieter. int8 is timed here even where the
    option itself is refused: this is how it is judged."""
    from models.runners.openvino import OpenVINORunner

    t = time.perf_counter()
    runner = OpenVINORunner(precision, prepare=engine.prepare)
    runner.prepare(engine.recipe, engine.prepared())
    result = {"precision": precision, "runs_as": runner.label, "config": {k: str(v) for k, v in runner.config.items()},
              "prepare_s": time.perf_counter() - t}
    for f in frames[:warmup]:
        runner.step(engine.recipe, engine.prepared(), [f])
    totals, torch_totals, outs, stages = [], [], [], {s: [] for s in STAGES}
    for i, f in enumerate(frames):
        for which in ("torch", "openvino") if i % 2 == 0 else ("openvino", "torch"):
            t = time.perf_counter()
            if which == "torch":
                engine.step(f)
                torch_totals.append(1000 * (time.perf_counter() - t))
                continue
            outs.append(runner.step(engine.recipe, engine.prepared(), [f]))
            totals.append(1000 * (time.perf_counter() - t))
            for s in STAGES:
                stages[s].append(getattr(runner.timings, s))
    result["ms"] = {s: statistics.median(v) for s, v in stages.items()}
    result["frame_ms"] = summary(totals)
    result["fps"] = 1000 / result["frame_ms"]["median"]
    result["torch_in_turns_frame_ms"] = summary(torch_totals)
    result["speedup_vs_torch_in_turns"] = result["torch_in_turns_frame_ms"]["median"] / result["frame_ms"]["median"]
    return result, outs


def compare_backends(engine, args, frames: list[np.ndarray], torch_out: list[np.ndarray], report: dict) -> None:
    """OpenVINO fp32 (and int8 with --precision int8) and, with --also-dtype, torch in another dtype, on the
    frames torch just ran, in this run: speed-ups over torch, pixel differences, share of the matmul rate."""
    from models.device import dtype_name
    from models.engine import Engine

    torch_ms = report["ours"]["frame_ms"]["median"]
    rows = {}
    for precision in ("fp32", "int8") if args.precision == "int8" else ("fp32",):
        r, outs = time_openvino(engine, frames, args.warmup, precision)
        r["speedup_vs_torch"] = torch_ms / r["frame_ms"]["median"]
        r["max_pixel_diff_vs_torch"] = int(max(np.abs(a.astype(int) - b).max() for a, b in zip(outs, torch_out)))
        r["mean_pixel_diff_vs_torch"] = float(np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(outs, torch_out)]))
        rows[f"openvino_{precision}"] = r
    if args.also_dtype:
        other = Engine(engine.base, "cpu", args.also_dtype)  # casts the shared modules: OpenVINO is done
        other.set_adapters(engine.adapters, list(engine.adapter_strengths.values()))
        other.set_size(engine.size)
        other.set_prompt(args.prompt)
        r, _ = time_engine(other, frames, args.warmup, "eager")
        rows[f"torch_{dtype_name(other.dtype)}"] = {"frame_ms": r["frame_ms"], "fps": r["fps"], "ms": r["ms"],
                                                     "speedup_vs_torch": torch_ms / r["frame_ms"]["median"]}
    rate = report["machine"]["matmul_gflops"]
    for r in (report["ours"], *rows.values()):
        r["share_of_matmul_rate"] = report["gflop_per_frame"] / (r["frame_ms"]["median"] / 1000) / rate
    report["backends"] = rows


def time_diffusers(engine, args, frames: list[np.ndarray], warmup: int) -> tuple[dict, list[np.ndarray]]:
    import torch
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionPipeline
    from PIL import Image

    from models.device import dtype_name

    dtype = torch.float16 if engine.device.type == "cuda" else torch.float32
    base = str(engine.base.path)
    if engine.adapters:  # several: diffusers' multi-ControlNet, each adapter at its strength
        cn = [ControlNetModel.from_pretrained(str(a.path), dtype=dtype) for a in engine.adapters]
        cn = cn[0] if len(cn) == 1 else cn
        pipe = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=cn, dtype=dtype, safety_checker=None)
    else:
        pipe = StableDiffusionPipeline.from_pretrained(base, dtype=dtype, safety_checker=None)
    pipe.to(engine.device)
    pipe.set_progress_bar_config(disable=True)

    def call(frame):
        n, scales = len(engine.adapters), list(engine.adapter_strengths.values())
        image = Image.fromarray(frame)
        kw = dict(image=image if n == 1 else [image] * n, controlnet_conditioning_scale=scales[0] if n == 1 else scales)
        kw = kw if n else {}
        out = pipe(args.prompt, num_inference_steps=1, guidance_scale=0.0, height=engine.size, width=engine.size,
                   generator=torch.Generator("cpu").manual_seed(engine.seed), output_type="pil", **kw).images[0]
        return np.asarray(out)

    for f in frames[:warmup]:
        call(f)
    times, outs = [], []
    for f in frames:
        t = time.perf_counter()
        outs.append(call(f))
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - t))
    frame_ms = summary(times)
    result = {"frame_ms": frame_ms, "fps": 1000 / frame_ms["median"], "dtype": dtype_name(dtype)}
    return result, outs


def lora_cost(engine, frames: list[np.ndarray], fast: str, rounds: int = 3) -> dict:
    """Per-frame cost of the unfused LoRAs: the same frames with every LoRA layer on and off (the base model's
    own path), alternating so a busy machine's drift falls on both (per frame where nothing is captured, per
    round of frames with a new graph each round, its capture not timed)."""
    import torch

    times: dict[bool, list[float]] = {True: [], False: []}

    def timed(f, on):
        t = time.perf_counter()
        engine.step(f)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        times[on].append(1000 * (time.perf_counter() - t))

    try:
        engine.set_fast(fast)
        if engine.fast in ("eager", "fused"):  # nothing captured: switch every frame, so pairs share the moment
            engine.warm_up(frames[0])
            for r in range(rounds):
                for i, f in enumerate(frames):
                    for on in ((True, False) if (r + i) % 2 == 0 else (False, True)):
                        engine.loras.enable(on)
                        timed(f, on)
        else:  # a graph holds the layers it was captured with: one capture per round
            for r in range(rounds):
                for on in ((True, False) if r % 2 == 0 else (False, True)):
                    engine.loras.enable(on)
                    engine.set_fast(fast)
                    engine.warm_up(frames[0])
                    for f in frames:
                        timed(f, on)
    finally:
        engine.loras.enable(True)
        engine.set_fast(fast)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {"loras": {engine.loras.specs[n]: w for n, w in engine.lora_weights.items()}, "fast": engine.fast,
            "frames_each": len(times[True]), "frame_ms_with": on, "frame_ms_without": off,
            "cost_ms": on - off, "cost_ratio": on / off, "flops_ratio": lora_flops_ratio(engine, frames[0])}


def lora_flops_ratio(engine, frame: np.ndarray) -> float:
    """Arithmetic of one frame with the LoRAs over without (torch's FLOP counter on the eager recipe): what a
    busy machine's timings cannot resolve when the LoRA adds a few per cent."""
    from torch.utils.flop_counter import FlopCounterMode

    mode, flops = engine.fast, {}
    engine.set_fast("eager")
    try:
        for on in (True, False):
            engine.loras.enable(on)
            with FlopCounterMode(display=False) as counter:
                engine.step(frame)
            flops[on] = counter.get_total_flops()
    finally:
        engine.loras.enable(True)
        engine.set_fast(mode)
    return flops[True] / flops[False]


def run(args: argparse.Namespace) -> int:
    import torch

    from app.cli.options import engine_options
    from models.device import dtype_name
    from models.errors import UserError
    from models.opening import open_engine

    if not args.model:
        raise UserError("bench engine needs --model: a hub id, a folder (python -m models.tiny OUT sdxs builds one) or demo")
    if args.frames < 1:
        raise UserError(f"--frames {args.frames} must be at least 1")
    options = engine_options(args)
    if options.precision == "int8" and (options.backend == "torch" or options.device not in ("cpu", "auto")):
        raise UserError("--precision int8 runs on the CPU with OpenVINO only: add --device cpu --backend openvino")
    # opened on torch's eager recipe in fp32 (int8 is OpenVINO's): time_engine switches to --fast itself, and
    # compare_backends times OpenVINO in each precision
    engine = open_engine(replace(options, fast="eager", backend="torch", precision="fp32"))
    engine.set_prompt(args.prompt)
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    frames = sketch_frames(args.frames, engine.size)
    ours, our_out = time_engine(engine, frames, args.warmup, args.fast)
    ours["peak_memory_mb"] = peak_mb(engine.device)
    lora = lora_cost(engine, frames, args.fast) if engine.loras.names else None
    gflop = frame_gflop(engine, frames[0])
    report = {
        "machine": machine(),
        "config": {"model": args.model, "controlnet": ",".join(args.controlnet) or None, "size": engine.size, "frames": args.frames,
                   "device": engine.device.type, "dtype": dtype_name(engine.dtype),
                   "fast": ours["fast"]},
        "ours": ours,
        "gflop_per_frame": gflop,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if lora:
        report["lora"] = lora
    if engine.device.type == "cpu":
        ours["share_of_matmul_rate"] = gflop / (ours["frame_ms"]["median"] / 1000) / report["machine"]["matmul_gflops"]
    if getattr(args, "backend", "torch") != "torch":
        if engine.device.type != "cpu":
            raise UserError("bench --backend openvino measures CPU frames: add --device cpu")
        compare_backends(engine, args, frames, our_out, report)
    if args.compare_diffusers:
        ref, ref_out = time_diffusers(engine, args, frames, args.warmup)
        ref["peak_memory_mb"] = peak_mb(engine.device)
        report["diffusers"] = ref
        report["speedup"] = ref["frame_ms"]["median"] / ours["frame_ms"]["median"]
        if not lora:  # the stock pipeline here runs without the LoRAs
            report["max_pixel_diff"] = int(max(np.abs(a.astype(int) - b).max() for a, b in zip(our_out, ref_out)))
    _print(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _print(r: dict) -> None:
    c, o = r["config"], r["ours"]
    print(f"{c['size']} px, {c['device']} {c['dtype']}, {c['frames']} frames, {r['machine'].get('gpu', r['machine']['cpu'])}")
    print("ours      " + "  ".join(f"{s} {o['ms'][s]:.1f} ms" for s in STAGES))
    print(f"{o['fast']:>9} median {o['frame_ms']['median']:.1f} ms  p99 {o['frame_ms']['p99']:.1f} ms  "
          f"{o['fps']:.1f} FPS  peak {o['peak_memory_mb']:.0f} MB")
    if "lora" in r:
        lo = r["lora"]
        print(f"LoRA      {', '.join(f'{s}:{w:g}' for s, w in lo['loras'].items())}: {lo['frame_ms_with']:.1f} ms with, "
              f"{lo['frame_ms_without']:.1f} ms without: {lo['cost_ms']:+.1f} ms per frame ({lo['cost_ratio']:.2f}x); "
              f"arithmetic {lo['flops_ratio']:.3f}x")
    if "share_of_matmul_rate" in o:
        print(f"frame {r['gflop_per_frame']:.1f} GFLOP; fp32 matmul {r['machine']['matmul_gflops']:.0f} GFLOP/s; "
              f"torch reaches {100 * o['share_of_matmul_rate']:.0f}% of it (load average {r['load_average']:.2f})")
    for name, b in r.get("backends", {}).items():
        diff = f"  max pixel diff {b['max_pixel_diff_vs_torch']}" if "max_pixel_diff_vs_torch" in b else ""
        if "speedup_vs_torch_in_turns" in b:
            diff += (f"  in turns with torch ({b['torch_in_turns_frame_ms']['median']:.1f} ms): "
                     f"{b['speedup_vs_torch_in_turns']:.2f}x, runs as {b['runs_as']}")
        print(f"{name:>15} median {b['frame_ms']['median']:.1f} ms  {b['fps']:.1f} FPS  {b['speedup_vs_torch']:.2f}x torch  "
              f"{100 * b['share_of_matmul_rate']:.0f}% of matmul{diff}")
    if "diffusers" in r:
        d = r["diffusers"]
        print(f"diffusers median {d['frame_ms']['median']:.1f} ms  {d['fps']:.1f} FPS ({d['dtype']})  "
              f"speedup {r['speedup']:.2f}x  max pixel diff {r.get('max_pixel_diff', 'n/a (LoRA)')}")
