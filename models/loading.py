"""Find and load SDXS models and control adapters.

A spec is a local folder in diffusers layout, a Hugging Face repo id (downloaded with progress, or read
from the cache when offline), or `demo` for the small model shipped in assets/. Everything goes through
diffusers' and transformers' own from_pretrained; safetensors are preferred, and a pickle `.bin` (the
released sketch ControlNet ships one) is read by diffusers with torch's weights_only loader, never run.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.assets import DEMO_DIR
from models.errors import Cancelled, HubUnreachable, UserError, first_line
from models.options import COLOUR_HINTS, POLARITIES
from models.quiet import quiet_libraries  # noqa: F401  (the loaders' callers import it from here)

log = logging.getLogger(__name__)

DEMO_HINT = "the built-in demo model is not built yet: run `python -m training.demo`, or pass a model folder or hub id"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
BASE_FILES = ["model_index.json", "unet/*", "vae/*", "text_encoder/*", "tokenizer/*", "scheduler/*"]
WEIGHT_SKIP = ["*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.pb", "*fp16*", "*.non_ema*"]


@dataclass
class AdapterInfo:
    """What an adapter expects, stored as adapter.json beside its weights (defaults fit the released one)."""

    condition: str = "sketch"  # the extractor that turns a camera frame into its input: sketch, canny, grayscale, blur, paired
    polarity: str = "black_on_white"  # how lines are drawn in its input; the canvas always draws black on white
    resolution: int = 512  # the size it was trained at
    base_model: str = ""  # the base model it was trained for
    extra: dict[str, Any] = field(default_factory=dict)  # anything else, such as the training arguments

    @property
    def inverted(self) -> bool:
        """True when its lines are white on black, the opposite of what the canvas and the extractors draw."""
        return self.polarity == "white_on_black"

    @classmethod
    def read(cls, folder: Path) -> AdapterInfo:
        path = folder / "adapter.json"
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path} is not valid JSON ({e}): fix or delete it") from None
        if not isinstance(data, dict):
            raise UserError(f"{path} holds {_json_kind(data)}, not a JSON object ({{...}}): fix or delete it")
        known = {k: data.pop(k) for k in ("condition", "polarity", "resolution", "base_model") if k in data}
        for key, kind in (("condition", str), ("polarity", str), ("resolution", int), ("base_model", str)):
            if key in known and (not isinstance(known[key], kind) or isinstance(known[key], bool)):
                raise UserError(f"{path}: {key} {known[key]!r} must be a {'whole number' if kind is int else 'text'}: fix or delete it")
        info = cls(**known, extra=data)
        if info.polarity not in POLARITIES:
            raise UserError(f"{path}: polarity {info.polarity!r} is not one of {', '.join(POLARITIES)}")
        return info

    def write(self, folder: Path) -> None:
        data = asdict(self)
        data.update(data.pop("extra"))
        (folder / "adapter.json").write_text(json.dumps(data, indent=2) + "\n")


@dataclass
class BaseModel:
    """The frozen one-step model: everything but the adapter."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any
    path: Path
    spec: str

    @property
    def native_size(self) -> int:
        return int(self.unet.config.sample_size) * 8


@dataclass
class Adapter:
    """A ControlNet plus what it expects."""

    net: Any  # the diffusers ControlNetModel
    info: AdapterInfo  # its adapter.json: condition, polarity, ...
    path: Path  # the folder it was read from
    spec: str  # the spec it was loaded by (demo-sketch, a folder, a hub id)
    name: str = ""  # short and unique among an engine's adapters (the engine adds -2, -3 on a clash); "" = from spec

    def __post_init__(self) -> None:
        self.name = self.name or adapter_name(self.spec)

    @property
    def colour_hints(self) -> bool:
        """A colour-hint adapter: its condition is dots and strokes of colour on white (models.hints)."""
        return self.info.condition == COLOUR_HINTS


# the demo's adapters by spec, and the folder of each under DEMO_DIR; `demo` is all of them that are built
DEMO_ADAPTERS = {"demo-sketch": "adapter", "demo-colour": "colour_adapter"}


def adapter_name(spec: str) -> str:
    """A short name from an adapter spec: demo-sketch stays, 'IDKiro/sdxs-512-dreamshaper-sketch' ->
    'sdxs-512-dreamshaper-sketch', a folder -> its name; a trained adapter is named after its run
    (RUN/adapter -> RUN, RUN/checkpoints/checkpoint-200/adapter -> RUN-step200), not "adapter"."""
    if spec in DEMO_ADAPTERS:
        return spec
    path = Path(str(spec).rstrip("/\\"))
    name = path.name
    if name == "adapter" and path.parent.name:  # the trainer's layout (training/runs.py)
        checkpoint = re.fullmatch(r"checkpoint-(\d+)", path.parent.name)
        if checkpoint and path.parent.parent.name == "checkpoints" and path.parent.parent.parent.name:
            name = f"{path.parent.parent.parent.name}-step{checkpoint.group(1)}"
        elif not checkpoint:
            name = path.parent.name
    return re.sub(r"[^\w.-]+", "_", name).strip("_.") or "adapter"


def expand_adapter_spec(spec: str) -> list[str]:
    """The adapter specs one spec stands for: `demo` -> demo-sketch, and demo-colour where that one is built
    (assets/models/demo/colour_adapter/config.json); anything else -> itself."""
    if spec != "demo":
        return [spec]
    return [s for s, folder in DEMO_ADAPTERS.items()
            if s == "demo-sketch" or (DEMO_DIR / folder / "config.json").exists()]


def resolve(spec: str, kind: str = "model", progress: Any = None) -> Path:
    """Turn a spec into a local folder, downloading from the hub when needed.

    kind is "model" or "adapter"; progress is an optional tqdm class for download progress.
    """
    if spec == "demo" or (kind == "adapter" and spec in DEMO_ADAPTERS):
        folder = DEMO_DIR / (DEMO_ADAPTERS.get(spec, "adapter") if kind == "adapter" else "")
        if not (folder / ("config.json" if kind == "adapter" else "model_index.json")).exists():
            if spec == "demo-colour":
                raise UserError("the demo's colour-hint adapter is not built yet (assets/models/demo/colour_adapter): "
                                "run `python -m training.demo`, or leave demo-colour out")
            raise UserError(DEMO_HINT)
        return folder
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{kind} {spec!r} is a file, not a folder: pass the folder that holds config.json")
        return path
    if not REPO_ID.match(spec) or spec.startswith((".", "/", "~")):
        raise UserError(f"{kind} {spec!r} is neither an existing folder nor a Hugging Face repo id like owner/name")
    return download(spec, kind, progress)


def download(repo_id: str, kind: str = "model", progress: Any = None) -> Path:
    """Download (or find in the cache) the files we need from a hub repo. Resumes partial downloads."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        XetDownloadError,
    )

    patterns = BASE_FILES if kind == "model" else ["*.json", "*.safetensors", "*.bin"]
    offline = bool(constants.HF_HUB_OFFLINE)
    kwargs = {"tqdm_class": progress} if progress is not None else {}
    log.debug("%s %s: %s", kind, repo_id, "from the cache (offline)" if offline else "checking the hub")
    try:
        path = snapshot_download(
            repo_id, allow_patterns=patterns, ignore_patterns=WEIGHT_SKIP, local_files_only=offline, **kwargs
        )
    except Cancelled:  # the progress class raised it: the user pressed Cancel
        raise
    except GatedRepoError:
        raise UserError(f"{kind} {repo_id!r} is gated: accept its terms on huggingface.co and log in "
                        "(`hf auth login`), or pass a local folder") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise UserError(f"{kind} {repo_id!r} is not on the Hugging Face hub (or is private): check the id") from None
    except HfHubHTTPError as e:  # the hub answered with an error status
        raise UserError(f"could not download {kind} {repo_id!r}: {first_line(e)}") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, HTTPError):  # no cache and no hub
        raise HubUnreachable(
            f"{kind} {repo_id!r} is not in the Hugging Face cache and the hub cannot be reached: "
            "connect once to download it, or pass a local folder (or `demo`)"
        ) from None
    except (OSError, XetDownloadError) as e:  # the disk (full, read-only, no permission) or a broken transfer
        raise UserError(f"could not download {kind} {repo_id!r}: {first_line(e)}") from None
    log.debug("%s %s is in %s", kind, repo_id, path)
    return Path(path)


def _need(folder: Path, rel: str, spec: str) -> None:
    if not (folder / rel).exists():
        raise UserError(f"{spec!r} ({folder}) has no {rel}: it is not a complete diffusers model folder; re-download it")


def _read(what: str, folder: Path, spec: str, fn, *args, **kwargs):
    """Call a from_pretrained and turn a broken, missing or unsafe file into a one-line UserError.

    The libraries' own notices are held back meanwhile: diffusers logs an "error" before it falls back
    from safetensors to a .bin, and torch warns about pickle protocols; a real failure raises anyway."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity(dlog.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except UserError:
        raise
    except Exception as e:
        unsafe = unsafe_pickle(folder / kwargs.get("subfolder", ""))
        if unsafe is not None:
            raise UserError(f"{unsafe} is not a safe weights file (a pickle that holds more than tensors, which could "
                            "run code), so it was not loaded: use a .safetensors copy of the weights") from None
        raise UserError(f"could not read the {what} of {spec!r} ({folder}): {first_line(e)}; re-download or rebuild it") from None
    finally:
        dlog.set_verbosity(level)


def unsafe_pickle(folder: Path) -> Path | None:
    """The first pickle weights file in folder that torch's weights_only loader refuses, or None."""
    import pickle

    for path in sorted(folder.glob("*.bin")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            return path
        except Exception:  # truncated or not a torch file at all: broken, not unsafe
            continue
    return None


def load_tokenizer(folder: Path, spec: str):
    """CLIPTokenizer, refusing the empty one transformers returns for a folder without vocabulary files.

    Any real vocabulary is accepted, however small; what is refused is a tokenizer whose only tokens are
    the special ones (what transformers builds, silently, when vocab.json and merges.txt are missing)."""
    from transformers import CLIPTokenizer

    tok_dir = folder / "tokenizer"
    if not ((tok_dir / "vocab.json").exists() or (tok_dir / "tokenizer.json").exists()):
        raise UserError(f"{spec!r} ({folder}) has no tokenizer/vocab.json or tokenizer.json: re-download the model")
    tok = _read("tokenizer", folder, spec, CLIPTokenizer.from_pretrained, tok_dir, local_files_only=True)
    if len(tok) <= len(set(tok.all_special_tokens)):
        raise UserError(f"the tokenizer in {tok_dir} has no tokens but its {len(tok)} special ones, so its vocabulary "
                        "files are empty or unreadable: re-download the model")
    return tok


def load_base(spec: str, dtype: torch.dtype = torch.float32, progress: Any = None) -> BaseModel:
    """Load UNet, VAE (tiny or large, by its config), text encoder, tokenizer and scheduler on the CPU."""
    import diffusers
    from transformers import CLIPTextModel

    folder = resolve(spec, "model", progress)
    for rel in ("unet/config.json", "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json"):
        _need(folder, rel, spec)
        read_config(folder / rel, spec)  # each a JSON object, or one line naming the file: before any weights load
    tokenizer = load_tokenizer(folder, spec)
    vae_class = _class_name(folder / "vae" / "config.json", spec, ("AutoencoderTiny", "AutoencoderKL"))
    sched_class = _class_name(folder / "scheduler" / "scheduler_config.json", spec, None)
    found = getattr(diffusers, sched_class, None) if sched_class else None
    if not (isinstance(found, type) and issubclass(found, diffusers.SchedulerMixin)):
        raise UserError(f"{spec!r}: {folder / 'scheduler' / 'scheduler_config.json'} names {sched_class!r}, which is no "
                        "diffusers scheduler (SDXS uses EulerDiscreteScheduler or LCMScheduler); fix it or re-download the model")
    unet = _read("UNet", folder, spec, diffusers.UNet2DConditionModel.from_pretrained, folder, subfolder="unet", dtype=dtype)
    vae = _read("VAE", folder, spec, getattr(diffusers, vae_class).from_pretrained, folder, subfolder="vae", dtype=dtype)
    te = _read("text encoder", folder, spec, CLIPTextModel.from_pretrained, folder, subfolder="text_encoder", dtype=dtype)
    sched = _read("scheduler", folder, spec, getattr(diffusers, sched_class).from_pretrained, folder, subfolder="scheduler")
    if te.config.vocab_size < len(tokenizer):
        raise UserError(f"{spec!r}: tokenizer ({len(tokenizer)} tokens) does not fit the text encoder ({te.config.vocab_size})")
    return BaseModel(unet, vae, te, tokenizer, sched, folder, spec)


def load_adapter(spec: str, dtype: torch.dtype = torch.float32, progress: Any = None) -> Adapter:
    """Load a diffusers ControlNetModel and its adapter.json (defaults when it has none)."""
    from diffusers import ControlNetModel

    folder = resolve(spec, "adapter", progress)
    _need(folder, "config.json", spec)
    read_config(folder / "config.json", spec)
    if not any(folder.glob("diffusion_pytorch_model*")):
        raise UserError(f"adapter {spec!r} ({folder}) has no diffusion_pytorch_model weights: re-download or retrain it")
    net = _read("ControlNet", folder, spec, ControlNetModel.from_pretrained, folder, dtype=dtype)
    return Adapter(net, AdapterInfo.read(folder), folder, spec)


def load_adapters(spec: str, dtype: torch.dtype = torch.float32, progress: Any = None) -> list[Adapter]:
    """The adapters one spec stands for (expand_adapter_spec: `demo` is the demo's sketch and colour-hint
    adapters), loaded in order. `demo` with only its sketch adapter built loads that one."""
    return [load_adapter(s, dtype, progress) for s in expand_adapter_spec(spec)]


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return {str: "text", bool: "true or false", type(None): "null"}.get(type(value), "a number")


def read_config(config: Path, spec: str) -> dict:
    """A model's config file, which must hold a JSON object; anything else is a one-line UserError naming the
    file (not a traceback, nor a complaint about the network from a loader that took it for a hub id)."""
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{spec!r}: {config} is not valid JSON ({first_line(e, 120)}); re-download or rebuild it") from None
    if not isinstance(data, dict):
        raise UserError(f"{spec!r}: {config} holds {_json_kind(data)}, not a JSON object ({{...}}): the file is damaged; "
                        "re-download or rebuild it")
    return data


def _class_name(config: Path, spec: str, allowed: tuple[str, ...] | None) -> str:
    name = read_config(config, spec).get("_class_name", "")
    if not isinstance(name, str):
        raise UserError(f"{spec!r}: {config}: _class_name {name!r} must be a class name in quotes; re-download the model")
    if allowed and name not in allowed:
        raise UserError(f"{spec!r}: {config.parent.name} is a {name or 'unknown class'}, expected {' or '.join(allowed)}")
    return name
