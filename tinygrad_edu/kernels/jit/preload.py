"""Getting the fused kernels ready before the first real call: compiled, or loaded from disk.

numba prepares a kernel at its first call -- compiling it (seconds) or, with its disk cache
filled, loading the machine code (about 0.4 s for all of them, numba's own import included).
:func:`preload` makes those first calls on tiny inputs, through the same public kernels the
engine calls, so every specialisation a network of 3x3 convolutions, ReLUs and 2x2 max pools
needs is ready. Nothing runs at import; a program calls it when the wait suits it. The command
line does, on a thread of its own while the weights load (``tinygrad-edu visualize`` and
``microscope`` read them in a child process, which leaves this one idle).
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from .. import conv, pooling
from . import enabled


def preload(dtype: npt.DTypeLike = np.float32) -> float:
    """Run every fused kernel once on tiny ``dtype`` inputs (float32 or float64): the
    convolution by F(4x4, 3x3) forward and through a ReLU's mask backward, the RGB layer's
    im2col and col2im, the 2x2 max pool and its scatter. Returns the seconds it took; ``0.0``
    when the fused path is off (``TINYGRAD_EDU_JIT=0``, or numba not installed)."""
    if not enabled():
        return 0.0
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for channels in (3, 32):  # the RGB layer (im2col, col2im), then a Winograd layer
        x = rng.standard_normal((1, channels, 4, 4)).astype(dtype)
        w = rng.standard_normal((32, channels, 3, 3)).astype(dtype)
        y = conv.conv2d(x, w, 1, 1, np.zeros(32, dtype=dtype), relu=True)
        conv.conv2d_input_grad(y, w, (4, 4), 1, 1, mask=y)
    pooled, choice = pooling.max_pool2d(y, 2, 2)
    pooling.max_pool2d_scatter(pooled, choice, y.shape, 2, 2)
    return time.perf_counter() - start
