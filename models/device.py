"""Choose where and in what precision the engine runs.

auto: CUDA in fp16 when a GPU is present; else Apple's GPU (`mps`, Apple silicon) in fp16 where torch reports
it, on the eager path (not tried on a Mac here); on a CPU bf16 only where the CPU computes it natively
(AVX512-BF16 or AMX on x86, the BF16 extension on Arm), since emulated bf16 is slower than fp32.
"""

from __future__ import annotations

import functools
import platform

import torch

from models.errors import UserError
from models.options import check_device, check_dtype

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
    if check_device(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"--device {name}: this torch build or machine has no CUDA GPU; use --device cpu or auto")
    index = torch.device(name).index or 0
    if index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return torch.device(name)


def mps_available() -> bool:
    """True where torch reports Apple's Metal GPU (a macOS build on Apple silicon)."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' or a dtype name -> torch.dtype for that device."""
    if name == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return TORCH_DTYPES[check_dtype(name)]


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float16 -> "float16", the name the options and the readouts use."""
    return str(dtype).removeprefix("torch.")
