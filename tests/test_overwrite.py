"""generate --out and stream --out never replace an existing file without a word (issue 32): refused in one line
that names the file and --overwrite, before any model loads; with --overwrite the file is replaced."""

from __future__ import annotations

import pytest

import main
from app.live.testing import write_test_video
from tests.checks import one_line


@pytest.fixture()
def no_model(monkeypatch):
    from models.engine import Engine

    def loaded(*a, **k):
        raise AssertionError("a model was loaded before the check")

    monkeypatch.setattr(Engine, "load", loaded)


@pytest.mark.parametrize("command", ["generate", "stream"])
def test_an_existing_out_is_refused_before_the_model_loads(command, tmp_path, tiny_base, capsys, no_model):
    out = tmp_path / ("kept.png" if command == "generate" else "kept.mp4")
    out.write_bytes(b"the user's own file")
    argv = ["generate", "--model", tiny_base, "--size", "64", "--out", str(out)] if command == "generate" else [
        "stream", "--model", tiny_base, "--size", "64", "--input", str(write_test_video(tmp_path / "in.mp4", 3, 64)),
        "--out", str(out)]
    one_line(main.main(argv), capsys.readouterr().err, repr(str(out)), "already exists", "--overwrite")
    assert out.read_bytes() == b"the user's own file"
    assert {p.name for p in tmp_path.iterdir()} <= {out.name, "in.mp4"}  # no temporary or recording left


def test_a_symlink_left_dangling_counts_as_existing(tmp_path, tiny_base, capsys, no_model):
    out = tmp_path / "link.png"
    out.symlink_to(tmp_path / "nowhere.png")
    one_line(main.main(["generate", "--model", tiny_base, "--size", "64", "--out", str(out)]), capsys.readouterr().err,
             "--overwrite")


def test_overwrite_replaces_it(tmp_path, tiny_base, capsys):
    from models.imageio import read_rgb

    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    assert main.main(["generate", "--model", tiny_base, "--size", "64", "--device", "cpu", "--out", str(out), "--overwrite"]) == 0
    assert read_rgb(out).shape == (64, 64, 3)
    assert main.main(["generate", "--model", tiny_base, "--size", "64", "--device", "cpu", "--out", str(out), "--overwrite",
                      "--seed", "1"]) == 0
    capsys.readouterr()
    assert main.main(["generate", "--model", tiny_base, "--size", "64", "--device", "cpu", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
