"""`python main.py install-desktop`: add SDXS Live to the desktop's application menu (freedesktop .desktop).

Writes $XDG_DATA_HOME/applications/sdxs-live.desktop (default ~/.local/share/applications) that starts this
checkout's main.py (or the installed package) with this Python, with the icon from assets/icons. --remove deletes it again.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from models.assets import ICON_PNG
from models.errors import UserError

ROOT = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) that holds main.py
NAME = "sdxs-live.desktop"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remove", action="store_true", help="remove the menu entry instead")
    p.add_argument("--python", default=sys.executable, help="the Python that runs the app (default: this one)")


def applications_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "applications"


def _quote(arg: str) -> str:
    """Quote one Exec argument per the Desktop Entry spec."""
    if not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'


def entry(python: str) -> str:
    main = ROOT / "main.py"  # a checkout; an installed package runs its module instead
    exec_line = " ".join(_quote(a) for a in ((python, str(main)) if main.exists() else (python, "-m", "app.cli.main")))
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=SDXS Live",
        "GenericName=Live sketch to image",
        "Comment=Turn a sketch or a camera feed into images in real time with SDXS",
        f"Exec={exec_line}",
        f"Path={ROOT}",
        f"Icon={ICON_PNG}",
        "Terminal=false",
        "Categories=Graphics;2DGraphics;RasterGraphics;",
        "Keywords=diffusion;sketch;camera;AI;stable diffusion;",
        "StartupWMClass=sdxs-live",
        "",
    ])


def run(args: argparse.Namespace) -> int:
    folder = applications_dir()
    path = folder / NAME
    if args.remove:
        if path.exists():
            path.unlink()
            print(f"removed {path}")
        else:
            print(f"nothing to remove: {path} does not exist")
        return 0
    if not Path(args.python).exists():
        raise UserError(f"--python {args.python!r} does not exist: pass the Python of the app's virtual environment")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".sdxs-", suffix=".desktop")
        with os.fdopen(fd, "w") as f:
            f.write(entry(args.python))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}; check that {folder} is writable") from None
    print(f"installed {path}: SDXS Live is in the application menu (remove it with install-desktop --remove)")
    return 0
