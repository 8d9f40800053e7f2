"""Record frames to a video file that survives a crash, keeps real time and never claims a recording that is not there.

The file is written through PyAV (FFmpeg: H.264, yuv420p) as fragmented MP4 (movflags frag_keyframe+empty_moov
+default_base_moof; Matroska for .mkv): a keyframe at least every KEY_SECONDS, of the video's time and of the
clock's, closes a fragment, and every fragment on disk plays on its own. Frames go to a visible partial file beside the target, NAME.recording.mp4
(NAME.recording-2.mp4 when that is taken), which close() checks and renames to the target; abort() deletes it.
After kill -9 or a power cut the user finds NAME.recording.mp4 next to where NAME.mp4 would be, playable up to its
last fragment: at most about KEY_SECONDS + SYNC_SECONDS of the end is lost (the file is fsync'ed every SYNC_SECONDS).
The file is created with the first frame, so a recording that never got a frame leaves nothing.

Time: with real_time (the window, a camera or the screen) each frame's timestamp is the monotonic clock since the
recording started, so a still drawing recorded for 8 s plays for 8 s: a frame path that sends only changed
pictures is fine, the recorder repeats the last picture as a keyframe when none came for KEY_SECONDS (which
also flushes a fragment) and once more at close. Without real_time (stream reading a video file) frame i is at
i / fps: the output keeps the video's own timing however fast the frames are made.

Errors: the target's folder must take a file and have room before the first frame (models.outfiles); while
recording, the disk must keep RESERVE bytes free, enough to finalize the file; every finished file is read
again and must hold exactly the frames written before it is renamed into place. When the disk fills or a
write fails, the recording stops with a RecordingError (a one-line UserError) that names the file and the
cause and says what was kept: the frames so far, finalized and checked playable, under the target's name;
or, where even that fails, nothing at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from models.conditions import fit_square
from models.errors import UserError
from models.outfiles import MIN_FREE, cause, check_file

log = logging.getLogger(__name__)

SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
RESERVE = 8 * 2**20  # free bytes a recording leaves on its disk: below this it stops and finalizes what it has
KEY_SECONDS = 1.0  # a keyframe (and so a finished fragment on disk) at least this often
SYNC_SECONDS = 1.0  # the file is fsync'ed at least this often: what a power cut can lose on top of a fragment
TIME_BASE = Fraction(1, 90000)  # real-time timestamps: the MPEG clock
CODEC_OPTIONS = {"preset": "veryfast", "tune": "zerolatency"}  # no lookahead: each frame's packet comes out at once


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


def partial_name(path: Path, n: int = 1) -> Path:
    """Where a recording to path is written until it is finished: NAME.recording.mp4, NAME.recording-N.mp4."""
    return path.with_name(f"{path.stem}.recording{'' if n == 1 else f'-{n}'}{path.suffix}")


class Recorder:
    """Writes uint8 RGB frames of one size to a crash-safe video; other sizes are scaled to the first frame's size.

    write(frame), close() and abort() may be called from any one thread (RecorderSink's own, in the app); a
    real-time recorder's own keeper thread repeats a still picture, under the same lock."""

    def __init__(self, path: str | Path, fps: float = 30.0, reserve: int = RESERVE, real_time: bool = True):
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() not in SUFFIXES:
            raise UserError(f"cannot record to {str(path)!r}: the name must end in .mp4 (or .mov, .m4v, .mkv)")
        if not self.path.parent.is_dir():
            raise UserError(f"cannot record to {str(path)!r}: folder {str(self.path.parent)!r} does not exist")
        check_file(self.path, repr(str(path)), SUFFIXES, need=max(MIN_FREE, 2 * reserve))
        self.fps = float(min(max(fps, 1.0), 120.0))  # frame-timed: the rate; real time: the rate players are told
        self.reserve = reserve  # see RESERVE
        self.real_time = real_time  # timestamps from the clock (True) or frame i at i / fps (False)
        self.frames = 0  # frames in the file so far, repeats of a still picture included (after a stop: kept ones)
        self.stopped: RecordingError | None = None  # set once the recording stopped on an error
        self.partial: Path | None = None  # the file being written (NAME.recording.mp4), from the first frame on
        self._lock = threading.RLock()
        self._box = None  # the av output container
        self._stream = None
        self._sync_fd: int | None = None
        self._size: tuple[int, int] | None = None
        self._kept: Path | None = None
        self._told = False  # the stop's RecordingError was raised to a caller of write()
        self._t0 = time.monotonic()  # real time starts when the recording does, not at its first frame
        self._pts = -1  # the last frame's timestamp (in the stream's time base)
        self._key_pts = None  # the last keyframe's timestamp
        self._key_wall = 0.0  # monotonic time of the last keyframe
        self._last: np.ndarray | None = None  # the last picture written: repeated while nothing new comes
        self._last_t = 0.0  # monotonic time of the last write
        self._synced = 0.0
        self._done = threading.Event()
        self._keeper: threading.Thread | None = None

    # ---- the sink side: write, close, abort ----------------------------------------------------------

    def write(self, frame: np.ndarray, at: float | None = None) -> None:
        """Add a frame; at: the time.monotonic() it was made (a real-time frame's time in the video; default now:
        a caller encoding later, as RecorderSink's thread does, passes the time the frame came). Raises
        RecordingError once when the recording stops (disk full, file gone); a stopped recorder ignores later
        frames, and close() then returns what was kept."""
        with self._lock:
            if self.stopped is not None:
                if not self._told:
                    self._told = True
                    raise self.stopped
                return
            try:
                if self._box is None:
                    self._open(frame.shape[1], frame.shape[0])
                elif not self._room():
                    self._stop("the disk is full")
                self._encode(np.ascontiguousarray(frame[:, :, :3]), time.monotonic() if at is None else at)
            except RecordingError:
                self._told = True
                raise

    def close(self) -> Path | None:
        """Finish the file, check it and move it into place; returns its path, or None when no frame was
        written. After a stop it returns the kept file (or None). Raises RecordingError when the finished
        file does not hold every frame (then nothing is left)."""
        self._done.set()
        with self._lock:
            if self.stopped is not None:
                return self._kept
            if self._box is None:
                return None
            try:
                if self.real_time and self._last is not None:
                    now = time.monotonic()
                    if now - self._last_t >= 1.0 / self.fps:  # the last picture lasts until the recording stops
                        self._encode(self._last, now, repeat=True)
                self._finish()
            except RecordingError:
                raise
            except (OSError, ValueError) as e:  # av's errors are OSErrors
                self._discard()
                self._fail(self._disk_problem() or cause(e), None, 0)
            got = playable_frames(self.partial)
            if got != self.frames:
                why = self._disk_problem() or f"the finished file holds {got} of its {self.frames} frames"
                self._discard()
                self._fail(why, None, 0)
            try:
                os.replace(self.partial, self.path)
            except OSError as e:
                self._discard()
                self._fail(cause(e), None, 0)
            return self.path

    def abort(self) -> None:
        """Drop the recording: nothing is left behind (a file already kept after a stop stays)."""
        self._done.set()
        with self._lock:
            if self._box is not None:
                try:
                    self._box.close()
                except Exception as e:  # broken already: the file goes anyway
                    log.debug("closing %s: %s", self.partial, e)
            self._box = None
            self._discard()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or exc_type is KeyboardInterrupt:
            self.close()  # Ctrl+C keeps what was recorded, properly finalized
        else:
            self.abort()

    # ---- the file ------------------------------------------------------------------------------------

    def _open(self, w: int, h: int) -> None:
        import av

        self._size = (max(2, w - w % 2), max(2, h - h % 2))  # yuv420p wants even sizes
        if not self._room():
            self._stop("the disk is full")
        n = 1
        while True:  # claim a free partial name: never over an earlier crash's recording
            self.partial = partial_name(self.path, n)
            try:
                os.close(os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                break
            except FileExistsError:
                n += 1
            except OSError as e:
                self.partial = None
                self._stop(cause(e))
        mkv = self.path.suffix.lower() == ".mkv"
        try:
            self._box = av.open(str(self.partial), "w", format="matroska" if mkv else "mp4",
                                options={"flush_packets": "1"} if mkv else {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"})
            rate = Fraction(self.fps).limit_denominator(1001)
            s = self._box.add_stream("libx264", rate=rate, options=dict(CODEC_OPTIONS))
            s.width, s.height = self._size
            s.pix_fmt = "yuv420p"
            s.codec_context.time_base = TIME_BASE if self.real_time else 1 / rate
            s.time_base = s.codec_context.time_base
            self._stream = s
            self._sync_fd = os.open(self.partial, os.O_RDONLY)
        except (OSError, ValueError) as e:
            self._box = None
            self._stop(self._disk_problem() or f"could not start the video file: {cause(e)}")
        log.info("recording to %s (it is %s until it is finished)", self.path, self.partial.name)
        if self.real_time:
            self._keeper = threading.Thread(target=self._keep, name="recorder-keeper", daemon=True)
            self._keeper.start()

    def _encode(self, rgb: np.ndarray, now: float, repeat: bool = False) -> None:
        """One picture into the file at its time; a keyframe (a fragment on disk) every KEY_SECONDS."""
        import av

        if self.real_time:
            pts = max(self._pts + 1, round((now - self._t0) / TIME_BASE))
            second = round(KEY_SECONDS / TIME_BASE)
        else:
            pts = self._pts + 1
            second = max(1, round(KEY_SECONDS * self.fps))
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if (rgb.shape[1], rgb.shape[0]) != self._size:
            frame = frame.reformat(width=self._size[0], height=self._size[1])
        frame.pts = pts
        # a second of the video's time or of the clock's (a video made slower than it plays), whichever comes first
        # and the second frame: the first one's fragment reaches the disk at once (a crash then leaves a playable file)
        key = (self._key_pts is None or self.frames == 1 or pts - self._key_pts >= second
               or now - self._key_wall >= KEY_SECONDS)
        if key:
            frame.pict_type = av.video.frame.PictureType.I
            self._key_pts, self._key_wall = pts, now
        try:
            for packet in self._stream.encode(frame):
                self._box.mux(packet)
        except (OSError, ValueError) as e:
            self._stop(self._disk_problem() or cause(e))
        self._pts, self.frames = pts, self.frames + 1
        if not repeat:
            self._last, self._last_t = rgb, now
        if key and now - self._synced >= SYNC_SECONDS:
            self._sync(now)

    def _sync(self, now: float) -> None:
        self._synced = now
        try:
            os.fsync(self._sync_fd)
        except OSError as e:
            log.debug("fsync %s: %s", self.partial, e)

    def _keep(self) -> None:
        """The keeper thread: a still picture is written again every KEY_SECONDS, so the file's time goes on
        and its last fragment reaches the disk even when the frame path sends nothing new."""
        while not self._done.wait(KEY_SECONDS / 4):
            with self._lock:
                if self._box is None or self.stopped is not None or self._last is None:
                    continue
                now = time.monotonic()
                if now - max(self._last_t, self._key_wall) >= KEY_SECONDS:
                    try:
                        self._encode(self._last, now, repeat=True)
                    except RecordingError as e:  # the next write() raises it; the window hears of it then
                        log.warning("%s", e)

    def _finish(self) -> None:
        """Flush the encoder and close the container (the last fragment goes to disk), then fsync."""
        box, self._box = self._box, None
        try:
            for packet in self._stream.encode(None):
                box.mux(packet)
        finally:
            box.close()
            if self._sync_fd is not None:
                self._sync(time.monotonic())
                os.close(self._sync_fd)
                self._sync_fd = None

    def _discard(self) -> None:
        if self._sync_fd is not None:
            os.close(self._sync_fd)
            self._sync_fd = None
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)

    def _room(self, reserve: int | None = None) -> bool:
        try:
            return shutil.disk_usage(self.path.parent).free >= (self.reserve if reserve is None else reserve)
        except OSError:
            return False

    def _disk_problem(self) -> str | None:
        """Why the disk would refuse the file (full, read-only, gone), or None when it looks fine."""
        if self.partial is not None and not self.partial.exists():
            return "its file was deleted"
        if not self._room(max(self.reserve, 2**20)):
            return "the disk is full"
        if self.partial is not None:
            try:
                with open(self.partial, "ab"):
                    pass
            except OSError as e:
                return cause(e)
        return None

    def _stop(self, why: str) -> None:
        """Stop on an error: finalize the frames so far; keep them only when the file checks out."""
        self._done.set()
        written, kept = self.frames, None
        if self._box is not None:
            try:
                self._finish()
            except Exception as e:  # a full disk may refuse the last fragment: the earlier ones still play
                log.debug("finishing %s: %s", self.partial, e)
            got = playable_frames(self.partial, decode=True) if written else 0
            if got:
                try:
                    os.replace(self.partial, self.path)
                    kept, written = self.path, got
                except OSError:
                    kept = None
        self._box = None
        self._discard()
        self._fail(why, kept, written if kept else 0, stopped=True)

    def _fail(self, why: str, kept: Path | None, frames: int, stopped: bool = False) -> None:
        self._kept, self.frames = kept, frames
        what = f"stopped after {frames} frames" if stopped else "could not be finished"
        left = f"the {frames} frames so far are kept in it, playable" if kept else "nothing was kept"
        err = RecordingError(f"recording {str(self.path)!r} {what}: {why}; {left}", self.path, kept, frames)
        self.stopped = err
        raise err


def playable_frames(path: Path | None, decode: bool = False) -> int:
    """Frames a player finds in a video file, 0 when it does not open. Its packets, after the first one decodes
    (a cleanly finished file); with decode, the frames that decode (a file cut short: its last packet may not)."""
    import av

    if path is None or not path.exists():
        return 0
    try:
        with av.open(str(path)) as box:
            if decode:
                n = 0
                try:
                    for _ in box.decode(video=0):
                        n += 1
                except (OSError, ValueError):  # the cut: what decoded before it plays
                    pass
                return n
            n, decoded = 0, False
            for packet in box.demux(video=0):
                if packet.size == 0:
                    continue
                n += 1
                if not decoded:
                    decoded = bool(packet.decode())
            if decoded:
                return n
            return n if any(True for _ in box.streams.video[0].codec_context.decode(None)) else 0
    except (OSError, ValueError, IndexError):
        return 0
