"""Control adapters for a frozen SDXS UNet: diffusers ControlNetModels that diffusers loads unchanged.

full   the base UNet's own encoder (conv_in, time embedding, down blocks, copied weights) plus a fresh
       cross-attention mid block, since SDXS pruned the UNet's; the ControlNet paper's recipe.
light  the same residual widths (the UNet adds each residual to a feature map of that width, and a
       ControlNetModel's output convolutions keep their width), but no attention anywhere, a one-resnet mid
       block and a slimmer conditioning embedding: the resnets still start from the UNet's weights.

diffusers zero-initialises every output convolution (and the conditioning embedding's last one), so a
fresh adapter leaves the base model's output unchanged until it learns something.
"""

from __future__ import annotations

from typing import Any

import torch

from training.config import ADAPTERS

FULL_COND_CHANNELS = (16, 32, 96, 256)  # diffusers' default conditioning embedding
LIGHT_COND_CHANNELS = (16, 32, 64, 128)


def build_adapter(unet: Any, kind: str = "full", seed: int = 0):
    """A ControlNetModel for `unet`'s layout, its encoder initialised from `unet`'s weights."""
    from diffusers import ControlNetModel

    if kind not in ADAPTERS:
        raise ValueError(f"adapter kind {kind!r} is not one of {ADAPTERS}")
    cfg = unet.config
    light = kind == "light"
    torch.manual_seed(seed)  # the fresh parts (mid block, conditioning embedding) start the same for a given seed
    net = ControlNetModel(
        in_channels=cfg.in_channels,
        flip_sin_to_cos=cfg.flip_sin_to_cos,
        freq_shift=cfg.freq_shift,
        down_block_types=("DownBlock2D",) * len(cfg.down_block_types) if light else cfg.down_block_types,
        mid_block_type="UNetMidBlock2D" if light else "UNetMidBlock2DCrossAttn",
        only_cross_attention=cfg.only_cross_attention,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        downsample_padding=cfg.downsample_padding,
        act_fn=cfg.act_fn,
        norm_num_groups=cfg.norm_num_groups,
        norm_eps=cfg.norm_eps,
        cross_attention_dim=cfg.cross_attention_dim,
        transformer_layers_per_block=cfg.transformer_layers_per_block,
        attention_head_dim=cfg.attention_head_dim,
        num_attention_heads=cfg.num_attention_heads,
        use_linear_projection=cfg.use_linear_projection,
        upcast_attention=cfg.upcast_attention,
        resnet_time_scale_shift=cfg.resnet_time_scale_shift,
        conditioning_embedding_out_channels=LIGHT_COND_CHANNELS if light else FULL_COND_CHANNELS,
    )
    copy_encoder(unet, net)
    return net


def copy_encoder(unet: Any, net: Any) -> int:
    """Copy every UNet weight the ControlNet has under the same name and shape (conv_in, time embedding,
    down blocks: all of them for full, the resnets and downsamplers for light). Returns how many tensors."""
    theirs = unet.state_dict()
    prefixes = ("conv_in.", "time_proj.", "time_embedding.", "down_blocks.")
    ours = net.state_dict()
    take = {k: v for k, v in theirs.items() if k.startswith(prefixes) and k in ours and ours[k].shape == v.shape}
    net.load_state_dict(take, strict=False)
    return len(take)


def count_params(net: Any) -> int:
    return sum(p.numel() for p in net.parameters())


def gflops(net: Any, size: int, text_tokens: int = 77) -> float:
    """Forward GFLOPs of one ControlNet pass at `size` px (batch 1), by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = net.config
    h = size // 8
    dev, dt = net.device, net.dtype
    sample = torch.zeros(1, cfg.in_channels, h, h, device=dev, dtype=dt)
    cond = torch.zeros(1, 3, size, size, device=dev, dtype=dt)
    text = torch.zeros(1, text_tokens, cfg.cross_attention_dim, device=dev, dtype=dt)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(sample, torch.tensor([999], device=dev), encoder_hidden_states=text, controlnet_cond=cond, return_dict=False)
    return counter.get_total_flops() / 1e9


if __name__ == "__main__":  # python -m training.adapters [tiny|sdxs] [PX]: params and GFLOPs of both kinds
    import sys

    from models.tiny import build_base

    layout, px = (sys.argv[1] if len(sys.argv) > 1 else "sdxs"), int(sys.argv[2]) if len(sys.argv) > 2 else 512
    unet = build_base(layout)["unet"]
    print(f"UNet ({layout}): {count_params(unet) / 1e6:.1f} M params")
    for kind in ADAPTERS:
        net = build_adapter(unet, kind)
        print(f"{kind:5s} adapter: {count_params(net) / 1e6:.1f} M params, {gflops(net, px):.1f} GFLOPs at {px} px")
