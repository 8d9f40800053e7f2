"""Training data at scale on this machine's CPU: the data formats' throughput on the same pictures, and the loss
curves of 1 process (batch 4) and `accelerate launch` with 2 processes (batch 2 each), same seed.

    python -m bench.scale --out bench/results/train/scale-cpu.json [--pictures 240 --rounds 3 --steps 12]

Throughput is the data pipeline the trainer runs (decode, resize, crop, canny, collate; loader workers 0, batch
8, 256 px) for a folder, a Parquet dataset and WebDataset shards made from the same pictures, measured in
interleaved rounds (the machine is shared: compare the ratios within one run). The loss curves use the tiny
test model at 64 px, regression only (identical batches and noise: the curves should agree to float error) and
with the default adversarial term (its discriminator's re-noising is drawn per process: they only follow).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def pictures(folder: Path, n: int) -> Path:
    """n 384x320 PNG pictures (discs, boxes and noise) with captions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(150, 256, (320, 384, 3), dtype=np.uint8)
        for _ in range(4):
            c = tuple(int(x) for x in rng.integers(0, 200, 3))
            cv2.circle(img, (int(rng.integers(0, 384)), int(rng.integers(0, 320))), int(rng.integers(20, 90)), c, -1)
        cv2.rectangle(img, (10, 10), (int(rng.integers(60, 380)), int(rng.integers(60, 310))), (0, 0, 0), 3)
        cv2.imwrite(str(folder / f"p{i:05d}.png"), img)
        (folder / f"p{i:05d}.txt").write_text(f"picture {i}")
    return folder


def throughput(data: str, samples: int) -> float:
    import torch

    from training.config import TrainConfig
    from training.feed import Feed, load_data

    cfg = TrainConfig("x", data, "", resolution=256, batch_size=8, workers=0, validation_images=0, shuffle_buffer=64)
    found, dataset, _ = load_data(cfg)
    loader = Feed(cfg, found, dataset, {}, 0, 0, 1).loader()
    torch.set_num_threads(1)
    n, t0 = 0, time.perf_counter()
    for batch in loader:
        n += len(batch["seeds"])
        if n >= samples:
            break
    return n / (time.perf_counter() - t0)


def curves(base: str, data: str, root: Path, steps: int, adversarial: float) -> dict:
    runs = {}
    for procs, batch in ((1, 4), (2, 2)):
        out = root / f"run-{procs}-{adversarial}"
        args = ["train", "--base", base, "--data", data, "--out", str(out), "--resolution", "64", "--batch-size", str(batch),
                "--steps", str(steps), "--checkpoint-every", str(steps), "--validate-every", "0", "--validation-images", "1",
                "--workers", "0", "--device", "cpu", "--threads", "1", "--lr", "1e-3", "--lr-warmup", "0", "--seed", "3",
                "--adversarial-weight", str(adversarial), "--adversarial-warmup", str(steps // 3), "--progress", "jsonl"]
        if procs == 1:
            cmd = [sys.executable, str(ROOT / "main.py"), *args]
        else:
            cmd = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "main.py"), *args]
        env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
        if result.returncode:
            raise SystemExit(result.stderr[-2000:])
        rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        runs[f"{procs}x{batch}"] = [round(r["loss"], 6) for r in rows if "loss" in r]
    a, b = runs["1x4"], runs["2x2"]
    runs["max_relative_difference"] = max(abs(x - y) / abs(x) for x, y in zip(a, b))
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results/train/scale-cpu.json")
    p.add_argument("--pictures", type=int, default=240)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from models.loading import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = pictures(root / "photos", args.pictures)
        from app.cli.main import main as cli

        assert cli(["train-data", "pack", str(folder), str(root / "shards"), "--shard-size", "40"]) == 0
        import datasets

        files = sorted(folder.glob("*.png"))
        datasets.Dataset.from_dict({"image": [{"bytes": f.read_bytes(), "path": None} for f in files],
                                    "text": [f.with_suffix(".txt").read_text() for f in files]},
                                   features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
                                   ).to_parquet(str(root / "train.parquet"))
        formats = {"folder": str(folder), "dataset (parquet)": str(root / "train.parquet"),
                   "shards": str(root / "shards")}  # a folder of .tar files
        rates: dict[str, list[float]] = {k: [] for k in formats}
        for _ in range(args.rounds):
            for name, data in formats.items():
                rates[name].append(round(throughput(data, args.pictures), 1))
        median = {k: float(np.median(v)) for k, v in rates.items()}
        from models.tiny import save_base

        save_base(root / "base", "tiny", seed=0)
        small = root / "small"
        small.mkdir()
        for f in files[:48]:  # the loss curves: 96 px copies, so the tiny model's steps dominate less
            cv2.imwrite(str(small / f.name), cv2.resize(cv2.imread(str(f)), (96, 80), interpolation=cv2.INTER_AREA))
            (small / f.with_suffix(".txt").name).write_text(f.with_suffix(".txt").read_text())
        result = {
            "machine": "this session's 2-core CPU, shared with other work (load varies)",
            "command": "python -m bench.scale " + " ".join(sys.argv[1:]),
            "throughput_samples_per_s": {"rounds": rates, "median": median,
                                         "ratio_to_folder": {k: round(v / median["folder"], 2) for k, v in median.items()},
                                         "setup": f"{args.pictures} PNG pictures 384x320, 256 px crops, canny, batch 8, workers 0"},
            "loss_curves": {"regression": curves(str(root / "base"), str(small), root, args.steps, 0.0),
                            "adversarial_default": curves(str(root / "base"), str(small), root, args.steps, 0.1)},
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
