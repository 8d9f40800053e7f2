"""Choose where and in what precision the engine runs.

auto: CUDA in fp16 when a GPU is present; on a CPU bf16 only where the CPU computes it natively
(AVX512-BF16 or AMX on x86, the BF16 extension on Arm), since emulated bf16 is slower than fp32.
"""

from __future__ import annotations

import functools
import platform

import torch

from models.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists a bf16 instruction set this torch build uses."""
    try:
        with open("/proc/cpuinfo") as f:
            return cpuinfo_has_bf16(f.read())
    except OSError:
        return platform.machine() == "arm64"  # Apple silicon (M2 and later) has BF16


def cpuinfo_has_bf16(text: str) -> bool:
    """Read the x86 `flags` or Arm `Features` lines of /proc/cpuinfo."""
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def pick_device(name: str = "auto") -> torch.device:
    """'auto', 'cpu' or 'cuda' (optionally 'cuda:N') -> a torch.device, or a UserError that says the fix."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: this torch build or machine has no CUDA GPU; use --device cpu or auto")
        return torch.device(name)
    raise UserError(f"unknown device {name!r}: use auto, cpu or cuda")


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' or a dtype name -> torch.dtype for that device."""
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if name not in DTYPES:
        raise UserError(f"unknown dtype {name!r}: use auto, float32, bfloat16 or float16")
    return DTYPES[name]
