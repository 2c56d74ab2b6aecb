"""Max pooling kernels, NCHW in and out (NHWC memory inside); arrays in, arrays out.

``max_pool2d`` returns the pooled values and, per output, the index of the window position that
won (int8 for small windows), so the backward pass routes gradients without a mask the size of
the input. The common 2x2/stride-2 case works on four strided views instead of a window copy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import jit
from .fast import threads
from .fast.layout import as_nchw, blocks, nhwc, select, windows

#: bytes of input per block of the 2x2 pooling kernels (small enough to stay in cache)
POOL_BUDGET = 2**20
#: least input per worker thread: a pass over a few MiB takes about as long as handing it over
MIN_SHARED_BYTES = 2 * 2**20


def max_pool2d(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over ``kernel x kernel`` windows, NCHW. Returns ``(y, choice)`` where ``choice`` holds,
    per output, the flat index (row-major within the window) of the first maximum."""
    x_nhwc = nhwc(x)
    if kernel == stride == 2 and jit.applies(x_nhwc):  # one fused pass (the jit extra)
        from .jit import pooling as fused

        y, choice = fused.max_pool_2x2(x_nhwc, MIN_SHARED_BYTES)
        return as_nchw(y), choice
    if kernel == stride == 2:
        return _max_pool_2x2(x_nhwc)
    patches = windows(x_nhwc, kernel, kernel, stride)
    n, ho, wo = patches.shape[:3]
    c = x_nhwc.shape[3]
    flat = patches.transpose(0, 1, 2, 5, 3, 4).reshape(n, ho, wo, c, kernel * kernel)
    choice = flat.argmax(axis=4).astype(np.int8 if kernel * kernel < 128 else np.int32)
    y = np.take_along_axis(flat, choice[..., None], axis=4)[..., 0]
    return as_nchw(y), choice


def _max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The common 2x2, stride-2 case on NHWC ``x``: four strided views instead of a window copy.

    Position ``p`` of a window is ``(p // 2, p % 2)``; on ties the earlier position wins. Works
    through blocks of output rows that stay in cache, on every worker thread (:mod:`.threads`).
    """
    n, h, w, c = x.shape
    ho, wo = h // 2, w // 2
    y = np.empty((n, ho, wo, c), dtype=x.dtype)
    choice = np.empty((n, ho, wo, c), dtype=np.int8)
    floating = np.issubdtype(x.dtype, np.inexact)

    def run(share: Sequence[tuple[slice, slice]]) -> None:
        for part, rows in share:
            v0, v1, v2, v3 = _quarters(x[part, 2 * rows.start : 2 * rows.stop])
            top, bottom = np.maximum(v0, v1), np.maximum(v2, v3)
            pooled = np.maximum(top, bottom, out=y[part, rows])
            beats = _beats_with_nan if floating and np.isnan(pooled).any() else np.greater
            _encode_choice(beats(v1, v0), beats(v3, v2), beats(bottom, top), choice[part, rows])

    threads.map_chunks(run, _blocks(n, ho, 4 * wo * c * x.itemsize))
    return as_nchw(y), choice


def _blocks(n: int, rows: int, row_bytes: int) -> list[tuple[slice, slice]]:
    return blocks(n, rows, row_bytes, POOL_BUDGET, min_share=MIN_SHARED_BYTES)


def _encode_choice(
    right_top: np.ndarray, right_bottom: np.ndarray, bottom: np.ndarray, out: np.ndarray
) -> None:
    """``out = 2 * bottom + (right_bottom if bottom else right_top)``, the winner's position
    ``(row, column)`` as ``2 * row + column``, in bitwise passes over bytes (``np.where`` on
    small integers is ~25x slower)."""
    right = np.bitwise_xor(right_top, right_bottom)
    right &= bottom
    right ^= right_top  # bottom ? right_bottom : right_top
    np.add(right.view(np.int8), bottom.view(np.int8), out=out)
    out += bottom.view(np.int8)


def _beats_with_nan(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """Whether the later window position wins: larger, or the first NaN (as ``np.argmax``)."""
    return (later > earlier) | (np.isnan(later) & ~np.isnan(earlier))


def _quarters(x: np.ndarray) -> list[np.ndarray]:
    """The four positions of every 2x2 window of NHWC ``x``, as strided views."""
    ho, wo = x.shape[1] // 2, x.shape[2] // 2
    return [x[:, r : 2 * ho : 2, q : 2 * wo : 2] for r in (0, 1) for q in (0, 1)]


def max_pool2d_scatter(
    g: np.ndarray, choice: np.ndarray, input_shape: tuple[int, ...], kernel: int, stride: int
) -> np.ndarray:
    """Route each output gradient to the input position that won its window (adds on overlap)."""
    n, c, h, w = input_shape
    g_nhwc = nhwc(g)
    ho, wo = g_nhwc.shape[1:3]
    if kernel == stride == 2 and jit.applies(g_nhwc):  # one fused pass (the jit extra)
        from .jit import pooling as fused

        return as_nchw(fused.max_pool_2x2_scatter(g_nhwc, choice, (h, w), MIN_SHARED_BYTES))
    if kernel == stride == 2 and (h, w) == (2 * ho, 2 * wo):  # the windows tile the input:
        out = np.empty((n, h, w, c), dtype=g.dtype)  # every element is written below
    else:
        out = np.zeros((n, h, w, c), dtype=g.dtype)
    if kernel == stride == 2:  # per window position: g where it won, +0 where it lost
        targets = _quarters(out)

        def run(share: Sequence[tuple[slice, slice]]) -> None:
            for part, rows in share:
                for position, target in enumerate(targets):
                    won = np.equal(choice[part, rows], position)
                    select(g_nhwc[part, rows], won, target[part, rows])

        threads.map_chunks(run, _blocks(n, ho, 4 * wo * c * g.itemsize))
        return as_nchw(out)
    rows = np.arange(ho)[None, :, None, None] * stride + choice // kernel
    cols = np.arange(wo)[None, None, :, None] * stride + choice % kernel
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, None, None, :]
    if stride >= kernel:  # windows do not overlap: every target is written once
        out[batch, rows, cols, channel] = g_nhwc
    else:
        np.add.at(out, (batch, rows, cols, channel), g_nhwc)
    return as_nchw(out)


def max_pool2d_gather(
    g_input: np.ndarray, choice: np.ndarray, kernel: int, stride: int
) -> np.ndarray:
    """The adjoint of :func:`max_pool2d_scatter`: read each window's winning position."""
    x_nhwc = nhwc(g_input)
    if kernel == stride == 2:
        return as_nchw(np.choose(choice, _quarters(x_nhwc)))
    n, ho, wo, c = choice.shape
    rows = np.arange(ho)[None, :, None, None] * stride + choice // kernel
    cols = np.arange(wo)[None, None, :, None] * stride + choice % kernel
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, None, None, :]
    return as_nchw(x_nhwc[batch, rows, cols, channel])
