"""Reading zip archives (``.pth`` and ``.npz``) with every size checked before any byte is read.

A zip member's directory entry *declares* its compressed and uncompressed sizes; a hostile
archive declares whatever it likes. :class:`Archive` refuses, before reading:

* members that are encrypted or use a method other than stored or deflate;
* a compressed size larger than the archive file, or (summed over the members read) larger than
  the file -- several entries pointing at the same bytes ("overlapping" zip bombs);
* an uncompressed size above the compressed size (stored) or above
  :data:`MAX_DEFLATE_RATIO` times it (deflate cannot do better, so a claim beyond that is a lie);
* a size different from what the caller expects (a storage of 1 element needs 4 bytes, not 300 MB).

So a stored member costs at most its own bytes and the whole archive at most the file's size;
a deflated one at most 1032 times its compressed size.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import WeightsError
from .files import open_regular

MAX_DEFLATE_RATIO = 1032  # the most deflate can shrink data (258-byte matches in 2 bits or so)
_READ_CHUNK = 1 << 20
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError)


class Archive:
    """An open zip archive whose members are read under the checks above."""

    def __init__(
        self, zip_file: zipfile.ZipFile, path: Path, error: type[Exception], file_size: int
    ) -> None:
        self.zip, self.path, self.error, self.file_size = zip_file, path, error, file_size
        self.compressed_read = 0
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in zip_file.infolist():
            if info.filename in self.members:
                raise error(f"{path}: the archive lists {info.filename!r} twice")
            self.members[info.filename] = info

    def check(self, name: str, expected: int | None = None) -> zipfile.ZipInfo:
        """The entry of ``name`` once its declared sizes have passed every check."""
        info = self.members.get(name)
        if info is None:
            raise self.error(f"{self.path}: member {name!r} is missing from the archive")
        where = f"{self.path}: member {name!r}"
        if info.flag_bits & 0x1:
            raise self.error(f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.error(f"{where} uses compression method {info.compress_type}")
        if info.compress_size + self.compressed_read > self.file_size:
            raise self.error(
                f"{where} declares {info.compress_size} compressed bytes, but the archive is "
                f"{self.file_size} bytes ({self.compressed_read} already read): overlapping or "
                "truncated members"
            )
        ratio = 1 if info.compress_type == zipfile.ZIP_STORED else MAX_DEFLATE_RATIO
        if info.file_size > info.compress_size * ratio + 64:
            raise self.error(
                f"{where} declares {info.file_size} bytes from {info.compress_size} stored bytes, "
                "more than its compression method can produce"
            )
        if expected is not None and info.file_size != expected:
            raise self.error(f"{where} holds {info.file_size} bytes but {expected} are declared")
        return info

    @contextmanager
    def open(self, name: str, expected: int | None = None) -> Iterator[zipfile.ZipExtFile]:
        """A stream over a checked member; zip-level failures become the archive's error."""
        info = self.check(name, expected)
        self.compressed_read += info.compress_size
        try:
            with self.zip.open(info) as stream:
                yield stream
        except (WeightsError, self.error):
            raise
        except ZIP_ERRORS as err:
            raise self.error(f"{self.path}: member {name!r} is damaged ({err})") from None

    def read(self, name: str, expected: int | None = None) -> bytearray:
        """All bytes of a checked member (at most its declared size, which was checked)."""
        with self.open(name, expected) as stream:
            return read_exactly(stream, self.members[name].file_size, self.error, self.path, name)


def read_exactly(stream, size: int, error: type[Exception], path: Path, name: str) -> bytearray:
    """Exactly ``size`` bytes from ``stream``, read in chunks into one buffer."""
    buffer = bytearray(size)
    view, filled = memoryview(buffer), 0
    while filled < size:
        got = stream.readinto(view[filled : filled + _READ_CHUNK])
        if not got:
            raise error(f"{path}: member {name!r} ends after {filled} of {size} bytes")
        filled += got
    return buffer


@contextmanager
def open_archive(path: Path, error: type[Exception] = WeightsError) -> Iterator[Archive]:
    """Open ``path`` as a zip archive; any structural damage raises ``error`` naming the file.

    Only a regular file is opened (:func:`~.files.open_regular`): a FIFO or a device is refused.
    """
    with open_regular(path, error) as handle:
        try:
            zip_file = zipfile.ZipFile(handle)
        except ZIP_ERRORS as err:
            raise error(f"{path}: a damaged or truncated zip archive ({err})") from None
        with zip_file:
            yield Archive(zip_file, path, error, os.fstat(handle.fileno()).st_size)
