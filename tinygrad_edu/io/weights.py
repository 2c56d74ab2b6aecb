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

import zipfile
from pathlib import Path

import numpy as np

from . import keras_h5, pth
from .errors import WeightsError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str | Path) -> str:
    """One of ``keras_h5``, ``pth_zip``, ``npz``, ``pth_legacy``, ``safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    with open(path, "rb") as handle:
        head = handle.read(64)
    size = path.stat().st_size
    if not head:
        raise WeightsError(f"{path}: the file is empty")
    if head.startswith(HDF5_SIGNATURE):
        return "keras_h5"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            raise WeightsError(f"{path}: a damaged or truncated zip file") from None
        if any(n.endswith("data.pkl") for n in names):
            return "pth_zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise WeightsError(f"{path}: a zip file that is neither a PyTorch file nor an .npz")
    if pth.is_legacy(head):
        return "pth_legacy"
    if len(head) > 8 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < size:
        return "safetensors"
    raise WeightsError(
        f"{path}: not a recognised weights file (expected Keras HDF5, PyTorch .pth, .safetensors "
        "or .npz)"
    )


def read_weights(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """``(format, {key: ndarray})`` for any supported file."""
    path = Path(path)
    kind = detect_format(path)
    if kind == "keras_h5":
        return kind, keras_h5.read_keras_h5(path)
    if kind in ("pth_zip", "pth_legacy"):
        return kind, pth.read_pth(path)
    if kind == "npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return kind, {name: archive[name] for name in archive.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
            raise WeightsError(f"{path}: not a readable .npz file ({err})") from None
    try:
        from safetensors.numpy import load_file
    except ImportError as err:
        raise ImportError(
            "reading .safetensors needs: pip install 'tinygrad_edu[safetensors]'"
        ) from err
    try:
        return kind, load_file(str(path))
    except Exception as err:  # the library raises its own SafetensorError types
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
