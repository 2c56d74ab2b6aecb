"""Opening a file for reading only if it is a regular file, without ever blocking.

Opening a FIFO for reading waits for a writer -- forever, if none comes -- and reading a
directory, a device or a socket makes no sense for a loader. :func:`open_regular` refuses them
with the caller's error class before any byte is read:

1. ``os.stat`` must find a regular file (following symlinks, like ``open``), so a device or a
   FIFO is never even opened;
2. the file is then opened with ``O_NONBLOCK`` (which a FIFO swapped in after the check cannot
   block) and checked again with ``os.fstat`` on the open descriptor, so what is read is what
   was checked.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def describe_mode(mode: int) -> str:
    """What a non-regular file of ``os.stat`` mode ``mode`` is: "a directory", "a FIFO ..."."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_regular(
    path: str | os.PathLike, error: type[Exception], what: str = "file"
) -> os.stat_result:
    """``os.stat(path)`` if it is a regular file; :class:`FileNotFoundError` if nothing is
    there, else ``error`` naming the path and what it is instead."""
    path = Path(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    _require_regular(path, status.st_mode, error, what)
    return status


def _require_regular(path: Path, mode: int, error: type[Exception], what: str) -> None:
    if not stat.S_ISREG(mode):
        raise error(
            f"{path} is {describe_mode(mode)}, not a regular file: cannot read a {what} from it"
        )


@contextmanager
def open_regular(
    path: str | os.PathLike, error: type[Exception], what: str = "file"
) -> Iterator[BinaryIO]:
    """A binary handle on ``path``, opened only if it is a regular file (see the module
    docstring); anything else raises ``error`` (a missing file :class:`FileNotFoundError`)."""
    path = Path(path)
    check_regular(path, error, what)
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    try:
        _require_regular(path, os.fstat(fd).st_mode, error, what)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle
