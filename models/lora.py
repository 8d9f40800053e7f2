"""LoRA styles on the base model, each with a weight that can change between frames.

A spec is a hub id, a folder or a file, in one of three formats, all read by diffusers' and peft's own
loaders into the UNet (and the text encoder where the file has layers for it):
  - a PEFT adapter folder: adapter_config.json + adapter_model.safetensors (IDKiro/sdxs-512-dreamshaper-anime)
  - a diffusers LoRA file: pytorch_lora_weights.safetensors (keys `unet.` / `text_encoder.`)
  - a kohya / A1111 .safetensors (keys `lora_unet_` / `lora_te_`, with `.alpha`)
A pickle `.bin` is read by diffusers with torch's weights_only loader, never run.

The live weight: peft scales each LoRA layer's output by `scaling[name]`, a python float that a CUDA
graph would bake in. So after loading, each layer's alpha/r is folded into its lora_B weight once and
`scaling[name]` becomes one shared 0-d tensor per LoRA on the engine's device. A new weight is a fill_
of that tensor: the next frame (eager, fused or a replayed graph) reads it, and nothing is rebuilt.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.bounds import BOUNDS
from models.errors import UserError
from models.loading import REPO_ID, download
from models.options import split_spec_arg

log = logging.getLogger(__name__)
LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' name for its LoRA files
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
MAX_WEIGHT = BOUNDS["lora_weight"].high  # a LoRA weight is -MAX_WEIGHT..MAX_WEIGHT (models.bounds)


def parse_lora_arg(text: str) -> tuple[str, float]:
    """`SPEC[:WEIGHT]` -> (spec, weight); the weight is 1.0 without a ':'. Text after the last ':' that is no
    number is a one-line error naming it, unless the whole text is an existing path (or a drive letter's)."""
    spec, weight = split_spec_arg(text, "--lora", "WEIGHT", "style.safetensors",
                                  "names no LoRA: pass a hub id, folder or .safetensors file, optionally with :WEIGHT")
    return spec, check_weight(weight, f"--lora {text!r}")


def check_weight(weight: float, what: str = "LoRA") -> float:
    weight = float(weight)
    if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
        raise UserError(f"{what}: weight {weight} must be a number between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g} (1 is the LoRA as trained)")
    return weight


def lora_name(spec: str) -> str:
    """A short adapter name from a spec: 'IDKiro/sdxs-512-dreamshaper-anime' -> 'sdxs_512_dreamshaper_anime'."""
    path = Path(spec)
    stem = path.stem if path.suffix in (".safetensors", ".bin") else path.name
    if stem in ("pytorch_lora_weights", "adapter_model") and path.parent.name:
        stem = path.parent.name
    name = re.sub(r"\W+", "_", stem).strip("_")  # peft keeps adapters in ModuleDicts: no dots
    return name or "lora"


@dataclass
class LoraFile:
    """Where a LoRA's weights are and how they are laid out."""

    kind: str  # "peft" (adapter folder) or "file" (diffusers or kohya state dict; diffusers tells which)
    folder: Path  # the folder that holds the weights
    weight_name: str  # the weights file inside it


def locate(spec: str, progress: Any = None) -> LoraFile:
    """Turn a spec into its weights on disk, downloading a hub id (or reading it from the cache when offline)."""
    try:
        path = Path(os.path.expanduser(spec))  # Path.expanduser raises for ~unknown-user
        is_file = path.is_file()
    except OSError as e:  # a name too long for the file system, say
        raise UserError(f"LoRA {spec[:80]!r} cannot be opened ({e.strerror or e}): check the path") from None
    if is_file:
        if path.suffix not in (".safetensors", ".bin"):
            raise UserError(f"LoRA {spec!r} is a {path.suffix or 'plain'} file: pass a .safetensors file, its folder or a hub id")
        return LoraFile("file", path.parent, path.name)
    if not path.exists():
        if not REPO_ID.match(spec) or spec.startswith((".", "/", "~")):
            raise UserError(f"LoRA {spec!r} is neither an existing file or folder nor a Hugging Face repo id like owner/name")
        try:
            path = download(spec, "LoRA", progress)
        except UserError as e:  # its hint names the built-in demo model, which is no LoRA
            raise type(e)(str(e).replace(" (or `demo`)", "")) from None  # Cancelled, HubUnreachable keep their type
    if (path / "adapter_config.json").exists():
        for name in PEFT_WEIGHTS:
            if (path / name).exists():
                return LoraFile("peft", path, name)
        raise UserError(f"LoRA {spec!r} ({path}) has adapter_config.json but no {' or '.join(PEFT_WEIGHTS)}: re-download it")
    if (path / LORA_FILE).exists():
        return LoraFile("file", path, LORA_FILE)
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    if len(files) == 1:
        return LoraFile("file", path, files[0].name)
    found = f"{len(files)} weight files" if files else "no .safetensors file"
    raise UserError(f"LoRA {spec!r} ({path}) has {found}: pass the file itself, or a folder with {LORA_FILE} or adapter_config.json")


def read_state_dict(where: LoraFile) -> tuple[dict, dict | None, dict | None]:
    """(state dict with `unet.` / `text_encoder.` keys, network alphas, LoraConfig kwargs or None) by diffusers' rules."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin

    if where.kind == "peft":
        from peft import LoraConfig

        config = json.loads((where.folder / "adapter_config.json").read_text())
        fields = LoraConfig.__dataclass_fields__
        skip = ("peft_type", "task_type", "auto_mapping")
        # diffusers reads the config per model, by the same prefix as the keys
        metadata = {"unet." + k: v for k, v in config.items() if k in fields and k not in skip}
        state, _ = StableDiffusionLoraLoaderMixin.lora_state_dict(str(where.folder), weight_name=where.weight_name)
        # a PEFT folder adapts one model, the UNet here; its keys start at the wrapped model
        state = {"unet." + k.removeprefix("base_model.model."): v for k, v in state.items()}
        return state, None, metadata
    state, alphas = StableDiffusionLoraLoaderMixin.lora_state_dict(str(where.folder), weight_name=where.weight_name)
    if any(k.startswith("base_model.model.") for k in state):  # a PEFT adapter's weights without its folder
        state = {"unet." + k.removeprefix("base_model.model."): v for k, v in state.items()}
    return state, alphas, None


def nonfinite(state: dict, alphas: dict | None = None) -> str:
    """What in a LoRA's weights is not a finite number ('3 NaN and 1 inf values in 2 of its 8 tensors (first:
    KEY)'), or "" when every value is finite."""
    nan = inf = 0
    tensors = [(k, v) for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    alphas = {k: torch.tensor(float(v)) for k, v in (alphas or {}).items()}
    found = []
    for key, value in [*tensors, *alphas.items()]:
        n_nan, n_inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
        if n_nan or n_inf:
            nan, inf = nan + n_nan, inf + n_inf
            found.append(key)
    if not found:
        return ""
    values = " and ".join(f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "inf")) if n)
    return f"{values} values in {len(found)} of its {len(tensors) + len(alphas)} tensors (first: {found[0]})"


def _tuner_layers(*models):
    from peft.tuners.tuners_utils import BaseTunerLayer

    for model in models:
        for module in model.modules():
            if isinstance(module, BaseTunerLayer) and hasattr(module, "lora_A"):
                yield module


def _expected_layers(state: dict) -> int:
    """How many LoRA layers the file holds (one down/A matrix each), in any of diffusers' key styles."""
    return sum(1 for k in state if re.search(r"(lora_A|lora_down|lora\.down)(\.[\w]+)?\.weight$", k))


class LoraStack:
    """The LoRAs on one engine's UNet and text encoder, by name, each with a weight buffer."""

    def __init__(self, unet, text_encoder, base_spec: str):
        self.unet = unet
        self.text_encoder = text_encoder
        self.base_spec = base_spec  # named in errors
        self.specs: dict[str, str] = {}  # name -> spec as given
        self.buffers: dict[str, torch.Tensor] = {}  # name -> the 0-d weight every layer of that LoRA reads
        self._weights: dict[str, float] = {}  # the same weights as floats (reading a GPU buffer would sync)
        self.on_text: set[str] = set()  # names with layers in the text encoder (a new weight re-encodes the prompt)

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def find(self, key: str) -> str:
        """A loaded LoRA by its name, its spec as given, or a name made from that spec."""
        for name, spec in self.specs.items():
            if key in (name, spec) or lora_name(key) == name:
                return name
        loaded = ", ".join(self.specs) or "none"
        raise UserError(f"no LoRA named {key!r} is loaded (loaded: {loaded}); add it with --lora SPEC[:WEIGHT]")

    def add(self, spec: str, weight: float = 1.0, progress: Any = None) -> str:
        """Load a LoRA into the models and give it a weight. Returns its name."""
        weight = check_weight(weight, f"LoRA {spec!r}")
        where = locate(spec, progress)
        name, n = lora_name(spec), 1
        while name in self.specs:
            n += 1
            name = f"{lora_name(spec)}_{n}"
        try:
            with warnings.catch_warnings():  # torch's pickle-protocol notice: a failure is said in one line below
                warnings.simplefilter("ignore")
                state, alphas, metadata = read_state_dict(where)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"could not read LoRA {spec!r} ({where.folder / where.weight_name}): {_why(e)}") from None
        bad = nonfinite(state, alphas)
        if bad:  # it would turn every frame black (NaN spreads through the UNet), or white
            file = where.folder / where.weight_name
            at = "" if Path(os.path.expanduser(spec)) == file else f" ({file})"
            raise UserError(f"LoRA {spec!r}{at} is damaged: {bad}; download or train it again")
        expected = _expected_layers(state)
        if not expected:
            raise UserError(f"LoRA {spec!r} ({where.weight_name}) holds no LoRA layers: is it a LoRA file?")
        self._load(spec, name, state, alphas, metadata)
        got = sum(1 for m in _tuner_layers(self.unet, self.text_encoder) if name in m.lora_A)
        if not got:
            self._drop(name)
            raise UserError(f"LoRA {spec!r} does not fit base model {self.base_spec!r}: none of its {expected} layers "
                            "is in it (a LoRA for another model, such as SDXL?); use a LoRA made for SD 1.5 / SDXS")
        if got < expected:  # SD 1.5 LoRAs also adapt layers SDXS pruned (its mid block, second layers per block)
            log.warning("LoRA %s: %d of its %d layers are in %s; the others are skipped", spec, got, expected, self.base_spec)
        self.specs[name] = spec
        self._fold(name, weight)
        log.info("LoRA %s (%s): %d layers, weight %g", name, spec, got, weight)
        return name

    def _load(self, spec: str, name: str, state: dict, alphas: dict | None, metadata: dict | None) -> None:
        from diffusers.loaders import StableDiffusionLoraLoaderMixin as Mixin

        quiet = logging.getLogger("diffusers.loaders.peft")  # it logs a failure we report in one line ourselves
        quiet.disabled = True
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # several LoRAs on one model
                if any(k.startswith("unet.") for k in state):
                    Mixin.load_lora_into_unet(state, alphas, self.unet, adapter_name=name, metadata=metadata)
                if any(k.startswith("text_encoder.") for k in state):
                    Mixin.load_lora_into_text_encoder(state, alphas, self.text_encoder, adapter_name=name, metadata=metadata)
        except Exception as e:  # shape mismatches, unknown modules and bad configs surface as many kinds
            self._drop(name)
            raise UserError(f"LoRA {spec!r} does not fit base model {self.base_spec!r}: {_why(e)}") from None
        finally:
            quiet.disabled = False

    def _drop(self, name: str) -> None:
        for m in _tuner_layers(self.unet, self.text_encoder):
            if name in m.lora_A:
                m.delete_adapter(name)
        for model in (self.unet, self.text_encoder):
            getattr(model, "peft_config", {}).pop(name, None)

    def _fold(self, name: str, weight: float) -> None:
        """Activate every loaded LoRA on each layer, fold alpha/r into lora_B and point scaling at the buffer."""
        ref = next(self.unet.parameters())
        buf = torch.tensor(weight, dtype=ref.dtype, device=ref.device)
        self.buffers[name] = buf
        self._weights[name] = weight
        text = {id(m) for m in self.text_encoder.modules()}
        for m in _tuner_layers(self.unet, self.text_encoder):
            if name not in m.lora_A:
                continue
            m.set_adapter([n for n in self.specs if n in m.lora_A])
            # peft makes its layers (lora_dropout among them) in training mode, after the engine's eval(): a
            # folder with lora_dropout > 0 then dropped a random part of the LoRA's input every frame, where
            # PeftModel.from_pretrained (SDXS's anime demo) calls eval()
            m.eval().requires_grad_(False)
            scale = m.scaling[name]
            if not isinstance(scale, torch.Tensor):
                with torch.no_grad():
                    m.lora_B[name].weight.mul_(scale)
                    if getattr(m.lora_B[name], "bias", None) is not None:
                        m.lora_B[name].bias.mul_(scale)
            m.scaling[name] = buf
            if id(m) in text:
                self.on_text.add(name)

    def set_weight(self, key: str, weight: float) -> bool:
        """New weight for a LoRA, read by the next frame. Returns True when the text encoder has its layers
        (then the prompt must be encoded again)."""
        name = self.find(key)
        self._weights[name] = check_weight(weight, f"LoRA {name!r}")
        self.buffers[name].fill_(self._weights[name])
        return name in self.on_text

    def remove(self, key: str) -> bool:
        """Take a LoRA out of the models (peft's delete_adapter on each of its layers; the other LoRAs stay
        active). Returns True when it had text-encoder layers (then the prompt must be encoded again)."""
        name = self.find(key)
        self._drop(name)
        for m in _tuner_layers(self.unet, self.text_encoder):
            m.requires_grad_(False)  # peft's set_adapter on the remaining ones makes them trainable again
        del self.specs[name], self.buffers[name], self._weights[name]
        on_text = name in self.on_text
        self.on_text.discard(name)
        log.info("LoRA %s removed", name)
        return on_text

    def enable(self, on: bool) -> None:
        """Switch every LoRA layer off (the base model's own path, no LoRA arithmetic) or on again."""
        for m in _tuner_layers(self.unet, self.text_encoder):
            m.enable_adapters(on)


def _why(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
