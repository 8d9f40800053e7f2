"""Record frames to an MP4 file (OpenCV, mp4v), atomically.

Frames go to a hidden temporary file beside the target; close() finalizes the container and renames it
into place, abort() deletes it. A crash or an error never leaves a half-written file under the target name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from models.conditions import fit_square
from models.errors import UserError


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two images next to each other at the right one's height (the left is cropped square and resized)."""
    h = right.shape[0]
    return np.ascontiguousarray(np.concatenate([fit_square(left, h), right[:, :, :3]], axis=1))


class Recorder:
    """Writes uint8 RGB frames of one size to an MP4; other sizes are resized to the first frame's size."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise UserError(f"cannot record to {str(path)!r}: the name must end in .mp4")
        if not self.path.parent.is_dir():
            raise UserError(f"cannot record to {str(path)!r}: folder {str(self.path.parent)!r} does not exist")
        self.fps = float(min(max(fps, 1.0), 120.0))
        self.frames = 0
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rec-", suffix=".mp4")
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._writer is None:
            self._size = (w - w % 2, h - h % 2)  # codecs want even sizes
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                self.abort()
                raise UserError(f"cannot record to {str(self.path)!r}: OpenCV has no mp4v encoder here")
        if (w, h) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path, or None when no frame was written."""
        if self._writer is None:
            self.abort()
            return None
        self._writer.release()
        self._writer = None
        try:
            os.chmod(self._tmp, 0o644)  # mkstemp makes it private; a video is an ordinary file
            os.replace(self._tmp, self.path)
        except OSError as e:
            self.abort()
            raise UserError(f"cannot write {str(self.path)!r}: {e.strerror}") from None
        return self.path

    def abort(self) -> None:
        """Drop the recording: nothing is left behind."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.close()  # Ctrl+C keeps what was recorded, properly finalized
        else:
            self.abort()
