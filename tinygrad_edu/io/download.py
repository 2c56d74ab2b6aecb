"""Fetching canonical weight files into a local cache, verified by their published hashes.

``fetch(KNOWN["keras"])`` returns the cached file, downloading it first if needed. Without
network access it fails at once, naming the URL and how to pass a local copy instead.

The cache directory is ``$TINYGRAD_EDU_CACHE`` or ``~/.cache/tinygrad_edu`` (created ``0700``).
What it promises, even when several processes fetch at once or someone else planted files:

* **A cached file is returned only if its bytes on disk pass the published hash** (opened without
  following symlinks, and only if it is a regular file: a device or a FIFO is never opened).
  Anything else -- a corrupt file, a symlink, a FIFO -- is downloaded again and replaced.
* **Downloads never write through a name someone could have prepared**: each goes to its own
  temporary file, created with a random name and ``O_EXCL`` by :func:`~.atomic.atomic_write`,
  is hashed while it streams, and is renamed over the target only when the hash matches.
* **Concurrent fetches of one file are safe without a lock**: each writes a private temporary
  file and renames it only after verifying it, and a rename is atomic, so the target is at every
  moment absent, the previous file, or a complete verified download. (Two processes may both
  download; neither can spoil the other.)
"""

from __future__ import annotations

import hashlib
import http.client
import os
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..progress import progress_bar
from .atomic import atomic_write
from .errors import WeightsError


class DownloadError(WeightsError):
    """A download that failed or did not verify; no partial file is left behind."""


@dataclass(frozen=True)
class RemoteFile:
    """A published file: where it lives and how to check it (``md5`` or a ``sha256`` prefix)."""

    url: str
    filename: str
    md5: str | None = None
    sha256_prefix: str | None = None

    def hashers(self) -> dict[str, hashlib._Hash]:
        found = {}
        if self.md5:
            found["md5"] = hashlib.md5(usedforsecurity=False)
        if self.sha256_prefix:
            found["sha256"] = hashlib.sha256()
        return found

    def check(self, digests: dict[str, str]) -> str | None:
        """``None`` when the digests match, else a description of the mismatch."""
        if self.md5 and digests["md5"] != self.md5:
            return f"md5 {digests['md5']} but the published md5 is {self.md5}"
        if self.sha256_prefix and not digests["sha256"].startswith(self.sha256_prefix):
            return f"sha256 {digests['sha256'][:16]}... but it must start with {self.sha256_prefix}"
        return None


KNOWN: dict[str, RemoteFile] = {
    "keras": RemoteFile(
        url=(
            "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
        ),
        filename="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="6d6bbae143d832006294945121d1f1fc",
    ),
    "torchvision": RemoteFile(
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        filename="vgg16-397923af.pth",
        sha256_prefix="397923af",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("TINYGRAD_EDU_CACHE", Path.home() / ".cache" / "tinygrad_edu"))


def fetch(
    remote: RemoteFile,
    directory: str | Path | None = None,
    progress: bool = True,
    timeout: float = 15.0,
) -> Path:
    """The cached copy of ``remote``, downloaded and verified first unless a verified one is there.

    Raises :class:`DownloadError` naming the URL when the download fails or does not verify; no
    partial file is left behind.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / remote.filename
    if _verified(remote, target):
        return target
    if target.is_dir() and not target.is_symlink():
        raise DownloadError(f"{target} is a directory, where the cache keeps {remote.url}")
    if _special(target):  # a FIFO, device or socket in the cache's own slot: never opened,
        target.unlink()  # replaced by the download (the writer refuses to write over one)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    hint = (
        f"Without internet access, download {remote.url} on another machine and pass the file's "
        f"path instead, e.g. vgg16(weights='/path/to/{remote.filename}') or --weights PATH"
    )
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response:
            total = _content_length(response, remote.url)
            hashers = remote.hashers()
            received = 0
            with (
                atomic_write(target) as out,
                progress_bar(
                    total or 0, f"downloading {remote.filename}", enabled=progress, unit="B"
                ) as bar,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if total is not None and received != total:
                    raise DownloadError(
                        f"download of {remote.url} stopped after {received} of {total} bytes. "
                        f"{hint}"
                    )
                problem = remote.check({name: h.hexdigest() for name, h in hashers.items()})
                if problem:
                    raise DownloadError(
                        f"{remote.url}: the downloaded file has {problem}; it was discarded"
                    )
        return target
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", None) or f"{type(err).__name__}: {err}"
        raise DownloadError(f"could not download {remote.url} ({reason}). {hint}") from None


def _content_length(response, url: str) -> int | None:
    """The announced size or ``None``; a malformed one raises :class:`DownloadError`."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    if not (value.isascii() and value.strip().isdigit()):
        raise DownloadError(f"{url}: the server sent Content-Length {value[:40]!r}, not a size")
    return int(value)


def _special(path: Path) -> bool:
    """Whether ``path`` is a FIFO, device or socket (not a file, directory or symlink)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


def _verified(remote: RemoteFile, target: Path) -> bool:
    """Whether ``target`` is a regular file (not a symlink) whose bytes pass ``remote``'s hash."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        if not stat.S_ISREG(os.lstat(target).st_mode):
            return False  # a device, FIFO or socket is never opened
        fd = os.open(target, flags)
    except OSError:  # missing, a symlink (ELOOP), unreadable: fetch it again
        return False
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        hashers = remote.hashers()
        while chunk := handle.read(1 << 20):
            for h in hashers.values():
                h.update(chunk)
    return remote.check({name: h.hexdigest() for name, h in hashers.items()}) is None
