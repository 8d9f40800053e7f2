"""The demo model's card (assets/models/demo/README.md), written from what the rebuild measured."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


def parts(folder: Path) -> dict[str, dict]:
    """Parameters and bytes on disk per component."""
    from safetensors import safe_open

    out = {}
    for name in ("text_encoder", "unet", "vae", "adapter", "colour_adapter"):
        if not (folder / name).is_dir():
            continue
        files = list((folder / name).glob("*.safetensors"))
        params = 0
        for f in files:
            with safe_open(f, "pt") as st:
                for key in st.keys():
                    n = 1
                    for d in st.get_slice(key).get_shape():
                        n *= d
                    params += n
        out[name] = {"params": params, "bytes": sum(f.stat().st_size for f in files)}
    return out


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


LIMITS = """## What it is and is not

- It is: an offline stand-in that shows the whole pipeline live on a CPU (canvas or camera -> sketch adapter
  -> one-step UNet -> tiny decoder) in the SDXS layout with the real CLIP tokenizer. The strokes come back
  as dark outlines, and the prompt's colour word sets the picture's main colour (red, orange, yellow, green,
  blue, purple, pink): `human_sketches.png` shows the same drawing in three colours.
- It cannot colour parts separately: "a red house with a yellow door" gives a red house with no yellow
  door, and "a red house with a yellow sun" an olive one (the two words mix). Recoloured training copies
  turn a whole picture to one colour, so that is what the words learned.
- It barely knows objects: the shapes come from the sketch. On the house drawing, "a red cat" or "a red
  fish" instead of "a red house" moves the picture by 7-12 levels of 255 on average, "a blue house" by 29.
  The 2-layer text encoder, trained for minutes, learned colour words, not subjects; without the adapter
  (scale 0) it paints a coloured blob.
- Its fills are not clean: colour spills past the outlines and pools below the drawing (most of its
  pictures sat on a ground or a shadow), and the fills are blotchy rather than flat. Thin detail (small
  text, the dragonfly's wings in `vae_round_trip.png`) is mostly lost in the 8x latent.
- Part of its sharpness is ringing. An earlier build of this edition, whose decoder kept 0.93 of the
  pictures' sharpness, scored 0.69; this decoder keeps 1.02 and the model scores 0.78, but it also draws
  thin green or white lines beside dark outlines, and it costs 0.7 dB of round-trip PSNR (SSIM to the target
  0.670 against 0.691). A longer adversarial phase sharpens more and rings more, which is why the builder
  keeps the decoder nearest the pictures' own sharpness.
- It is a 256 px model: other sizes run, but it was trained at 256 px scale only.
"""
FIRST = Path(__file__).with_name("first_edition.json")  # the first edition's numbers, scored by today's eval


def _row(name: str, get, old: dict, new: dict, fmt: str = "{:.2f}") -> str:
    """One table row: get(metrics) for each edition, n/a where that edition lacks the measure."""
    cells = [fmt.format(v) if isinstance(v := get(m), (int, float)) else "n/a" for m in (old, new)]
    return f"| {name} | {cells[0]} | {cells[1]} |"


def compare_table(old: dict, new: dict) -> str:
    """First edition against this one on the same held-out pictures, noise and measures."""
    t = lambda k: lambda m: m.get("trained", {}).get(k)  # noqa: E731
    rows = [
        _row("colour words steer (share of held-out sketch x colour pair cases) ↑", lambda m: m.get("steering", {}).get("share"), old, new),
        _row("edge F1 vs the input sketch, held-out conditions ↑", t("edge_f1"), old, new, "{:.3f}"),
        _row("edge F1 vs strokes drawn as a person draws them ↑", lambda m: m.get("drawn", {}).get("edge_f1"), old, new, "{:.3f}"),
        _row("edge F1 vs the six canvas drawings (3 colours each) ↑", lambda m: m.get("drawn", {}).get("canvas_edge_f1"), old, new, "{:.3f}"),
        _row("sharpness, share of the targets' ↑", t("sharpness"), old, new),
        _row("colourfulness, share of the targets' ↑", t("colourfulness"), old, new),
        _row("edge F1 vs the target's edges ↑", t("edge_f1_target"), old, new, "{:.3f}"),
        _row("SSIM to the target ↑", t("ssim"), old, new, "{:.3f}"),
        _row("PSNR to the target (dB) ↑", t("psnr"), old, new),
        _row("colour error, CIELAB distance of 8x8 block means ↓", t("colour_error"), old, new, "{:.1f}"),
        _row("autoencoder round trip: sharpness kept ↑", lambda m: m.get("vae_round_trip", {}).get("sharpness_kept"), old, new),
        _row("autoencoder round trip: PSNR (dB) ↑", lambda m: m.get("vae_round_trip", {}).get("psnr_db"), old, new),
    ]
    return "| measure (adapter on, scale 1) | first edition | this edition |\n|---|---|---|\n" + "\n".join(rows)


@dataclass(frozen=True, kw_only=True)
class Build:
    """What the builder ran with, as the card tells it (training/demo/build.py gives it)."""

    threads: int  # torch CPU threads every stage ran with
    base_images: int  # colour training pictures the autoencoder and the base trained on
    recoloured: int  # recoloured copies of each of them
    vae_gan_steps: int  # steps of the decoder's adversarial phase
    adversarial_start: int  # the adapter's regression-only steps before its adversarial term


def write_card(out: Path, counts: dict, times: dict, metrics: dict, build: Build) -> None:
    """README.md in the model folder `out`, from the data counts, each stage's time and steps, the held-out
    metrics (training/demo/eval.py) and what the builder ran with."""
    old = json.loads(FIRST.read_text())
    from training.demo.card_colour import colour_section

    sections = [_intro(times, build), _comparison(metrics, old), _data(counts, build), _architecture(out),
                _training(times, metrics, old, build), _other_numbers(metrics)]
    if "colour_adapter" in metrics:
        sections.append(colour_section(metrics["colour_adapter"], times))
    sections.append(LIMITS)
    (out / "README.md").write_text("\n".join(sections) + "\n")


def _intro(times: dict, build: Build) -> str:
    return f"""# SDXS Live demo model, second edition (small, built in)

A small model in the SDXS one-step layout that ships with the app so it works offline, out of the box.
It turns a black-on-white sketch plus a short prompt ("a red house") into a coloured, clip-art-like picture
at 256 px that keeps the sketch's strokes as outlines, in the colour the prompt names. **It is a demo, not
SDXS quality**: trained from scratch on a CPU in about three hours from public-domain clip art. Real SDXS weights
(IDKiro/sdxs-512-dreamshaper) are far better.

Rebuild it from scratch with `python -m training.demo` ({sum(v['seconds'] for v in times.values()) / 60:.0f} min of wall
time for the stages below on a 2-core CPU, {build.threads} torch thread(s), plus about a minute to render the SVGs on a
fresh machine; stages are cached under build/demo, `--fresh` redoes them all).{_reused(times)}
"""


def _reused(times: dict) -> str:
    """The stages this build took from its cache as an earlier build left them (none after `--fresh`)."""
    names = [k for k, v in times.items() if v.get("reused")]
    if not names:
        return ""
    return (f"\n\nThis edition did not retrain every stage: {', '.join(names)} are the previous build's (reused from the "
            "builder's cache, their times as that build measured them); the stages after them were trained on top of "
            "them. The builder's code rebuilds everything from scratch with `--fresh`.")


def _comparison(metrics: dict, old: dict) -> str:
    u, st, drawn = metrics["untrained"], metrics["steering"], metrics.get("drawn", {})
    pairs = ", ".join(f"{k} {v:.2f}" for k, v in st.items() if "/" in k)
    return f"""## First edition against this one

The same {metrics['images']} held-out colour pictures at 256 px, seed {metrics['seed']}, the same noise and the same
measures (`training/demo/eval.py`; the first edition's numbers are `training/demo/first_edition.json`, scored by
today's code on its weights from git):

{compare_table(old, metrics)}

How each is measured:
- **Colour words steer**: for {st.get('sketches', 32)} held-out sketches and the colour pairs {', '.join(metrics.get('pairs', []))}, "a
  {{c1}} X" and "a {{c2}} X" (X the picture's subject, e.g. "a red flag of mongolia") with the same sketch and
  noise. A case counts when the first picture holds more of c1 than the second and the second more of c2
  than the first, each by at least 5 CIELAB units (twice the just-noticeable difference); "holds" is the
  picture's mean a*b* projected on the colour's direction (`training/demo/colour.py`). Per pair: {pairs}.
- **Edge F1**: Canny edges of the output against those of the sketch, 2 px tolerance (training/evaluate.py).
  "Drawn as a person draws them": the held-out pictures' outlines re-drawn simplified, jittered, with widths
  that swell and thin along each stroke (not the extractor's lines), {drawn.get('edge_f1_scale0', 0):.2f} at scale 0;
  "canvas drawings": the six drawings in `human_sketches.png`, each in three colours.
- **Sharpness and colourfulness** (as in the adversarial objective's evidence): the outputs' mean absolute
  Laplacian and Hasler-Suesstrunk colourfulness as shares of the held-out targets' own.
- At control scale 0 (the adapter's effect removed) edge F1 is {u['edge_f1']:.2f}: the reference the strokes are kept against.
"""


def _data(counts: dict, build: Build) -> str:
    return f"""## Data and license

- Debian's `openclipart-svg` package (Open Clip Art Library, **public domain**): {counts.get('svgs', '?')} SVG files,
  {counts.get('rendered', '?')} rendered cleanly with QtSvg at 256 px on white (the rest are invalid or blank).
- Captions: each SVG's `dc:title` plus its `dc:subject` keywords (and its folder), led by the picture's main
  colours: "a red and blue flag of mongolia, flag, sign".
- Split fixed by the md5 of the file name: {counts.get('train', '?')} training pictures, {counts.get('heldout', '?')} held out (never trained on).
- Colour only: every stage trains on the {counts.get('train_colour', '?')} training pictures with at least 10% of their pixels
  in a clear colour ({build.base_images} of them for the autoencoder and the base); the evidence uses the
  {counts.get('heldout_colour', '?')} held-out ones.
- **Recoloured copies** (what makes colour words work): each of those pictures also in {build.recoloured} other colours,
  its hues turned so its main colour becomes red, orange, yellow, green, blue, purple or pink, captioned with
  its new colours; the adapter's windows are recoloured the same way three times in four, over the same
  sketch. Openclipart's own colours are spread over every subject, so without this a one-step model learns
  the mean colour and ignores the word (the first edition).
- Conditions: half from the trainer's own `sketch` extractor, half strokes as a person draws them (outline
  and colour-edge contours, simplified, 1-4 px and uneven along the stroke, jittered).
- Tokenizer: CLIP's real BPE vocabulary (49408 tokens, the same ids as SD1.5), read from the
  open-clip-torch 3.3.0 wheel (MIT).
"""


def _architecture(out: Path) -> str:
    unet = json.loads((out / "unet" / "config.json").read_text())
    te = json.loads((out / "text_encoder" / "config.json").read_text())
    vae = json.loads((out / "vae" / "config.json").read_text())
    info = json.loads((out / "adapter" / "adapter.json").read_text())
    total = folder_bytes(out)
    rows = "\n".join(
        f"| {name} | {s['params'] / 1e6:.2f} M | {s['bytes'] / 1e6:.1f} MB |" for name, s in parts(out).items()
    )
    return f"""## Architecture (diffusers layout, fp16 safetensors, {total / 1e6:.1f} MB in all)

| part | parameters | on disk |
|---|---|---|
{rows}

- UNet: SDXS dreamshaper layout at reduced width: `block_out_channels {unet['block_out_channels']}`,
  DownBlock2D + 2 CrossAttnDownBlock2D, `layers_per_block 1`, no mid block, `sample_size {unet['sample_size']}`
  (native 256 px), cross-attention width {unet['cross_attention_dim']}.
- Text encoder: CLIPTextModel, {te['num_hidden_layers']} layers, width {te['hidden_size']}, vocabulary {te['vocab_size']} (the same size
  as the first edition's: with recoloured data it was enough for colour words, so it did not grow).
- VAE: AutoencoderTiny (TAESD layout), width {vae['encoder_block_out_channels'][0]}, scaling factor 1.0.
- Scheduler: EulerDiscreteScheduler, trailing spacing, single timestep 999, `prediction_type "sample"`
  (the UNet predicts x0 directly; with epsilon a model this small cannot cancel noise amplified 14.6x).
- Adapter (`adapter/`): a diffusers ControlNetModel, the training module's `light` kind, condition
  `{info['condition']}`, polarity `{info['polarity']}`.{_colour_part(out)}
"""


def _colour_part(out: Path) -> str:
    path = out / "colour_adapter" / "adapter.json"
    if not path.exists():
        return ""
    info = json.loads(path.read_text())
    return (f"\n- Colour-hint adapter (`colour_adapter/`): the same kind, condition `{info['condition']}` (colour hints on white), "
            "run beside the sketch adapter (their residuals add up).")


def _training(times: dict, metrics: dict, old: dict, build: Build) -> str:
    from training.demo.base import BaseConfig

    mins = {k: (f"{v['seconds'] / 60:.0f} min" if v["seconds"] >= 60 else f"{v['seconds']} s") + (" (previous build)" if v.get("reused") else "")
            for k, v in times.items()}
    steps = lambda k: times.get(k, {}).get("steps", "?")  # noqa: E731
    gan = BaseConfig()  # the autoencoder's GAN phase settings (not options of the builder)
    vr = metrics.get("vae_round_trip", {})
    return f"""## Training (CPU, fp32, {build.threads} torch thread(s) on a 2-core machine)

| stage | steps | wall time |
|---|---|---|
| data: conditions, colour captions, held-out split (the SVG renders are cached across `--fresh`) | | {mins.get('data', 'n/a')} |
| AutoencoderTiny, 1: L1 + MSE + edge + chroma L1, batch 8 of 96 px crops; 2: the decoder alone (encoder frozen) against a PatchGAN that sees the picture beside its 8x-blurred self, weight {gan.vae_gan_weight}, 128 px crops; of its decoders (one per {gan.vae_pick_every} steps) the one closest to its pictures' own sharpness is kept | {steps('vae')} + {build.vae_gan_steps} | {mins.get('vae', '?')} |
| text encoder + UNet jointly, one-step x0 loss (batch 16, 256 px), on the pictures and their recoloured copies | {steps('base')} | {mins.get('base', '?')} |
| sketch adapter, trained by the training module (`training.train.train`, what `python main.py train` runs): paired 128 px windows at 256 px scale, batch 4, latent loss + the adversarial term (`patch` discriminator, weight 0.1, after {build.adversarial_start} regression-only steps) | {steps('adapter')} | {mins.get('adapter', '?')} |
| colour-hint adapter, trained by the training module: the same windows, condition `colour-hints` (hints made from each window), the sketch adapter frozen beside it (`--with-adapter`), latent loss only | {steps('colour')} | {mins.get('colour', 'n/a')} |
{_photo_row(times, mins)}| evaluation and grids | | {mins.get('evaluate', '?')} |

Autoencoder round trip on {vr.get('images', '?')} held-out colour pictures: PSNR {vr.get('psnr_db', '?')} dB, colour kept
{vr.get('chroma_kept', '?')}, sharpness kept {vr.get('sharpness_kept', '?')} (the first edition's: {old['vae_round_trip']['psnr_db']} dB,
{old['vae_round_trip']['chroma_kept']}, {old['vae_round_trip']['sharpness_kept']}). The adversarial phase is what lifts the
sharpness: on the same autoencoder after phase 1, 600 steps at weight 0.1 kept 0.65 and at 0.5 kept 0.75, up
from 0.38, for 0.3-0.4 dB of PSNR. The phase swings and can overshoot: 1000 more steps on a finished decoder
kept 0.83 at weight 0.5, 1.25 at 0.75 and 1.08 at 1.0, and past 1.0 the extra "sharpness" is ringing (doubled,
coloured outlines). So the builder measures the decoder every {gan.vae_pick_every} steps on {gan.vae_pick_images} training pictures and
keeps the one closest to their own sharpness.
"""


def _photo_row(times: dict, mins: dict) -> str:
    """The photo stage's row (training/demo/photo.py), when the build had one."""
    if "photo" not in times:
        return ""
    return ("| photo stage: the base's UNet and the colour-hint adapter fine-tuned together on photo-like windows fed their "
            "frame hints, clip-art windows with colour hints, and the sketch adapter alone held to the base before it "
            f"(training/demo/photo.py) | {times['photo']['steps']} | {mins['photo']} |\n")


def _other_numbers(metrics: dict) -> str:
    u, t, speed = metrics["untrained"], metrics["trained"], metrics.get("speed", {})
    return f"""## Other numbers (held-out, scale 0 against the adapter)

| metric | scale 0 (no adapter) | adapter (scale 1) |
|---|---|---|
| edge F1 vs the input sketch ↑ | {u['edge_f1']:.3f} | {t['edge_f1']:.3f} |
| edge F1 vs the target's edges ↑ | {u['edge_f1_target']:.3f} | {t['edge_f1_target']:.3f} |
| sharpness / colourfulness, share of the targets' | {u['sharpness']:.2f} / {u['colourfulness']:.2f} | {t['sharpness']:.2f} / {t['colourfulness']:.2f} |
| SSIM / PSNR to the target | {u['ssim']:.3f} / {u['psnr']:.2f} dB | {t['ssim']:.3f} / {t['psnr']:.2f} dB |
| colour error ↓ | {u['colour_error']:.1f} | {t['colour_error']:.1f} |

Speed on the build machine (load average {speed.get('load_average', '?')} at the time): {speed.get('ms_1_threads', '?')} ms per
256 px frame with 1 thread, {speed.get('ms_2_threads', '?')} ms with 2 ({speed.get('dtype', '?')}, what `dtype auto` picks on this CPU;
sketch in, image out, adapter on): best {speed.get('fps', '?')} FPS.

- `heldout_grid.png`: rows of input sketch | output | target (held-out pictures, their own caption as prompt).
- `human_sketches.png`: drawings made the way a person draws on the canvas, rows of drawing | "a red X" |
  "a blue X" | "a yellow X" | scale 0, X: {', '.join(metrics.get('human_subjects', []))}.
- `vae_round_trip.png`: held-out pictures above, through the autoencoder below.
"""
