"""The OpenVINO path for CPU frames: the engine's one-step recipe as two OpenVINO graphs, fp32 or int8.

    frame   uint8 control image + the prepared inputs -> x0      ControlNet + UNet at the single timestep, one graph
    decode  x0 -> image in [0, 255]                              the tiny VAE decoder

Both are converted from the loaded diffusers modules at the frame size (fixed shapes), in fp32. The per-frame
inputs of models.engine.Prepared (prompt embeddings, noise terms, control scale, polarity) stay graph inputs,
so a new prompt, seed or strength needs no reconversion; a new size, adapter or LoRA state does. Converted
graphs are cached on disk (~/.cache/sdxs-live/openvino, XDG_CACHE_HOME respected), each in its own folder
named by a key over a fingerprint of the weights, the size, the precision and the OpenVINO version, written
to a temporary name and renamed, so the second start only reads and compiles them.

int8: nncf's post-training quantization of the frame graph (ControlNet and the UNet's down and mid blocks;
the UNet's up blocks and the decoder stay fp32), calibrated on the model's own inputs: sketches drawn like
models.bench's, several prompts and seeds (calibration_inputs).
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

from models.conditions import fit_square
from models.errors import UserError, first_line
from models.options import BACKENDS, PRECISIONS

log = logging.getLogger(__name__)
FORMAT = 1  # bump when the graphs' inputs or recipe change: old cache entries are then never read
# int8 is judged on the demo model (python -m training.openvino_eval); False keeps --precision int8 refused
INT8_SHIPPED = True
INT8_REFUSED = ("--precision int8 is not offered: it fell below the quality bar on the demo model "
                "(python -m training.openvino_eval); use --precision fp32")
CALIBRATION_PROMPTS = ("a watercolor painting of a cat", "a photo of a mountain lake at sunset", "a castle on a hill, oil painting",
                       "a portrait of an old man, pencil drawing", "a bowl of fruit on a table", "a spaceship in the night sky")
FRAME_INPUTS = ("unet_in", "embeds", "x0_noise", "frame", "scale", "invert")  # the last three only with an adapter


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


class FrameGraph(torch.nn.Module):
    """ControlNet + UNet at the single timestep, from the control image and the prepared inputs to x0, the
    recipe of models.fast in fp32: the ControlNet runs at scale 1 and its residuals are scaled by an input."""

    def __init__(self, engine):
        super().__init__()
        self.unet, self.controlnet = engine.unet, engine.controlnet
        self.timestep = engine.timestep.clone()
        self.b = engine.one_step.b

    def forward(self, unet_in, embeds, x0_noise, frame=None, scale=None, invert=None):
        down = mid = None
        if self.controlnet is not None:
            c = frame.permute(2, 0, 1)[None].float() / 255
            c = (invert - c).abs()  # |1 - c| inverts for white-on-black adapters, |0 - c| keeps
            down, mid = self.controlnet(unet_in, self.timestep, encoder_hidden_states=embeds, controlnet_cond=c,
                                        conditioning_scale=1.0, return_dict=False)
            down = [d * scale for d in down]
            mid = mid * scale
        eps = self.unet(unet_in, self.timestep, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid, return_dict=False)[0]
        return x0_noise + self.b * eps


class DecodeGraph(torch.nn.Module):
    """The tiny VAE decoder, from x0 to an HWC image in [0, 255] (rounded to uint8 outside)."""

    def __init__(self, engine):
        super().__init__()
        self.vae, self.scale = engine.vae, engine.vae_scale

    def forward(self, x0):
        image = self.vae.decode(x0 / self.scale, return_dict=False)[0]
        return ((image[0] + 1) * 127.5).clamp(0, 255).permute(1, 2, 0)


def frame_inputs(engine, frame: np.ndarray | None, p) -> list[np.ndarray]:
    """The frame graph's inputs for one control image and one models.engine.Prepared, in FRAME_INPUTS order."""
    def arr(t):
        return t.detach().float().contiguous().cpu().numpy()

    inputs = [arr(p.unet_in), arr(p.embeds), arr(p.x0_noise)]
    if engine.controlnet is not None:
        img = fit_square(frame, engine.size) if frame is not None else np.full((engine.size,) * 2 + (3,), 255, np.uint8)
        inputs += [np.ascontiguousarray(img), np.array([p.scale], np.float32), np.array([1.0 if p.invert else 0.0], np.float32)]
    return inputs


def _convert(module: torch.nn.Module, example: list[np.ndarray], names: tuple[str, ...]):
    """torch module -> ov.Model with these fixed input shapes, traced in fp32 (modules in another dtype are
    cast for the trace and back: bf16 -> fp32 -> bf16 is exact)."""
    import openvino as ov

    dtype = next(module.parameters()).dtype
    module.float()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks it freezes: the shapes are fixed
            ex = tuple(torch.from_numpy(np.array(a)) for a in example)
            model = ov.convert_model(module, example_input=ex, input=[(list(a.shape), ov.Type.u8 if a.dtype == np.uint8
                                                                         else ov.Type.f32) for a in example])
    finally:
        module.to(dtype)
    for port, name in zip(model.inputs, names):
        port.get_tensor().set_names({name})
    return model


def _cached(key: dict, build: Callable, progress: Callable[[str], None] | None, what: str):
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


def _compile(model, threads: int):
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_PRECISION_HINT": "f32"}  # f32: the CPU plugin would pick bf16 on CPUs that have it
    return ov.Core().compile_model(model, "CPU", config).create_infer_request()


def calibration_inputs(engine, count: int = 24) -> list[list[np.ndarray]]:
    """Frame-graph inputs the way the model meets them: sketches (a circle moving along a line, as in
    models.bench, also mirrored and upside down), CALIBRATION_PROMPTS, seeds 0.. and strengths 0.5-1.
    The engine's prompt, seed and strength are restored afterwards."""
    from models.bench import sketch_frames

    state = (engine.prompt, engine.seed, engine.control_scale)
    sketches = sketch_frames(max(2, count // 3), engine.size)
    sketches = [s for img in sketches for s in (img, img[:, ::-1], img[::-1])]
    out = []
    try:
        for i in range(count):
            engine.set_prompt(CALIBRATION_PROMPTS[i % len(CALIBRATION_PROMPTS)])
            engine.set_seed(i)
            engine.control_scale = 0.5 + 0.5 * (i % 3) / 2
            out.append(frame_inputs(engine, sketches[i % len(sketches)], engine.prepared()))
    finally:
        engine.set_prompt(state[0] or "")
        engine.set_seed(state[1])
        engine.control_scale = state[2]
    return out


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


class OpenVINOPath:
    """Runs an Engine's frames on OpenVINO. Build it with Engine.set_backend; graphs are made for the
    engine's size and adapter at prepare() (and again after a change, at the next frame)."""

    def __init__(self, engine, precision: str = "fp32", progress: Callable[[str], None] | None = None):
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
        self.engine, self.precision, self.progress = engine, precision, progress
        self.threads = torch.get_num_threads()
        self._shape_key = None  # (size, with adapter, weights) the compiled graphs belong to
        self._revision = None  # the engine revision whose prepared inputs self._inputs holds
        self._inputs: list[np.ndarray] = []

    def invalidate(self) -> None:
        """The weights changed (a new adapter, a LoRA): convert (or read from the cache) at the next frame."""
        self._shape_key = None

    def prepare(self) -> None:
        e = self.engine
        control = e.controlnet is not None
        # LoRA weights live in 0-d tensors outside the state dicts; the graphs bake them in, so they are part of the key
        weights = fingerprint(e.unet, e.controlnet) + "".join(f";{n}={w:g}" for n, w in sorted(e.lora_weights.items()))
        key = (e.size, control, weights)
        if key == self._shape_key:
            return
        common = {"size": e.size, "timestep": float(e.timestep), "b": e.one_step.b}
        names = FRAME_INPUTS if control else FRAME_INPUTS[:3]
        example = frame_inputs(e, None, e.prepared())

        def fp32():
            return _convert(FrameGraph(e), example, names)

        frame_key = {**common, "graph": "frame", "weights": weights, "control": control}
        model = _cached({**frame_key, "precision": "fp32"}, fp32, self.progress, "ControlNet + UNet")
        if self.precision == "int8":
            fp32_model = model

            def int8():
                if self.progress:
                    self.progress("Quantizing for OpenVINO int8 (calibration frames)...")
                return quantize(fp32_model, calibration_inputs(e))

            model = _cached({**frame_key, "precision": "int8", "calibration": 4}, int8, self.progress, "int8 ControlNet + UNet")
        self.frame = _compile(model, self.threads)
        x0 = self.frame.infer(example)[0]
        vae = fingerprint(e.vae)
        decoder = _cached({**common, "graph": "decode", "weights": vae, "scale": e.vae_scale},
                          lambda: _convert(DecodeGraph(e), [x0], ("x0",)), self.progress, "decoder")
        self.decode = _compile(decoder, self.threads)
        self._shape_key, self._revision = key, None

    def step(self, frame: np.ndarray) -> np.ndarray:
        """uint8 RGB control image -> uint8 RGB image, the engine's step on OpenVINO."""
        from models.engine import Timings

        e = self.engine
        if self._shape_key is None or self._shape_key[:2] != (e.size, e.controlnet is not None):
            self.prepare()
        t0 = time.perf_counter()
        p = e.prepared()
        if p.revision != self._revision:
            self._inputs = frame_inputs(e, frame, p)
            self._revision = p.revision
        elif e.controlnet is not None:
            self._inputs[3] = np.ascontiguousarray(fit_square(frame, e.size))
        t1 = time.perf_counter()
        x0 = self.frame.infer(self._inputs)[0]
        t2 = time.perf_counter()
        image = self.decode.infer([x0])[0]
        t3 = time.perf_counter()
        out = np.rint(image).astype(np.uint8)
        t4 = time.perf_counter()
        e.timings = Timings(*(1000 * d for d in (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)),
                            extra={"backend": f"openvino {self.precision}"})
        return out


def pick_backend(engine, backend: str = "torch", precision: str = "fp32",
                 progress: Callable[[str], None] | None = None) -> OpenVINOPath | None:
    """The OpenVINO path for this engine, or None for torch. openvino: always where it can run; auto: on a
    CPU, where it measured faster than torch at load. What cannot run gets a one-line notice and torch."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "int8":
        if engine.device.type != "cpu" or backend == "torch":
            raise UserError("--precision int8 runs on the CPU with OpenVINO only: add --device cpu --backend openvino")
        if not INT8_SHIPPED:
            raise UserError(INT8_REFUSED)
    if backend == "torch":
        return None
    if engine.device.type != "cpu":
        if backend == "openvino":
            log.warning("OpenVINO runs CPU frames only; using torch on %s", engine.device)
        return None
    if not available():
        if backend == "openvino":
            log.warning("openvino is not installed (pip install 'sdxs-live[openvino]'); using torch")
        return None
    try:
        path = OpenVINOPath(engine, precision, progress)
        path.prepare()
    except UserError:
        raise
    except Exception as exc:  # the converter fails in many ways: torch keeps working
        log.warning("OpenVINO conversion failed (%s); using torch", first_line(exc))
        return None
    if backend == "auto":
        ours, theirs = measure(engine, path)
        if theirs >= ours:
            log.info("OpenVINO %.0f ms vs torch %.0f ms a frame: using torch", theirs, ours)
            return None
        log.info("OpenVINO %.0f ms vs torch %.0f ms a frame: using OpenVINO", theirs, ours)
    return path


def measure(engine, path: OpenVINOPath, frames: int = 2) -> tuple[float, float]:
    """Fastest ms of a few frames on torch (the engine's own step) and on OpenVINO, one warm-up each."""
    from models.bench import sketch_frames

    frame = sketch_frames(1, engine.size)[0]

    def best(step) -> float:
        step(frame)
        times = []
        for _ in range(frames):
            t = time.perf_counter()
            step(frame)
            times.append(1000 * (time.perf_counter() - t))
        return min(times)

    with torch.inference_mode():
        return best(engine.step), best(path.step)
