"""Small widget builders the panel and the dialogs share."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget


def row(*widgets: QWidget, stretch: int | None = None) -> QWidget:
    """Widgets side by side without margins (stretch: the index of the one that takes the spare width)."""
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    for i, x in enumerate(widgets):
        lay.addWidget(x, 1 if i == stretch else 0)
    return w


def button(text: str, tip: str, slot) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    b.clicked.connect(slot)
    return b
