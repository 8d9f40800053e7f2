"""Random LoRAs for a base model, in each format models.lora reads, for tests and benchmarks.

    python -m tests.tiny_lora BASE OUT.safetensors --format kohya --rank 16
    python -m tests.tiny_lora BASE OUT_FOLDER --format peft

The matrices are random (seeded) and sized so the LoRA changes the picture without swamping it.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from safetensors.torch import save_file

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # the attention projections, as most style LoRAs train
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
FORMATS = ("peft", "diffusers", "kohya")


def lora_matrices(model, targets: list[str], rank: int, seed: int) -> dict[str, torch.Tensor]:
    """Random A and B for every Linear whose name ends with a target, keyed as peft names them."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and any(name.endswith(t) for t in targets):
            state[f"{name}.lora_A.weight"] = torch.randn(rank, m.in_features, generator=g) / m.in_features ** 0.5
            state[f"{name}.lora_B.weight"] = torch.randn(m.out_features, rank, generator=g) / rank ** 0.5
    return state


def save_lora(base: str | Path, out: str | Path, fmt: str, rank: int = 4, seed: int = 0, text: bool = True) -> Path:
    """Write a LoRA for the base model's UNet (and text encoder, except in the peft format, which adapts one
    model) at `out`: a folder for peft, a .safetensors file otherwise."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    out = Path(out)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    te = CLIPTextModel.from_pretrained(base, subfolder="text_encoder") if text else None
    unet_lora = lora_matrices(unet, UNET_TARGETS, rank, seed)
    te_lora = lora_matrices(te, TEXT_TARGETS, rank, seed + 1) if te is not None else {}
    if fmt == "peft":
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

        model = get_peft_model(copy.deepcopy(unet), LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=UNET_TARGETS))
        result = set_peft_model_state_dict(model, {"base_model.model." + k: v for k, v in unet_lora.items()})
        assert not result.unexpected_keys, result.unexpected_keys[:3]
        model.save_pretrained(out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "diffusers":  # what diffusers' save_lora_weights writes: peft keys under the model's prefix
        state = {"unet." + k: v for k, v in unet_lora.items()} | {"text_encoder." + k: v for k, v in te_lora.items()}
    elif fmt == "kohya":  # module path with underscores, lora_down / lora_up, and an alpha per module
        state = {}
        for prefix, part in (("lora_unet_", unet_lora), ("lora_te_", te_lora)):
            for key, v in part.items():
                module, ab = key.rsplit(".lora_", 1)
                stem = prefix + module.replace(".", "_")
                state[f"{stem}.{'lora_down' if ab.startswith('A') else 'lora_up'}.weight"] = v
                state[f"{stem}.alpha"] = torch.tensor(rank / 2)
    else:
        raise ValueError(f"format {fmt!r}: use one of {FORMATS}")
    save_file(state, out)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base")
    p.add_argument("out")
    p.add_argument("--format", default="kohya", choices=FORMATS)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(save_lora(a.base, a.out, a.format, a.rank, a.seed))
