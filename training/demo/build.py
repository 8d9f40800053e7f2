"""`python -m training.demo`: rebuild the built-in demo model in assets/models/demo from scratch.

Stages (each cached under --work, so a crash or a rerun resumes where it stopped; --fresh starts over):
1. data: install/check openclipart-svg, render it with QtSvg (a subprocess in app/), captions, held-out split,
   conditions (the `sketch` extractor and human-like strokes) in the trainer's paired layout; the stages
   below use the pictures in colour, their captions led by their main colour names (demo_data.colour_rows);
2. tokenizer: CLIP's BPE out of the open-clip-torch wheel;
3. vae: AutoencoderTiny trained on the renders (with a chroma loss, so colour survives);
4. base: text encoder + UNet trained as a one-step generator, saved in diffusers layout;
5. adapter: the sketch ControlNet, trained by the training module (`python main.py train`);
6. colour: the colour-hint ControlNet (condition colour-hints), trained by the training module on the same
   windows with the sketch adapter frozen beside it (--with-adapter), so it learns to add colour on top; then
   fine-tuned from there (--init-adapter) with the adversarial term, which sharpens what it paints; then
   fine-tuned again with the same loss for the flat shapes and rough dabs of models.hints (colour_tune);
7. photo: the base's UNet fine-tuned together with the colour adapter on photo-like copies of the windows
   (training/demo/photo.py), so colour hints from a camera frame can paint dark and dull fields;
8. evaluate: metrics on the held-out colour pictures and the grids, the colour adapter's evidence
   (training/demo/eval_colour.py); then the model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from models.assets import DEMO_DIR

ROOT = Path(__file__).resolve().parents[2]  # the repository (training/demo/ is two levels down)
OUT = DEMO_DIR
WORK = ROOT / "build" / "demo"
ADAPTER_KIND = "light"  # no attention, slimmer conditioning embedding: more steps in the same CPU time
ADVERSARIAL_START = 2000  # regression-only steps first (fixed, so a longer run is this run resumed)
COLOUR_SHARPEN_STEPS = 3400  # the colour adapter's adversarial fine-tune (stage_colour_sharpen): picked by the held-out measures at checkpoints of a longer run
COLOUR_TUNE_STEPS = 5000  # the colour adapter's fine-tune for flat shapes and rough dabs (stage_colour_tune): the whole run
RECOLOURED_CROPS = 0.75  # share of the adapter's windows cut from a recoloured copy (training/demo/colour.py)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=WORK, help="scratch folder for data and stage outputs")
    p.add_argument("--out", type=Path, default=OUT, help="where the finished model goes")
    p.add_argument("--fresh", action="store_true", help="redo every stage (keeps only the SVG renders and downloads)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (2 on an idle 2-core machine; 1 when others share it)")
    p.add_argument("--vae-steps", type=int, default=2500, help="autoencoder steps")
    p.add_argument("--unet-steps", type=int, default=3000, help="base UNet + text encoder steps")
    p.add_argument("--adapter-steps", type=int, default=9000, help="sketch adapter steps (the training module)")
    p.add_argument("--colour-steps", type=int, default=13000, help="colour-hint adapter steps, latent loss only (the training module)")
    p.add_argument("--colour-sharpen-steps", type=int, default=COLOUR_SHARPEN_STEPS,
                   help="then steps of the colour-hint adapter fine-tuned with the adversarial term (0: none)")
    p.add_argument("--colour-tune-steps", type=int, default=COLOUR_TUNE_STEPS,
                   help="then steps fine-tuned again for flat shapes (the canvas's Fill shapes) and rough dabs over the lines (0: none)")
    p.add_argument("--photo-steps", type=int, default=2000,
                   help="then steps of the base UNet and the colour adapter fine-tuned together on photo-like windows (0: none)")
    p.add_argument("--base-images", type=int, default=1500, help="colour pictures used for the VAE and the base")
    p.add_argument("--recoloured", type=int, default=3, help="recoloured copies of each of them (colour words steer)")
    p.add_argument("--vae-gan-steps", type=int, default=1500, help="decoder steps against a PatchGAN (crisp edges)")
    p.add_argument("--crops", type=int, default=6000, help="128 px windows the adapter trains on")
    p.add_argument("--until", choices=["data", "tokenizer", "vae", "base", "adapter", "colour", "evaluate"], default="evaluate",
                   help="stop after this stage")
    return p.parse_args(argv)


def stage_data(work: Path) -> dict:
    from training.demo.data import SVG_DIR, render, write_split

    data = work / "data"
    done = data / "counts.json"
    if done.exists():
        return json.loads(done.read_text())
    t0 = time.time()
    items = render(data)
    (data / "items.json").write_text(json.dumps(items))
    counts = write_split(data, items)
    counts["svgs"] = sum(1 for _ in SVG_DIR.rglob("*.svg"))
    counts["rendered"] = len(items)
    done.write_text(json.dumps(counts))
    _times(work, "data", time.time() - t0, 0)
    return counts


def stage_tokenizer(work: Path) -> Path:
    from training.demo.data import write_tokenizer

    folder = work / "tokenizer"
    if not (folder / "vocab.json").exists():
        write_tokenizer(folder, work / "wheels")
    return folder


def _train_names(work: Path) -> tuple[list[str], list[str]]:
    """The colour training pictures and their captions without colour names (with_recoloured adds them)."""
    from training.demo.data import colour_rows

    rows = colour_rows(work / "data" / "train")
    return [r["file_name"] for r in rows], [r["caption"] for r in rows]


def stage_vae(work: Path, args, images) -> dict:
    import torch

    from training.demo.base import BaseConfig, build, train_vae, vae_round_trip
    from training.demo.data import read_rows

    cfg = BaseConfig(vae_steps=args.vae_steps, vae_gan_steps=args.vae_gan_steps, threads=args.threads)
    parts = build()
    path = work / "vae.pt"
    if path.exists():
        parts["vae"].load_state_dict(torch.load(path, weights_only=True))
        return parts
    t0 = time.time()
    train_vae(parts["vae"], images, cfg, work / "train.log")
    torch.save(parts["vae"].state_dict(), work / "vae.tmp")
    (work / "vae.tmp").replace(path)
    _times(work, "vae", time.time() - t0, cfg.vae_steps)
    held = _heldout_colour(work)
    report, _, _ = vae_round_trip(parts["vae"], held / "images", [r["file_name"] for r in read_rows(held)][:64])
    print(f"vae round trip on held-out colour pictures: {report}", flush=True)
    return parts


def _heldout_colour(work: Path) -> Path:
    """The held-out pictures in colour, as their own paired folder (what the demo model is for)."""
    from training.demo.data import colour_rows, write_subset

    data = work / "data"
    return write_subset(data / "heldout", data / "heldout_colour", colour_rows(data / "heldout"))


def stage_base(work: Path, args, parts: dict, images, captions: list[str], tok_dir: Path) -> Path:
    from transformers import CLIPTokenizer

    from training.demo.base import BaseConfig, encode_all, save, tokenize, train_generator

    folder = work / "base"
    if (folder / "model_index.json").exists():
        return folder
    cfg = BaseConfig(unet_steps=args.unet_steps, threads=args.threads)
    t0 = time.time()
    latents = encode_all(parts["vae"], images)
    print(f"latents {tuple(latents.shape)} std {latents.std():.3f}", flush=True)
    tok = CLIPTokenizer.from_pretrained(tok_dir, local_files_only=True)
    ids, empty = tokenize(tok, captions), tokenize(tok, [""])[0]
    train_generator(parts, latents, ids, empty, cfg, work / "train.log")
    tmp = work / "base.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save(parts, tok_dir, tmp)
    tmp.replace(folder)
    _times(work, "base", time.time() - t0, cfg.unet_steps)
    return folder


def _times(work: Path, stage: str, seconds: float, steps: int, **more) -> None:
    path = work / "times.json"
    t = json.loads(path.read_text()) if path.exists() else {}
    t[stage] = {"seconds": round(seconds), "steps": steps, **more}
    path.write_text(json.dumps(t, indent=2))


def check_outputs(args: argparse.Namespace) -> None:
    """--out and --work can be made and written, with room (the model is about 24 MB and is assembled beside
    its old copy), before any stage starts."""
    from models.outfiles import MIN_FREE, check_folder

    check_folder(args.out, f"--out {str(args.out)!r}", need=4 * MIN_FREE, create=True)
    check_folder(args.work, f"--work {str(args.work)!r}", need=4 * MIN_FREE, create=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from models.errors import UserError

    try:
        check_outputs(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from models.loading import quiet_libraries

    quiet_libraries()  # the build's own progress lines, without diffusers' casting notices between them
    torch.set_num_threads(args.threads)
    work: Path = args.work
    if args.fresh:
        # everything the code makes; the SVG renders (a pure function of the package) and downloads stay
        for p in ("vae.pt", "base", "adapter_run", "colour_run", "colour_sharp_run", "colour_tune_run", "photo_run", "data/photo128", "times.json", "train.log", "tokenizer", "data/adapter128",
                  "data/heldout_colour", "data/train", "data/heldout", "data/counts.json", "data/items.json"):
            q = work / p
            shutil.rmtree(q, ignore_errors=True) if q.is_dir() else q.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    counts = stage_data(work)
    print(f"data: {counts}", flush=True)
    if args.until == "data":
        return 0
    tok_dir = stage_tokenizer(work)
    if args.until == "tokenizer":
        return 0
    base = work / "base"
    if not (base / "model_index.json").exists() or args.until == "vae":
        from training.demo.base import load_images
        from training.demo.colour import with_recoloured

        names, captions = _train_names(work)
        pick = np.random.default_rng(0).permutation(len(names))[: args.base_images]
        names, captions = [names[i] for i in pick], [captions[i] for i in pick]
        images = load_images(work / "data" / "train" / "images", names)
        images, captions = with_recoloured(images, captions, args.recoloured, seed=0)
        parts = stage_vae(work, args, images)
        if args.until == "vae":
            return 0
        base = stage_base(work, args, parts, images, captions, tok_dir)
        del images, parts
    if args.until == "base":
        return 0
    adapter = stage_adapter(work, args, base)
    if args.until == "adapter":
        return 0
    colour = stage_colour(work, args, base, adapter)
    if args.colour_sharpen_steps:
        colour = stage_colour_sharpen(work, args, base, adapter, colour)
    before_tune = colour
    if args.colour_tune_steps:
        colour = stage_colour_tune(work, args, base, adapter, colour)
    before_photo = (base, colour)
    if args.photo_steps:
        base, colour = stage_photo(work, args, base, adapter, colour)
    if args.until == "colour":
        return 0
    from training.demo.base import assemble

    assemble(base, adapter, args.out, colour)
    from training.demo.eval import run as evaluate

    t0 = time.time()
    model = "demo" if args.out == OUT else str(args.out)
    metrics = evaluate(model, str(args.out / "adapter"), _heldout_colour(work), args.out)
    from training.demo.eval_colour import run as evaluate_colour

    metrics["colour_adapter"] = evaluate_colour(model, args.out / "adapter", args.out / "colour_adapter",
                                                _heldout_colour(work), args.out, work)

    def before(stage: str, colour: Path) -> dict:  # an earlier colour adapter, on the base it was trained with
        (work / f"colour_before_{stage}").mkdir(exist_ok=True)
        m = evaluate_colour(str(before_photo[0]), args.out / "adapter", colour, _heldout_colour(work),
                            work / f"colour_before_{stage}", work)
        return {k: m[k] for k in ("heldout", "canvas", "keep_colours")}

    if args.colour_sharpen_steps:  # the same measures before the fine-tune, for the card (grids kept in --work)
        metrics["colour_adapter"]["before_sharpen"] = before("sharpen", work / "colour_run" / "adapter")["heldout"]
    if args.colour_tune_steps:  # and before the second fine-tune: every measure
        metrics["colour_adapter"]["before_tune"] = before("tune", before_tune)
    if args.photo_steps:  # and before the photo stage (its base too)
        metrics["colour_adapter"]["before_photo"] = before("photo", before_photo[1])
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _times(work, "evaluate", time.time() - t0, 0)
    from training.demo.card import Build, write_card
    from training.demo.data import colour_rows

    counts = dict(counts, train_colour=len(colour_rows(work / "data" / "train")),
                  heldout_colour=len(colour_rows(work / "data" / "heldout")))
    build = Build(threads=args.threads, base_images=args.base_images, recoloured=args.recoloured,
                  vae_gan_steps=args.vae_gan_steps, adversarial_start=ADVERSARIAL_START)
    write_card(args.out, counts, json.loads((work / "times.json").read_text()), metrics, build)
    print(f"demo model written to {args.out}", flush=True)
    return 0


def train_stage(work: Path, args, stage: str, folder: str, steps: int, **fields) -> Path:
    """One adapter trained by the training module (`training.train.train`, what `python main.py train` runs) on
    the 128 px windows of the pictures at 256 px scale (written first if missing), cached in work/folder and
    resumed there after a crash; fields: the TrainConfig values the stages differ in."""
    from training.config import TrainConfig, check
    from training.demo.data import colour_rows, write_crops
    from training.train import train

    run = work / folder
    if (run / "adapter" / "config.json").exists():
        return run / "adapter"
    crops = work / "data" / "adapter128"
    if not (crops / "metadata.jsonl").exists():
        write_crops(work / "data", colour_rows(work / "data" / "train"), count=args.crops, recoloured=RECOLOURED_CROPS)
    resume = "latest" if any((run / "checkpoints").glob("checkpoint-*")) else None
    cfg = TrainConfig(data=str(crops), out=str(run), adapter=ADAPTER_KIND, resolution=128, batch_size=4, steps=steps,
                      lr_warmup=20, pixel_weight=0.0, keep_checkpoints=2, validate_every=0, validation_images=2,
                      holdout=True, resume=resume, device="cpu", workers=0, threads=args.threads, **fields)
    check(cfg)
    if train(cfg) != 0:
        raise SystemExit(f"the {stage} stage's training stopped before the end: rerun `python -m training.demo` to resume")
    _times(work, stage, loop_seconds(run / "train_log.jsonl"), steps)
    return run / "adapter"


def stage_adapter(work: Path, args, base: Path) -> Path:
    """The sketch adapter on the windows' paired conditions: latent loss, then the adversarial term."""
    return train_stage(work, args, "adapter", "adapter_run", args.adapter_steps, base=str(base), condition="paired",
                       adapter_condition="sketch", lr=3e-4, discriminator="patch", adversarial_weight=0.1,
                       adversarial_warmup=ADVERSARIAL_START, checkpoint_every=100, seed=0)


def stage_colour(work: Path, args, base: Path, sketch: Path) -> Path:
    """The colour-hint adapter on the same windows: its condition is hints made from each target window
    (models.hints.colour_hints, seeded per item), and the sketch adapter, frozen beside it, sees the windows'
    paired sketches, so it learns the colour on top of the drawing. Latent loss only (with the adversarial term
    a step costs twice as much on the CPU, and the colour adapter needs the steps: it learns where hints are
    long before their colour); stage_colour_sharpen then adds the adversarial term."""
    return train_stage(work, args, "colour", "colour_run", args.colour_steps, base=str(base), condition="colour-hints",
                       with_adapters=(f"{sketch}:1.0",), lr=3e-4, adversarial_weight=0.0, checkpoint_every=100, seed=0)


def stage_colour_sharpen(work: Path, args, base: Path, sketch: Path, colour: Path) -> Path:
    """The colour-hint adapter fine-tuned from stage_colour's (--init-adapter) with the adversarial term (patch
    discriminator, weight 0.1, from step 300) at a third of the learning rate: the latent-only adapter's
    pictures are soft where it paints, and the adversarial steps win that back while it keeps following the
    hints (the card shows both)."""
    return train_stage(work, args, "colour_sharpen", "colour_sharp_run", args.colour_sharpen_steps, base=str(base),
                       condition="colour-hints", with_adapters=(f"{sketch}:1.0",), init_adapter=str(colour), lr=1e-4,
                       discriminator="patch", adversarial_weight=0.1, adversarial_warmup=300, checkpoint_every=200,
                       seed=1)


def stage_colour_tune(work: Path, args, base: Path, sketch: Path, colour: Path) -> Path:
    """The colour-hint adapter fine-tuned once more from stage_colour_sharpen's (--init-adapter), with the same
    loss, for two kinds of hint models.hints gained after the first two stages ran: flat shapes (the picture's
    colours with its lines painted over: what the canvas's Fill shapes sends) and rough dabs that run over the
    drawing's lines (what a person's colour layer holds). On a rebuild from scratch the first two stages draw
    them too, so it trains a similar adapter, not the same one."""
    return train_stage(work, args, "colour_tune", "colour_tune_run", args.colour_tune_steps, base=str(base),
                       condition="colour-hints", with_adapters=(f"{sketch}:1.0",), init_adapter=str(colour), lr=1e-4,
                       discriminator="patch", adversarial_weight=0.1, adversarial_warmup=300, checkpoint_every=200,
                       seed=2)


def stage_photo(work: Path, args, base: Path, sketch: Path, colour: Path) -> tuple[Path, Path]:
    """The base's UNet and the colour adapter fine-tuned together on photo-like windows, clip-art windows with
    colour hints and clip-art windows with the sketch adapter alone (training/demo/photo.py); the sketch
    adapter stays as it is. Returns the new base and colour adapter."""
    from training.demo.photo import PhotoConfig, train_photo, write_photo_like

    run = work / "photo_run"
    if (run / "colour" / "config.json").exists():
        return run / "base", run / "colour"
    windows = work / "data" / "adapter128"
    write_photo_like(windows, work / "data" / "photo128")
    t0 = time.time()
    cfg = PhotoConfig(steps=args.photo_steps, threads=args.threads)
    out = train_photo(base, sketch, colour, windows, work / "data" / "photo128", run, cfg, work / "train.log")
    _times(work, "photo", time.time() - t0, cfg.steps, mix=list(cfg.mix), unet_lr=cfg.unet_lr)
    return out


def loop_seconds(log: Path) -> float:
    """Seconds the training loop ran over every resumed part of a run: train_log.jsonl gets a row per step with
    the seconds since its process's loop started, so each drop in that count starts another part."""
    total = last = 0.0
    for line in log.read_text().splitlines():
        seconds = json.loads(line).get("seconds")
        if seconds is None:
            continue
        if seconds < last:
            total += last
        last = seconds
    return total + last


if __name__ == "__main__":
    sys.exit(main())
