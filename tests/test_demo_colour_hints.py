"""The colour-hint adapter's evidence and card section (training/demo/eval_colour.py, card_colour.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.loading import DEMO_DIR


def test_hue_error_is_the_hue_angle_gap_inside_the_mask_where_the_reference_has_colour():
    from training.demo.eval_colour import hue_error

    red = np.full((32, 32, 3), (220, 30, 30), np.uint8)
    cyan = np.full((32, 32, 3), (30, 200, 220), np.uint8)
    grey = np.full((32, 32, 3), 128, np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[:8] = True
    assert hue_error(red, red, mask) == (0.0, 256)
    err, n = hue_error(cyan, red, mask)
    assert n == 256 and err > 150  # opposite hues
    assert hue_error(red, grey, mask)[1] == 0  # a grey reference has no hue to match
    assert np.isnan(hue_error(red, red, np.zeros_like(mask))[0])


def test_canvas_blobs_are_the_only_hints_and_overlay_keeps_the_lines():
    from training.demo.eval import HUMAN, draw_human
    from training.demo.eval_colour import BLOBS, draw_blobs, hinted, overlay

    assert len(BLOBS) == len(HUMAN)
    for i, blobs in enumerate(BLOBS):
        layer = draw_blobs(blobs)
        mask = hinted(layer)
        assert 0.01 < mask.mean() < 0.2  # dabs of colour, not a fill
        colours = {tuple(int(c) for c in b[-1]) for b in blobs}
        assert {tuple(int(c) for c in layer[y, x]) for y, x in zip(*np.nonzero(mask))} & colours
        drawing = draw_human(HUMAN[i][1], seed=i)
        both = overlay(drawing, layer)
        lines, paper = drawing.min(axis=2) < 64, drawing.min(axis=2) == 255
        assert (both[lines].max(axis=1) < 64).all() and (both[mask & paper] == layer[mask & paper]).all()


def test_the_card_has_the_colour_section_when_the_metrics_do(tmp_path):
    import shutil

    from training.demo.card import Build, write_card

    out = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, out, ignore=shutil.ignore_patterns("*.png", "README.md"))
    metrics = json.loads((DEMO_DIR / "metrics.json").read_text())
    side = {"hue_error_alone": 60.0, "hue_error_hints": 21.5, "edge_f1_alone": 0.6, "edge_f1_hints": 0.59}
    metrics["colour_adapter"] = {
        "seed": 0, "min_chroma": 15.0,
        "heldout": dict(side, strengths={"2": {"hue_error": 15.25, "edge_f1": 0.5}}, images=64, with_hints=58, sharpness_alone=0.8, sharpness_hints=0.75,
                        colourfulness_alone=1.0, colourfulness_hints=0.9),
        "canvas": dict(side, strengths={"2": {"hue_error": 12.0, "edge_f1": 0.55}}, drawings=6, sharpness_vs_alone=0.95, colourfulness_vs_alone=1.3),
        "keep_colours": {"photos": ["cat"], "strength": 1.0, "colour_error_alone": 40.0, "colour_error_keep": 30.0,
                         "edge_f1_alone": 0.4, "edge_f1_keep": 0.41, "strengths": {"2": {"colour_error": 25.0, "edge_f1": 0.3}},
                         "per_photo": {"cat": {"colour_error_alone": 40.0, "colour_error_keep": 30.0,
                                               "edge_f1_alone": 0.4, "edge_f1_keep": 0.41}}},
        "targets": {"heldout_hue_error_at_most_half": True, "heldout_edge_f1_drop_at_most_0.02": True,
                    "heldout_sharpness_at_least_0.7": True, "heldout_colourfulness_at_least_0.7": True,
                    "canvas_hue_error_at_most_half": True, "canvas_edge_f1_drop_at_most_0.02": True,
                    "photos_colour_error_at_most_half": False, "photos_edge_f1_drop_at_most_0.02": True},
    }
    times = {"data": {"seconds": 40, "steps": 0}, "adapter": {"seconds": 1620, "steps": 9000, "reused": True},
             "colour": {"seconds": 2100, "steps": 7777}, "colour_tune": {"seconds": 600, "steps": 1234}}
    was = metrics["colour_adapter"]
    was["canvas"]["dabs_as_painted"] = {"hue_error": 13.5, "edge_f1": 0.52}
    metrics["colour_adapter"] = dict(was, before_tune={k: was[k] for k in ("heldout", "canvas", "keep_colours")})
    build = Build(threads=1, base_images=1500, recoloured=3, vae_gan_steps=1500, adversarial_start=2000)
    write_card(out, {}, times, metrics, build)
    card = (out / "README.md").read_text()
    assert "## Colour-hint adapter (`colour_adapter/`)" in card and "**Training**: 7777 steps, 35 min" in card
    assert "| 60.0 | 21.5 | at most half | met |" in card and "| cat | 40.0 | 30.0 | 0.400 | 0.410 |" in card
    assert "at most half of the sketch adapter's alone, **missed**" in card
    assert "| colour adapter strength | 0 | 1 | 2 |" in card and "| held-out hue error ↓ | 60.0 | 21.5 | 15.2 |" in card
    assert "| photos colour error ↓ | 40.0 | 30.0 | 25.0 |" in card
    assert "adapter are the previous build's" in card and "27 min (previous build)" in card
    assert "Then 1234 steps (10 min) fine-tuned once more" in card and "Before it: photos' colour error 30.0 (alone 40.0)" in card
    assert "| canvas with Fill shapes off (the blobs as painted): hue error ↓ / edge F1 ↑ | 60.0 / 0.600 | 13.5 / 0.520 | | |" in card
    assert "{" not in card.replace("{c1}", "").replace("{c2}", "")


@pytest.mark.skipif(not (DEMO_DIR / "colour_adapter" / "config.json").exists(), reason="no colour adapter built")
def test_the_shipped_colour_adapter_says_colour_hints():
    info = json.loads((DEMO_DIR / "colour_adapter" / "adapter.json").read_text())
    assert info["condition"] == "colour-hints" and info["base_model"] == "demo" and info["resolution"] == 256
    assert info["training"]["training"]["with_adapters"]  # trained beside the sketch adapter


def test_loop_seconds_adds_up_the_resumed_parts_of_a_run(tmp_path):
    from training.demo.build import loop_seconds

    rows = [{"step": 1, "seconds": 1.0}, {"step": 2, "seconds": 2.5}, {"event": "collapse"},
            {"step": 2, "seconds": 0.5}, {"step": 3, "seconds": 4.0}]
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert loop_seconds(log) == 6.5
