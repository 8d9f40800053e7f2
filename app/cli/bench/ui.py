"""`python main.py bench ui` and `python main.py bench endurance`: the window's responsiveness and its
long-run stability, measured by app/ui/bench.py (the window under Qt) and reported here.

ui: an engine that takes --ui-delay s a frame (app.live.testing.stand_in: the real engine on a stand-in runner; with --model, that real model)
behind the real window; a stroke is drawn on the canvas at 60 Hz through mouse events for --ui-seconds, while
every stroke change is offered to the frame path (newest wins). Reported: the intervals between canvas repaints (p50,
p95, max); p95 must stay <= 33 ms.

endurance: --frames frames (default 10000 when the kind is endurance) from a looping video through the
window's Pipeline and worker with a tiny real model (or --model); resident memory after 500 frames vs at the
end (within 5%), thread count and open file handles at both points (they must not grow).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from app.ui import bench

    if args.kind == "ui":
        data = bench.measure_ui(args)
        rows = ui_rows(args, data)
    else:
        data = bench.measure_endurance(args)
        rows = endurance_rows(data)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if data["pass"] else 1


def ui_rows(args: argparse.Namespace, data: dict) -> list[tuple[str, str]]:
    iv = data["repaint_interval_ms"]
    engine = f"{args.model} at {data['size']} px" if args.model else f"stand-in, {data['engine_delay_s']:.2f} s a frame"
    return [
        ("engine", engine), ("stroke", f"{data['mouse_moves']} mouse moves at 60 Hz over {data['seconds']:.1f} s"),
        ("repaints", str(data["repaints"])), ("repaint interval p50", f"{iv['p50']:.1f} ms"),
        ("repaint interval p95", f"{iv['p95']:.1f} ms (must be <= 33)"), ("repaint interval max", f"{iv['max']:.1f} ms"),
        ("frames sent / rendered", f"{data['frames_sent']} / {data['engine_frames']} (newer strokes replaced {data['relay_dropped']} pending)"),
        ("result", "PASS" if data["pass"] else "FAIL"),
    ]


def endurance_rows(data: dict) -> list[tuple[str, str]]:
    first, end = data["at_warmup"], data["at_end"]
    return [
        ("frames", f"{end['frames']} in {end['seconds']:.0f} s ({data['fps']:.1f} fps), video looped {data['video_loops']} times"),
        ("model", f"{data['model']} at {data['size']} px on {data['device']} {data['dtype']}"),
        (f"rss after {first['frames']}", f"{first['rss_mb']:.1f} MB"),
        ("rss at end", f"{end['rss_mb']:.1f} MB ({data['rss_growth_percent']:+.2f}%, must be <= +5%)"),
        ("threads", f"{first['threads']} -> {end['threads']}"), ("open files", f"{first['fds']} -> {end['fds']}"),
        ("result", "PASS" if data["pass"] else "FAIL"),
    ]
