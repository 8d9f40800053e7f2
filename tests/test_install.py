"""`pip install .` and `pip install -e .` in a fresh venv give a working `sdxs-live` command, the demo model included.

The venv reuses the packages already in this environment (a .pth file points at them) and installs the
project itself without dependencies, so nothing is downloaded; the command then runs from another folder,
so only the installed copy can be found."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def venv_with_our_packages(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "reuse-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.skipif(sys.platform == "win32", reason="venv layout differs on Windows")
@pytest.mark.parametrize("editable", [False, True])
def test_pip_install_gives_a_working_command(tmp_path, editable):
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    for name in ("app", "models", "training", "assets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    python = venv_with_our_packages(tmp_path / "venv")
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    r = subprocess.run(pip + (["-e", str(src)] if editable else [str(src)]), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    command = tmp_path / "venv" / "bin" / "sdxs-live"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([str(command), "--help"], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage: sdxs-live" in r.stdout and "generate" in r.stdout, r.stderr
    where = subprocess.run([str(python), "-c", "import app, models.assets as a; print(app.__file__, a.DEMO_DIR.is_dir())"],
                           cwd=elsewhere, capture_output=True, text=True, timeout=120).stdout.split()
    assert where[1] == "True" and (str(src) in where[0]) == editable and str(ROOT) not in where[0]
    out = elsewhere / "apple.png"
    r = subprocess.run([str(command), "generate", "--model", "demo", "--prompt", "a red apple", "--size", "64",
                        "--device", "cpu", "--out", str(out)], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and out.stat().st_size > 0, r.stderr
