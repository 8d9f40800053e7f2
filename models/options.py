"""The names and checks of the options every command and the window share: device, dtype, size.

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
# seconds a prompt or seed change glides over (models.transition) in the live loop, stream and the window; the
# engine alone jumps (0)
TRANSITION = 0.5
POLARITIES = ("black_on_white", "white_on_black")  # how an adapter's condition draws lines (adapter.json's polarity)


def check_strength(value: float, flag: str) -> float:
    """A strength in 0..MAX_STRENGTH; anything else is a UserError that names the option and the range."""
    if not 0 <= value <= MAX_STRENGTH:
        raise UserError(f"{flag} {value:g} must be between 0 (ignore the sketch) and {MAX_STRENGTH:g}")
    return value


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
    """An output size in pixels: a multiple of 8 (the latent is 8x smaller), at least 64."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 64 or size % 8:
        raise UserError(f"size {size!r} must be a multiple of 8 and at least 64, for example 256 or 512")
    return size
