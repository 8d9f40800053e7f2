"""`python main.py bench remote`: the engine here vs the same engine behind serve-engine on loopback.

Two processes, the same model (the demo model by default), one run: a drawing that changes every frame (a bar moving
across, so no frame is reused) goes through the local LiveLoop, then the same drawing through a RemoteEngine
to `serve-engine` on 127.0.0.1 (its own process with the same model, as on a GPU box; real aiortc both ends),
frame by frame in turn, so both paths see the same load on a shared CPU; 3 x --frames frames each. Per size (--remote-sizes, default 256,512):

    fps            frames / seconds, local and remote, and their ratio (the floor: remote >= 0.8 of local at 256 px)
    latency p50/95 capture (the frame made) to picture (decoded here), ms; added p95 = remote p95 - local p95
                   (the floor: <= 30 ms at 256 px)
    overhead       remote latency minus the server's engine time (LiveLoop.process): what the network path adds
                   (encode, send, decode), p50/p95 ms, free of the engine's own ups and downs on a busy CPU
    bytes          per frame: the drawing to the server (PNG, lossless) and the picture back (JPEG q90)

Then, per size, the same server's browser page in a real headless Chromium (browser.py): a hand drawing without
pause, the page sending its newest drawing whenever the last picture is back; fps, latency from the drawing grabbed
(capture) and from its first unsent stroke (stroke) to the picture on the page, overhead, bytes, as the page counts
them. Skipped, with the reason in the JSON, where Chromium is missing or the run fails.

--remote-impair DELAY_MS,LOSS_PCT puts both clients behind impaired.py's relay (every datagram delayed, some dropped,
each way), for a kernel without netem; the rows then also say the latency's max and its first and last thirds'
medians (a queue would show as growth) and how many datagrams the relay carried and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from app.cli.bench import browser
from app.cli.bench.impaired import ImpairedLink
from app.cli.bench.impaired import parse as parse_impairment
from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from models.errors import UserError

PROMPT = "a house by a lake"
ROUNDS = 3  # frames measured = --frames x ROUNDS per path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remote-sizes", default="256,512", help="remote: sizes to measure, comma-separated (default 256,512)")
    p.add_argument("--remote-impair", default="", metavar="DELAY_MS,LOSS_PCT",
                   help="remote: put the clients behind a relay that delays every datagram by DELAY_MS and drops "
                        "LOSS_PCT %% each way (e.g. 100,2; app/cli/bench/impaired.py, for a kernel without netem)")


def drawing(i: int, size: int) -> np.ndarray:
    """A sketch: a frame, and a bar that moves a little each frame."""
    img = np.full((size, size, 3), 255, np.uint8)
    s = size // 16
    img[s:s + 3, s:-s] = img[-s - 3:-s, s:-s] = img[s:-s, s:s + 3] = img[s:-s, -s - 3:-s] = 0
    x = 2 * s + (i * 3) % (size - 5 * s)
    img[3 * s:-3 * s, x:x + 4] = 0
    return img


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


def serve(args: argparse.Namespace, model: str, adapter: list[str], size: int, token: str) -> tuple[subprocess.Popen, str]:
    """`serve-engine` with the same model in its own process, as a GPU box runs it; (process, url)."""
    cmd = [sys.executable, str(Path(__file__).resolve().parents[3] / "main.py"), "serve-engine", "--model", model,
           "--size", str(size), "--device", args.device, "--dtype", args.dtype, "--fast", args.fast,
           "--listen", "127.0.0.1:0", "--token", token, "--prompt", PROMPT, *[a for c in adapter for a in ("--controlnet", c)]]
    import torch

    threads = str(torch.get_num_threads())  # the same CPU threads as the local engine (OMP_NUM_THREADS=1 on a busy CPU)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": threads})
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.kill()
        raise UserError(f"serve-engine did not start: {line.strip() or 'no output'}")
    return proc, line.split(" at ", 1)[1].split(";", 1)[0]


def measure(args: argparse.Namespace, engine, model: str, adapter: list[str], size: int, frames: int) -> dict:
    from app.remote.client import RemoteEngine

    token = "bench-" + "x" * 20
    settings = LiveSettings(prompt=PROMPT, size=size, adapters=engine.adapter_strengths, steady=None)
    local = LiveLoop(engine, settings, engine.fast)
    proc, url = serve(args, model, adapter, size, token)
    link = None
    if args.remote_impair:  # the clients talk to the server through the impaired link
        link = ImpairedLink(url, parse_impairment(args.remote_impair))
        url = link.start()
    remote = RemoteEngine(url, token).connect()
    seen = {"local": {"lat": [], "sec": 0.0}, "remote": {"lat": [], "sec": 0.0, "out": [], "in": [], "over": []}}
    n = 0
    try:
        for warm in range(2):  # the first frames pay for caches on both paths
            local.process(Frame(drawing(n + warm, size), time.perf_counter(), True, warm))
            remote.step(Frame(drawing(n + warm + 1, size), time.perf_counter(), True, warm), settings)
        n = 10
        for _ in range(frames * ROUNDS):  # one local frame, one remote frame: both see the same load
            n += 1
            t0 = time.perf_counter()
            f = Frame(drawing(n, size), t0, True, n)
            r = local.process(f)
            seen["local"]["lat"].append(1000 * (time.perf_counter() - f.captured))
            seen["local"]["sec"] += time.perf_counter() - t0
            assert not r.reused
            t0 = time.perf_counter()
            p = remote.step(Frame(drawing(n, size), t0, True, n), settings)
            seen["remote"]["sec"] += time.perf_counter() - t0
            seen["remote"]["lat"].append(p.latency_ms)
            seen["remote"]["out"].append(p.bytes_out)
            seen["remote"]["in"].append(p.bytes_in)
            seen["remote"]["over"].append(p.latency_ms - p.engine_ms)
        remote.close()  # the server lets the client go; the page (retrying while busy) takes its place
        browser_row = browser.measure(f"{url}/#token={token}", frames * ROUNDS)
    finally:
        remote.close()
        if link is not None:
            link.stop()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    row = {}
    for kind, s in seen.items():
        row[kind] = {"fps": round(len(s["lat"]) / s["sec"], 2), "latency_p50_ms": round(percentile(s["lat"], 50), 1),
                     "latency_p95_ms": round(percentile(s["lat"], 95), 1)}
    r = seen["remote"]
    third = max(1, len(r["lat"]) // 3)  # a queue would show as latency growing from the first third to the last
    row["remote"].update(latency_max_ms=round(max(r["lat"]), 1), latency_first_third_p50_ms=round(percentile(r["lat"][:third], 50), 1),
                         latency_last_third_p50_ms=round(percentile(r["lat"][-third:], 50), 1))
    row["remote"].update(bytes_up_per_frame=int(np.mean(r["out"])), bytes_down_per_frame=int(np.mean(r["in"])),
                         rtt_ms=round(remote.rtt_ms, 2), overhead_p50_ms=round(percentile(r["over"], 50), 1),
                         overhead_p95_ms=round(percentile(r["over"], 95), 1))
    row["fps_ratio"] = round(row["remote"]["fps"] / row["local"]["fps"], 3)
    row["added_p95_ms"] = round(row["remote"]["latency_p95_ms"] - row["local"]["latency_p95_ms"], 1)
    row["frames"] = frames * ROUNDS
    row["browser"] = browser_row
    if link is not None:
        row["link"] = {"delay_ms": link.impairment.delay_ms, "loss": link.impairment.loss, "sessions": link.counts.sessions,
                       "datagrams_relayed": link.counts.forwarded, "datagrams_dropped": link.counts.dropped}
    if "fps" in browser_row:
        row["browser_fps_ratio"] = round(browser_row["fps"] / row["local"]["fps"], 3)
        row["browser_added_p95_ms"] = round(browser_row["latency_p95_ms"] - row["local"]["latency_p95_ms"], 1)
    return row


def run(args: argparse.Namespace) -> int:
    from app.cli.bench.machine import machine
    from models.opening import EngineOptions, open_engine

    try:
        sizes = [int(s) for s in args.remote_sizes.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--remote-sizes {args.remote_sizes!r}: use sizes like 256,512") from None
    model = args.model or "demo"
    adapter = list(args.controlnet) or (["demo"] if model == "demo" else [])
    engine = open_engine(EngineOptions(model=model, controlnets=tuple(adapter), size=sizes[0], device=args.device,
                                       dtype=args.dtype, fast=args.fast))
    import torch

    result = {"machine": machine(), "config": {"model": model, "controlnet": adapter, "device": str(engine.device),
                                               "fast": engine.fast, "torch_threads": torch.get_num_threads()}, "sizes": {}}
    if args.remote_impair:
        result["config"]["impairment"] = vars(parse_impairment(args.remote_impair))
    print(f"{model} on {engine.device} ({engine.fast}, {torch.get_num_threads()} torch threads each), {args.frames} x {ROUNDS} "
          f"frames per path and size, loopback{' through the impaired link ' + args.remote_impair if args.remote_impair else ''}")
    print(f"{'size':>5}  {'local fps':>9}  {'remote fps':>10}  {'ratio':>5}  {'local p50/p95':>13}  {'remote p50/p95':>14}  "
          f"{'added p95':>9}  {'overhead p50/p95':>16}  {'up B/frame':>10}  {'down B/frame':>12}")
    for size in sizes:
        row = result["sizes"][size] = measure(args, engine, model, adapter, size, args.frames)
        lo, re = row["local"], row["remote"]
        print(f"{size:>5}  {lo['fps']:>9.2f}  {re['fps']:>10.2f}  {row['fps_ratio']:>5.2f}  "
              f"{lo['latency_p50_ms']:>6.1f}/{lo['latency_p95_ms']:<6.1f}  {re['latency_p50_ms']:>7.1f}/{re['latency_p95_ms']:<6.1f}  "
              f"{row['added_p95_ms']:>9.1f}  {re['overhead_p50_ms']:>8.1f}/{re['overhead_p95_ms']:<7.1f}  {re['bytes_up_per_frame']:>10}  {re['bytes_down_per_frame']:>12}")
        b = row["browser"]
        if "skipped" in b:
            print(f"{size:>5}  browser page: skipped: {b['skipped']}")
        else:
            print(f"{size:>5}  browser page: {b['fps']:.2f} fps ({row['browser_fps_ratio']:.2f} of local), capture p50/p95 "
                  f"{b['latency_p50_ms']:.1f}/{b['latency_p95_ms']:.1f} ms (added p95 {row['browser_added_p95_ms']:.1f}), stroke "
                  f"p50/p95 {b['stroke_latency_p50_ms']:.1f}/{b['stroke_latency_p95_ms']:.1f} ms, overhead p50/p95 "
                  f"{b['overhead_p50_ms']:.1f}/{b['overhead_p95_ms']:.1f} ms, {b['bytes_up_per_frame']} B up, "
                  f"{b['bytes_down_per_frame']} B down per frame")
    first = result["sizes"].get(256)
    if first:
        result["meets_floors_at_256"] = bool(first["fps_ratio"] >= 0.8 and first["added_p95_ms"] <= 30)
        print(f"floors at 256 px (remote >= 0.8 of local fps, <= 30 ms added p95), window path: {result['meets_floors_at_256']}")
        if "browser_fps_ratio" in first:  # the page ran after the other two: a different moment of a shared CPU's load
            result["browser_meets_floors_at_256"] = bool(first["browser_fps_ratio"] >= 0.8 and first["browser_added_p95_ms"] <= 30)
            print(f"  browser page: {result['browser_meets_floors_at_256']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.json).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.json)
        print(f"wrote {args.json}")
    return 0
