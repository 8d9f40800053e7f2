"""The frame pipeline without Qt."""
