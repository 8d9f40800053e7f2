"""Output files and folders: checked before any model loads, failures said in one line.

Every command that writes (generate --out, stream --out, train --out, bench --json, the demo builder, the
window's recordings and snapshots) checks its target first: the folder exists (or, for a folder it will
make, its nearest existing parent does), a file can really be made there (a probe file, created and
removed, which also catches read-only mounts, permissions and quotas that os.access misses) and its disk
has at least MIN_FREE bytes free. Writes themselves go to a temporary file beside the target, renamed into
place, so a failure later leaves nothing under the target's name.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from models.errors import UserError

MIN_FREE = 16 * 2**20  # bytes an output's disk must have free before any work starts (a few images, a short recording)

CAUSES = {  # errno -> the few words a user needs
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "the folder does not exist",
    errno.EFBIG: "the file is too large for this disk",
}
WRITE_ERRNOS = frozenset(CAUSES)  # the errors a full, read-only or forbidden disk gives; anything else is a bug


def cause(e: OSError) -> str:
    """An OSError as a short cause: 'the disk is full', 'permission denied', or the system's own words."""
    return CAUSES.get(e.errno, e.strerror or type(e).__name__)


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def check_folder(folder: str | Path, what: str, need: int = MIN_FREE, create: bool = False) -> Path:
    """A folder that output can be written into; with create=True it may not exist yet (then its nearest
    existing parent is checked; nothing is made). `what` names the option in errors, like "--out 'runs/x'"."""
    folder = Path(folder).expanduser()
    probe = folder
    if create:
        probe = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    if not probe.exists():
        raise UserError(f"cannot write {what}: folder {str(folder)!r} does not exist")
    if not probe.is_dir():
        raise UserError(f"cannot write {what}: {str(probe)!r} is a file, not a folder")
    try:  # the real test: make a file there (read-only mounts, ACLs and quotas fool os.access)
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".write-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        where = "" if probe == folder else f" (in {str(probe)!r}, where it would be made)"
        raise UserError(f"cannot write {what}: {cause(e)}{where}; pick another folder") from None
    free = shutil.disk_usage(probe).free
    if free < need:
        raise UserError(f"cannot write {what}: its disk has {_mb(free)} free, at least {_mb(need)} is needed; "
                        "free some space or pick another folder")
    return folder


def check_file(path: str | Path, what: str, suffixes: tuple[str, ...] | None = None, need: int = MIN_FREE,
               create_folder: bool = False) -> Path:
    """An output file's path, checked as check_folder checks its folder; suffixes: the endings it may have."""
    p = Path(path).expanduser()
    if suffixes and p.suffix.lower() not in suffixes:
        raise UserError(f"cannot write {what}: the name must end in {', '.join(suffixes[:-1])}"
                        f"{' or ' if len(suffixes) > 1 else ''}{suffixes[-1]}")
    if p.is_dir():
        raise UserError(f"cannot write {what}: {str(p)!r} is a folder; give a file name")
    check_folder(p.parent, what, need, create=create_folder)
    return p


def check_new(path: str | Path, what: str, overwrite: bool, flag: str = "--overwrite") -> Path:
    """An output file that must not replace an existing one unless the user said so (the flag)."""
    p = Path(path).expanduser()
    if not overwrite and (p.exists() or p.is_symlink()):
        raise UserError(f"{what}: {str(p)!r} already exists; add {flag} to replace it, or pick another name")
    return p


def write_failure(e: BaseException, where: str | Path) -> str | None:
    """Why writing under `where` failed when the disk is to blame ('the disk is full', ...), else None (a bug).
    Libraries wrap the system's error in their own (safetensors' SafetensorError, torch's RuntimeError), so
    their text is read too, and a disk with under 1 MB left counts as full."""
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        return cause(e)
    text = str(e)
    for code, words in ((errno.ENOSPC, "No space left"), (errno.EROFS, "Read-only file system"), (errno.EDQUOT, "quota exceeded")):
        if f"os error {code})" in text or words in text:
            return CAUSES[code]
    where = Path(where).expanduser()
    probe = next((p for p in [where, *where.parents] if p.exists()), None)
    try:
        if probe is not None and shutil.disk_usage(probe).free < 2**20:
            return CAUSES[errno.ENOSPC]
    except OSError:
        pass
    return None


def write_atomic(path: str | Path, data: bytes, mode: int = 0o644) -> Path:
    """Write bytes to path through a temporary file beside it; a failure is a one-line UserError and leaves
    neither the temporary file nor a partial file under the target name."""
    p = Path(path).expanduser()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        os.fchmod(fd, mode & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {str(p)!r}: {cause(e)}") from None
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
