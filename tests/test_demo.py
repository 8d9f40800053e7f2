"""The built-in demo model: loads offline, draws from a sketch, fits its budget; and its data helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.loading import DEMO_DIR

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 40 * 1000 * 1000
need_demo = pytest.mark.skipif(
    not (DEMO_DIR / "model_index.json").exists() or not (DEMO_DIR / "adapter" / "config.json").exists(),
    reason="assets/models/demo is not built: run `python -m training.demo`",
)


@need_demo
def test_demo_files_fit_the_budget_and_are_fp16_safetensors():
    from safetensors import safe_open

    files = [p for p in DEMO_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= BUDGET
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert {p.parent.name for p in weights} <= {"unet", "vae", "text_encoder", "adapter", "colour_adapter"}
    assert {"unet", "vae", "text_encoder", "adapter"} <= {p.parent.name for p in weights}
    for p in weights:
        with safe_open(p, "pt") as st:
            dtypes = {st.get_slice(k).get_dtype() for k in st.keys()}
        assert dtypes == {"F16"}, (p, dtypes)


@need_demo
def test_demo_layout_and_real_clip_tokenizer():
    from models.loading import load_base

    base = load_base("demo")
    assert base.native_size == 256
    cfg = base.unet.config
    assert cfg.down_block_types == ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    assert cfg.mid_block_type is None and cfg.layers_per_block == 1
    assert type(base.vae).__name__ == "AutoencoderTiny"
    assert len(base.tokenizer) == 49408 == base.text_encoder.config.vocab_size
    assert base.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert base.scheduler.config.timestep_spacing == "trailing"


@need_demo
def test_demo_draws_a_256px_picture_that_follows_the_sketch(sketch_image):
    from models.engine import Engine

    engine = Engine.load("demo", "demo", device="cpu", dtype="float32")
    assert engine.size == 256 and engine.adapter.info.polarity == "black_on_white"
    engine.set_prompt("a red ball")
    engine.control_scale = 1.0
    out = engine.step(sketch_image)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert out.std() > 5  # a picture, not a flat colour
    engine.control_scale = 0.0
    plain = engine.step(sketch_image)
    # the trained adapter changes the picture (an untrained one, zero-initialised, would not)
    assert np.abs(out.astype(int) - plain.astype(int)).mean() > 2


@need_demo
def test_generate_command_works_offline(tmp_path, sketch_image):
    import cv2

    src, dst = tmp_path / "sketch.png", tmp_path / "out.png"
    cv2.imwrite(str(src), sketch_image)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    res = subprocess.run(
        [sys.executable, "main.py", "generate", "--model", "demo", "--controlnet", "demo", "--image", str(src),
         "--prompt", "a yellow sun", "--device", "cpu", "--out", str(dst)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    img = cv2.imread(str(dst))
    assert img is not None and img.shape == (256, 256, 3)


@need_demo
def test_adapter_json_names_the_sketch_condition():
    info = json.loads((DEMO_DIR / "adapter" / "adapter.json").read_text())
    assert info["condition"] == "sketch" and info["base_model"] == "demo" and info["resolution"] == 256


# ---- data helpers (no model needed) -------------------------------------------------------------------


SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" width="10" height="10">
  <metadata><rdf:RDF><rdf:Description>
    <dc:title>Red_Apple-01</dc:title>
    <dc:subject><rdf:Bag><rdf:li>fruit</rdf:li><rdf:li>clip art</rdf:li><rdf:li>Food</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description></rdf:RDF></metadata>
  <circle cx="5" cy="5" r="4" fill="red"/>
</svg>"""


def test_caption_from_title_and_keywords(tmp_path):
    from training.demo.data import caption

    d = tmp_path / "food"
    d.mkdir()
    (d / "apple.svg").write_text(SVG)
    assert caption(d / "apple.svg") == "red apple, fruit, food"


def test_held_out_split_is_fixed_by_name():
    from training.demo.data import held_out

    names = [f"animals__cat_{i}.png" for i in range(2000)]
    picks = [held_out(n) for n in names]
    assert picks == [held_out(n) for n in names]
    assert 40 < sum(picks) < 200  # about 1 in 20


def test_human_strokes_are_black_lines_on_white():
    import cv2

    from training.demo.data import human_strokes, make_condition

    img = np.full((256, 256, 3), 255, np.uint8)
    cv2.circle(img, (128, 128), 60, (200, 30, 30), -1)
    strokes = human_strokes(img, np.random.default_rng(0))
    dark = strokes.min(axis=2) < 128
    assert 0.005 < dark.mean() < 0.2  # an outline, not a filled shape
    assert not dark[128, 128] and dark[:, 60:75].any()  # the inside stays paper, the outline is drawn
    assert np.array_equal(make_condition(img, "x.png"), make_condition(img, "x.png"))


def test_clip_byte_alphabet_is_a_bijection():
    from models.tiny import bytes_to_unicode

    table = bytes_to_unicode()
    assert len(table) == 256 == len(set(table.values()))
    assert table[ord("a")] == "a" and table[ord(" ")] == "Ġ"


def _paired(root, pictures):
    import cv2

    for sub in ("images", "conditions"):
        (root / sub).mkdir(parents=True)
    rows = []
    for name, img in pictures.items():
        cv2.imwrite(str(root / "images" / name), img)
        cv2.imwrite(str(root / "conditions" / name), 255 - img)
        rows.append({"file_name": name, "text": name.split(".")[0]})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_colour_rows_keep_colour_pictures_and_drop_line_art(tmp_path):
    from training.demo.data import colour_rows, colour_share

    white = np.full((256, 256, 3), 255, np.uint8)
    line_art, flower, pale = white.copy(), white.copy(), white.copy()
    line_art[100:110] = 0  # black strokes only
    flower[60:200, 60:200] = (30, 40, 220)  # BGR red, 30% of the picture
    pale[:, :] = (235, 240, 245)  # near-grey paper tint
    assert colour_share(line_art[..., ::-1]) == 0.0 and colour_share(pale) == 0.0
    assert 0.29 < colour_share(flower) < 0.31
    _paired(tmp_path / "train", {"line.png": line_art, "flower.png": flower, "pale.png": pale})
    rows = colour_rows(tmp_path / "train")
    assert [r["file_name"] for r in rows] == ["flower.png"]
    assert rows[0]["text"] == "a red flower" and rows[0]["caption"] == "flower"  # the caption names its colour
    assert (tmp_path / "train" / "colour.json").exists()  # cached for the next stage
    assert [r["file_name"] for r in colour_rows(tmp_path / "train", min_share=0.0)] == ["line.png", "flower.png", "pale.png"]


def test_colour_words_name_the_main_colours():
    from training.demo.colour import colour_words

    img = np.full((64, 64, 3), 255, np.uint8)
    assert colour_words(img) == []  # white paper, black lines: no colour to name
    img[:32] = (220, 30, 30)
    img[32:48] = (40, 200, 40)
    img[48:52] = (30, 60, 220)  # too small a part to name
    assert colour_words(img) == ["red", "green"]
    img[:] = (120, 70, 20)
    assert colour_words(img) == ["brown"]


def test_crops_and_subsets_are_paired_folders_the_trainer_reads(tmp_path):
    from training.data import scan
    from training.demo.data import write_crops, write_subset

    rng = np.random.default_rng(0)
    pics = {f"p{i}.png": rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for i in range(3)}
    rows = _paired(tmp_path / "train", pics)
    # more windows than pictures: several windows per picture, each its own file, image and condition aligned
    assert write_crops(tmp_path, rows[:2], name="crops", crop=128, count=5) == 5
    found = scan(tmp_path / "crops", "paired")
    assert len(found.samples) == 5
    meta = [json.loads(x) for x in (tmp_path / "crops" / "metadata.jsonl").read_text().splitlines()]
    assert {m["text"] for m in meta} <= {"p0", "p1"} and len({m["file_name"] for m in meta}) == 5
    import cv2

    for m in meta:
        img = cv2.imread(str(tmp_path / "crops" / "images" / m["file_name"]))
        cond = cv2.imread(str(tmp_path / "crops" / "conditions" / m["file_name"]))
        assert img.shape == (128, 128, 3) and np.array_equal(cond, 255 - img)
    sub = write_subset(tmp_path / "train", tmp_path / "sub", rows[1:])
    assert len(scan(sub, "paired").samples) == 2 and not (tmp_path / "sub.tmp").exists()


def test_the_builder_writes_into_the_repository_and_its_renderer_runs(tmp_path):
    """The rebuild's default output is the packaged demo folder, and the SVG renderer subprocess starts from
    the repository (a module moved one level down once left both pointing into training/)."""
    from training.demo import build, data

    assert build.OUT == DEMO_DIR and build.WORK == ROOT / "build" / "demo" and data.ROOT == ROOT
    svgs = tmp_path / "svg" / "shapes"
    svgs.mkdir(parents=True)
    (svgs / "red_ball.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><title>red ball</title>'
        '<circle cx="5" cy="5" r="4" fill="#d02020"/></svg>')
    items = data.render(tmp_path / "out", 64, svg_dir=tmp_path / "svg")
    assert [it["name"] for it in items] == ["shapes__red_ball.png"] and items[0]["caption"].startswith("red ball")
    import cv2

    img = cv2.imread(str(tmp_path / "out" / "renders" / "shapes__red_ball.png"))
    assert img.shape == (64, 64, 3) and tuple(img[32, 32]) != (255, 255, 255) and tuple(img[1, 1]) == (255, 255, 255)


def test_the_decoder_gan_phase_keeps_the_decoder_closest_to_the_pictures_sharpness(tmp_path):
    """The GAN phase measures its decoder every few steps and ends on the one whose round-trip sharpness is
    closest to the pictures' own (not simply the last one)."""
    import re

    from training.demo.base import BaseConfig, build, round_trip, sharpness_kept, train_vae

    rng = np.random.default_rng(0)
    images = np.full((6, 256, 256, 3), 255, np.uint8)
    for img in images:  # flat squares with crisp borders, like clip art
        x, y = rng.integers(20, 150, 2)
        img[y : y + 80, x : x + 80] = rng.integers(0, 255, 3)
    parts = build()
    log = tmp_path / "train.log"
    # a learning rate this high makes the phase swing, so the best decoder is not the last one
    cfg = BaseConfig(vae_steps=2, vae_gan_steps=5, vae_pick_every=2, vae_gan_lr=5e-3)
    train_vae(parts["vae"], images, cfg, log)
    measured = [float(v) for v in re.findall(r"sharpness kept ([0-9.]+)", log.read_text())]
    assert len(measured) == 3  # steps 2, 4 and the last
    best = min(measured, key=lambda k: abs(k - 1))
    assert abs(measured[-1] - best) > 0.1
    # the pick measures all six pictures (fewer than vae_pick_images), so the kept decoder reproduces its value
    assert sharpness_kept(images, round_trip(parts["vae"], images)) == pytest.approx(best, abs=1e-3)
    assert all(p.requires_grad for p in parts["vae"].encoder.parameters())
