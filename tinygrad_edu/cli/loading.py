"""Loading VGG16 for a command, with the fused kernels made ready meanwhile."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from ..kernels.jit.preload import preload
from ..models.vgg import VGG16, vgg16


def frozen_vgg16(weights: str | os.PathLike | None) -> VGG16:
    """:func:`~tinygrad_edu.models.vgg.vgg16` with constant weights (the commands never train
    it), while a thread of its own preloads the fused kernels
    (:func:`~tinygrad_edu.kernels.jit.preload.preload`): HDF5 weights are parsed in a child
    process, which leaves this one waiting, and numba's loading of the kernels fills the wait.
    A failed load is raised once the preloading has finished (a fraction of a second)."""
    with ThreadPoolExecutor(1, thread_name_prefix="tinygrad_edu_preload") as pool:
        preloading = pool.submit(preload)
        model = vgg16(weights).freeze()
        preloading.result()
    return model
