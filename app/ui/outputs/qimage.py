"""numpy <-> QImage, always copying: a QImage over a numpy buffer does not own its memory."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def from_rgb(rgb: np.ndarray) -> QImage:
    """uint8 RGB (H, W, 3) -> a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def to_rgb(image: QImage) -> np.ndarray:
    """Any QImage -> a uint8 RGB (H, W, 3) numpy array that owns its pixels."""
    return _pixels(image, QImage.Format.Format_RGB888, 3)


def from_rgba(rgba: np.ndarray) -> QImage:
    """uint8 RGBA (H, W, 4), straight alpha -> a premultiplied ARGB32 QImage (the canvas's layer format)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def to_rgba(image: QImage) -> np.ndarray:
    """Any QImage -> uint8 RGBA (H, W, 4), straight alpha, that owns its pixels."""
    return _pixels(image, QImage.Format.Format_RGBA8888, 4)


def _pixels(image: QImage, fmt: QImage.Format, channels: int) -> np.ndarray:
    """The image's pixels in fmt (channels bytes each) as a numpy array that owns them (rows lose their padding)."""
    if image.format() != fmt:
        image = image.convertToFormat(fmt)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=h * stride).reshape(h, stride)
    return buf[:, : channels * w].reshape(h, w, channels).copy()
