"""What the adapter learns: make the frozen base's one-step output match the target image.

Per sample: fresh noise n; x0 from the engine's own recipe (models.recipe.Recipe.predict, the call every
runner runs, here on a batch with gradients): UNet input k_in * n at the scheduler's single timestep,
x0 = a * n + b * eps. Losses, each weighted:
  latent   MSE between x0 and the target's latent (the base's own VAE encoder)
  pixel    MSE between the tiny decoder's image of x0 and the target, in [-1, 1]
  lpips    perceptual distance of the same two images (only when the `lpips` package and its weights exist)
  feature  MSE between the frozen UNet encoder's features of x0 and of the target latent (as in SDXS's
           feature-matching warm-up, here against the target rather than a teacher's output)
Gradients flow through the frozen UNet and decoder into the adapter only. Frozen companion adapters
(--with-adapter) add their residuals, each scaled by its strength, to the trained adapter's (diffusers'
multi-ControlNet sum), so the trained one learns what to add on top of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from models.errors import first_line
from models.loading import BaseModel
from models.recipe import OneStep, Recipe

FEATURE_TIMESTEP = 0  # the UNet sees clean latents when it serves as a feature extractor


@dataclass
class LossWeights:
    """How much each term counts (0 turns it off)."""

    latent: float = 1.0  # x0 latent vs the target's latent
    pixel: float = 1.0  # decoded x0 vs the target image
    lpips: float = 0.0  # LPIPS(decoded x0, target), needs the lpips package and its VGG weights locally
    feature: float = 0.0  # frozen UNet encoder features of x0 vs those of the target latent


def load_lpips(device: torch.device) -> tuple[Any, str]:
    """An LPIPS network, or None and the reason (it needs its VGG weights, which come from the internet)."""
    try:
        import lpips

        net = lpips.LPIPS(net="vgg", verbose=False).to(device).eval().requires_grad_(False)
        return net, ""
    except Exception as e:  # not installed, or its weights are missing and cannot be downloaded
        return None, f"LPIPS is off: the lpips package or its VGG weights are not available here ({first_line(e, 120)})"


class Objective:
    """The frozen base model and the loss of one batch."""

    def __init__(self, base: BaseModel, weights: LossWeights, device: torch.device, dtype: torch.dtype, checkpointing: bool,
                 companions: list[tuple[Any, float]] | None = None):
        self.base = base
        self.companions = companions or []  # frozen (ControlNetModel, strength) pairs, fed batch["companions"]
        for net, _ in self.companions:
            net.to(device, dtype).eval().requires_grad_(False)
        self.weights = weights
        self.device, self.dtype = device, dtype
        for part in (base.unet, base.vae, base.text_encoder):
            part.to(device, dtype).eval().requires_grad_(False)
        self.unet, self.vae, self.text_encoder = base.unet, base.vae, base.text_encoder
        if checkpointing:  # gradients flow through the frozen UNet and decoder: recompute, do not store
            self.unet.enable_gradient_checkpointing()
            self.vae.enable_gradient_checkpointing()
        self.one_step = OneStep.from_scheduler(base.scheduler)
        self.timestep = self.one_step.timestep.to(device)
        self.vae_scale = float(getattr(self.vae.config, "scaling_factor", 1.0) or 1.0)
        self.lpips, self.note = load_lpips(device) if weights.lpips > 0 else (None, "")
        self._recipe: Recipe | None = None  # the engine's recipe around the trained adapter (recipe())
        self.plain = Recipe(self.unet, self.vae, [], self.one_step, self.vae_scale).to(device)  # without adapters

    @torch.no_grad()
    def encode_text(self, captions: list[str]) -> torch.Tensor:
        tok = self.base.tokenizer
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> latents in the UNet's scale (TAESD: as they are; AutoencoderKL: mean * factor)."""
        out = self.vae.encode(images.to(self.device, self.dtype))
        latents = out.latents if hasattr(out, "latents") else out.latent_dist.mean
        return latents.float() * self.vae_scale

    def recipe(self, controlnet: Any, companions: int = 0) -> Recipe:
        """The engine's recipe (models.recipe.Recipe) with the trained adapter first and the first `companions`
        frozen companions after it, made again only when those networks change."""
        nets = [controlnet, *(net for net, _ in self.companions[:companions])]
        held = list(self._recipe.controlnets) if self._recipe is not None else []
        if len(held) != len(nets) or any(a is not b for a, b in zip(held, nets)):
            self._recipe = Recipe(self.unet, self.vae, nets, self.one_step, self.vae_scale).to(self.device)
        return self._recipe

    def predict_x0(self, controlnet: Any, noise: torch.Tensor, text: torch.Tensor, cond: torch.Tensor,
                   companions: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The engine's recipe with gradients: ControlNet + UNet at the single timestep, then x0 (fp32), by the
        same call the runners run (Recipe.predict). The trained adapter counts at strength 1, the companions
        (no gradients reach them) at theirs; their residuals add up as in the engine."""
        images = list(companions or [])[:len(self.companions)]
        recipe = self.recipe(controlnet, len(images))
        conds = [cond, *(image.to(self.device, self.dtype) for image in images)]
        strengths = torch.tensor([1.0, *(s for _, s in self.companions[:len(images)])], device=self.device)
        x_in = (noise * self.one_step.k_in).to(self.dtype)
        return recipe.predict(x_in, text, self.one_step.a * noise, conds, strengths)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """x0 -> the tiny decoder's images in [-1, 1] (Recipe.images, as the engine decodes)."""
        return self.plain.images(latents)

    def features(self, latents: torch.Tensor, text: torch.Tensor, t: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The frozen UNet encoder's output at each level, for clean latents (or noisy ones at timesteps t)."""
        u = self.unet
        if t is None:
            t = torch.full((latents.shape[0],), FEATURE_TIMESTEP, device=self.device)
        emb = u.time_embedding(u.time_proj(t).to(self.dtype))
        h = u.conv_in(latents.to(self.dtype))
        feats = []
        for block in u.down_blocks:
            if getattr(block, "has_cross_attention", False):
                h, _ = block(h, emb, encoder_hidden_states=text)
            else:
                h, _ = block(h, emb)
            feats.append(h.float())
        return feats

    def __call__(self, controlnet: Any, batch: dict, noise: torch.Tensor, keep: dict | None = None) -> dict[str, torch.Tensor]:
        """All loss terms of one batch; "loss" is their weighted sum (the one to backpropagate). `keep`, when
        given, receives the tensors the adversarial term needs (x0 with its graph, text, target latent, ...)."""
        w = self.weights
        text = self.encode_text(batch["caption"])
        target = batch["image"].to(self.device)
        target_latent = self.encode_images(target)
        cond = batch["condition"].to(self.device, self.dtype)
        if len(batch.get("companions", [])) != len(self.companions):
            raise ValueError(f"the batch holds {len(batch.get('companions', []))} companion conditions for {len(self.companions)} companions")
        x0 = self.predict_x0(controlnet, noise.to(self.device), text, cond, batch.get("companions"))
        terms = {"latent": F.mse_loss(x0, target_latent)}
        image = None
        if w.pixel > 0 or self.lpips is not None:
            image = self.decode(x0)
            terms["pixel"] = F.mse_loss(image, target)
            if self.lpips is not None:
                terms["lpips"] = self.lpips(image.clamp(-1, 1), target).mean()
        if w.feature > 0:
            with torch.no_grad():
                goal = self.features(target_latent, text)
            pred = self.features(x0, text)
            terms["feature"] = sum(F.mse_loss(p, g) for p, g in zip(pred, goal)) / len(goal)
        terms["loss"] = sum(getattr(w, k) * v for k, v in terms.items())
        if keep is not None:
            keep.update(x0=x0, text=text, target_latent=target_latent, condition=cond, image=image)
        return terms
