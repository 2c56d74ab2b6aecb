"""Keras HDF5 weight files, read with ``h5py`` (the ``keras`` extra), without TensorFlow/Keras.

Two layouts:

* **legacy** (``model.save_weights("x.h5")`` in Keras 2, and the ``keras.applications``
  downloads): root attribute ``layer_names``; each layer group has an attribute ``weight_names``
  listing its datasets in order (for a conv layer: kernel ``(kh, kw, in, out)``, then bias). A
  full-model file keeps the same structure under ``model_weights``.
* **Keras 3** (``*.weights.h5``): ``layers/<name>/vars/0``, ``vars/1``, ... in creation order.

Both come back as ``{"<layer>/<i>": ndarray}``, ``i`` counting the layer's weights in order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import WeightsError


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            "reading Keras .h5 files needs h5py: pip install 'tinygrad_edu[keras]'"
        ) from err
    return h5py


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path: str | Path) -> dict[str, np.ndarray]:
    """``{"<layer>/<i>": ndarray}`` from a legacy or Keras 3 HDF5 weights file."""
    path = Path(path)
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)
            if "layer_names" in root.attrs:
                return _read_legacy(root)
            if "layers" in root and isinstance(root["layers"], h5py.Group):
                return _read_keras3(root["layers"], h5py)
    except OSError as err:
        raise WeightsError(f"{path}: not a readable HDF5 file ({err})") from None
    except KeyError as err:
        raise WeightsError(f"{path}: inconsistent Keras weights file ({err})") from None
    raise WeightsError(
        f"{path}: an HDF5 file without Keras weights (no 'layer_names', no 'layers')"
    )


def _read_legacy(root) -> dict[str, np.ndarray]:
    arrays = {}
    for layer in (_text(n) for n in root.attrs["layer_names"]):
        group = root[layer]
        for i, weight in enumerate(_text(n) for n in group.attrs.get("weight_names", [])):
            arrays[f"{layer}/{i}"] = np.asarray(group[weight][()])
    return arrays


def _read_keras3(layers, h5py) -> dict[str, np.ndarray]:
    arrays = {}
    for layer, group in layers.items():
        variables = group.get("vars")
        if not isinstance(variables, h5py.Group):
            continue
        for i in sorted(int(k) for k in variables if k.isdigit()):
            arrays[f"{layer}/{i}"] = np.asarray(variables[str(i)][()])
    return arrays
