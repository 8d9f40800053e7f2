"""The demo model's base: a small SDXS-layout model trained from scratch on rendered clip art.

Two short stages, each a plain loop (the adapter is trained afterwards by the training module itself):
1. AutoencoderTiny (TAESD layout, narrow) trained as an autoencoder on the renders.
2. Text encoder + UNet trained jointly as a one-step generator: the UNet sees k_in * noise at the single
   timestep and the prompt, and x0 = a * noise + b * output (read off the scheduler with the engine's own
   OneStep) must match the VAE latent of the picture. Trained this briefly, a text-only one-step model
   gives soft colour-blob pictures; the sketch adapter is what gives them shape.

The scheduler predicts the sample (x0) rather than epsilon: with epsilon, x0 = 14.6 * (noise - output), so a
small model trained for minutes must cancel the noise to a few parts in a thousand or its pictures turn to
grain. Euler with trailing spacing still gives the single timestep 999, and the engine reads the recipe from
the scheduler, so nothing else changes.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.tiny import Layout, build_parts

# the SDXS dreamshaper layout at reduced width: 3 UNet levels, 1 layer per block, no mid block
# (sized for training in minutes on a shared 2-core CPU, not for quality)
DEMO = Layout(
    unet_channels=(32, 64, 128), heads=4, text_width=128, text_layers=2, text_heads=4, text_mlp=512,
    vae_channels=32, vae_blocks=(1, 1, 1, 1), cond_channels=(16, 32, 64, 128), vocab=49408,
)
DECODER_BLOCKS = (2, 2, 1, 1)  # decoder blocks from the latent side: the work goes where the pixels are few


@dataclass
class BaseConfig:
    size: int = 256  # native image size (UNet sample_size = size // 8)
    vae_steps: int = 2500  # autoencoder steps
    vae_batch: int = 8  # autoencoder batch (random 96 px crops of the pictures at 256 or 128 px)
    vae_lr: float = 2e-3  # autoencoder AdamW learning rate
    vae_chroma: float = 1.0  # weight of the chroma L1 (colour is a small share of the plain pixel error)
    vae_gan_steps: int = 1500  # then decoder-only steps against a PatchGAN (encoder frozen, so the latents stay)
    vae_gan_lr: float = 2e-4  # decoder and discriminator learning rate in that phase
    vae_gan_weight: float = 0.75  # weight of the adversarial term against the pixel losses (one 1000-step phase
    # each on the same decoder: 0.5 kept 0.83 of the held-out sharpness, 0.75 kept 1.25, 1.0 kept 1.08)
    vae_pick_every: int = 100  # the GAN phase's decoder is measured this often, and the one whose sharpness is
    # closest to its pictures' own is kept: the phase swings (above) and overshoots into ringing
    vae_pick_images: int = 32  # training pictures that measurement uses
    unet_steps: int = 3000  # one-step generator steps (UNet + text encoder)
    unet_batch: int = 16  # generator batch
    unet_lr: float = 1e-3  # generator AdamW learning rate
    caption_dropout: float = 0.1  # share of empty prompts, so an empty prompt still gives a picture
    seed: int = 0  # everything random starts here
    threads: int = 1  # torch CPU threads (1 beats 2 when others share the two cores)


def build(layout: Layout = DEMO, size: int = 256, seed: int = 0) -> dict:
    """Random UNet, AutoencoderTiny, CLIP text encoder and scheduler in the demo layout."""
    torch.manual_seed(seed)
    return build_parts(layout, size // 8, DECODER_BLOCKS, prediction_type="sample", special_ids=(49406, 49407))


def load_images(folder: Path, names: list[str]) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB."""
    return np.stack([cv2.cvtColor(cv2.imread(str(folder / n)), cv2.COLOR_BGR2RGB) for n in names])


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 127.5 - 1


def _log(msg: str, log: Path | None) -> None:
    print(msg, flush=True)
    if log:
        with open(log, "a") as f:
            f.write(msg + "\n")


def _crops(images: np.ndarray, g: np.random.Generator, batch: int, size: int = 96) -> torch.Tensor:
    """`size` px crops of random pictures, each at 256 px (how the engine runs) or at 128 px (finer detail)."""
    crops = []
    for i in g.integers(0, len(images), batch):
        img = images[i]
        if g.random() < 0.4:
            img = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
        y, x = g.integers(0, img.shape[0] - size + 1, 2)
        crops.append(img[y : y + size, x : x + size])
    return to_tensor(np.stack(crops))


def _pixel_loss(y: torch.Tensor, x: torch.Tensor, chroma: float) -> torch.Tensor:
    """L1 + MSE + an edge term (image gradients, so flat colours keep crisp borders) + chroma L1."""
    grad = lambda t: (t[..., 1:, :] - t[..., :-1, :], t[..., :, 1:] - t[..., :, :-1])  # noqa: E731
    (gy, gx), (ty, tx) = grad(y), grad(x)
    loss = F.l1_loss(y, x) + F.mse_loss(y, x) + 0.5 * (F.l1_loss(gy, ty) + F.l1_loss(gx, tx))
    return loss + chroma * F.l1_loss(y - y.mean(1, keepdim=True), x - x.mean(1, keepdim=True))


def train_vae(vae, images: np.ndarray, cfg: BaseConfig, log: Path | None = None):
    """Two phases. 1: the whole autoencoder on pixel losses (_pixel_loss), the chroma L1 weighted by
    cfg.vae_chroma: without it a small autoencoder trained briefly learns shapes and greys first and colour
    last. 2: the decoder alone (the encoder, so the latents, frozen) against a PatchGAN that sees the
    picture next to its 8x-blurred self, as TAESD's decoder is trained: pixel losses alone leave edges soft,
    and the demo's sharpness can never beat its decoder's. Of that phase's decoders (one each
    cfg.vae_pick_every steps) the one closest to its pictures' own sharpness is kept."""
    from training.adversarial import PatchDiscriminator, d_loss, g_loss

    g = np.random.default_rng(cfg.seed)
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), cfg.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.vae_lr, total_steps=max(cfg.vae_steps, 1), pct_start=0.1)
    t0 = time.time()
    for step in range(cfg.vae_steps):
        x = _crops(images, g, cfg.vae_batch)
        z = vae.encoder(x)  # fp32: bf16 autocast training is many times slower on this CPU
        loss = _pixel_loss(vae.decoder(z), x, cfg.vae_chroma) + 1e-4 * z.pow(2).mean()  # latents in a sane range
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == cfg.vae_steps - 1:
            _log(f"vae step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", log)
    if cfg.vae_gan_steps:
        torch.manual_seed(cfg.seed)
        disc = PatchDiscriminator(width=32)
        vae.encoder.requires_grad_(False)
        opt_g = torch.optim.AdamW(vae.decoder.parameters(), cfg.vae_gan_lr, betas=(0.5, 0.99), weight_decay=0.0)
        opt_d = torch.optim.AdamW(disc.parameters(), cfg.vae_gan_lr, betas=(0.5, 0.99), weight_decay=0.0)
        blur = lambda t: F.interpolate(F.avg_pool2d(t, 8), scale_factor=8, mode="bilinear")  # noqa: E731
        pick = images[np.sort(g.choice(len(images), min(cfg.vae_pick_images, len(images)), replace=False))]
        best, best_gap = None, float("inf")
        for step in range(cfg.vae_gan_steps):
            x = _crops(images, g, cfg.vae_batch, 128)
            with torch.no_grad():
                z = vae.encoder(x)
            y, cond = vae.decoder(z), blur(x)
            loss_d = d_loss(disc(x, cond), disc(y.detach(), cond), "hinge")
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            adv = g_loss(disc(y, cond), "hinge")
            loss = _pixel_loss(y, x, cfg.vae_chroma) + cfg.vae_gan_weight * adv
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.decoder.parameters(), 1.0)
            opt_g.step()
            if step % 50 == 0 or step == cfg.vae_gan_steps - 1:
                _log(f"vae gan step {step} loss {loss.item():.4f} adv {adv.item():.3f} disc {loss_d.item():.3f} "
                     f"{time.time() - t0:.0f}s", log)
            if (step + 1) % cfg.vae_pick_every == 0 or step == cfg.vae_gan_steps - 1:
                kept = sharpness_kept(pick, round_trip(vae, pick))
                better = abs(kept - 1) < best_gap
                if better:
                    best, best_gap = {k: v.clone() for k, v in vae.decoder.state_dict().items()}, abs(kept - 1)
                _log(f"vae gan step {step + 1}: sharpness kept {kept:.3f}{' (best so far)' if better else ''}", log)
        vae.decoder.load_state_dict(best)
        vae.encoder.requires_grad_(True)
    return vae.eval()


@torch.no_grad()
def vae_round_trip(vae, folder: Path, names: list[str]) -> tuple[dict, np.ndarray, np.ndarray]:
    """Pictures through the autoencoder and back: a report (PSNR, and how much of their colour survives:
    mean chroma out / in; the first demo VAE, trained on mostly black-and-white art, kept 0.05 of it on
    held-out colour pictures), the pictures and their round trips (uint8 NHWC)."""
    images = load_images(folder, names)
    out = round_trip(vae, images)
    err = ((out.astype(np.float64) - images) ** 2).mean()

    def chroma(a):
        a = a.astype(np.float32)
        return float(np.abs(a - a.mean(-1, keepdims=True)).mean())

    report = {"images": len(names), "psnr_db": round(float(10 * np.log10(255**2 / err)), 2),
              "chroma_kept": round(chroma(out) / chroma(images), 3),
              "sharpness_kept": round(sharpness_kept(images, out), 3)}
    return report, images, out


@torch.no_grad()
def round_trip(vae, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """uint8 NHWC pictures through the encoder and the decoder."""
    out = []
    for i in range(0, len(images), batch):
        y = vae.decoder(vae.encoder(to_tensor(images[i : i + batch])))
        out.append(((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def sharpness_kept(images: np.ndarray, out: np.ndarray) -> float:
    """Mean sharpness (training/evaluate.py) of the round trips over that of the pictures: 1 is the pictures'
    own, below is blur, above is edges the decoder invents (ringing)."""
    from training.evaluate import sharpness

    return float(np.mean([sharpness(o) for o in out]) / np.mean([sharpness(i) for i in images]))


@torch.no_grad()
def encode_all(vae, images: np.ndarray, batch: int = 32) -> torch.Tensor:
    """VAE latents of every picture, float32 (N, 4, size/8, size/8)."""
    out = []
    for i in range(0, len(images), batch):
        out.append(vae.encoder(to_tensor(images[i : i + batch])))
    return torch.cat(out)


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids


def train_generator(parts: dict, latents: torch.Tensor, ids: torch.Tensor, empty: torch.Tensor, cfg: BaseConfig,
                    log: Path | None = None) -> None:
    """Text encoder + UNet jointly, x0 loss through the engine's one-step recipe."""
    from models.engine import OneStep

    unet, te = parts["unet"].train(), parts["text_encoder"].train()
    one = OneStep.from_scheduler(parts["scheduler"])
    t = one.timestep.long()
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, cfg.unet_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.unet_lr, total_steps=cfg.unet_steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.time()
    for step in range(cfg.unet_steps):
        idx = torch.randint(0, len(latents), (cfg.unet_batch,), generator=gen)
        z, tok = latents[idx], ids[idx].clone()
        drop = torch.rand(cfg.unet_batch, generator=gen) < cfg.caption_dropout
        tok[drop] = empty
        noise = torch.randn(z.shape, generator=gen)
        emb = te(tok)[0]
        out = unet(noise * one.k_in, t, encoder_hidden_states=emb).sample
        x0 = one.a * noise + one.b * out.float()
        loss = F.mse_loss(x0, z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == cfg.unet_steps - 1:
            _log(f"unet step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", log)
    unet.eval()
    te.eval()


def save(parts: dict, tokenizer_dir: Path, folder: Path) -> None:
    """Write the base in diffusers layout, fp16 safetensors, with the tokenizer files copied in."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    pipe = StableDiffusionPipeline(
        unet=parts["unet"], vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=tok,
        scheduler=parts["scheduler"], safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(folder / "tokenizer")
    shutil.copytree(tokenizer_dir, folder / "tokenizer")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def drop_source_path(folder: Path) -> None:
    """Take diffusers' `_name_or_path` (where the weights were read from: a path on the machine that built them)
    out of folder/config.json."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.pop("_name_or_path", None)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _write_adapter(src: Path, dst: Path, condition: str) -> None:
    """An adapter into the model as fp16 safetensors with its adapter.json (base demo, run at 256 px). One that is
    already the model's (fp16, adapter.json says trained_at: a seeded cache) is copied byte for byte."""
    import torch
    from diffusers import ControlNetModel

    from models.loading import AdapterInfo

    info = AdapterInfo.read(src)
    if info.base_model == "demo" and "trained_at" in info.extra:
        shutil.copytree(src, dst)
        return
    net = ControlNetModel.from_pretrained(src, torch_dtype=torch.float16)
    net.save_pretrained(dst, safe_serialization=True)
    drop_source_path(dst)
    info.condition = condition
    info.base_model = "demo"
    info.resolution = 256
    info.extra = {"trained_at": 128, "note": "trained on 128 px windows of 256 px pictures (same pixel scale)",
                  "training": info.extra}
    info.write(dst)


def assemble(base: Path, adapter: Path, out: Path, colour: Path | None = None) -> None:
    """Base + fp16 adapters (adapter/, and colour_adapter/ when given) into out/ (replaced as a whole: built
    beside it, then renamed)."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp)
    _write_adapter(adapter, tmp / "adapter", "sketch")
    if colour is not None:
        _write_adapter(colour, tmp / "colour_adapter", "colour-hints")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.replace(old)
    tmp.replace(out)
    shutil.rmtree(old, ignore_errors=True)
