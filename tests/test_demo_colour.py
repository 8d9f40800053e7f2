"""The demo model's colour data and its steering measure: recolouring, captions, and the score that says
whether "a red X" came out redder than "a blue X"."""

from __future__ import annotations

import json

import cv2
import numpy as np

from training.demo.colour import (
    PALETTE,
    colour_caption,
    colour_score,
    colour_words,
    main_hue,
    recolour,
    steered,
    with_recoloured,
)


def _apple(rgb=(210, 30, 30)) -> np.ndarray:
    img = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(img, (64, 70), 40, rgb, -1)
    cv2.circle(img, (64, 70), 40, (0, 0, 0), 3)  # a black outline
    cv2.rectangle(img, (60, 20), (68, 32), (120, 70, 20), -1)  # a brown stalk
    return img


def test_recolour_turns_the_main_colour_and_keeps_paper_and_lines():
    img = _apple()
    for colour in PALETTE:
        out = recolour(img, colour)
        assert colour_words(out, most=1) == [colour], colour
        assert np.array_equal(out[5, 5], [255, 255, 255]) and np.array_equal(out[70, 24], img[70, 24])  # paper, line
    grey = np.full((32, 32, 3), 128, np.uint8)
    assert main_hue(grey) is None and np.array_equal(recolour(grey, "red"), grey)


def test_colour_score_and_steered_read_the_picture_not_the_prompt():
    red, blue, paper = _apple(), recolour(_apple(), "blue"), np.full((128, 128, 3), 255, np.uint8)
    assert colour_score(red, "red") > 10 > colour_score(blue, "red")
    assert colour_score(blue, "blue") > 10 > colour_score(red, "blue")
    assert abs(colour_score(paper, "red")) < 0.5  # white paper holds no colour
    assert steered(red, blue, ("red", "blue")) and not steered(blue, red, ("red", "blue"))
    assert not steered(red, red, ("red", "blue"))  # the same picture for both prompts: not steered


def test_with_recoloured_adds_copies_captioned_with_their_new_colours():
    images, texts = with_recoloured(np.stack([_apple()]), ["apple, fruit"], copies=3, seed=0)
    assert len(images) == len(texts) == 4
    assert texts[0] == colour_caption(["red"], "apple, fruit") == "a red apple, fruit"
    named = [t.split()[1] for t in texts[1:]]
    assert len(set(named)) == 3 and "red" not in named and set(named) <= set(PALETTE)
    for img, word in zip(images[1:], named):
        assert colour_words(img, most=1) == [word]


def test_recoloured_crops_keep_the_condition_and_name_the_colour(tmp_path):
    from training.demo.data import write_crops

    root = tmp_path / "train"
    for sub in ("images", "conditions"):
        (root / sub).mkdir(parents=True)
    big = cv2.resize(_apple(), (256, 256), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(root / "images" / "a.png"), big[..., ::-1])
    cv2.imwrite(str(root / "conditions" / "a.png"), np.full_like(big, 255))
    rows = [{"file_name": "a.png", "text": "a red apple", "caption": "apple"}]
    assert write_crops(tmp_path, rows, name="crops", count=12, recoloured=1.0) == 12
    meta = [json.loads(x) for x in (tmp_path / "crops" / "metadata.jsonl").read_text().splitlines()]
    for m in meta:
        img = cv2.imread(str(tmp_path / "crops" / "images" / m["file_name"]))[..., ::-1]
        words = colour_words(np.ascontiguousarray(img))
        assert m["text"] == colour_caption(words, "apple"), m
        assert np.all(cv2.imread(str(tmp_path / "crops" / "conditions" / m["file_name"])) == 255)
    assert len({m["text"] for m in meta}) > 2  # several colours over the same drawing


def test_subject_strips_the_colour_words():
    from training.demo.eval import subject

    assert subject("a red and blue flag of mongolia, flag, sign") == "flag of mongolia"
    assert subject("a brown apple") == "apple" and subject("tree, plant") == "tree" and subject("a red") == "picture"


class _PaintsThePrompt:
    """An engine stand-in whose picture is the sketch filled with the colour its prompt names (or grey)."""

    adapter = None
    adapters: list = []  # the engine's adapter list (training.validation.render reads it): none here

    def __init__(self, obeys: bool):
        self.obeys, self.prompt = obeys, ""

    def set_size(self, size):
        pass

    def set_seed(self, seed):
        pass

    def set_prompt(self, prompt):
        self.prompt = prompt

    def step(self, condition):
        words = [w for w in self.prompt.split() if w in PALETTE]
        hue = PALETTE[words[0]] if (self.obeys and words) else 0
        fill = cv2.cvtColor(np.array([[[hue, 200 if self.obeys else 0, 220]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
        out = np.where(condition < 128, 0, 255).astype(np.uint8)
        out[64:192, 64:192] = fill
        return out


def test_steering_counts_the_pairs_where_the_colour_word_changed_the_picture():
    from training.demo.eval import PAIRS, steering

    sketch = np.full((256, 256, 3), 255, np.uint8)
    cv2.rectangle(sketch, (60, 60), (196, 196), (0, 0, 0), 3)
    examples = [{"image": sketch, "condition": sketch, "caption": f"a green and red box {i}, shapes"} for i in range(3)]
    good, outs = steering(_PaintsThePrompt(True), examples)
    assert good["share"] == 1.0 and good["sketches"] == 3 and set(outs) == {c for p in PAIRS for c in p}
    assert all(good[f"{a}/{b}"] == 1.0 for a, b in PAIRS)
    deaf, _ = steering(_PaintsThePrompt(False), examples)
    assert deaf["share"] == 0.0


def test_the_card_compares_both_editions_on_the_same_measures():
    from training.demo.card import FIRST, compare_table

    old = json.loads(FIRST.read_text())
    assert {"trained", "drawn", "vae_round_trip", "steering"} <= set(old) and "sharpness" in old["trained"]
    old.pop("steering")  # a measure one side lacks reads n/a
    new = {"trained": {"edge_f1": 0.412, "sharpness": 0.8}, "steering": {"share": 0.9}, "drawn": {}}
    table = compare_table(old, new)
    assert "| colour words steer (share of held-out sketch x colour pair cases) ↑ | n/a | 0.90 |" in table
    assert f"| {old['trained']['edge_f1']:.3f} | 0.412 |" in table and "| 0.80 |" in table


def test_the_card_is_written_from_what_it_is_given(tmp_path):
    """The card takes the build's settings as a value (no import of the builder) and fills every section from
    the model folder, the metrics, the stage times and the data counts."""
    import shutil

    from models.assets import DEMO_DIR
    from training.demo.card import Build, write_card

    out = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, out, ignore=shutil.ignore_patterns("*.png", "README.md"))
    metrics = json.loads((DEMO_DIR / "metrics.json").read_text())
    times = {"data": {"seconds": 40, "steps": 0}, "vae": {"seconds": 1260, "steps": 3000},
             "base": {"seconds": 900, "steps": 2000}, "adapter": {"seconds": 1500, "steps": 4321}}
    counts = {"svgs": 3001, "rendered": 2950, "train": 2800, "heldout": 150, "train_colour": 1234, "heldout_colour": 131}
    build = Build(threads=7, base_images=1111, recoloured=5, vae_gan_steps=1499, adversarial_start=1717)
    write_card(out, counts, times, metrics, build)
    card = (out / "README.md").read_text()
    heads = [line for line in card.splitlines() if line.startswith("#")]
    assert heads == (["# SDXS Live demo model, second edition (small, built in)", "## First edition against this one",
                     "## Data and license", "## Architecture (diffusers layout, fp16 safetensors, "
                     f"{sum(p.stat().st_size for p in out.rglob('*') if p.is_file() and p.name != 'README.md') / 1e6:.1f} MB in all)",
                     "## Training (CPU, fp32, 7 torch thread(s) on a 2-core machine)",
                     "## Other numbers (held-out, scale 0 against the adapter)"]
                     + ["## Colour-hint adapter (`colour_adapter/`)"] * ("colour_adapter" in metrics) + ["## What it is and is not"])
    assert "(1111 of them for the autoencoder" in card and "in 5 other colours" in card
    assert "after 1717 regression-only steps" in card and "| 4321 | 25 min |" in card and "| 3000 + 1499 | 21 min |" in card
    assert "3001 SVG files" in card and "1234 training pictures" in card and "{" not in card.replace("{c1}", "").replace("{c2}", "")


def test_colour_errors_read_the_adapter_and_scale0_columns_in_order():
    from training.demo.eval import colour_errors

    target = np.full((64, 64, 3), (200, 30, 30), np.uint8)
    near, far = target.copy(), np.full_like(target, 255)
    errors = colour_errors([({"image": target}, near, far)])  # rows: example, trained, untrained
    assert errors["trained"] < 1 < 20 < errors["untrained"]
