"""Steadying a still camera picture: the stages on real frames, the live loop with a tiny real model, and the
benchmark's numbers computed from the loop's real output frames."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from app.cli.bench import steady as bench_steady
from app.live.loop import Frame, LiveLoop, extract
from app.live.settings import ConditionSettings, LiveSettings
from app.live.steady import Stabiliser, SteadySettings, parse_steady
from main import main
from models.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


def sketch_conditions(frames):
    return [extract(f, ConditionSettings(), "sketch") for f in frames]


def mean_change(seq, rows=slice(0, 120)):
    return float(np.mean([np.abs(b[rows].astype(np.float32) - a[rows]).mean() for a, b in zip(seq[3:], seq[4:])]))


def test_smoothing_calms_noise_and_lets_motion_through_at_once():
    noisy, clean = bench_steady.synth_video(30)  # the disc moves in frames 0..17
    st = Stabiliser(SteadySettings(skip=0, blend=0))
    smoothed = [st.condition(c, f) for c, f in zip(sketch_conditions(noisy), noisy)]
    raw = sketch_conditions(noisy)
    assert mean_change(smoothed) < 0.5 * mean_change(raw)  # the still upper part
    # the disc's band follows the clean frame's condition in the same frame, not a frame later
    truth = sketch_conditions(clean)
    band = slice(*bench_steady.BAND)
    for t in (8, 12):
        now = np.abs(smoothed[t][band].astype(np.float32) - truth[t][band]).mean()
        before = np.abs(smoothed[t][band].astype(np.float32) - truth[t - 1][band]).mean()
        assert now < before


def test_parse_steady():
    assert parse_steady("off") is None and parse_steady("on") == SteadySettings()
    s = parse_steady("smooth=0.5,blend=0,tiles=8")
    assert (s.smooth, s.blend, s.tiles) == (0.5, 0.0, 8)
    for bad in ("smooth=0", "blend=1", "jitter=2", "smooth=x"):
        with pytest.raises(UserError):
            parse_steady(bad)


def test_live_loop_skips_still_frames_and_leaves_drawings_alone(engine):
    noisy, _ = bench_steady.synth_video(30)
    loop = LiveLoop(engine, LiveSettings(prompt="a cat", seed=0, strength=0.8, size=64, steady=SteadySettings()))
    results = [loop.process(Frame(f, time.perf_counter(), False, i + 1)) for i, f in enumerate(noisy)]
    moving = bench_steady.moving_frames(30)
    assert not any(r.reused for r in results[1:moving])  # the disc moves: every frame is rendered
    assert sum(r.reused for r in results[moving + 2 :]) >= 4  # it rests: the noise alone does not re-render
    assert loop.steady.skipped >= 4
    # a drawing goes around the stabiliser: the same output as a loop without it
    plain = LiveLoop(engine, LiveSettings(prompt="a cat", seed=0, strength=0.8, size=64))
    drawing = np.full((64, 64, 3), 255, np.uint8)
    drawing[20:40, 30] = 0
    a = loop.process(Frame(drawing, time.perf_counter(), True, 1)).output
    b = plain.process(Frame(drawing, time.perf_counter(), True, 1)).output
    assert np.array_equal(a, b)


def test_bench_numbers_come_from_the_loops_real_frames(engine):
    frames = 14
    result = bench_steady.measure(engine, frames=frames, size=64)
    rows = result["rows"]
    noisy, clean = bench_steady.synth_video(frames)
    today, rendered = bench_steady.run_loop(engine, noisy, None, 64)
    assert rows["today"]["still_change"] == round(bench_steady.still_change(today), 3) > 0  # noise makes it flicker
    assert rows["today"]["engine_frames"] == rendered and rows["today"]["ratio"] == 1.0
    for r in rows.values():
        assert 0 <= r["lag"] <= bench_steady.MAX_LAG and len(r["motion_correlation_by_shift"]) == bench_steady.MAX_LAG + 1
    steady, _ = bench_steady.run_loop(engine, noisy, SteadySettings(), 64)
    assert rows["defaults"]["still_change"] == round(bench_steady.still_change(steady), 3)
    # the lag measure finds a known delay in real output frames
    reference, _ = bench_steady.run_loop(engine, clean, None, 64, threshold=0.0)
    for k in (0, 1, 2):
        delayed = [reference[0]] * k + reference[: len(reference) - k]
        assert bench_steady.lag_frames(delayed, reference)[0] == k
    assert bench_steady.still_change([reference[5]] * 8) == 0.0


def test_bench_steady_command_writes_json(tmp_path, tiny_base, tiny_controlnet, capsys):
    out = tmp_path / "steady.json"
    assert main(["bench", "steady", "--model", tiny_base, "--controlnet", tiny_controlnet, "--size", "64",
                 "--device", "cpu", "--dtype", "float32", "--steady-frames", "10", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["config"]["size"] == 64 and data["video"]["frames"] == 10
    assert set(data["rows"]) >= {"today", "defaults", "smooth only", "skip only", "blend only"}
    assert "defaults meet the targets" in capsys.readouterr().out
