"""The names and checks of the options every command and the window share: device, dtype, size, seed, prompt;
the bounded values themselves (ranges and defaults) are models.bounds' table.

No torch here, so the window and the command line can check their input before the heavy imports.
"""

from __future__ import annotations

from models.bounds import BOUNDS, SEED_MODULUS, check_seed  # noqa: F401  (re-exported: the commands import them here)
from models.errors import UserError

DEVICES = ("auto", "cpu", "cuda")  # what the pickers offer; cuda:N picks one GPU of several
DTYPES = ("auto", "float32", "bfloat16", "float16")  # auto: fp16 on CUDA, bf16 on a CPU that has it natively, else fp32
FAST = ("auto", "eager", "fused", "graphs", "compile")  # torch's runner (models.runners): auto is graphs on a GPU, eager on a CPU
BACKENDS = ("torch", "auto", "openvino")  # CPU frames (models.openvino): auto picks OpenVINO where it measured faster at load
PRECISIONS = ("fp32", "int8")  # OpenVINO's precision for ControlNet + UNet; int8 on the CPU only
STRENGTH = BOUNDS["strength"].default  # the strength every adapter starts at (models.bounds says why)
MAX_STRENGTH = BOUNDS["strength"].high  # the highest strength the slider and the commands take
KEEP_COLOURS = BOUNDS["keep_colours"].default  # a colour-hint adapter's strength on a live frame's colours (0: off)
TRANSITION = BOUNDS["transition"].default  # seconds a prompt or seed change glides over; the engine alone jumps (0)
POLARITIES = ("black_on_white", "white_on_black")  # how an adapter's condition draws lines (adapter.json's polarity)
MAX_SIZE = int(BOUNDS["size"].high)  # the largest output size (models.bounds says why)
COLOUR_HINTS = "colour-hints"  # the condition of a colour-hint adapter (models.hints.colour_hints makes its input)
# the most pixels an input picture (generate --image, Load, Trace, drops, training data, an .ora's layers) may
# declare in its header: a larger one is refused before it is decoded (a 1.5 MB PNG can declare 20000x20000,
# 1.6 GB of pixels). 64 megapixels takes nearly any camera's photo (8000x8000, 10000x6400). Measured: generate
# --model demo on an 8000x8000 RGBA PNG peaks at 0.92 GB resident (the picture decoded, then the model loaded).
MAX_IMAGE_PIXELS = 64_000_000


def check_strength(value: float, flag: str) -> float:
    """A strength in 0..MAX_STRENGTH; anything else is a UserError that names the option and the range."""
    b = BOUNDS["strength"]
    if not b.contains(value):
        raise UserError(f"{flag} {value:g} must be between {b.low:g} (off) and {b.high:g}")
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


def adapter_arg(spec: str, strength: float = 1.0) -> str:
    """(spec, strength) -> the canonical `SPEC[:STRENGTH]` that parse_adapter_arg reads back as the same pair:
    the one way an adapter is written for a reload, the saved settings and the command line. A strength of 1 is
    left out unless the spec holds a ':' (C:/adapters/x, or a spec ending in ':2' would read as a strength)."""
    if strength == 1.0 and ":" not in spec:
        return spec
    return f"{spec}:{float(strength)!r}" if strength != round(strength, 6) else f"{spec}:{strength:g}"


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
    """An output size in pixels: a multiple of 8 (the latent is 8x smaller), 64 to MAX_SIZE (models.bounds)."""
    b = BOUNDS["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < b.low or size % b.multiple:
        raise UserError(f"size {size!r} must be a multiple of {b.multiple} and at least {b.low:g}, for example 256 or 512")
    if size > b.high:
        raise UserError(f"size {size} is too large: at most {b.high:g} (memory grows with the size squared), for example 512")
    return size


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
