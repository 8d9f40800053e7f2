"""Random components in the SDXS dreamshaper layout, for tests and benchmarks.

Two sizes: "tiny" (a few MB, for tests: the real layout at small width) and "sdxs" (the released
checkpoint's layout and width with random weights, about 1.3 GB, for benchmarks; never committed).
The layout follows IDKiro/sdxs-512-dreamshaper: three UNet levels, one layer per block, no mid block,
a TAESD-layout AutoencoderTiny, a CLIP text encoder, Euler with trailing spacing. The ControlNet gets a
mid block of its own, since diffusers' ControlNetModel needs one and the UNet adds its residual anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Layout:
    unet_channels: tuple[int, ...]  # block_out_channels of UNet and ControlNet
    heads: int  # diffusers' "attention_head_dim" (really the number of heads)
    text_width: int  # CLIP hidden size = cross-attention width
    text_layers: int
    text_heads: int
    text_mlp: int
    vae_channels: int  # TAESD width
    vae_blocks: tuple[int, ...]  # TAESD blocks per level
    cond_channels: tuple[int, ...]  # ControlNet conditioning embedding widths (4 levels: 8x down)
    vocab: int  # text encoder vocabulary (>= the tokenizer's)
    norm_groups: int = 32


LAYOUTS = {
    "tiny": Layout((32, 64, 64), 8, 32, 2, 4, 37, 16, (1, 1, 1, 1), (16, 16, 32, 32), 1000),
    "sdxs": Layout((320, 640, 1280), 8, 768, 12, 12, 3072, 64, (1, 3, 3, 3), (16, 32, 96, 256), 49408),
}


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable character table (printable bytes map to themselves)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tiny_tokenizer(folder: Path):
    """A real CLIPTokenizer over CLIP's byte alphabet (514 tokens, no merges): slow to read but exact."""
    from transformers import CLIPTokenizer

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77, local_files_only=True)


def build_parts(
    L: Layout,
    sample_size: int = 64,
    decoder_blocks: tuple[int, ...] | None = None,
    prediction_type: str = "epsilon",
    special_ids: tuple[int, int] = (512, 513),
) -> dict:
    """Random UNet, AutoencoderTiny, CLIP text encoder and scheduler in the SDXS dreamshaper layout at L's width.

    special_ids are the tokenizer's (bos, eos); decoder_blocks default to the encoder's, mirrored.
    """
    from diffusers import AutoencoderTiny, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(
        sample_size=sample_size,
        block_out_channels=L.unet_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        mid_block_type=None,  # SDXS pruned the mid block
        layers_per_block=1,
        attention_head_dim=L.heads,
        cross_attention_dim=L.text_width,
        norm_num_groups=L.norm_groups,
    )
    vae = AutoencoderTiny(
        encoder_block_out_channels=(L.vae_channels,) * 4,
        decoder_block_out_channels=(L.vae_channels,) * 4,
        num_encoder_blocks=L.vae_blocks,
        num_decoder_blocks=decoder_blocks or L.vae_blocks[::-1],
    )
    bos, eos = special_ids
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=L.vocab,
            hidden_size=L.text_width,
            intermediate_size=L.text_mlp,
            num_hidden_layers=L.text_layers,
            num_attention_heads=L.text_heads,
            max_position_embeddings=77,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=eos,
        )
    )
    scheduler = EulerDiscreteScheduler(  # the released SDXS scheduler: one step at t = 999
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        prediction_type=prediction_type,
        steps_offset=1,
    )
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, scheduler=scheduler)


def build_base(size: str = "tiny", seed: int = 0, tokenizer_dir: Path | None = None) -> dict:
    """UNet, VAE, text encoder, tokenizer and scheduler of a random SDXS-layout model."""
    L = LAYOUTS[size]
    torch.manual_seed(seed)
    parts = build_parts(L)
    with torch.no_grad():  # random decoders output nearly black; spread them over the range so tests can see
        last = parts["vae"].decoder.layers[-1]
        last.weight.mul_(30 / L.vae_channels**0.5)
        last.bias.fill_(0.5)
    if tokenizer_dir is None:
        import tempfile

        tokenizer_dir = Path(tempfile.mkdtemp(prefix="sdxs-tok-"))
    parts["tokenizer"] = tiny_tokenizer(tokenizer_dir)
    return parts


def build_controlnet(unet, size: str = "tiny", seed: int = 1, random_outputs: bool = True):
    """A ControlNet for `unet`'s layout with a mid block of its own.

    diffusers zero-inits the output convolutions, so a fresh ControlNet changes nothing; tests want one
    that does, so `random_outputs` fills them with small random weights.
    """
    from diffusers import ControlNetModel

    L = LAYOUTS[size]
    torch.manual_seed(seed)
    cfg = unet.config
    net = ControlNetModel(
        down_block_types=cfg.down_block_types,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        mid_block_type="UNetMidBlock2DCrossAttn",
        attention_head_dim=cfg.attention_head_dim,
        cross_attention_dim=cfg.cross_attention_dim,
        norm_num_groups=cfg.norm_num_groups,
        conditioning_embedding_out_channels=L.cond_channels,
    )
    if random_outputs:
        with torch.no_grad():
            for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
                conv.weight.normal_(0, 0.3)
                conv.bias.normal_(0, 0.1)
            # at default init the control image barely moves the output; make the embedding carry it
            for conv in net.controlnet_cond_embedding.modules():
                if isinstance(conv, torch.nn.Conv2d):
                    conv.weight.normal_(0, 1.5 / conv.weight[0].numel() ** 0.5)
                    conv.bias.zero_()
    return net


def save_base(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random base model in diffusers layout (what the loader reads) and return its folder."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    parts = build_base(size, seed, tokenizer_dir=folder / "tokenizer")
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_controlnet(folder: str | Path, base: str | Path, size: str = "tiny", seed: int = 1) -> Path:
    """Write a random ControlNet for the base model at `base`."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    build_controlnet(unet, size, seed).save_pretrained(folder, safe_serialization=True)
    return Path(folder)


_BUILT: dict = {}  # what tiny_engine built in this process, by key: copies are handed out (building is slow)


def _made(key: tuple, build):
    """A deep copy of what build() makes, built once per process (the tokenizer, read-only, is shared)."""
    import copy

    if key not in _BUILT:
        _BUILT[key] = build()
    made = _BUILT[key]
    if isinstance(made, dict):
        return {k: v if k == "tokenizer" else copy.deepcopy(v) for k, v in made.items()}
    return copy.deepcopy(made)


def tiny_adapters(unet, condition: str = "sketch", polarity: str = "black_on_white"):
    """An Engine's adapters_from (spec, dtype, progress) -> adapters that loads nothing: each spec gives tiny
    random ControlNets for `unet` at once, as models.loading.load_adapters would name them: `demo` is
    demo-sketch and demo-colour (a colour-hint adapter), a spec with "colour" in it a colour-hint adapter,
    anything else an adapter of this condition and polarity."""
    from models.loading import Adapter, AdapterInfo, expand_adapter_spec

    def made(spec: str, dtype: torch.dtype = torch.float32, progress=None) -> list:
        specs = ["demo-sketch", "demo-colour"] if spec == "demo" else expand_adapter_spec(spec)
        out = []
        for i, s in enumerate(specs):
            colour = "colour" in s
            info = AdapterInfo(condition="colour-hints") if colour else AdapterInfo(condition=condition, polarity=polarity)
            seed = 1 + i + 2 * colour
            net = _made(("controlnet", seed), lambda seed=seed: build_controlnet(unet, "tiny", seed))
            net = net if dtype == torch.float32 else net.to(dtype)
            out.append(Adapter(net, info, Path(s), s))
        return out

    return made


def tiny_engine(size: int = 64, cost_ms: float | None = 0.0, adapters: tuple[str, ...] = ("sketch",),
                condition: str = "sketch", polarity: str = "black_on_white", seed: int = 0):
    """The real models.engine.Engine on tiny random components (CPU, float32), built in memory, whose frames
    run on a stand-in runner of `cost_ms` a frame (models.runners.standin; None: the real recipe). Its
    adapters come from tiny_adapters: `adapters` are the specs it starts with (each at strength 0.8); later
    add_adapter and use_adapter calls make tiny ones the same way. For tests and the frame-path benchmark."""
    from models.engine import Engine
    from models.loading import BaseModel, quiet_libraries
    from models.runners.standin import StandInRunner

    quiet_libraries()
    parts = _made(("base", seed), lambda: build_base("tiny", seed))
    unet = parts["unet"]
    folder = Path(parts["tokenizer"].name_or_path)
    base = BaseModel(unet, parts["vae"], parts["text_encoder"], parts["tokenizer"], parts["scheduler"], folder, "tiny")
    engine = Engine(base, "cpu", "float32", adapters_from=tiny_adapters(unet, condition, polarity))
    engine.control_scale = 0.8
    for spec in adapters:
        engine.add_adapter(spec, 0.8)
    engine.set_size(size)
    return engine.use_runner(StandInRunner(cost_ms) if cost_ms is not None else None)


if __name__ == "__main__":  # python -m models.tiny OUT_DIR [tiny|sdxs]: base in OUT/base, ControlNet in OUT/controlnet
    import sys

    out, size = Path(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "tiny")
    save_base(out / "base", size)
    save_controlnet(out / "controlnet", out / "base", size)
    print(f"wrote {size} components to {out}/base and {out}/controlnet")
