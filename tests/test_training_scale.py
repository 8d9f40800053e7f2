"""Training at scale on tiny models: Hugging Face datasets and WebDataset shards as --data, the shard stream split
between processes and resumed, its memory, train-data pack/check, and `accelerate launch --num_processes 2`
on the CPU (gloo) against one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.test_training import config, log_rows, make_images, weights

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def env() -> dict:
    return os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def cli(*argv: str) -> subprocess.CompletedProcess:
    """main.py's main() in this process (what `python main.py ARGV` runs), its output captured."""
    import contextlib
    import io

    from app.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def launch(n: int, *argv: str) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes n main.py ...`: on a machine without a GPU accelerate runs the
    processes on the CPU and joins them with gloo."""
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", str(n), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(29500 + os.getpid() % 1000),
           str(ROOT / "main.py"), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """The same 24 pictures (+ one damaged) as a folder, WebDataset shards of 4 and a Parquet dataset."""
    import datasets

    root = tmp_path_factory.mktemp("scale")
    folder = make_images(root / "photos", n=24)
    result = cli("train-data", "pack", str(folder), str(root / "shards"), "--shard-size", "4")
    assert result.returncode == 0, result.stderr
    files = sorted(folder.glob("img*.png"))
    rows = {"image": [{"bytes": p.read_bytes(), "path": None} for p in files],
            "text": [p.with_suffix(".txt").read_text() for p in files]}
    ds = datasets.Dataset.from_dict(rows, features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")}))
    ds.to_parquet(str(root / "train.parquet"))
    ds.save_to_disk(str(root / "disk"))
    return {"root": root, "folder": folder, "shards": str(root / "shards" / "shard-{000000..000005}.tar"),
            "parquet": str(root / "train.parquet"), "disk": str(root / "disk"), "pack": result.stdout}


def test_pack_writes_shards_with_counts_and_bytes(formats):
    lines = formats["pack"].splitlines()
    assert len(list((formats["root"] / "shards").glob("shard-*.tar"))) == 6  # 24 readable pictures, 4 a shard
    assert lines[0].endswith("4 samples, %.2f MB" % ((formats["root"] / "shards" / "shard-000000.tar").stat().st_size / 2**20))
    assert "24 samples in 6 shards" in lines[-1] and "shard-{000000..000005}.tar" in lines[-1]


@pytest.mark.parametrize("kind", ["folder", "shards", "parquet", "disk"])
def test_check_reports_samples_and_writes_the_condition_grid(formats, kind, tmp_path):
    data = str(formats[kind])
    grid = tmp_path / "grid.png"
    result = cli("train-data", "check", data, "--resolution", "64", "--grid", str(grid), "--grid-count", "3")
    assert result.returncode == 0, result.stderr
    assert ", 24 samples" in result.stdout
    assert "sizes (first" in result.stdout and "88-88 x 72-72 px" in result.stdout
    img = cv2.imread(str(grid))
    assert img.shape[:2] == (3 * 64 + 2 * 4, 2 * 64 + 4)  # 3 rows of picture | canny condition
    cond = img[:64, 68:]
    assert set(np.unique(cond)) <= {0, 255} and (cond == 0).any()  # the trainer's canny: black lines on white


def test_datasets_read_the_same_examples_as_the_folder(formats):
    from training.feed import open_data

    found, folder = open_data(config("x", formats["folder"], formats["root"] / "o1", caption_dropout=0.0))
    for data in (formats["parquet"], formats["disk"]):
        found, ds = open_data(config("x", data, formats["root"] / "o2", caption_dropout=0.0))
        assert found.kind == "dataset" and found.count == 24
        for i in (0, 5, 23):
            a, b = folder.load(i, np.random.default_rng(i)), ds.load(i, np.random.default_rng(i))
            assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["condition"], b["condition"])
            assert a["caption"] == b["caption"] == "a disc"


@pytest.mark.parametrize("flag, value, message", [
    ("image_column", "picture", "--image-column 'picture' is not a column of"),
    ("caption_column", "words", "its columns are image, text"),
])
def test_a_missing_column_lists_the_columns(formats, flag, value, message):
    from models.errors import UserError
    from training.feed import open_data

    with pytest.raises(UserError, match=message):
        open_data(config("x", formats["parquet"], formats["root"] / "o", **{flag: value}))


def test_bad_data_values_are_one_line_before_any_model_loads(formats, tmp_path):
    cases = [
        (["--data", "someone/some-dataset"], "hub is offline (HF_HUB_OFFLINE=1)"),
        (["--data", str(formats["root"] / "shards" / "shard-{000000..000009}.tar")], "4 of its 10 shards do not exist"),
        (["--data", formats["shards"], "--image-column", "tiff"], "--image-column 'tiff': the samples of"),
        (["--data", str(formats["folder"]), "--caption-column", "text"], "is a folder of images: drop it"),
        (["--data", formats["parquet"], "--condition", "paired"], "has no condition column (columns: image, text)"),
    ]
    for extra, message in cases:
        result = cli("train", "--base", str(tmp_path / "no-such-base"), "--out", str(tmp_path / "o"), *extra)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def _stream(urls, rank, world, state=None, buffer=1, size=32):
    from training.data import TrainData
    from training.shards import ShardStream
    from training.sources import Columns

    return ShardStream(urls, TrainData([], "canny", size), Columns(), seed=5, rank=rank, world=world, workers=0,
                       buffer=buffer, state=state)


def _epoch(stream, limit=None):
    """(seeds, last position) of one stream until its epoch ends (or `limit` items)."""
    seeds, last = [], None
    for item in stream:
        if item["position"][1] > 0 or (limit is not None and len(seeds) == limit):
            break
        seeds.append(item["seed"])  # each sample's seed comes from its (shard, index): its identity
        last = item["position"]
    return seeds, last


def test_shards_are_split_between_processes_and_resume_with_another_count(formats):
    from training.shards import merge
    from training.sources import shard_urls

    urls = shard_urls(formats["shards"])
    alone, _ = _epoch(_stream(urls, 0, 1))
    assert len(alone) == len(set(alone)) == 24
    halves = [_epoch(_stream(urls, r, 2))[0] for r in range(2)]
    assert not set(halves[0]) & set(halves[1]) and set(halves[0]) | set(halves[1]) == set(alone)  # each reads its own
    # two processes train 5 examples each, then the run resumes with one process: the rest of the epoch, none twice
    first = [_epoch(_stream(urls, r, 2), limit=5) for r in range(2)]
    state = merge({}, [pos for _, pos in first], len(urls), 5, 2)
    rest, _ = _epoch(_stream(urls, 0, 1, state))
    seen = first[0][0] + first[1][0]
    assert not set(seen) & set(rest) and sorted(seen + rest) == sorted(alone)
    # and the other way round: one process, then two
    head, pos = _epoch(_stream(urls, 0, 1), limit=7)
    state = merge({}, [pos], len(urls), 5, 1)
    tails = [_epoch(_stream(urls, r, 2, state))[0] for r in range(2)]
    assert sorted(head + tails[0] + tails[1]) == sorted(alone)
    # with a shuffle buffer, what sat in it at the checkpoint is not trained again in the epoch either
    head, pos = _epoch(_stream(urls, 0, 1, buffer=6), limit=7)
    rest, _ = _epoch(_stream(urls, 0, 1, merge({}, [pos], len(urls), 5, 1), buffer=6))
    assert not set(head) & set(rest) and len(head) + len(rest) >= 24 - 6


def test_a_damaged_sample_in_a_shard_is_skipped_and_named(formats, tmp_path):
    from webdataset import TarWriter

    good = (formats["folder"] / "img0.png").read_bytes()
    with TarWriter(str(tmp_path / "a.tar"), encoder=False) as tar:
        tar.write({"__key__": "000", "png": good, "txt": b"ok"})
        tar.write({"__key__": "001", "png": b"not a png", "txt": b"bad"})
        tar.write({"__key__": "002", "png": good, "txt": b"ok"})
    items = []
    for item in _stream([str(tmp_path / "a.tar")], 0, 1):
        items.append(item)
        if len(items) == 2:
            break
    assert items[0]["skipped"] == [] and items[1]["skipped"] == [f"{tmp_path / 'a.tar'}#001"]


MEMORY = """
import resource, sys
sys.path.insert(0, {root!r})
import torch
from training.data import TrainData, collate
from training.shards import ShardStream
from training.sources import Columns, shard_urls
stream = ShardStream(shard_urls({pattern!r}), TrainData([], "canny", 32), Columns(), 0, 0, 1, 0, 100)
n, peaks = 0, []
for batch in torch.utils.data.DataLoader(stream, batch_size=50, collate_fn=collate):
    n += len(batch["seeds"])
    if n in (2000, 20000):  # the peak resident size so far, in MB
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    if n == 20000:
        break
print(*peaks)
"""


def test_streaming_memory_stays_flat_over_20000_samples(tmp_path):
    """20,000 pictures of 32 px noise (about 3 KB each as PNG, 62 MB in all) through the stream with a buffer of
    100, in a subprocess: its peak resident size after all of them is within 25 MB of its peak after 2,000
    (measured: 601 and 601 MB, torch and the trainer's modules loaded)."""
    from webdataset import TarWriter

    rng = np.random.default_rng(0)
    tiles = [cv2.imencode(".png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))[1].tobytes() for _ in range(64)]
    for s in range(20):
        with TarWriter(str(tmp_path / f"s-{s:02d}.tar"), encoder=False) as tar:
            for i in range(1000):  # every sample its own bytes: a reader that kept them would grow by 62 MB
                tar.write({"__key__": f"{s:02d}{i:04d}", "png": tiles[(s * 1000 + i) % 64] + bytes(8) + i.to_bytes(4, "little"),
                           "txt": b"noise"})
    code = MEMORY.format(root=str(ROOT), pattern=str(tmp_path / "s-{00..19}.tar"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    early, late = map(int, result.stdout.split())
    print(f"peak RSS after 2,000 samples {early} MB, after 20,000 {late} MB")
    assert late - early < 25, (early, late)


# ---- several processes: accelerate launch on the CPU ------------------------------------------------------------

STEPS = dict(steps=4, checkpoint_every=2, keep_checkpoints=3, adversarial_weight=0.0, validation_images=1, lr=3e-3,
             lr_schedule="cosine", lr_warmup=1)  # a schedule that moves: a resume with another process count keeps its place


def argv(base: str, data, out: Path, batch: int, **extra) -> list[str]:
    from training.runs import train_argv

    cfg = config(base, data, out, batch_size=batch, **(STEPS | extra))
    return [*train_argv(cfg, progress=True)[1:], "--threads", "1"]


@pytest.fixture(scope="module")
def one_and_two(tiny_base, formats):
    """A 1-process run of batch 4 (in this process) and a 2-process run of batch 2 each (accelerate launch), same seed."""
    from training.train import train

    root = formats["root"]
    one = root / "one"
    assert train(config(tiny_base, formats["folder"], one, batch_size=4, **STEPS)) == 0
    two = root / "two"
    result = launch(2, "train", *argv(tiny_base, formats["folder"], two, 2))
    assert result.returncode == 0, result.stderr[-3000:]
    return one, two, result


def test_two_processes_follow_one_with_the_same_global_batch(one_and_two):
    """Measured: the losses of the two runs agree to 2e-7 relative, the adapters' weights to 1e-6 (float32
    summation order); the test allows 1e-4 and 1e-4."""
    one, two, _ = one_and_two
    a = [r for r in log_rows(one) if "loss" in r]
    b = [r for r in log_rows(two) if "loss" in r]
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        assert abs(ra["loss"] - rb["loss"]) <= 1e-4 * abs(ra["loss"]), (ra, rb)
    wa, wb = weights(one / "adapter"), weights(two / "adapter")
    moved = weights(one / "checkpoints" / "checkpoint-2" / "adapter")
    assert same_weights(wa, wb, moved)


def same_weights(a: dict, b: dict, earlier: dict, tolerance: float = 0.02) -> bool:
    """a and b differ by less than `tolerance` of how far a moved since `earlier` (L2 over all weights). AdamW
    normalises each gradient, so a weight whose gradient is float noise moves by up to the learning rate either
    way: an elementwise tolerance would be as large as the steps themselves."""
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5
    move = sum(float(((a[k] - earlier[k]) ** 2).sum()) for k in a) ** 0.5
    print(f"weights differ by {diff:.3g}, {diff / move:.3g} of the last steps' movement {move:.3g}")
    return move > 0 and diff < tolerance * move


def test_two_processes_print_one_progress_stream_and_write_one_checkpoint(one_and_two):
    _, two, result = one_and_two
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds.count("checkpoint") == 2
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]
    assert "2 process(es)" in result.stderr
    folders = sorted(p.name for p in (two / "checkpoints").iterdir())
    assert folders == ["checkpoint-2", "checkpoint-4"]  # no second copy, no leftover of another process
    state = json.loads((two / "checkpoints" / "checkpoint-2" / "data_state.json").read_text())
    assert state == {"kind": "map", "seen": 8, "examples": 24}


def test_a_two_process_checkpoint_resumes_with_one_and_loads_in_generate(one_and_two, tiny_base, formats, tmp_path):
    from app.cli.main import main
    from models.loading import load_adapter
    from training.train import train

    one, two, _ = one_and_two
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(two / "checkpoints" / "checkpoint-2", out / "checkpoints" / "checkpoint-2")
    assert train(config(tiny_base, formats["folder"], out, batch_size=4, resume="latest", **STEPS)) == 0
    assert same_weights(weights(one / "adapter"), weights(out / "adapter"), weights(one / "checkpoints" / "checkpoint-2" / "adapter"))
    adapter = two / "checkpoints" / "checkpoint-4" / "adapter"
    assert load_adapter(str(adapter)).info.condition == "canny"  # the window's loader (models.loading)
    image = tmp_path / "sketch.png"
    cv2.imwrite(str(image), cv2.circle(np.full((64, 64, 3), 255, np.uint8), (32, 32), 15, (0, 0, 0), 2))
    assert main(["generate", "--model", tiny_base, "--controlnet", str(adapter), "--image", str(image),
                 "--prompt", "a disc", "--out", str(tmp_path / "out.png")]) == 0
    assert cv2.imread(str(tmp_path / "out.png")).ndim == 3


def test_a_one_process_checkpoint_resumes_with_two_on_shards(tiny_base, formats):
    """1 process trains 2 steps of 4 on the shards, 2 processes continue to step 4 (batch 2 each): the data state
    shows every process's stream, and no shard was read twice within the epoch."""
    from training.train import train

    out = formats["root"] / "shards-run"
    assert train(config(tiny_base, formats["shards"], out, batch_size=4, shuffle_buffer=1, **STEPS | {"steps": 2})) == 0
    first = json.loads((out / "checkpoints" / "checkpoint-2" / "data_state.json").read_text())
    assert first["kind"] == "shards" and sum(1 for v in first["offsets"]["0"].values() if v == -1) == 1  # 8 of 24 read
    result = launch(2, "train", *argv(tiny_base, formats["shards"], out, 2, resume="latest", shuffle_buffer=1))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stderr and "2 process(es)" in result.stderr
    state = json.loads((out / "checkpoints" / "checkpoint-4" / "data_state.json").read_text())
    done = [k for k, v in state["offsets"]["0"].items() if v == -1]
    partial = {k: v for k, v in state["offsets"]["0"].items() if v != -1}
    assert 4 * len(done) + sum(partial.values()) == 16  # 4 steps x 4 examples: each read once
