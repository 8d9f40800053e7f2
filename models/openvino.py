"""OpenVINO for CPU frames: the one recipe (models.recipe.Recipe) traced into two OpenVINO graphs, which
models.runners.openvino runs (this file never imports the runners: they import it).

    frame   uint8 control images + the prepared inputs -> x0     Recipe.x0: ControlNets + UNet at the single timestep
    decode  x0 -> image in [0, 255]                              Recipe.decode: the tiny VAE decoder

Both are traced at the frame size (fixed shapes) from full-precision weights: the engine's own modules when
it runs fp32, else fp32 copies of them whose weights are read again from the model's files (a bf16 engine's
weights lost their low bits; OpenVINO keeps fp32 where it computes in fp32, such as biases and norms). The
graphs then run in the engine's dtype: OpenVINO's bf16 inference precision for bf16 where the CPU has it
(inference_precision), fp32 for fp32. The per-frame inputs of models.recipe.Prepared (prompt embeddings,
noise terms, strengths, polarities) stay graph inputs, so a new prompt, seed or strength needs no
reconversion; a new size, adapter or LoRA state does. Converted
graphs are cached on disk (~/.cache/sdxs-live/openvino, XDG_CACHE_HOME respected), each in its own folder
named by a key over a fingerprint of the weights, the size, the precision and the OpenVINO version, written
to a temporary name and renamed, so the second start only reads and compiles them.

int8: nncf's post-training quantization of the frame graph (ControlNet and the UNet's down and mid blocks;
the UNet's up blocks and the decoder stay fp32), calibrated on the model's own inputs: sketches drawn like
models.conditions.sketch_frames, several prompts and seeds (models.runners.openvino.calibration_inputs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models.conditions import fit_frames
from models.errors import UserError, first_line
from models.options import BACKENDS, PRECISIONS
from models.recipe import Recipe

log = logging.getLogger(__name__)
FORMAT = 2  # bump when the graphs' inputs or recipe change: old cache entries are then never read
# int8 is judged on the demo model (python -m training.openvino_eval); False keeps --precision int8 refused
INT8_SHIPPED = True
INT8_REFUSED = ("--precision int8 is not offered: it fell below the quality bar on the demo model "
                "(python -m training.openvino_eval); use --precision fp32")
CALIBRATION_PROMPTS = ("a watercolor painting of a cat", "a photo of a mountain lake at sunset", "a castle on a hill, oil painting",
                       "a portrait of an old man, pencil drawing", "a bowl of fruit on a table", "a spaceship in the night sky")
FRAME_INPUTS = ("unet_in", "embeds", "x0_noise", "frames", "strengths", "inverts")  # the last three only with an adapter
# OpenVINO's inference precision per engine dtype, and the capability (OPTIMIZATION_CAPABILITIES) it needs
PRECISION_HINTS = {torch.float32: ("f32", "FP32"), torch.bfloat16: ("bf16", "BF16"), torch.float16: ("f16", "FP16")}


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sdxs-live" / "openvino"


def fingerprint(*modules) -> str:
    """A hash of the modules' weights that any change to them changes (a new adapter, a fused or unfused
    LoRA), cheap enough to take at every load: per tensor its name, shape, dtype, the exact integer sum of
    its bits and a strided sample of its bytes (exact, so the thread count cannot change it)."""
    h = hashlib.sha256()
    for m in modules:
        if m is None:
            h.update(b"none")
            continue
        for name, t in m.state_dict().items():
            t = t.detach().contiguous().cpu()
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            if not t.numel():
                continue
            bits = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
            flat = t.reshape(-1).view(bits)
            h.update(str(int(flat.sum(dtype=torch.int64))).encode())
            h.update(flat[:: max(1, flat.numel() // 512)].numpy().tobytes())
    return h.hexdigest()[:16]


class Stage(torch.nn.Module):
    """One stage of a models.recipe.Recipe (x0 or decode) as a module's forward, for the converter. The layers
    keep their names under recipe. (recipe.unet.up_blocks...), which int8's ignored scope matches."""

    def __init__(self, recipe: torch.nn.Module, stage: str):
        super().__init__()
        self.recipe, self.stage = recipe, stage

    def forward(self, *inputs):
        return getattr(self.recipe, self.stage)(*inputs)


def full_precision(recipe: Recipe) -> Recipe:
    """The recipe with fp32 weights, to trace: itself where it runs fp32, else a Recipe of fp32 copies of its
    networks (LoRA layers included) whose weights are read again from the files they came from (recipe.sources:
    the base model's folder, then each adapter's)."""
    if next(recipe.unet.parameters()).dtype == torch.float32:
        return recipe
    base, *folders = recipe.sources or (None,)
    unet = _fp32_copy(recipe.unet, base, "unet")
    vae = _fp32_copy(recipe.vae, base, "vae")
    folders += [None] * (len(recipe.controlnets) - len(folders))
    nets = [_fp32_copy(net, folder, None) for net, folder in zip(recipe.controlnets, folders)]
    return Recipe(unet, vae, nets, recipe.one_step, recipe.vae_scale, recipe.sources)


def _fp32_copy(module: torch.nn.Module, folder: Path | None, subfolder: str | None) -> torch.nn.Module:
    """An fp32 copy of a network with its weights as its files hold them. Where the files cannot be read, or
    do not round to the weights the engine runs (changed in memory), the copy keeps the engine's weights."""
    import copy

    out = copy.deepcopy(module).float()
    dtype = next(module.parameters()).dtype
    try:
        if folder is None:
            raise FileNotFoundError("no folder")
        kw = {"subfolder": subfolder} if subfolder else {}
        disk = type(module).from_pretrained(str(folder), dtype=torch.float32, **kw).state_dict()
    except Exception as exc:  # a model made in memory (tests, training) or files gone since the load
        log.info("OpenVINO converts %s from the engine's %s weights (%s)", type(module).__name__, dtype, first_line(exc))
        return out
    own, mapped = module.state_dict(), {}
    for key, value in disk.items():
        stem, _, leaf = key.rpartition(".")
        for name in (key, f"{stem}.base_layer.{leaf}"):  # peft wraps a layer a LoRA adapts: its weight moves there
            if name in own and own[name].shape == value.shape and torch.equal(value.to(dtype), own[name]):
                mapped[name] = value
                break
        else:
            log.info("OpenVINO converts %s from the engine's %s weights (%s differs from its file)",
                     type(module).__name__, dtype, key)
            return out
    out.load_state_dict(mapped, strict=False)
    return out


def frame_inputs(p, frames: list[np.ndarray] | None, adapters: int) -> list[np.ndarray]:
    """The frame graph's inputs for the adapters' control images (one per adapter, or one for all) and one
    models.recipe.Prepared, in FRAME_INPUTS order (no frames: blank ones, as for conversion)."""
    def arr(t):
        return t.detach().float().contiguous().cpu().numpy()

    inputs = [arr(p.unet_in), arr(p.embeds), arr(p.x0_noise)]
    if adapters:
        frames = frames if frames is not None else [np.full((p.size, p.size, 3), 255, np.uint8)]
        inputs += [fit_frames(frames, p.size, adapters), arr(p.strengths), arr(p.inverts)]
    return inputs


def convert(module: torch.nn.Module, example: list[np.ndarray], names: tuple[str, ...]):
    """An fp32 torch module -> ov.Model with these fixed input shapes."""
    import openvino as ov

    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks it freezes: the shapes are fixed
        ex = tuple(torch.from_numpy(np.array(a)) for a in example)
        model = ov.convert_model(module, example_input=ex, input=[(list(a.shape), ov.Type.u8 if a.dtype == np.uint8
                                                                     else ov.Type.f32) for a in example])
    for port, name in zip(model.inputs, names):
        port.get_tensor().set_names({name})
    return model


def cached(key: dict, build: Callable, progress: Callable[[str], None] | None, what: str):
    """The ov.Model for this key from the disk cache, else build() it and store it there atomically."""
    import openvino as ov

    blob = json.dumps({**key, "openvino": ov.__version__, "format": FORMAT}, sort_keys=True)
    folder = cache_root() / hashlib.sha256(blob.encode()).hexdigest()[:24]
    xml = folder / "model.xml"
    core = ov.Core()
    if xml.exists():
        try:
            return core.read_model(str(xml))
        except Exception as exc:  # a damaged entry (disk full, killed mid-copy of a backup): rebuild it
            log.warning("OpenVINO cache %s unreadable (%s); converting again", folder, first_line(exc))
            shutil.rmtree(folder, ignore_errors=True)
    if progress:
        progress(f"Converting for OpenVINO ({what})...")
    t = time.perf_counter()
    model = build()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".part-"))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / "key.json").write_text(blob + "\n")
        os.replace(tmp, folder)
    except OSError:  # another process stored the same entry first, or the disk is full: run from memory
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted %s for OpenVINO in %.1f s", what, time.perf_counter() - t)
    return model


def inference_precision(dtype: torch.dtype) -> str:
    """OpenVINO's inference precision for an engine dtype: bf16 (or f16) where the CPU plugin reports that it
    computes it (OPTIMIZATION_CAPABILITIES), else f32. Set always: the plugin would pick bf16 by itself on
    CPUs that have it, also for an fp32 engine."""
    import openvino as ov

    hint, capability = PRECISION_HINTS.get(dtype, PRECISION_HINTS[torch.float32])
    if hint != "f32" and capability not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        log.info("this CPU has no native %s for OpenVINO; its graphs run in fp32", hint)
        return "f32"
    return hint


def compile_config(precision: str, threads: int) -> dict:
    """The CPU plugin's settings for one frame at a time (the latency hint, one stream, torch's thread count)
    on a CPU that other programs share (an encoder, a browser): threads not pinned to cores, so the system can
    move one off a busy core, and TBB's auto partitioner, so a thread that runs takes the work of one that
    waits. Pinned threads with static shares wait at every layer for the slowest
    (bench/results/cpu/openvino-threads-amd-epyc-2core-bf16.json)."""
    import openvino as ov

    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads,
              "INFERENCE_PRECISION_HINT": precision, "ENABLE_CPU_PINNING": False}
    if "TBB_PARTITIONER" in ov.Core().get_property("CPU", "SUPPORTED_PROPERTIES"):  # OpenVINO 2025.2 and later
        config["TBB_PARTITIONER"] = "AUTO"
    return config


def compile_graph(model, config: dict):
    import openvino as ov

    return ov.Core().compile_model(model, "CPU", config).create_infer_request()


def quantize(model, samples: list[list[np.ndarray]]):
    """nncf post-training int8 quantization of the frame graph on these input samples: the ControlNet and
    the UNet's down and mid blocks in int8, the UNet's up blocks and output in fp32 (transformer preset,
    fast bias correction, as nncf's full one fails on the SDXS-size graph; no SmoothQuant). On the demo
    model this is 45.8 dB PSNR from fp32; quantizing the
    up blocks too gave 23.6-26.8 dB whatever the settings, since the image is made there."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    nncf.set_log_level(logging.ERROR)
    names = [p.get_any_name() for p in model.inputs]
    data = nncf.Dataset(samples, lambda s: dict(zip(names, s)))
    no_smooth = AdvancedSmoothQuantParameters(convolution=-1, matmul=-1)
    fp32_part = nncf.IgnoredScope(patterns=[r".*unet\.up_blocks.*", r".*unet\.conv_norm_out.*", r".*unet\.conv_out.*"],
                                  validate=False)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return nncf.quantize(model, data, subset_size=len(samples), model_type=nncf.ModelType.TRANSFORMER,  # its progress
                             preset=nncf.QuantizationPreset.MIXED, ignored_scope=fp32_part,  # bars stay off the terminal
                             advanced_parameters=AdvancedQuantizationParameters(smooth_quant_alphas=no_smooth))


def wanted(backend: str = "torch", precision: str = "fp32", device: torch.device | None = None) -> bool:
    """Whether OpenVINO should be tried for these choices on this device (models.runners.openvino.pick tries
    it). Bad names and int8 where it cannot run are UserErrors; OpenVINO asked for where it cannot run gets a
    one-line notice and torch."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    cpu = device is None or torch.device(device).type == "cpu"
    if precision == "int8":
        if not cpu or backend == "torch":
            raise UserError("--precision int8 runs on the CPU with OpenVINO only: add --device cpu --backend openvino")
        if not INT8_SHIPPED:
            raise UserError(INT8_REFUSED)
    if backend == "torch":
        return False
    if not cpu:
        if backend == "openvino":
            log.warning("OpenVINO runs CPU frames only; using torch on %s", device)
        return False
    if not available():
        if backend == "openvino":
            log.warning("openvino is not installed (pip install 'sdxs-live[openvino]'); using torch")
        return False
    return True
