"""What the kernel tests measure against: the float64 definition of the convolution and its input
gradient, error measures, memory layouts, and switches for the kernels' paths and worker count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from tinygrad_edu.kernels import conv as K
from tinygrad_edu.kernels.fast import threads

#: float32 roundoff bound of the default paths, relative to the result's scale
TOLERANCE = 1e-5
FLOATS = (np.float32, np.float64)
#: upstream values that must not leak through where a mask or a ReLU is off
POISON = (np.inf, -np.inf, np.nan, -0.0, 0.0, 1.5, -2.0, 3e38)  # 3e38: near float32's max


@contextlib.contextmanager
def worker_count(count: int) -> Iterator[None]:
    """``threads.set_workers(count)`` for the block, the previous count restored after."""
    before = threads.workers()
    threads.set_workers(count)
    try:
        yield
    finally:
        threads.set_workers(before)


@contextlib.contextmanager
def stored_kernel_everywhere() -> Iterator[pytest.MonkeyPatch]:
    """The stored-kernel thresholds lowered so every convolution takes that path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(K, "MIN_DIRECT_KERNEL", 1)
        patch.setattr(K, "MAX_DIRECT_PIXELS", 10**9)
        yield patch


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def reference_conv(x, w, stride: int = 1, padding: int = 0) -> np.ndarray:
    """``y[n,k,i,j] = sum_{c,a,b} x[n,c,i*s+a-p,j*s+b-p] w[k,c,a,b]`` in float64, by a direct sum
    over the kernel offsets (NCHW)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    _, _, kh, kw = w.shape
    ho = out_size(x.shape[2], kh, stride, padding)
    wo = out_size(x.shape[3], kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for a in range(kh):
        for b in range(kw):
            patch = xp[
                :, :, a : a + stride * (ho - 1) + 1 : stride, b : b + stride * (wo - 1) + 1 : stride
            ]
            y += np.einsum("nchw,kc->nkhw", patch, w[:, :, a, b])
    return y


def reference_input_grad(g, w, input_hw, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The adjoint of :func:`reference_conv`: every output scatters ``g * w`` back (float64)."""
    g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
    n, _, ho, wo = g.shape
    _, c, kh, kw = w.shape
    h, wd = input_hw
    xp = np.zeros((n, c, h + 2 * padding + stride + kh, wd + 2 * padding + stride + kw))
    for a in range(kh):
        for b in range(kw):
            xp[
                :, :, a : a + stride * (ho - 1) + 1 : stride, b : b + stride * (wo - 1) + 1 : stride
            ] += np.einsum("nkhw,kc->nchw", g, w[:, :, a, b])
    return xp[:, :, padding : padding + h, padding : padding + wd]


def reference_weight_grad(x, g, kernel_hw, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The weight gradient of :func:`reference_conv` (float64)."""
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    kh, kw = kernel_hw
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = g.shape[2:]
    out = np.zeros((g.shape[1], x.shape[1], kh, kw))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a : a + stride * ho : stride, b : b + stride * wo : stride]
            out[:, :, a, b] = np.einsum("nchw,nkhw->kc", patch, g)
    return out


def relative_error(ours, exact) -> float:
    """The largest error relative to the largest reference value."""
    return np.abs(ours - exact).max() / max(np.abs(exact).max(), 1e-30)


def nhwc_backed(a: np.ndarray) -> np.ndarray:
    """An NCHW array whose memory is NHWC, as the kernels' outputs are."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def layout_variant(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values as ``a`` (4-d) in other memory: C/Fortran/NHWC-backed/reversed views."""
    if kind == "c":
        return np.ascontiguousarray(a)
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "nhwc":  # an NCHW view of channels-last memory
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if kind == "reversed":  # a negative-stride view of reversed memory holding the same values
        return np.ascontiguousarray(a[::-1, :, ::-1, ::-1])[::-1, :, ::-1, ::-1]
    if kind == "strided":  # every other element of a bigger array
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        big[::2, ::2, ::2, ::2] = a
        return big[::2, ::2, ::2, ::2]
    raise AssertionError(kind)


LAYOUTS = ("c", "fortran", "nhwc", "reversed", "strided")
