"""Opening any supported weights file: the format is read off the file's first bytes.

========================  =====================================================
format                    recognised by
========================  =====================================================
Keras HDF5 (both kinds)   the HDF5 signature ``\\x89HDF\\r\\n\\x1a\\n``
PyTorch ``.pth`` (zip)    a zip archive holding ``<name>/data.pkl``
NumPy ``.npz``            a zip archive of ``.npy`` members
PyTorch ``.pth`` (legacy) a pickle whose first object is PyTorch's magic number
safetensors               an 8-byte header length followed by ``{``
========================  =====================================================

:func:`read_weights` returns the format's name and a flat ``{key: ndarray}``; keys are the file's
own (``features.0.weight``; ``block1_conv1/0`` for Keras). No deep-learning framework is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import keras_h5, pth
from .archive import open_archive
from .errors import WeightsError
from .files import open_regular
from .npz import read_npz

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
WEIGHT_KINDS = "biuf"  # bool, integer, float: what a parameter can be assigned from
_MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit


def detect_format(path: str | Path) -> str:
    """One of ``keras_h5``, ``pth_zip``, ``npz``, ``pth_legacy``, ``safetensors``."""
    path = Path(path)
    with open_regular(path, WeightsError, "weights file") as handle:
        head = handle.read(64)
        size = os.fstat(handle.fileno()).st_size
    if not head:
        raise WeightsError(f"{path}: the file is empty")
    if head.startswith(HDF5_SIGNATURE):
        return "keras_h5"
    if head.startswith(b"PK\x03\x04"):
        with open_archive(path) as archive:
            names = list(archive.members)
        if any(n.endswith("data.pkl") for n in names):
            return "pth_zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise WeightsError(f"{path}: a zip file that is neither a PyTorch file nor an .npz")
    if pth.is_legacy(head):
        return "pth_legacy"
    header = int.from_bytes(head[:8], "little")
    if len(head) > 8 and head[8:9] == b"{" and 0 < header <= min(size - 8, _MAX_SAFETENSORS_HEADER):
        return "safetensors"
    raise WeightsError(
        f"{path}: not a recognised weights file (expected Keras HDF5, PyTorch .pth, .safetensors "
        "or .npz)"
    )


def read_weights(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """``(format, {key: ndarray})`` for any supported file.

    Every array is numeric (bool, integer or float) -- anything else is refused here, so a model
    that has checked the shapes can assign all of them without a failure half-way. Arrays read
    from ``.pth`` files are read-only views (see :mod:`.pth`).
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "keras_h5":
        arrays = keras_h5.read_keras_h5(path)
    elif kind in ("pth_zip", "pth_legacy"):
        arrays = pth.read_pth(path)
    elif kind == "npz":
        arrays = read_npz(path, WeightsError)
    else:
        arrays = _read_safetensors(path)
    for key, array in arrays.items():
        if array.dtype.kind not in WEIGHT_KINDS:
            raise WeightsError(f"{path}: {key!r} holds {array.dtype} data, not numbers")
    return kind, arrays


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The safetensors library checks the header (offsets, sizes, dtypes) against the file."""
    try:
        import safetensors
        from safetensors.numpy import load
    except ImportError as err:
        raise ImportError(
            "reading .safetensors needs the safetensors package (the 'safetensors' extra): "
            "pip install safetensors"
        ) from err
    with open_regular(path, WeightsError, "weights file") as handle:
        data = handle.read()
    try:
        return load(data)
    except (safetensors.SafetensorError, ValueError, TypeError, KeyError, OSError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
