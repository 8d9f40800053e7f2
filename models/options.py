"""The names and checks of the options every command and the window share: device, dtype, size, seed, prompt.

No torch here, so the window and the command line can check their input before the heavy imports.
"""

from __future__ import annotations

from models.errors import UserError

DEVICES = ("auto", "cpu", "cuda")  # what the pickers offer; cuda:N picks one GPU of several
DTYPES = ("auto", "float32", "bfloat16", "float16")  # auto: fp16 on CUDA, bf16 on a CPU that has it natively, else fp32
FAST = ("auto", "eager", "fused", "graphs", "compile")  # torch's runner (models.runners): auto is graphs on a GPU, eager on a CPU
BACKENDS = ("torch", "auto", "openvino")  # CPU frames (models.openvino): auto picks OpenVINO where it measured faster at load
PRECISIONS = ("fp32", "int8")  # OpenVINO's precision for ControlNet + UNet; int8 on the CPU only
# the adapter strength (ControlNet conditioning scale) everything starts at: the scale adapters are trained at
# (ours and SDXS's own) and diffusers' default; 0.8 made the demo's pictures softer (sharpness 0.64 against 0.78)
STRENGTH = 1.0
MAX_STRENGTH = 2.0  # the highest strength the slider and the commands take
# the strength of a colour-hint adapter fed hints from a live frame's own colours (keep colours; 0: off)
KEEP_COLOURS = 1.0
# seconds a prompt or seed change glides over (models.transition) in the live loop, stream and the window; the
# engine alone jumps (0)
TRANSITION = 0.5
POLARITIES = ("black_on_white", "white_on_black")  # how an adapter's condition draws lines (adapter.json's polarity)
# the largest output size: memory grows with the pixel count (size squared). Measured on the demo model, CPU fp32,
# one generate (peak RSS): 0.54 GB at 64 px, 0.58 at 256, 0.66 at 512, 0.97 at 1024, 1.48 at 1536, 2.24 at 2048,
# about 0.4 KB per output pixel over the weights; wider models (SDXS-512) need more per pixel. 2048 is 16x the
# pixels of SDXS's native 512; a typo like 100000 would ask for a 10 GB tensor at once.
MAX_SIZE = 2048
# the most pixels an input picture (generate --image, Load, Trace, drops, training data, an .ora's layers) may
# declare in its header: a larger one is refused before it is decoded (a 1.5 MB PNG can declare 20000x20000,
# 1.6 GB of pixels). 64 megapixels takes nearly any camera's photo (8000x8000, 10000x6400). Measured: generate
# --model demo on an 8000x8000 RGBA PNG peaks at 0.92 GB resident (the picture decoded, then the model loaded).
MAX_IMAGE_PIXELS = 64_000_000
SEED_MODULUS = 2**64  # seeds are taken modulo 2**64 (the range torch's generators take): any whole number works


def check_strength(value: float, flag: str) -> float:
    """A strength in 0..MAX_STRENGTH; anything else is a UserError that names the option and the range."""
    if not 0 <= value <= MAX_STRENGTH:
        raise UserError(f"{flag} {value:g} must be between 0 (off) and {MAX_STRENGTH:g}")
    return value


def split_spec_arg(text: str, flag: str, number: str, example: str, empty: str) -> tuple[str, float]:
    """`SPEC[:NUMBER]` -> (spec, number), the way --lora and --controlnet are written; the number is 1.0
    without a ':'. Text after the last ':' that is no number is a one-line error naming it, unless the whole
    text is an existing path (or a drive letter's). number: what the text calls it (WEIGHT, STRENGTH);
    example: a spec for the error's example; empty: the error's end when no spec is left."""
    import os

    spec, sep, tail = text.rpartition(":")
    value = 1.0
    if sep and spec:
        try:
            value = float(tail)
        except ValueError:
            drive = len(spec) == 1 and tail.startswith(("/", "\\"))  # C:/styles/x.safetensors on Windows
            if not (drive or os.path.exists(os.path.expanduser(text))):
                like = spec if spec.isprintable() and len(spec) <= 80 else example
                raise UserError(f"{flag} {text!r}: the {number.lower()} {tail!r} is not a number; write SPEC:{number}, "
                                f"like {like}:0.8") from None
            spec = text
    else:
        spec = text
    if not spec.strip():
        raise UserError(f"{flag} {text!r} {empty}")
    return spec, value


def parse_adapter_arg(text: str, flag: str = "--controlnet") -> tuple[str, float]:
    """An adapter as `SPEC[:STRENGTH]` (--controlnet) -> (spec, strength 0..MAX_STRENGTH; 1 without one)."""
    spec, strength = split_spec_arg(text, flag, "STRENGTH", "my-adapter",
                                    "names no adapter: pass a hub id, folder or demo, optionally with :STRENGTH")
    return spec, check_strength(strength, f"{flag} {text!r}: strength")


def check_device(name: str) -> str:
    """auto, cpu, cuda or cuda:N; anything else is a UserError that says the fix."""
    head, _, index = name.partition(":")
    if name in DEVICES or (head == "cuda" and index.isdigit()):
        return name
    raise UserError(f"unknown device {name!r}: use auto, cpu or cuda (cuda:N for one of several GPUs)")


def check_dtype(name: str) -> str:
    if name not in DTYPES:
        raise UserError(f"unknown dtype {name!r}: use {', '.join(DTYPES)}")
    return name


def check_size(size: int) -> int:
    """An output size in pixels: a multiple of 8 (the latent is 8x smaller), 64 to MAX_SIZE."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 64 or size % 8:
        raise UserError(f"size {size!r} must be a multiple of 8 and at least 64, for example 256 or 512")
    if size > MAX_SIZE:
        raise UserError(f"size {size} is too large: at most {MAX_SIZE} (memory grows with the size squared), for example 512")
    return size


def check_seed(seed: int) -> int:
    """Any whole number as a seed: taken modulo 2**64, so -1 and 2**64 - 1 give the same noise (as torch does)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"seed {seed!r} must be a whole number, like 7")
    return seed % SEED_MODULUS


def check_text(text: str, what: str) -> str:
    """Text a user typed or a file held: refused when it is not valid UTF-8 (argv keeps such bytes as lone
    surrogates), with the position of the first bad byte."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"character U+{ord(bad):04X}"
        raise UserError(f"{what} is not valid UTF-8 text ({byte} at position {e.start}): retype it or save it as UTF-8") from None
    return text
