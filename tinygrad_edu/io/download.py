"""Fetching canonical weight files into a local cache, verified by their published hashes.

``fetch(KNOWN["keras"])`` returns the cached file, downloading it first if needed. The download
goes to a temporary file in the cache directory, is hashed while it streams, and is renamed into
place only when the hash matches -- so an interrupted or corrupted download never leaves a file
that looks complete. Without network access it fails at once, naming the URL and how to pass a
local copy instead.

The cache directory is ``$TINYGRAD_EDU_CACHE`` or ``~/.cache/tinygrad_edu``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..progress import progress_bar
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
    """The cached copy of ``remote``, downloaded and verified first when it is not there yet."""
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / remote.filename
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    hint = (
        f"Without internet access, download {remote.url} on another machine and pass the file's "
        f"path instead, e.g. vgg16(weights='/path/to/{remote.filename}') or --weights PATH"
    )
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            hashers = remote.hashers()
            received = 0
            with (
                open(partial, "wb") as out,
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
                out.flush()
                os.fsync(out.fileno())
            if total is not None and received != total:
                raise DownloadError(
                    f"download of {remote.url} stopped after {received} of {total} bytes. {hint}"
                )
        problem = remote.check({name: h.hexdigest() for name, h in hashers.items()})
        if problem:
            raise DownloadError(
                f"{remote.url}: the downloaded file has {problem}; it was discarded"
            )
        os.replace(partial, target)
        return target
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"could not download {remote.url} ({reason}). {hint}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
