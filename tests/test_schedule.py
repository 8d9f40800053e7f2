"""Prompt schedules: parsing, one-line errors by line number, and cues at the right frames of a video."""

from __future__ import annotations

import pytest

from app.live.schedule import Playhead, parse_schedule
from app.live.testing import count_frames, write_test_video
from main import main
from models.errors import UserError


def test_parse_prompts_seeds_and_loras():
    cues = parse_schedule("# a clip\n0  a red fox  seed=3\n\n2.5 seed=9 lora=anime:0.8 a blue bird # night\n1 lora=x:-0.5\n")
    assert [(c.seconds, c.line, c.prompt, c.seed, c.loras) for c in cues] == [
        (0.0, 2, "a red fox", 3, {}), (1.0, 5, None, None, {"x": -0.5}), (2.5, 4, "a blue bird", 9, {"anime": 0.8})]


@pytest.mark.parametrize("text, line, why", [
    ("0 a\nsoon a cat\n", 2, "not a time"),
    ("0 a\n1 b\n-2 c\n", 3, "0 or more"),
    ("1 a seed=x\n", 1, "whole number"),
    ("\n\n1 a lora=anime\n", 3, "NAME:WEIGHT"),
    ("1 lora=anime:9\n", 1, "between"),
    ("0 a\n1\n", 2, "nothing to change"),
])
def test_bad_lines_name_their_number(text, line, why):
    with pytest.raises(UserError, match=why) as err:
        parse_schedule(text, "clip.txt")
    assert f"clip.txt line {line}:" in str(err.value) and "\n" not in str(err.value)


def test_playhead_gives_each_cue_at_the_first_frame_at_or_after_its_time():
    cues = parse_schedule("0 a\n0.5 b\n0.85 c\n0.85 d\n3 e\n")
    fps, due = 10, {}
    head = Playhead(cues)
    for i in range(20):
        for cue in head.advance(i / fps):
            due[cue.prompt] = i + 1
    assert due == {"a": 1, "b": 6, "c": 10, "d": 10}


def test_stream_applies_a_schedule_at_its_frames(tmp_path, tiny_base, tiny_controlnet, capsys):
    video = write_test_video(tmp_path / "in.mp4", frames=12, size=64, fps=10)
    sched = tmp_path / "clip.txt"
    sched.write_text("0 a red fox\n0.5 a blue bird seed=4\n0.85 seed=5\n")
    out = tmp_path / "out.mp4"
    code = main(["stream", "--model", tiny_base, "--controlnet", tiny_controlnet, "--input", str(video), "--out", str(out),
                 "--size", "64", "--schedule", str(sched), "--transition", "0.2"])
    err = capsys.readouterr().err
    assert code == 0 and count_frames(out) == 12
    assert "schedule: frame 1 at 0.00 s: line 1" in err
    assert "schedule: frame 6 at 0.50 s: line 2" in err
    assert "schedule: frame 10 at 0.90 s: line 3" in err
    sched.write_text("0 a red fox\n1 lora=anime:0.5\n")
    bad = tmp_path / "bad.mp4"
    code = main(["stream", "--model", tiny_base, "--input", str(video), "--out", str(bad), "--schedule", str(sched)])
    err = capsys.readouterr().err
    assert code == 2 and "line 2" in err and "anime" in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()
