"""Files at the edges: full and read-only disks, recordings that never lie, damaged checkpoints.

Disks are real: a small tmpfs mounted by the test (skipped with the reason where mounting is not permitted),
made read-only with a remount; "full" is a filler file that takes the room another program would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import main
from app.live.testing import count_frames, write_test_video
from models.errors import UserError
from tests.checks import one_line


def mount_tmpfs(folder: Path, size: str, read_only: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'mount failed'}; it needs root)")
    if read_only:
        r = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
        if r.returncode:
            subprocess.run(["umount", "-l", str(folder)])
            pytest.skip(f"cannot remount a tmpfs read-only here ({r.stderr.strip()})")
    return folder


@pytest.fixture()
def disk(tmp_path):
    """disk(size, read_only=False) -> a freshly mounted tmpfs folder; unmounted afterwards."""
    mounted = []

    def make(size: str = "20m", read_only: bool = False) -> Path:
        folder = mount_tmpfs(tmp_path / f"disk{len(mounted)}", size, read_only)
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Take all but `leave` bytes of folder's disk with one file, as another program filling it would."""
    filler = folder / "filler"
    want = shutil.disk_usage(folder).free - leave
    with open(filler, "ab") as f:
        while want > 0:
            try:
                os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, want)
                break
            except OSError:
                want -= 4096
    return filler


def played(path: Path) -> int:
    """Frames a player decodes from the file: ffprobe (FFmpeg's own reader) where installed, else OpenCV's."""
    if shutil.which("ffprobe"):
        r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
        return int(r.stdout.strip() or 0) if r.returncode == 0 else 0
    return count_frames(path)


@pytest.fixture()
def no_model(monkeypatch):
    """Any model load fails the test: the checks under test must come first."""
    import app.cli.bench.engine
    import training.train
    from models.engine import Engine

    def loaded(*a, **k):
        raise AssertionError("a model was loaded before the check")

    monkeypatch.setattr(Engine, "load", loaded)
    monkeypatch.setattr(training.train, "train", loaded)
    monkeypatch.setattr(app.cli.bench.engine, "run", loaded)


def outputs(tiny_base: str, folder: Path, video: Path, data: Path) -> dict[str, list[str]]:
    """Every command's output option pointed into folder."""
    return {
        "generate --out": ["generate", "--model", tiny_base, "--size", "64", "--out", str(folder / "o.png")],
        "stream --out": ["stream", "--model", tiny_base, "--size", "64", "--input", str(video), "--out", str(folder / "o.mp4")],
        "train --out": ["train", "--base", tiny_base, "--data", str(data), "--out", str(folder / "run"), "--resolution", "64"],
        "bench --json": ["bench", "engine", "--model", tiny_base, "--json", str(folder / "b.json")],
    }


@pytest.fixture()
def inputs(tmp_path, sketch_image):
    from models.imageio import write_rgb

    data = tmp_path / "data"
    data.mkdir()
    write_rgb(data / "a.png", sketch_image)
    return write_test_video(tmp_path / "in.mp4", frames=4, size=64, fps=10), data


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_every_output_is_checked_before_any_model_loads(kind, disk, inputs, tiny_base, capsys, no_model):
    folder = disk("20m", read_only=True) if kind == "read-only" else disk("512k")
    video, data = inputs
    for what, argv in outputs(tiny_base, folder, video, data).items():
        code = main.main(argv)
        err = capsys.readouterr().err
        one_line(code, err, "read-only" if kind == "read-only" else "free")
        assert what.split()[1] in err or str(folder) in err, (what, err)
    assert [p.name for p in folder.iterdir()] == []  # nothing written, not even a hidden temporary file


def test_demo_builder_checks_its_output_first(disk, tmp_path, capsys, monkeypatch):
    from training.demo import build

    monkeypatch.setattr(build, "stage_data", lambda *a: (_ for _ in ()).throw(AssertionError("the build started")))
    folder = disk("20m", read_only=True)
    one_line(build.main(["--out", str(folder / "demo"), "--work", str(tmp_path / "work")]), capsys.readouterr().err,
             "--out", "read-only")


def test_image_write_failure_is_one_line_and_leaves_nothing(disk, sketch_image):
    """write_rgb past its checks (the disk turned read-only meanwhile): a UserError, no temporary file."""
    from models.imageio import write_rgb

    folder = disk("20m")
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    with pytest.raises(UserError, match="read-only"):
        write_rgb(folder / "x.png", sketch_image)
    assert list(folder.iterdir()) == []


def noise(n: int, size: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def test_recorder_on_a_disk_that_fills_keeps_a_playable_file_of_the_frames_so_far(disk):
    from app.live.recorder import Recorder, RecordingError

    folder = disk("20m")
    rec = Recorder(folder / "r.mp4", fps=10)
    frames = noise(10_000)
    for _ in range(5):
        rec.write(next(frames))
    fill(folder, leave=4 * 2**20)  # below the recorder's reserve: it stops at the next frame and finalizes
    with pytest.raises(RecordingError, match="the disk is full") as caught:
        for frame in frames:
            rec.write(frame)
    assert caught.value.kept == folder / "r.mp4" and caught.value.frames == 5
    assert played(folder / "r.mp4") == 5  # finalized: a player reads every frame written
    assert rec.close() == folder / "r.mp4"
    assert sorted(p.name for p in folder.iterdir()) == ["filler", "r.mp4"]


def test_recorder_that_runs_out_of_every_byte_keeps_the_fragments_already_written(disk):
    """No reserve left (another program took every byte): the last fragment cannot be finished, but the
    fragmented file's earlier fragments play; they are kept, counted and named, and nothing else is left."""
    from app.live.recorder import Recorder, RecordingError

    folder = disk("20m")
    rec = Recorder(folder / "r.mp4", fps=10, reserve=0)
    with pytest.raises(RecordingError) as caught:
        for frame in noise(10_000, 320):
            rec.write(frame)
        rec.close()
    assert "disk is full" in str(caught.value) and caught.value.kept == folder / "r.mp4"
    assert played(folder / "r.mp4") == caught.value.frames > 0
    assert f"the {caught.value.frames} frames so far are kept" in str(caught.value)
    assert list(folder.iterdir()) == [folder / "r.mp4"]


def test_recorder_on_a_disk_already_full_blames_the_disk_not_the_encoder(disk):
    from app.live.recorder import Recorder

    folder = disk("20m")
    rec = Recorder(folder / "r.mp4")  # room when it started
    fill(folder)
    with pytest.raises(UserError) as caught:
        rec.write(next(noise(1)))
    assert "disk is full" in str(caught.value) and "mp4v" not in str(caught.value)
    with pytest.raises(UserError, match="free"):  # and a new one refuses at once
        Recorder(folder / "s.mp4")
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]


@pytest.mark.parametrize("leave", [4 * 2**20, 0])
def test_stream_on_a_disk_that_fills_stops_with_one_line(leave, disk, tmp_path, tiny_base, capsys):
    """The issue's case: exit 2, one line naming the file and the cause, and a playable file of the frames so far
    (room left to finalize it) or nothing (none left), never exit 0 over an unplayable file."""
    folder = disk("20m")
    video = write_test_video(tmp_path / "in.mp4", frames=400, size=96, fps=25)
    out = folder / "live.mp4"

    def filler():
        for _ in range(6000):
            temps = list(folder.glob("*.recording.mp4"))
            if temps and temps[0].stat().st_size > 0:  # frames are going in
                fill(folder, leave)
                return
            time.sleep(0.01)

    t = threading.Thread(target=filler)
    t.start()
    code = main.main(["stream", "--model", tiny_base, "--size", "64", "--input", str(video), "--out", str(out), "--side-by-side"])
    t.join()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    one_line(code, err, str(out), "the disk is full")
    if out.exists():
        n = int(re.search(r"the (\d+) frames so far are kept", err).group(1))
        assert n > 0 and played(out) == n
    else:
        assert "nothing was kept" in err
    assert sorted(p.name for p in folder.iterdir()) == ["filler"] + (["live.mp4"] if out.exists() else [])


# ---- damaged checkpoints -----------------------------------------------------------------------------


def fake_checkpoint(root: Path, step: int) -> Path:
    import json

    import torch
    from safetensors.torch import save_file

    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.full((64, 64), float(step))}, str(folder / "model.safetensors"))
    torch.save({"step": step}, folder / "optimizer.bin")
    (folder / "state.json").write_text(json.dumps({"step": step}))
    return folder


def truncate(path: Path, keep: int = 200) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_resume_latest_skips_a_damaged_newest_checkpoint(tmp_path):
    from training.checkpoints import pick_resume

    root = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        fake_checkpoint(root, step)
    truncate(root / "checkpoint-6" / "model.safetensors")
    truncate(root / "checkpoint-4" / "optimizer.bin", 20)
    path, note = pick_resume("latest", root)
    assert path == root / "checkpoint-2"
    assert "checkpoint-6 (model.safetensors is truncated" in note and "checkpoint-4 (optimizer.bin" in note
    assert "\n" not in note


def test_resume_path_to_a_damaged_checkpoint_says_it_is_damaged(tmp_path):
    from training.checkpoints import pick_resume

    root = tmp_path / "checkpoints"
    fake_checkpoint(root, 2)
    truncate(fake_checkpoint(root, 4) / "model.safetensors")
    with pytest.raises(UserError, match="damaged: model.safetensors is truncated") as caught:
        pick_resume(str(root / "checkpoint-4"), root)
    assert "--base" not in str(caught.value)
    assert pick_resume("checkpoint-2", root) == (root / "checkpoint-2", "")


def test_train_resume_latest_over_a_truncated_checkpoint(tmp_path, tiny_base, sketch_image, capsys):
    """The issue's case end to end: two checkpoints, the newest truncated; --resume latest names it and goes on."""
    from models.imageio import write_rgb

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        write_rgb(data / f"{i}.png", np.roll(sketch_image, 9 * i, axis=1))
    out = tmp_path / "run"
    argv = ["train", "--base", tiny_base, "--data", str(data), "--out", str(out), "--resolution", "64", "--batch-size", "1",
            "--lr-warmup", "0", "--checkpoint-every", "1", "--keep-checkpoints", "3", "--validate-every", "0",
            "--validation-images", "0", "--workers", "0", "--device", "cpu", "--threads", "1", "--progress", "jsonl"]
    assert main.main([*argv, "--steps", "2"]) == 0
    truncate(out / "checkpoints" / "checkpoint-2" / "model.safetensors", 5000)
    capsys.readouterr()
    code = main.main([*argv, "--steps", "3", "--resume", str(out / "checkpoints" / "checkpoint-2")])
    one_line(code, capsys.readouterr().err, "damaged", "checkpoint-2")
    code = main.main([*argv, "--steps", "3", "--resume", "latest"])
    said = capsys.readouterr()
    assert code == 0, said.err
    lines = [x for x in (said.out + said.err).splitlines() if "damaged" in x]
    assert len(lines) == 1 and "checkpoint-2 (model.safetensors is truncated" in lines[0] and "checkpoint-1 at step 1" in lines[0]
    from training.checkpoints import damage, list_checkpoints

    assert [p.name for p in list_checkpoints(out / "checkpoints")][-1] == "checkpoint-3"
    assert all(damage(p) is None for p in list_checkpoints(out / "checkpoints"))  # the damaged one was written again


def test_train_on_a_disk_that_fills_stops_with_one_line(disk, tmp_path, tiny_base, sketch_image, capsys):
    """A checkpoint that no longer fits: one line, its temporary folder removed, the complete ones intact."""
    from models.imageio import write_rgb

    data = tmp_path / "data"
    data.mkdir()
    write_rgb(data / "a.png", sketch_image)
    folder = disk("64m")
    out = folder / "run"

    def filler():
        for _ in range(12000):
            if (out / "checkpoints" / "checkpoint-1").exists():
                fill(folder)
                return
            time.sleep(0.01)

    t = threading.Thread(target=filler)
    t.start()
    code = main.main(["train", "--base", tiny_base, "--data", str(data), "--out", str(out), "--resolution", "64", "--batch-size", "1",
                      "--lr-warmup", "0", "--checkpoint-every", "1", "--keep-checkpoints", "1", "--validate-every", "0",
                      "--validation-images", "0", "--workers", "0", "--device", "cpu", "--threads", "1", "--steps", "400",
                      "--progress", "jsonl"])
    t.join()
    err = capsys.readouterr().err  # the run's notes, then the error as its last line
    assert "Traceback" not in err
    one_line(code, err.strip().splitlines()[-1], "the disk is full", "--resume latest", "checkpoint-")
    from training.checkpoints import damage, list_checkpoints

    found = list_checkpoints(out / "checkpoints")
    assert found and all(damage(p) is None for p in found)
    assert not [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
