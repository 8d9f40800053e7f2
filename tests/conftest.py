"""Shared fixtures: tiny seeded SDXS-layout models written to disk once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of many small steps: they run several times faster so on a shared,
    busy machine (use with pytestmark = pytest.mark.usefixtures("one_thread"))."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A folder with base/ (diffusers layout, no mid block, TAESD VAE) and controlnet/ (with a mid block)."""
    from models.loading import quiet_libraries
    from models.tiny import save_base, save_controlnet

    quiet_libraries()
    root = tmp_path_factory.mktemp("tiny")
    save_base(root / "base", "tiny", seed=0)
    save_controlnet(root / "controlnet", root / "base", "tiny", seed=1)
    return root


@pytest.fixture(scope="session")
def tiny_base(tiny_dir):
    return str(tiny_dir / "base")


@pytest.fixture(scope="session")
def tiny_controlnet(tiny_dir):
    return str(tiny_dir / "controlnet")


@pytest.fixture(scope="module")
def engine(tiny_base, tiny_controlnet):
    """A float32 CPU engine on the tiny model at 64 px, one per test module (tests change its settings)."""
    from models.engine import Engine

    e = Engine.load(tiny_base, tiny_controlnet, "cpu", "float32")
    e.set_size(64)
    e.set_prompt("a cat")
    return e


@pytest.fixture()
def sketch_image():
    """A 128 px black-on-white drawing: a circle and a line."""
    import cv2
    import numpy as np

    img = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(img, (64, 60), 30, (0, 0, 0), 3)
    cv2.line(img, (10, 110), (118, 100), (0, 0, 0), 2)
    return img
