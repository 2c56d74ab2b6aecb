"""Test support: write Keras weight files in both HDF5 layouts with h5py (no Keras needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_keras_legacy(path: Path, layers: dict[str, list[np.ndarray]]) -> Path:
    """The ``save_weights`` / ``keras.applications`` layout: ``layer_names``, ``weight_names``."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        for name, weights in layers.items():
            group = f.create_group(name)
            names = [f"{name}_W_1:0", f"{name}_b_1:0"][: len(weights)]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for weight_name, value in zip(names, weights):
                group.create_dataset(weight_name, data=value)
    return path


def write_keras3(path: Path, layers: dict[str, list[np.ndarray]]) -> Path:
    """The Keras 3 ``.weights.h5`` layout: ``layers/<name>/vars/<i>``."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, weights in layers.items():
            variables = f.create_group(f"layers/{name}/vars")
            for i, value in enumerate(weights):
                variables.create_dataset(str(i), data=value)
        f.create_group("optimizer/vars")
    return path
