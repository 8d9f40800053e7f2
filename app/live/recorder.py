"""Record frames to an MP4 file (OpenCV, mp4v), atomically, and never claim a recording that is not there.

Frames go to a hidden temporary file beside the target; close() finalizes the container and renames it
into place, abort() deletes it. A crash or an error never leaves a half-written file under the target name.

OpenCV's VideoWriter reports no write errors (write() returns nothing; FFmpeg only logs), so the recorder
checks for itself: the target's folder must take a file and have room before the first frame (models.outfiles);
while recording, the disk must keep RESERVE bytes free, enough to finalize the file; and every finished file
is opened again and must hold exactly the frames written before it is renamed into place. When the disk
fills or a write fails, the recording stops with a RecordingError (a one-line UserError) that names the file
and the cause and says what was kept: the frames so far, finalized and checked playable, under the target's
name; or, where even that fails, nothing at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines stay off the terminal; we say what failed

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from models.conditions import fit_square  # noqa: E402
from models.errors import UserError  # noqa: E402
from models.outfiles import MIN_FREE, cause, check_file  # noqa: E402

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its "Failed to write frame" warnings: we check ourselves

SUFFIXES = (".mp4", ".m4v", ".mov")
RESERVE = 8 * 2**20  # free bytes a recording leaves on its disk: below this it stops and finalizes what it has


class RecordingError(UserError):
    """A recording that stopped or could not be finished: one line naming the file, the cause and what is kept."""

    def __init__(self, message: str, path: Path, kept: Path | None, frames: int):
        super().__init__(message)
        self.path = path  # the target file
        self.kept = kept  # the finalized, checked file of the frames so far, or None: nothing was left
        self.frames = frames  # frames in the kept file (0 when nothing was kept)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two images next to each other at the right one's height (the left is cropped square and resized)."""
    h = right.shape[0]
    return np.ascontiguousarray(np.concatenate([fit_square(left, h), right[:, :, :3]], axis=1))


class Recorder:
    """Writes uint8 RGB frames of one size to an MP4; other sizes are resized to the first frame's size."""

    def __init__(self, path: str | Path, fps: float = 30.0, reserve: int = RESERVE):
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() not in SUFFIXES:
            raise UserError(f"cannot record to {str(path)!r}: the name must end in .mp4")
        if not self.path.parent.is_dir():
            raise UserError(f"cannot record to {str(path)!r}: folder {str(self.path.parent)!r} does not exist")
        check_file(self.path, repr(str(path)), SUFFIXES, need=max(MIN_FREE, 2 * reserve))
        self.fps = float(min(max(fps, 1.0), 120.0))
        self.reserve = reserve  # see RESERVE
        self.frames = 0  # frames written so far (after a stop: the frames in the kept file)
        self.stopped: RecordingError | None = None  # set once the recording stopped on an error
        try:  # made inside the error handling: a read-only or full folder is one line, not a traceback
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rec-", suffix=".mp4")
            os.close(fd)
        except OSError as e:
            raise UserError(f"cannot record to {str(path)!r}: {cause(e)}") from None
        self._tmp = Path(tmp)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._kept: Path | None = None

    def write(self, frame: np.ndarray) -> None:
        """Add a frame. Raises RecordingError once when the recording stops (disk full, file gone); a stopped
        recorder ignores later frames, and close() then returns what was kept."""
        if self.stopped is not None:
            return
        h, w = frame.shape[:2]
        if self._writer is None:
            self._size = (w - w % 2, h - h % 2)  # codecs want even sizes
            if not self._room():
                self._stop("the disk is full")
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                why = self._disk_problem()  # a full or read-only disk also makes the writer fail to open
                self._writer = None
                self._stop(why or "OpenCV has no mp4v encoder here (opencv-python-headless has one)")
        elif not self._room():
            self._stop("the disk is full")
        if (w, h) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file, check it and move it into place; returns its path, or None when no frame was
        written. After a stop it returns the kept file (or None). Raises RecordingError when the finished
        file does not hold every frame (then nothing is left)."""
        if self.stopped is not None:
            return self._kept
        if self._writer is None:
            self.abort()
            return None
        self._writer.release()
        self._writer = None
        got = playable_frames(self._tmp)
        if got != self.frames:
            why = self._disk_problem() or f"the finished file holds {got} of its {self.frames} frames"
            self._tmp.unlink(missing_ok=True)
            self._fail(why, None, 0)
        try:
            os.chmod(self._tmp, 0o644)  # mkstemp makes it private; a video is an ordinary file
            os.replace(self._tmp, self.path)
        except OSError as e:
            self.abort()
            self._fail(cause(e), None, 0)
        return self.path

    def _room(self, reserve: int | None = None) -> bool:
        try:
            return shutil.disk_usage(self.path.parent).free >= (self.reserve if reserve is None else reserve)
        except OSError:
            return False

    def _disk_problem(self) -> str | None:
        """Why the disk would refuse the file (full, read-only, gone), or None when it looks fine."""
        if not self._tmp.exists():
            return "its temporary file was deleted"
        if not self._room(max(self.reserve, 2**20)):
            return "the disk is full"
        try:
            with open(self._tmp, "ab"):
                pass
        except OSError as e:
            return cause(e)
        return None

    def _stop(self, why: str) -> None:
        """Stop on an error: finalize the frames so far; keep them only when the file checks out."""
        writer, self._writer = self._writer, None
        written = self.frames
        kept = None
        if writer is not None:
            writer.release()
            if written and playable_frames(self._tmp) == written:
                try:
                    os.chmod(self._tmp, 0o644)
                    os.replace(self._tmp, self.path)
                    kept = self.path
                except OSError:
                    kept = None
        self._tmp.unlink(missing_ok=True)
        self._fail(why, kept, written if kept else 0, stopped=True)

    def _fail(self, why: str, kept: Path | None, frames: int, stopped: bool = False) -> None:
        self._kept, self.frames = kept, frames
        what = f"stopped after {frames} frames" if stopped else "could not be finished"
        left = f"the {frames} frames so far are kept in it, playable" if kept else "nothing was kept"
        err = RecordingError(f"recording {str(self.path)!r} {what}: {why}; {left}", self.path, kept, frames)
        self.stopped = err
        raise err

    def abort(self) -> None:
        """Drop the recording: nothing is left behind (a file already kept after a stop stays)."""
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


def playable_frames(path: Path) -> int:
    """Frames a finished video file holds as a player reads its index (0 when it does not open: no moov atom)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        ok, _ = cap.read()
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
    finally:
        cap.release()
