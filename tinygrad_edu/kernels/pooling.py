"""Max pooling kernels, NCHW in and out (NHWC memory inside); arrays in, arrays out.

``max_pool2d`` returns the pooled values and, per output, the index of the window position that
won (int8 for small windows), so the backward pass routes gradients without a mask the size of
the input. The common 2x2/stride-2 case works on four strided views instead of a window copy.
"""

from __future__ import annotations

import numpy as np

from .layout import as_nchw, nhwc, windows


def max_pool2d(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over ``kernel x kernel`` windows, NCHW. Returns ``(y, choice)`` where ``choice`` holds,
    per output, the flat index (row-major within the window) of the first maximum."""
    x_nhwc = nhwc(x)
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

    Position ``p`` of a window is ``(p // 2, p % 2)``; on ties the earlier position wins.
    """
    v0, v1, v2, v3 = _quarters(x)
    top, bottom = np.maximum(v0, v1), np.maximum(v2, v3)
    lower_wins = bottom > top
    choice = np.where(lower_wins, (v3 > v2).astype(np.int8) + 2, (v1 > v0).astype(np.int8))
    return as_nchw(np.maximum(top, bottom)), choice


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
    out = np.zeros((n, h, w, c), dtype=g.dtype)
    if kernel == stride == 2:  # one pass: each 2x2 block is g times a one-hot of its winner
        blocks = out[:, : 2 * ho, : 2 * wo].reshape(n, ho, 2, wo, 2, c)
        positions = np.arange(4, dtype=choice.dtype).reshape(1, 1, 2, 1, 2, 1)
        winners = choice[:, :, None, :, None] == positions
        np.multiply(g_nhwc[:, :, None, :, None], winners, out=blocks)
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
