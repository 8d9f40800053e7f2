"""Where the files shipped with SDXS Live lie (the demo model, the icons), in a checkout or an installed package."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_DIR = ASSETS / "models" / "demo"  # the built-in demo model: diffusers layout, its adapter in adapter/
ICON_SVG = ASSETS / "icons" / "sdxs-live.svg"  # the window's icon
ICON_PNG = ASSETS / "icons" / "sdxs-live.png"  # the desktop menu's icon
