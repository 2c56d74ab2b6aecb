"""Checkpoints: a state dict ``{name: array}`` as an ``.npz`` file, written atomically."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read; the message names the file."""


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state_dict`` (names to arrays or Tensors) to ``path`` as uncompressed ``.npz``.

    The file is replaced atomically: an interrupted save leaves the previous checkpoint intact.
    Returns the path written.
    """
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: state dict keys must be strings, got {name!r}")
        arrays[name] = np.asarray(getattr(value, "data", value))
        if arrays[name].dtype == object:
            raise TypeError(f"save: value of {name!r} is not a numeric array")
    path = Path(path)
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return path


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a checkpoint written by :func:`save` into ``{name: ndarray}``.

    Never unpickles anything: object arrays are refused.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint: {err}") from None
