"""What a benchmark's numbers were measured on (the machine, its matmul rate), and the summaries every
`bench` kind reports (median, p99, peak memory)."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path


def machine() -> dict:
    import diffusers
    import torch

    info = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "matmul_gflops": matmul_gflops(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        info["driver"] = _nvidia_driver()
    return info


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """The CPU's measured fp32 matmul rate at torch's thread count (best of a few n x n products), the
    yardstick for "share of the machine" a frame reaches."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str:
    try:
        return driver_version(Path("/proc/driver/nvidia/version").read_text())
    except OSError:
        return "unknown"


def driver_version(text: str) -> str:
    """'NVRM version: NVIDIA UNIX [Open] Kernel Module for x86_64  580.159.04  Release Build ...' -> '580.159.04'."""
    m = re.search(r"\b(\d{3,}\.\d+(?:\.\d+)?)\b", text)
    return m.group(1) if m else "unknown"


def peak_mb(device) -> float:
    import resource  # Unix only: imported where it is used, so the module imports on Windows

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak RSS of the process, in MB


def summary(times: list[float]) -> dict:
    times = sorted(times)
    return {
        "median": statistics.median(times),
        "p99": times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))],
        "min": times[0],
    }
