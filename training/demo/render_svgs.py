"""Render SVG files to square PNGs on white with QtSvg (a build tool for the demo model's data).

Qt stays out of the builder itself, so training/demo/data.py runs this as a subprocess:
`python -m training.demo.render_svgs LIST_FILE OUT_DIR SIZE`, where LIST_FILE holds lines `svg_path<TAB>png_name`.
Each drawing is scaled to fit inside the square with a small margin, keeping its aspect ratio. Files that
Qt cannot read, or that render blank, are skipped; the last line printed is `rendered N skipped M`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def render_all(pairs: list[tuple[str, str]], out_dir: Path, size: int) -> tuple[int, int]:
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841  (fonts need an application)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = skipped = 0
    margin = size * 0.06
    for svg, name in pairs:
        renderer = QSvgRenderer(svg)
        box = renderer.viewBoxF()
        if not renderer.isValid() or box.width() <= 0 or box.height() <= 0:
            skipped += 1
            continue
        scale = (size - 2 * margin) / max(box.width(), box.height())
        w, h = box.width() * scale, box.height() * scale
        img = QImage(size, size, QImage.Format.Format_RGB888)
        img.fill(Qt.GlobalColor.white)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF((size - w) / 2, (size - h) / 2, w, h))
        painter.end()
        # a render that is (almost) all white has nothing to learn from
        bits = img.constBits()
        data = bytes(bits)[: size * img.bytesPerLine()]
        if data.count(255) > 0.985 * len(data):
            skipped += 1
            continue
        tmp = out_dir / f".{name}.tmp.png"
        if img.save(str(tmp), "PNG"):
            tmp.replace(out_dir / name)
            done += 1
        else:
            skipped += 1
    return done, skipped


if __name__ == "__main__":
    list_file, out, px = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    lines = Path(list_file).read_text().splitlines()
    pairs = [tuple(line.split("\t", 1)) for line in lines if "\t" in line]
    n, m = render_all(pairs, out, px)
    print(f"rendered {n} skipped {m}")
