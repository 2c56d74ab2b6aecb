"""Writing files so that a crash never leaves a half-written one behind.

The data goes to a temporary file in the destination's directory -- created with a fresh random
name and ``O_CREAT | O_EXCL``, so it can never be a file or symlink someone planted -- is flushed
to disk, and is then renamed over the destination with ``os.replace``, which is atomic on POSIX
and Windows: readers see either the old file or the complete new one. The rename replaces a
symlink at the destination rather than following it.

Permissions are what ``open(path, "wb")`` would leave: a file that is replaced keeps its
permission bits (a ``0600`` checkpoint stays private), and a new file gets ``0666`` less the
process's umask (applied by the operating system when the temporary file is created, so the umask
is never changed, even for a moment). A directory, FIFO, device or socket at the destination is
refused with ``ValueError`` (never replaced by a regular file, never written into).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .files import describe_mode

_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_ATTEMPTS = 100


def _kept_mode(path: Path) -> int | None:
    """The permission bits of the regular file at ``path`` (not through a symlink), if any.

    Raises ``ValueError`` when ``path`` is a directory, a FIFO, a device or a socket: ``open``
    would fail or write into it, and a rename would silently put a regular file in its place.
    """
    try:
        status = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(status.st_mode):
        return None  # the link is replaced, never followed
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(
            f"{path} is {describe_mode(status.st_mode)}, not a regular file: cannot write a "
            "file in its place"
        )
    return stat.S_IMODE(status.st_mode) & 0o777


def _create_temporary(path: Path, mode: int | None) -> tuple[int, Path]:
    """A new, empty file next to ``path``: ``mode`` exactly, or ``0o666`` less the umask."""
    for _ in range(_ATTEMPTS):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
        try:
            fd = os.open(temporary, _CREATE, 0o600 if mode is not None else 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                _set_mode(fd, temporary, mode)
            except BaseException:
                os.close(fd)
                os.unlink(temporary)
                raise
        return fd, temporary
    raise FileExistsError(f"no free temporary name next to {path} after {_ATTEMPTS} attempts")


def _set_mode(fd: int, name: Path, mode: int) -> None:
    """Set the mode through the descriptor (by name only where it cannot)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13
        os.chmod(name, mode)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open a binary temporary file that replaces ``path`` only if the block completes.

    The file gets permissions ``mode``; by default those of the file it replaces, or for a new
    file ``0o666`` less the umask, like ``open``.
    """
    path = Path(path)
    kept = _kept_mode(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = _create_temporary(path, kept if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
