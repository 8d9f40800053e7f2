"""Checkpoints damaged inside their data (issue 32): every checkpoint carries a manifest of its files' sizes and
SHA-256, written last; NaN written over weights or any flipped byte is found before loading, `--resume latest`
falls back to the newest intact one and says so, a pickle payload is called unsafe or damaged, and a full disk's
numbers do not contradict each other. Checkpoints are written by a real accelerate Accelerator."""

from __future__ import annotations

import json
import pickle
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import main
from models.errors import UserError
from tests.checks import one_line
from tests.test_edges_files import disk, fill  # noqa: F401  (the tmpfs fixture)
from training import checkpoints


@pytest.fixture(scope="module")
def accelerator():
    import torch
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    net = torch.nn.Linear(16, 16)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net, opt = acc.prepare(net, opt)
    net(torch.randn(4, 16)).square().mean().backward()
    opt.step()
    return acc


def written(accelerator, root: Path, *steps: int) -> list[Path]:
    def also(folder: Path) -> None:  # what another part of the trainer adds (a data-stream state, say)
        (folder / "extra").mkdir()
        (folder / "extra" / "stream.json").write_text('{"shard": 3}')

    return [checkpoints.save(accelerator, root, s, keep=5, also=also) for s in steps]


def test_the_manifest_lists_every_file_whatever_wrote_it(accelerator, tmp_path):
    (folder,) = written(accelerator, tmp_path / "checkpoints", 1)
    files = json.loads((folder / checkpoints.MANIFEST).read_text())["files"]
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {checkpoints.MANIFEST}
    assert set(files) == on_disk and "extra/stream.json" in files and "model.safetensors" in files and "optimizer.bin" in files
    assert checkpoints.damage(folder) is None
    assert not [p for p in folder.rglob(".*")]  # no temporary manifest left


def nan_over_weights(path: Path) -> None:
    """NaN written over the first float32 weights of a safetensors file: same size, a valid header."""
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    data[8 + n : 8 + n + 16] = np.full(4, np.nan, np.float32).tobytes()
    path.write_bytes(bytes(data))


def test_nan_weights_of_the_same_size_are_found_and_latest_falls_back(accelerator, tmp_path):
    root = tmp_path / "checkpoints"
    one, two = written(accelerator, root, 1, 2)
    size = (two / "model.safetensors").stat().st_size
    nan_over_weights(two / "model.safetensors")
    assert (two / "model.safetensors").stat().st_size == size
    assert checkpoints._safetensors_damage(two / "model.safetensors") is None  # the structure alone cannot tell
    path, note = checkpoints.pick_resume("latest", root)
    assert path == one
    assert "checkpoint-2 (model.safetensors does not match its checksum" in note and "\n" not in note
    with pytest.raises(UserError, match="damaged: model.safetensors does not match its checksum"):
        checkpoints.pick_resume(str(two), root)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), offset=st.integers(0, 10**9), flip=st.integers(1, 255))
def test_any_flipped_byte_in_any_file_is_found(accelerator, tmp_path_factory, pick, offset, flip):
    root = tmp_path_factory.mktemp("flip") / "checkpoints"
    (folder,) = written(accelerator, root, 1)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != checkpoints.MANIFEST)
    path = files[pick % len(files)]
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= flip
    path.write_bytes(bytes(data))
    why = checkpoints.damage(folder)
    assert why is not None and str(path.relative_to(folder)) in why


def test_a_listed_file_that_is_gone_or_a_damaged_manifest_is_found(accelerator, tmp_path):
    one, two = written(accelerator, tmp_path / "checkpoints", 1, 2)
    (one / "extra" / "stream.json").unlink()
    assert checkpoints.damage(one) == "extra/stream.json is missing"
    (two / checkpoints.MANIFEST).write_text("{not json")
    assert checkpoints.damage(two) == "manifest.json is unreadable"


# ---- the trainer end to end -----------------------------------------------------------------------------

def train_argv(tiny_base: str, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--base", tiny_base, "--data", str(data), "--out", str(out), "--resolution", "64", "--batch-size", "1",
            "--lr-warmup", "0", "--checkpoint-every", "1", "--keep-checkpoints", "3", "--validate-every", "0",
            "--validation-images", "0", "--workers", "0", "--device", "cpu", "--threads", "1", "--progress", "jsonl", *extra]


@pytest.fixture()
def trained(tmp_path, tiny_base, sketch_image):
    from models.imageio import write_rgb

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        write_rgb(data / f"{i}.png", np.roll(sketch_image, 9 * i, axis=1))
    out = tmp_path / "run"
    assert main.main(train_argv(tiny_base, data, out, "--steps", "2")) == 0
    return data, out


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # what an unsafe torch.load would run: touch the marker file
        return (Path.touch, (self.marker,))


def test_train_resume_over_nan_weights_and_a_pickle_payload(trained, tmp_path, tiny_base, capsys):
    data, out = trained
    root = out / "checkpoints"
    nan_over_weights(root / "checkpoint-2" / "model.safetensors")
    capsys.readouterr()
    code = main.main(train_argv(tiny_base, data, out, "--steps", "3", "--resume", "latest"))
    said = capsys.readouterr()
    assert code == 0, said.err
    lines = [x for x in (said.out + said.err).splitlines() if "damaged" in x]
    assert len(lines) == 1 and "checkpoint-2 (model.safetensors does not match its checksum" in lines[0], lines
    assert "resumed from" in lines[0] and "checkpoint-1 at step 1" in lines[0]
    assert "loss became nan" not in said.err  # the old wrong advice

    # a pickle payload in place of the optimizer state, the manifest rewritten to match: refused, never run
    folder = root / "checkpoint-3"
    marker = tmp_path / "ran"
    (folder / "optimizer.bin").write_bytes(pickle.dumps({"state": Payload(marker)}))
    checkpoints.write_manifest(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main.main(train_argv(tiny_base, data, out, "--steps", "4", "--resume", str(folder)))
    one_line(code, capsys.readouterr().err, "checkpoint-3", "unsafe or damaged")
    assert not [w for w in caught if "pickle" in str(w.message)]  # torch's notice would be a second line
    assert not marker.exists()


def test_resume_latest_on_a_full_disk_gives_numbers_that_agree(disk, tiny_base, sketch_image, capsys):  # noqa: F811
    from models.imageio import write_rgb
    folder = disk("80m")
    data = folder / "data"
    data.mkdir()
    write_rgb(data / "a.png", sketch_image)
    out = folder / "run"
    assert main.main(train_argv(tiny_base, data, out, "--steps", "1")) == 0  # one of its 3 checkpoints written
    fill(folder, leave=20 * 2**20)  # room for the output checks (16 MB), not for two more checkpoints
    capsys.readouterr()
    code = main.main(train_argv(tiny_base, data, out, "--steps", "4", "--resume", "latest"))
    err = capsys.readouterr().err
    one_line(code, err, "free", "need about", "1 already there", "3 more checkpoints")
    free, need = (float(x) for x in re.findall(r"has ([\d.]+) MB free, but .* need about ([\d.]+) MB", err)[0])
    assert 16 <= free < need, err


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**44), st.integers(1, 2**44))
def test_sizes_never_read_the_same_for_different_numbers(a, b):
    from training.runs import sizes

    words = sizes(a, b)
    assert (words[0] == words[1]) == (a == b)
    assert len({w.split()[1] for w in words}) == 1  # one unit
