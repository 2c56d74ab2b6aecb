"""Writing files so that a crash never leaves a half-written one behind.

The data goes to a temporary file in the destination's directory -- created with a fresh random
name and ``O_CREAT | O_EXCL`` (by :func:`tempfile.mkstemp`), so it can never be a file or symlink
someone planted -- is flushed to disk, and is then renamed over the destination with
``os.replace``, which is atomic on POSIX and Windows: readers see either the old file or the
complete new one. The rename replaces a symlink at the destination rather than following it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _set_mode(fd: int, name: str, mode: int) -> None:
    """mkstemp makes 0600: set the mode through the descriptor (by name only where it cannot)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13
        os.chmod(name, mode)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open a binary temporary file that replaces ``path`` only if the block completes.

    The file gets permissions ``mode`` (default: ``0o666`` less the umask, like ``open``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            _set_mode(handle.fileno(), temporary, 0o666 & ~_umask() if mode is None else mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
