"""auto device and dtype: CUDA fp16, else bf16 only on CPUs that compute it natively, else fp32."""

from __future__ import annotations

import pytest
import torch

from models import device
from models.errors import UserError

AVX2 = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
SAPPHIRE = "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
GRAVITON3 = "Features\t: fp asimd bf16 i8mm sve\n"


def test_cpuinfo_flags():
    assert not device.cpuinfo_has_bf16(AVX2)
    assert device.cpuinfo_has_bf16(SAPPHIRE)
    assert device.cpuinfo_has_bf16(GRAVITON3)
    assert not device.cpuinfo_has_bf16("")


def test_auto_dtype_follows_the_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.pick_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert device.pick_dtype("auto", cpu) == torch.float32
    assert device.pick_dtype("auto", torch.device("cuda")) == torch.float16
    assert device.pick_dtype("float16", cpu) == torch.float16


def test_device_names():
    assert device.pick_device("cpu").type == "cpu"
    assert device.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="auto, cpu or cuda"):
        device.pick_device("metal")


def test_auto_picks_apples_gpu_where_torch_reports_it(monkeypatch):
    """Without CUDA, auto takes `mps` where torch says it is there, in fp16 and on the eager path (no CUDA graphs)."""
    from models.runners.fused import default_mode

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    picked = device.pick_device("auto")
    assert picked.type == "mps" and device.pick_dtype("auto", picked) == torch.float16
    assert default_mode(picked) == "eager"
    assert device.pick_device("cpu").type == "cpu"  # asked for by name, the CPU stays the CPU
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.pick_device("auto").type == "cpu"


def test_nvidia_driver_version_from_proc_text():
    from app.cli.bench.machine import driver_version

    # the open kernel module writes "Module for x86_64": the version is the first dotted number, not "for"
    open_km = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U16)\n"
    legacy = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version: 12.2\n"
    assert driver_version(open_km) == "580.159.04"
    assert driver_version(legacy) == "535.104.05"
    assert driver_version("") == "unknown"
