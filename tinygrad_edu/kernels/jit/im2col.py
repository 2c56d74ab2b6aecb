r"""im2col and col2im with their packing fused (numba); the products stay BLAS.

:mod:`tinygrad_edu.kernels.fast.gemm` explains both formulations. Its NumPy path makes separate
passes around each product: a zero-padded copy of the input, the window gather (a copy through
a strided view whose innermost run is only ``C`` values long -- 3 on VGG's RGB layer), and after
the product ``+ bias`` and ``max(., 0)``; for col2im, the ReLU mask as a full-size select before
the product and ``kh * kw`` shifted adds of ``C``-channel slices after it.

Here the gather reads the unpadded input and writes each window row once (zeros where the window
hangs over the border), the bias and ReLU are one pass over the chunk's product while it is in
cache, the mask is applied as a chunk of the gradient is copied for its product, and each input
pixel's gradient is summed from its ``kh * kw`` contributions in registers and written once.
The additions are the NumPy path's, in the same order, so both paths give the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..fast import threads
from ..fast.gemm import source_rows
from ..fast.layout import IM2COL_BUDGET, blocks
from .compiler import fused


@fused
def _gather(x, i0, count, r0, rows, stride, padding, columns):
    """Rows ``r0 .. r0+rows`` of the outputs of images ``i0 .. i0+count``: their windows of NHWC
    ``x`` (zero outside it) -> ``columns`` (count * rows * Wo, kh, kw, C)."""
    _, h, w, c = x.shape
    _, kh, kw, _ = columns.shape
    wo = columns.shape[0] // (count * rows)
    zero = x.dtype.type(0)
    for i in range(count):
        for r in range(rows):
            for a in range(kh):
                y = (r0 + r) * stride + a - padding
                inside = 0 <= y < h
                source = x[i0 + i, y if inside else 0].reshape(-1)  # the image row, (W * C)
                for q in range(wo):
                    target = columns[(i * rows + r) * wo + q, a].reshape(-1)  # (kw * C)
                    left = q * stride - padding
                    if inside and left >= 0 and left + kw <= w:  # one contiguous run
                        start = left * c
                        for t in range(kw * c):
                            target[t] = source[start + t]
                    else:  # at the border: pixel by pixel, zeros outside
                        for b in range(kw):
                            col = left + b
                            for k in range(c):
                                keep = inside and 0 <= col < w
                                target[b * c + k] = source[col * c + k] if keep else zero


@fused
def _bias_relu(y, bias, use_bias, relu):
    """``y`` (pixels, K) ``+ bias`` when ``use_bias``, then ``max(., 0)`` when ``relu`` (NaN stays
    NaN), in one pass."""
    zero = y.dtype.type(0)
    for p in range(y.shape[0]):
        row = y[p]
        for k in range(y.shape[1]):
            value = row[k]
            if use_bias:
                value += bias[k]
            if relu and value < zero:
                value = zero
            row[k] = value


def im2col_conv(
    x: np.ndarray,
    kernel: np.ndarray,
    kernel_hw: tuple[int, int],
    stride: int,
    padding: int,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """:func:`tinygrad_edu.kernels.fast.gemm.im2col_conv` with the padding, the gather, the bias
    and the ReLU fused: NHWC ``x`` (N, H, W, C) contiguous, ``kernel`` the ``(kh*kw*C, K)``
    :func:`~tinygrad_edu.kernels.fast.gemm.im2col_matrix`, all of one float dtype -> NHWC
    (N, Ho, Wo, K). Chunks as on the NumPy path, shared among the worker threads."""
    n, h, w, c = x.shape
    kh, kw = kernel_hw
    k = kernel.shape[1]
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = np.empty((n, ho, wo, k), dtype=x.dtype)
    jobs = blocks(n, ho, wo * kh * kw * c * x.itemsize, IM2COL_BUDGET)
    most = max(((p.stop - p.start) * (r.stop - r.start) for p, r in jobs), default=0)
    use_bias = bias is not None
    bias_array = np.zeros(1, dtype=x.dtype) if bias is None else bias

    def run(share: Sequence[tuple[slice, slice]]) -> None:
        columns = np.empty((most * wo, kh, kw, c), dtype=x.dtype)  # reused per block
        for part, rows in share:
            count, height = part.stop - part.start, rows.stop - rows.start
            block = columns[: count * height * wo]
            _gather(x, part.start, count, rows.start, height, stride, padding, block)
            target = out[part, rows].reshape(-1, k)
            np.matmul(block.reshape(-1, kh * kw * c), kernel, out=target)
            if use_bias or relu:
                _bias_relu(target, bias_array, use_bias, relu)

    threads.map_chunks(run, jobs)
    return out


@fused
def _masked_copy(g, mask, i0, count, r0, r1, out):
    """Rows ``r0 .. r1`` of images ``i0 .. i0+count`` of NHWC ``g`` where ``mask > 0``, +0.0
    elsewhere (an inf or NaN there gives 0) -> ``out`` (count * (r1 - r0) * W, K)."""
    _, _, w, k = g.shape
    zero = g.dtype.type(0)
    for i in range(count):
        for r in range(r1 - r0):
            for col in range(w):
                source, keep = g[i0 + i, r0 + r, col], mask[i0 + i, r0 + r, col]
                target = out[(i * (r1 - r0) + r) * w + col]
                for channel in range(k):
                    target[channel] = source[channel] if keep[channel] > 0 else zero


@fused
def _add_windows(z, r0, y0, y1, padding, out):
    """``out[:, y, x] = sum over (a, b) of z[:, y + p - a - r0, x + p - b, a, b]`` for the input
    rows ``y0 .. y1`` of ``out`` (count, H, W, C), in the NumPy path's order (``a`` outer, ``b``
    inner, from +0.0): ``z`` (count, rows, Wo, kh, kw, C), contiguous, holds what gradient rows
    ``r0 ...`` send to each offset of their window. A whole input row is summed at a time, one
    window offset after another, so the innermost loops run along the row."""
    count, rows, wo, kh, kw, c = z.shape
    w = out.shape[2]
    window = kh * kw * c  # one gradient pixel's contributions, (kh, kw, C)
    total = np.empty(w * c, dtype=out.dtype)  # one input row, (W, C)
    for i in range(count):
        for y in range(y0, y1):
            total[:] = 0
            for a in range(kh):
                row = y + padding - a - r0
                if 0 <= row < rows:
                    source = z[i, row].reshape(-1)  # (Wo, kh, kw, C)
                    for b in range(kw):  # input column x gets gradient column x + p - b
                        first, stop = max(0, b - padding), min(w, wo + b - padding)
                        offset = (padding - b) * window + (a * kw + b) * c
                        for x in range(first, stop):
                            at = offset + x * window
                            for channel in range(c):
                                total[x * c + channel] += source[at + channel]
            target = out[i, y].reshape(-1)
            for t in range(w * c):
                target[t] = total[t]


def col2im_conv(
    g: np.ndarray,
    kernel: np.ndarray,
    input_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    padding: int,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`tinygrad_edu.kernels.fast.gemm.col2im_conv` with a ReLU's mask applied as the
    gradient is copied for its product, and the shifted adds fused into one write per input
    pixel: NHWC ``g`` (N, Ho, Wo, K) and ``mask`` contiguous, ``kernel`` the ``(K, kh*kw*C)``
    :func:`~tinygrad_edu.kernels.fast.gemm.col2im_matrix` -> NHWC (N, H, W, C), stride 1."""
    n, ho, wo, k = g.shape
    h, w = input_hw
    kh, kw = kernel_hw
    c = kernel.shape[1] // (kh * kw)
    out = np.empty((n, h, w, c), dtype=g.dtype)
    jobs = blocks(n, h, wo * kernel.shape[1] * out.itemsize, IM2COL_BUDGET)

    most = 0  # the most gradient rows a chunk multiplies
    for part, band in jobs:
        r0, r1 = source_rows(band, padding, kh, ho)
        most = max(most, (part.stop - part.start) * max(0, r1 - r0))

    def run(share: Sequence[tuple[slice, slice]]) -> None:
        masked = np.empty((most * wo, k), dtype=g.dtype) if mask is not None else None  # reused
        for part, band in share:
            count, (r0, r1) = part.stop - part.start, source_rows(band, padding, kh, ho)
            rows = max(0, r1 - r0)
            columns = g[part, r0 : r0 + rows].reshape(-1, k)  # a view when there is no mask
            if masked is not None and rows:
                columns = masked[: count * rows * wo]
                _masked_copy(g, mask, part.start, count, r0, r1, columns)
            z = (columns @ kernel).reshape(count, rows, wo, kh, kw, c)
            _add_windows(z, r0, band.start, band.stop, padding, out[part])

    threads.map_chunks(run, jobs)
    return out
