"""The adversarial term: a discriminator that needs no weights from the internet, trained beside the adapter.

Regression teaches the adapter the average of all pictures that fit a condition, which is soft and greyish
where the condition leaves colour and texture open. A discriminator instead asks "does this look like a
training picture?", which an average does not. Two kinds (pick with --discriminator):

  unet   heads on the frozen base UNet's own encoder features of the lightly re-noised x0 latent and of the
         target latent, at one random timestep per sample, with a projection on the pooled prompt embedding
         (as latent adversarial diffusion distillation does: the base is already a feature extractor for its
         own latent space, and it costs one extra encoder pass; only the small heads train)
  patch  a small conditional PatchGAN on the decoded image next to the condition image (pix2pix): realism
         and agreement with the condition at once. Its real side is the target through the base's own VAE
         (encode, decode), the best the generator can reach, so it cannot win on the VAE's artefacts alone.

Losses: hinge or non-saturating; optional R1 penalty on the real inputs of the trainable part. The
discriminator has its own AdamW and learning rate; its weights and optimizer go into checkpoints, never
into the shipped adapter.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

RENOISE_MAX_T = 250  # the unet kind sees x0 re-noised at a timestep below this: lightly, details stay visible
DIVERGED = 20.0  # a generator adversarial loss (EMA) above this is diverging: real hinge/softplus values are ~0-3
WINS = 0.99  # discriminator accuracy (EMA) at which it separates real from generated outright
# a mean logit (EMA) of the generated pictures below this: the discriminator pushes them past the hinge margin
# (-1) as a whole, so the adapter no longer moves them. Healthy demo runs stayed above -1.0; one whose adapter
# ignored the discriminator (weight 1e-6) sank to -1.9 while a spectral-norm PatchGAN's accuracy stayed at 0.91
FAKE_LOST = -1.5


class FeatureHeads(nn.Module):
    """One small conv head per UNet encoder level, logits per position; the prompt enters by projection."""

    def __init__(self, channels: list[int], text_dim: int, width: int = 64):
        super().__init__()
        self.body = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.GroupNorm(8, width), nn.LeakyReLU(0.2),
                          nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2)) for c in channels)
        self.out = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in channels)
        self.text = nn.ModuleList(nn.Linear(text_dim, width) for _ in channels)
        self.width = width

    def forward(self, feats: list[torch.Tensor], text: torch.Tensor) -> torch.Tensor:
        pooled = text.float().mean(dim=1)
        logits = []
        for f, body, out, proj in zip(feats, self.body, self.out, self.text):
            h = body(f.float())
            # projection discriminator: <h, embed(prompt)> rewards pictures that fit their prompt
            cond = (h * proj(pooled)[:, :, None, None]).sum(1, keepdim=True) / math.sqrt(self.width)
            logits.append((out(h) + cond).flatten(1))
        return torch.cat(logits, dim=1)


class PatchDiscriminator(nn.Module):
    """pix2pix's 70 px PatchGAN, slimmer, with spectral norm: (image, condition) -> a logit per patch."""

    def __init__(self, width: int = 64, layers: int = 3):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        mods: list[nn.Module] = []
        c_in = 6
        for i in range(layers):
            c_out = width * 2**i
            mods += [sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        mods.append(sn(nn.Conv2d(c_in, 1, 3, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, condition], dim=1).float()).flatten(1)


def d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


def build_discriminator(kind: str, unet: Any, seed: int) -> nn.Module:
    """A fresh discriminator, seeded so that a resumed run builds the same one before loading its state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 7919)
        if kind == "unet":
            channels = list(unet.config.block_out_channels)[: len(unet.down_blocks)]
            return FeatureHeads(channels, int(unet.config.cross_attention_dim))
        return PatchDiscriminator()


class Adversary:
    """The discriminator, its optimizer, and the two losses of one batch (given what the objective kept)."""

    def __init__(self, kind: str, objective: Any, *, loss: str, lr: float, r1: float, seed: int):
        self.kind, self.loss, self.r1 = kind, loss, r1
        self.objective = objective
        self.disc = build_discriminator(kind, objective.unet, seed).to(objective.device)
        self.disc.train()
        # the module itself, also once accelerate has wrapped self.disc (in DDP for several processes): the
        # adapter's pass goes through it unwrapped, with the weights frozen, so DDP syncs only real D steps
        self.module = self.disc
        # beta1 0.5 as pix2pix: momentum makes the two-player game oscillate
        self.optimizer = torch.optim.AdamW(self.disc.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=0.0)
        alphas = getattr(objective.base.scheduler, "alphas_cumprod", None)
        self.alphas = torch.as_tensor(alphas if alphas is not None else torch.linspace(1, 0.01, 1000)).float()

    def inputs(self, kept: dict, gen: torch.Generator) -> None:
        """What the discriminator sees of the generated and the real sample (kept["fake"], kept["real"]);
        the generated side keeps its graph back into the adapter."""
        o = self.objective
        if self.kind == "unet":
            x0, real = kept["x0"], kept["target_latent"]
            b = x0.shape[0]
            t = torch.randint(0, RENOISE_MAX_T, (b,), generator=gen)
            noise = torch.randn(x0.shape, generator=gen).to(x0.device)
            ab = self.alphas[t].to(x0.device)[:, None, None, None]
            t = t.to(o.device)
            kept["fake"] = o.features(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, kept["text"], t)
            with torch.no_grad():
                kept["real"] = o.features(ab.sqrt() * real + (1 - ab).sqrt() * noise, kept["text"], t)
        else:
            image = kept.get("image")
            kept["fake"] = image if image is not None else o.decode(kept["x0"])
            with torch.no_grad():
                kept["real"] = o.decode(kept["target_latent"]).clamp(-1, 1)

    def _logits(self, x: Any, kept: dict, net: nn.Module | None = None) -> torch.Tensor:
        net = net or self.disc
        if self.kind == "unet":
            return net(x, kept["text"])
        return net(x, kept["condition"].float() * 2 - 1)

    def generator_loss(self, kept: dict, gen: torch.Generator) -> torch.Tensor:
        """The adapter's adversarial loss (unweighted); the discriminator's weights get no gradient from it."""
        self.inputs(kept, gen)
        self.module.requires_grad_(False)
        try:
            return g_loss(self._logits(kept["fake"], kept, self.module), self.loss)
        finally:
            self.module.requires_grad_(True)

    def discriminator_loss(self, kept: dict) -> dict[str, torch.Tensor]:
        """The discriminator's loss on the detached generated sample and the real one, plus what the log
        shows: mean logits, accuracy (real > 0, generated < 0) and the R1 penalty."""
        fake = [f.detach() for f in kept["fake"]] if self.kind == "unet" else kept["fake"].detach()
        real = [r.detach().requires_grad_(self.r1 > 0) for r in kept["real"]] if self.kind == "unet" \
            else kept["real"].detach().requires_grad_(self.r1 > 0)
        lf, lr = self._logits(fake, kept), self._logits(real, kept)
        terms = {"disc": d_loss(lr, lf, self.loss), "disc_real": lr.detach().mean(), "disc_fake": lf.detach().mean(),
                 "disc_acc": ((lr.detach() > 0).float().mean() + (lf.detach() < 0).float().mean()) / 2}
        if self.r1 > 0:  # R1 (Mescheder et al. 2018): flat discriminator around the real data
            grads = torch.autograd.grad(lr.sum(), real if isinstance(real, list) else [real], create_graph=True)
            terms["r1"] = sum(g.pow(2).flatten(1).sum(1).mean() for g in grads)
            terms["disc"] = terms["disc"] + 0.5 * self.r1 * terms["r1"]
        return terms


class CollapseWatch:
    """Notices a run whose adversarial game has collapsed: the discriminator wins outright (its accuracy
    stays at ~1, or it scores the generated pictures far past its margin) or the generator's adversarial
    loss diverges, for `patience` steps in a row."""

    def __init__(self, patience: int, beta: float = 0.9):
        self.patience, self.beta = patience, beta
        self.acc = self.g = self.fake = None
        self.bad = 0

    def update(self, terms: dict[str, float]) -> str | None:
        """Feed one logged step; returns what went wrong once it has lasted `patience` steps."""
        if "disc_acc" not in terms:
            return None
        ema = self._ema
        self.acc, self.g = ema(self.acc, terms["disc_acc"]), ema(self.g, terms.get("adv_g", 0.0))
        self.fake = ema(self.fake, terms.get("disc_fake", 0.0))
        why = None
        if not math.isfinite(self.g) or self.g > DIVERGED:
            why = f"the generator's adversarial loss diverged (EMA {self.g:.3g})"
        elif self.acc >= WINS or self.fake < FAKE_LOST:
            why = f"the discriminator wins outright (accuracy EMA {self.acc:.3f}, generated pictures' mean logit EMA {self.fake:.2f})"
        self.bad = self.bad + 1 if why else 0
        return why if self.bad >= self.patience else None

    def _ema(self, old: float | None, new: float) -> float:
        return new if old is None else self.beta * old + (1 - self.beta) * new


ADVICE = ("lower --adversarial-weight, lower --disc-lr, add --r1-weight (e.g. 1), or lengthen --adversarial-warmup; "
          "then --resume latest continues from the last checkpoint before the collapse")
