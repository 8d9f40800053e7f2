"""Write SDXS-size random components for the GPU benchmark: base, full ControlNet, light adapter.

    python bench/gpu_models.py OUT_DIR      ->  OUT/base, OUT/full, OUT/light

Random weights time like real ones. Run from the repository root (it imports models/ and training/).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(out: Path) -> None:
    from diffusers import UNet2DConditionModel

    from models.loading import quiet_libraries
    from models.tiny import build_controlnet, save_base
    from training.adapters import build_adapter

    quiet_libraries()
    if not (out / "base" / "model_index.json").exists():
        save_base(out / "base", "sdxs")
    unet = UNet2DConditionModel.from_pretrained(out / "base", subfolder="unet")
    build_controlnet(unet, "sdxs").save_pretrained(out / "full")
    build_adapter(unet, "light").save_pretrained(out / "light")
    print(f"wrote {out}/base, {out}/full, {out}/light")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
