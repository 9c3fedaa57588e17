"""Files, safely: the one atomic write every writer uses, and the one check every reader makes.

- ``atomic_write`` / ``commit_temp``: a temp file beside the target (unique per process and
  thread), fsync, rename over the target, fsync the directory — a crash at any moment leaves
  either the old file or the new one, never half of either.
- ``regular_file``: whatever seqtui reads must be a regular file of bounded size, checked before
  reading — a device (``/dev/zero``), a FIFO, a directory, a ``/proc`` file or a symlink loop
  gets a true one-line error instead of a hang or an out-of-memory read.

Importing this module is cheap (standard library only); every layer may use it.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

from seqtui.errors import SeqtuiError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
_VIRTUAL_ROOTS = ("/proc/", "/sys/", "/dev/")


def temp_path(path: str | os.PathLike, suffix: str = "") -> Path:
    """A temp name beside ``path``, unique to this process and thread (``.NAME.tmp-PID-TID``)."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{os.getpid()}-{threading.get_ident()}{suffix}")


def atomic_write(path: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> Path:
    """Write ``data`` (str is UTF-8) to ``path`` atomically and durably; OSError on failure."""
    path = Path(path)
    tmp = temp_path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        commit_temp(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return path


def commit_temp(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make a fully written temp file the target: fsync it, rename it over ``path``, fsync the dir."""
    tmp, path = Path(tmp), Path(path)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Persist a rename: fsync the directory (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def remove_stale_temps(directory: str | os.PathLike, name: str) -> None:
    """Temp files of ``name`` left by processes killed mid-write (their pid is gone) are removed."""
    for tmp in Path(directory).glob(f".{name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not _alive(pid):
            _unlink(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# ----------------------------------------------------------------------------------------------
def regular_file(path: str | os.PathLike, what: str, limit: int | None, error: type[SeqtuiError],
                 allow_empty: bool = False) -> os.stat_result:
    """Check that ``path`` is a readable regular file of at most ``limit`` bytes; ``error`` otherwise.

    Symlinks are followed (a link to a regular file is fine), but the message names what the
    path really is: missing, a symlink loop, a directory, a device, a FIFO, a socket, a virtual
    ``/proc``/``/sys`` file, empty, or too large.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise error(f"{what} {p} is a broken symlink") from None
        raise error(f"{what} {p} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{what} {p} is a symlink loop") from None
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise error(f"{what} {p} is a directory, not a file")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise error(f"{what} {p} is a device, not a regular file")
    if stat.S_ISFIFO(mode):
        raise error(f"{what} {p} is a FIFO (named pipe), not a regular file")
    if stat.S_ISSOCK(mode):
        raise error(f"{what} {p} is a socket, not a regular file")
    if not stat.S_ISREG(mode):  # pragma: no cover - every other kind is listed above
        raise error(f"{what} {p} is not a regular file")
    real = os.path.realpath(p) + ("/" if os.path.isdir(p) else "")
    if real.startswith(_VIRTUAL_ROOTS):
        raise error(f"{what} {p} is a virtual file ({real.split('/')[1]}), not a regular file")
    if st.st_size == 0 and not allow_empty:
        raise error(f"{what} {p} is empty")
    if limit is not None and st.st_size > limit:
        raise error(f"{what} {p} is {st.st_size / MiB:,.1f} MiB, more than the {limit / MiB:,.0f} MiB limit")
    if not os.access(p, os.R_OK):
        raise error(f"cannot read {what} {p}: permission denied")
    return st


def read_bounded(path: str | os.PathLike, what: str, limit: int, error: type[SeqtuiError],
                 allow_empty: bool = False) -> bytes:
    """The bytes of a checked regular file, never more than ``limit`` (it may grow while read)."""
    regular_file(path, what, limit, error, allow_empty=allow_empty)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{what} {path} grew past the {limit / MiB:,.0f} MiB limit while being read")
    return data


def read_text_bounded(path: str | os.PathLike, what: str, limit: int, error: type[SeqtuiError],
                      allow_empty: bool = False) -> str:
    """``read_bounded`` decoded as UTF-8 (a one-line error naming the file otherwise)."""
    data = read_bounded(path, what, limit, error, allow_empty=allow_empty)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 (byte {exc.start})") from None


# ----------------------------------------------------------------------------------------------
class locked:
    """``with locked(path):`` — an exclusive ``fcntl.flock`` on ``path + '.lock'`` (created on
    demand), so read-modify-write updates of a shared file by concurrent processes lose nothing.
    Re-read the file inside the block. Raises OSError if the lock file cannot be created."""

    def __init__(self, path: str | os.PathLike):
        self.lock_path = Path(f"{os.fspath(path)}.lock")
        self._fd: int | None = None

    def __enter__(self) -> "locked":
        import fcntl

        self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


def unwritable_dir(path: str | os.PathLike) -> Path:
    """The directory that actually refuses a write under ``path``: the nearest existing ancestor
    (or a regular file standing where a directory should be)."""
    p = Path(path)
    for candidate in (p, *p.parents):
        if os.path.lexists(candidate):
            return candidate
    return p  # pragma: no cover
