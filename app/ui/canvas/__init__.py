"""The drawing canvas (lines and colour layers) and its tools."""
