"""Keras HDF5 weight files, read with ``h5py`` (the ``keras`` extra), without TensorFlow/Keras.

Two layouts:

* **legacy** (``model.save_weights("x.h5")`` in Keras 2, and the ``keras.applications``
  downloads): root attribute ``layer_names``; each layer group has an attribute ``weight_names``
  listing its datasets in order (for a conv layer: kernel ``(kh, kw, in, out)``, then bias). A
  full-model file keeps the same structure under ``model_weights``.
* **Keras 3** (``*.weights.h5``): ``layers/<name>/vars/0``, ``vars/1``, ... in creation order.

Both come back as ``{"<layer>/<i>": ndarray}``, ``i`` counting the layer's weights in order.

HDF5 can make a file read *other* files: a dataset's data may live in an external raw file
(``/etc/passwd``, say), a link may point into another HDF5 file, and a virtual dataset maps other
files' datasets. None of that is followed: only hard links inside the file are walked, and a
dataset must keep its numeric data in the file, at most as large as the bytes it really
occupies there (:meth:`_Reader._check_dataset`).

The file's structure is parsed by the HDF5 C library, which a malformed file can crash (fuzzing
found a segmentation fault in h5py's attribute reading) or send into a long loop. So
:func:`read_keras_h5` parses in a **separate Python process**, which hands the arrays back as an
``.npz`` in a private temporary folder, read with the checked reader of :mod:`.npz` -- never by
unpickling. A crash or a parse longer than :data:`PARSE_TIMEOUT` seconds becomes a
:class:`WeightsError`; starting the process costs up to about a second.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import WeightsError
from .files import check_regular, open_regular
from .npz import read_npz, write_npz

PARSE_TIMEOUT = 300.0  # seconds; the 59 MB VGG16 file takes well under one
_PYTHON = sys.executable
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]

MAX_FILTER_RATIO = 1032  # deflate's limit; other filters with more leverage are refused
_ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
_MAX_NAMES = 100_000
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            "reading Keras .h5 files needs h5py (the 'keras' extra): pip install h5py"
        ) from err
    return h5py


class _Reader:
    def __init__(self, path: Path, h5py, file_size: int) -> None:
        self.path, self.h5py, self.file_size = path, h5py, file_size

    def fail(self, problem: str) -> WeightsError:
        return WeightsError(f"{self.path}: {problem}")

    def child(self, group, name: str, kind):
        """``group[name]`` through hard links only, of the given h5py ``kind``."""
        parts = name.split("/")
        if not name or any(part in ("", ".") for part in parts):
            raise self.fail(f"the name {name!r} is not a plain path inside the file")
        node = group
        for depth, part in enumerate(parts):
            if not isinstance(node, self.h5py.Group):
                raise self.fail(f"{'/'.join(parts[:depth])!r} is not a group")
            link = node.get(part, getlink=True)
            where = "/".join(parts[: depth + 1])
            if link is None:
                raise self.fail(f"{where!r} is missing (under {group.name})")
            if not isinstance(link, self.h5py.HardLink):
                raise self.fail(
                    f"{where!r} is a {type(link).__name__} (under {group.name}); links to other "
                    "places or files are not followed"
                )
            node = node[part]
        if not isinstance(node, kind):
            raise self.fail(
                f"{node.name} is a {type(node).__name__}, not what a Keras file has there"
            )
        return node

    def names(self, node, attribute: str) -> list[str]:
        """A list-of-names attribute (``layer_names``, ``weight_names``), checked before reading."""
        attrs = node.attrs
        if attribute not in attrs:
            return []
        declared = attrs.get_id(attribute)
        if declared.shape == (0,):
            return []  # h5py stores an empty list as an empty float array
        if declared.dtype.kind not in "SOU" or len(declared.shape) != 1:
            raise self.fail(
                f"attribute {attribute} of {node.name} is {declared.dtype} of shape "
                f"{declared.shape}, not a list of names"
            )
        if declared.shape[0] > _MAX_NAMES:
            raise self.fail(f"attribute {attribute} of {node.name} lists {declared.shape[0]} names")
        names = []
        for value in attrs[attribute]:
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf8")
                except UnicodeDecodeError:
                    raise self.fail(f"a name in {attribute} of {node.name} is not UTF-8") from None
            if not isinstance(value, str):
                raise self.fail(f"{attribute} of {node.name} holds a {type(value).__name__}")
            names.append(value)
        return names

    def array(self, dataset) -> np.ndarray:
        self._check_dataset(dataset)
        return np.asarray(dataset[()])

    def _check_dataset(self, dataset) -> None:
        """Numeric data stored in this file, declaring no more bytes than it can hold."""
        name = dataset.name
        if dataset.is_virtual:
            raise self.fail(f"dataset {name} is virtual (mapped from other files); refused")
        if dataset.external:
            raise self.fail(
                f"dataset {name} keeps its data in external file(s) "
                f"{[str(entry[0]) for entry in dataset.external][:3]}; refused"
            )
        dtype, shape = dataset.dtype, dataset.shape
        if dtype.kind not in "biuf" or dtype.hasobject or dtype.shape or shape is None:
            raise self.fail(f"dataset {name} holds {dtype} of shape {shape}, not numbers")
        declared = math.prod(shape) * dtype.itemsize
        stored = dataset.id.get_storage_size()
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        unknown = [f for f in filters if f not in _ALLOWED_FILTERS]
        if unknown:
            raise self.fail(f"dataset {name} uses HDF5 filter(s) {unknown}; refused")
        limit = stored * (MAX_FILTER_RATIO if filters else 1)
        if stored > self.file_size or declared > max(limit, stored):
            raise self.fail(
                f"dataset {name} declares shape {shape} of {dtype} ({declared} bytes) but "
                f"occupies {stored} bytes of a {self.file_size}-byte file"
            )
        if not filters and declared > stored:
            raise self.fail(f"dataset {name} declares {declared} bytes but stores {stored}")


def read_keras_h5(path: str | Path) -> dict[str, np.ndarray]:
    """``{"<layer>/<i>": ndarray}`` from a legacy or Keras 3 HDF5 weights file.

    Parsed in a child process (see the module docstring); every refusal, crash or hang of the
    parser is a :class:`WeightsError` naming the file.
    """
    path = Path(path)
    check_regular(path, WeightsError, "weights file")  # a FIFO would keep the child waiting
    _h5py()  # a missing h5py is an ImportError here, not a failed child
    with tempfile.TemporaryDirectory(prefix="tinygrad_edu_h5_") as scratch:
        arrays, error = Path(scratch) / "arrays.npz", Path(scratch) / "error.txt"
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(_PACKAGE_ROOT), environment.get("PYTHONPATH")])
        )
        command = [_PYTHON, "-m", __name__, str(path), str(arrays), str(error)]
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=PARSE_TIMEOUT, env=environment
            )
        except subprocess.TimeoutExpired:
            raise WeightsError(
                f"{path}: parsing the HDF5 structure took over {PARSE_TIMEOUT:g} s and was "
                "stopped (a malformed or malicious file)"
            ) from None
        if done.returncode == 0:
            return read_npz(arrays, WeightsError)
        if error.is_file():
            raise WeightsError(error.read_text(encoding="utf-8"))
        raise WeightsError(
            f"{path}: the HDF5 library failed while parsing the file (exit status "
            f"{done.returncode}: {done.stderr.decode(errors='replace').strip()[-300:]!r}); a "
            "malformed or malicious file"
        )


def _parse(path: Path) -> dict[str, np.ndarray]:
    """The actual reading, run in the child process (from the handle that was checked)."""
    h5py = _h5py()
    try:
        with (
            open_regular(path, WeightsError, "weights file") as handle,
            h5py.File(handle, "r") as f,
        ):
            reader = _Reader(path, h5py, os.fstat(handle.fileno()).st_size)
            root = f
            if _has(f, "model_weights"):
                root = reader.child(f, "model_weights", h5py.Group)
            if "layer_names" in root.attrs:
                return _read_legacy(reader, root)
            if _has(root, "layers"):
                return _read_keras3(reader, reader.child(root, "layers", h5py.Group))
    except WeightsError:
        raise
    except _H5_ERRORS as err:
        raise WeightsError(f"{path}: not a readable Keras HDF5 file ({err})") from None
    raise WeightsError(
        f"{path}: an HDF5 file without Keras weights (no 'layer_names', no 'layers')"
    )


def _has(group, name: str) -> bool:
    """Whether ``group`` has a link called ``name`` (without resolving it)."""
    return group.get(name, getlink=True) is not None


def _read_legacy(reader: _Reader, root) -> dict[str, np.ndarray]:
    h5py = reader.h5py
    arrays = {}
    for layer in reader.names(root, "layer_names"):
        group = reader.child(root, layer, h5py.Group)
        for i, weight in enumerate(reader.names(group, "weight_names")):
            arrays[f"{layer}/{i}"] = reader.array(reader.child(group, weight, h5py.Dataset))
    return arrays


def _read_keras3(reader: _Reader, layers) -> dict[str, np.ndarray]:
    h5py = reader.h5py
    arrays = {}
    for layer in layers:
        group = reader.child(layers, layer, h5py.Group | h5py.Dataset)
        if not isinstance(group, h5py.Group) or not _has(group, "vars"):
            continue  # a layer without weights
        variables = reader.child(group, "vars", h5py.Group)
        indices = [k for k in variables if k.isascii() and k.isdigit() and len(k) < 10]
        for i, index in enumerate(sorted(indices, key=int)):
            arrays[f"{layer}/{i}"] = reader.array(reader.child(variables, index, h5py.Dataset))
    return arrays


def _child(source: str, arrays: str, error: str) -> int:
    """Child process: parse ``source``; write the arrays, or the refusal, to the given files."""
    try:
        parsed = _parse(Path(source))
    except WeightsError as err:
        Path(error).write_text(str(err), encoding="utf-8")
        return 2
    with atomic_write(arrays) as handle:
        write_npz(handle, parsed)
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
