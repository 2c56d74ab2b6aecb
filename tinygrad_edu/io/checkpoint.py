"""Checkpoints: a state dict ``{name: array}`` as an ``.npz`` file, written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .files import open_regular
from .npz import NUMERIC_KINDS, check_key, read_npz, write_npz


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read; the message names the file."""


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state_dict`` (names to arrays or Tensors) to ``path`` as uncompressed ``.npz``.

    Every key round-trips, whatever its name (``np.savez`` would swallow ``allow_pickle``). Values
    must be numeric arrays. The file is replaced atomically: an interrupted save leaves the
    previous checkpoint intact. Returns the path written.
    """
    arrays = {}
    for name, value in state_dict.items():
        array = np.asarray(getattr(value, "data", value))
        if array.dtype.kind not in NUMERIC_KINDS:
            raise TypeError(f"save: value of {name!r} has dtype {array.dtype}, not numbers")
        arrays[check_key(name)] = array
    path = Path(path)
    with atomic_write(path) as handle:
        write_npz(handle, arrays)
    return path


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a checkpoint written by :func:`save` into ``{name: ndarray}``.

    Never unpickles anything; every member must be a numeric ``.npy`` array whose declared size
    matches its bytes, else :class:`CheckpointError` names the file and the member. Only a
    regular file is read: a FIFO, directory, device or socket is a :class:`CheckpointError`.
    """
    path = Path(path)
    with open_regular(path, CheckpointError, "checkpoint") as handle:
        head = handle.read(6)
    if head == b"\x93NUMPY":
        raise CheckpointError(
            f"{path} is a single .npy array, not an .npz checkpoint (save writes .npz files; "
            "read a .npy with numpy.load)"
        )
    return read_npz(path, CheckpointError)
