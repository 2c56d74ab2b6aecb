"""The atlas on disk: one picture and one record per filter, each written atomically.

::

    DIR/atlas.json           {"parameters": {...}, "filters": [{layer, filter, activation, image}]}
    DIR/<layer>/<NNNN>.png   the filter's picture (4-digit index)
    DIR/<layer>/<NNNN>.json  its record: activation, curve, the layer's key, the picture's SHA-256

A filter is **done** when its record names the current key of its layer and its picture is
there with the SHA-256 the record names. The picture is written before the record, each by
an atomic rename (:func:`~tinygrad_edu.io.atomic.atomic_write`), so a run killed at any moment
leaves only complete files, and at worst a picture without its record -- which the next run
renders again, to the same bytes -- and the hidden temporary file of the write it interrupted,
which the next run deletes. One run at a time writes to a folder (:func:`writing`): a second
one is refused while the first holds the folder's lock, which the system releases when the
first ends, however it ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...io.atomic import atomic_write


@dataclass(frozen=True)
class Rendered:
    """One finished filter, as a task hands it back: its PNG bytes and its numbers."""

    layer: str
    filter: int
    activation: float
    curve: tuple[float, ...]
    png: bytes


#: the lock file of an atlas folder
LOCK = ".microscope.lock"
#: the temporary files of :func:`~tinygrad_edu.io.atomic.atomic_write`: ``.<name>.<12 hex>.partial``
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.partial")


@contextlib.contextmanager
def writing(out: Path, layers: Sequence[str]) -> Iterator[None]:
    """Hold ``out``'s lock while a run writes there, after deleting the temporaries that
    interrupted runs left in it and in the ``layers``' folders.

    ``RuntimeError`` when another run holds the lock. Where the system has no ``fcntl``
    (Windows), runs are not locked out and no temporary is deleted."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(out / LOCK, "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another microscope run is writing to {out}") from None
        for folder in (out, *(out / layer for layer in layers)):
            for entry in os.scandir(folder) if folder.is_dir() else ():
                if entry.is_file(follow_symlinks=False) and TEMPORARY.fullmatch(entry.name):
                    os.unlink(entry.path)
        yield


def picture_path(layer: str, filter_index: int) -> str:
    """``block1_conv1/0007.png``: the picture's path inside the atlas folder."""
    return f"{layer}/{filter_index:04d}.png"


def _record_path(out: Path, layer: str, filter_index: int) -> Path:
    return out / layer / f"{filter_index:04d}.json"


def save(out: Path, rendered: Rendered, key: str) -> None:
    """Write one filter's picture, then its record (see the module docstring)."""
    folder = out / rendered.layer
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / picture_path(rendered.layer, rendered.filter)) as handle:
        handle.write(rendered.png)
    record = {
        "layer": rendered.layer,
        "filter": rendered.filter,
        "activation": rendered.activation,
        "curve": list(rendered.curve),
        "key": key,
        "png_sha256": hashlib.sha256(rendered.png).hexdigest(),
    }
    with atomic_write(_record_path(out, rendered.layer, rendered.filter)) as handle:
        handle.write(json.dumps(record).encode("utf-8"))


def load(out: Path, layer: str, filter_index: int, key: str) -> dict | None:
    """The record of a done filter (see the module docstring), else ``None``."""
    try:
        record = json.loads(_record_path(out, layer, filter_index).read_text("utf-8"))
        png = (out / picture_path(layer, filter_index)).read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    if record.get("png_sha256") != hashlib.sha256(png).hexdigest():
        return None
    activation, curve = record.get("activation"), record.get("curve")
    if not isinstance(activation, (int, float)) or not math.isfinite(activation):
        return None
    if not isinstance(curve, list) or not all(isinstance(v, (int, float)) for v in curve):
        return None
    return record


def missing(out: Path, layer: str, filters: Sequence[int], key: str) -> list[int]:
    """The filters of ``layer`` that are not done."""
    return [f for f in filters if load(out, layer, f, key) is None]


def write_atlas(out: Path, atlas: dict) -> None:
    with atomic_write(out / "atlas.json") as handle:
        handle.write(json.dumps(atlas, indent=1).encode("utf-8"))
