r"""Convolution as one matrix product per chunk: the GEMM formulations (arrays in, arrays out).

* **im2col** (:func:`im2col_conv`): gather each output pixel's window into a row, multiply by the
  kernel laid out as ``(kh*kw*C, K)``.
* **col2im** (:func:`col2im_conv`): an input gradient the other way round -- one GEMM gives what
  each output pixel sends to the ``kh x kw`` pixels it read, shifted adds collect it.
* **The kernel as stored** (:func:`stored_kernel_conv`, :func:`stored_kernel_input_grad`): the
  same two with the columns ordered ``(C, kh, kw)`` like the kernel itself, so no re-laid-out copy
  is read: for big kernels over few pixels, where reading the kernel dominates.

Chunks are shared among the worker threads (:mod:`.threads`); :mod:`.conv` decides which
formulation runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import threads
from .layout import IM2COL_BUDGET, blocks, even_runs, pad, windows


def im2col_matrix(w: np.ndarray) -> np.ndarray:
    """Kernel ``(K, C, kh, kw)`` as the ``(kh*kw*C, K)`` matrix that multiplies im2col rows."""
    k, c, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(kh * kw * c, k)


def im2col_conv(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: int,
    kernel: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """NHWC ``x`` (N, H, W, C) with weights ``w`` (K, C, kh, kw) -> NHWC (N, Ho, Wo, K).

    ``kernel`` is ``im2col_matrix(w)`` when the caller has it already; ``bias`` and ``relu`` are
    applied per chunk while its output is still in cache.
    """
    k, c, kh, kw = w.shape
    patches = windows(pad(x, padding), kh, kw, stride)
    n, ho, wo = patches.shape[:3]
    if kernel is None:
        kernel = im2col_matrix(w)
    out = np.empty((n, ho, wo, k), dtype=np.result_type(x, w))
    jobs = blocks(n, ho, wo * kh * kw * c * x.itemsize, IM2COL_BUDGET)
    most = max(
        ((part.stop - part.start) * (rows.stop - rows.start) for part, rows in jobs), default=0
    )

    def run(share: Sequence[tuple[slice, slice]]) -> None:
        columns = np.empty((most, wo, kh, kw, c), dtype=x.dtype)  # reused per block
        for part, rows in share:
            block = patches[part, rows]
            count = block.shape[0] * block.shape[1]
            np.copyto(columns[:count].reshape(block.shape), block)  # the im2col copy
            target = out[part, rows].reshape(-1, k)
            np.matmul(columns[:count].reshape(-1, kh * kw * c), kernel, out=target)
            _bias_relu(target, bias, relu)

    threads.map_chunks(run, jobs)
    return out


def _bias_relu(y: np.ndarray, bias: np.ndarray | None, relu: bool) -> None:
    """``y += bias; y = max(y, 0)`` in place, on a chunk that is still in cache."""
    if bias is not None:
        y += bias
    if relu:
        np.maximum(y, 0, out=y)


def col2im_matrix(w: np.ndarray) -> np.ndarray:
    """Kernel ``(K, C, kh, kw)`` as the ``(K, kh*kw*C)`` matrix that makes col2im's columns."""
    k, c, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(k, kh * kw * c)


def col2im_conv(
    g: np.ndarray, kernel: np.ndarray, input_hw: tuple[int, int], kh: int, kw: int, padding: int
) -> np.ndarray:
    r"""Stride-1 input gradient by col2im: ``Z = g @ W`` gives, per output pixel, what it sends
    to each of the ``kh x kw`` input pixels it read; each input pixel sums what it received:
    :math:`\bar x_{n,y,x} = \sum_{a,b} Z_{n,\,y+p-a,\,x+p-b,\,a,b}`.

    One read of ``g`` and a GEMM, then ``kh*kw`` shifted adds on ``C``-channel arrays: cheap when
    ``C`` is small, where im2col or Winograd would transform all ``K`` channels of ``g``.
    """
    n, ho, wo, k = g.shape
    h, w = input_hw
    c = kernel.shape[1] // (kh * kw)
    out = np.zeros((n, h, w, c), dtype=np.result_type(g, kernel))
    jobs = blocks(n, h, wo * kernel.shape[1] * out.itemsize, IM2COL_BUDGET)

    def run(share: Sequence[tuple[slice, slice]]) -> None:
        for part, band in share:
            r0, r1 = source_rows(band, padding, kh, ho)
            if r1 > r0:
                z = (g[part, r0:r1].reshape(-1, k) @ kernel).reshape(-1, r1 - r0, wo, kh, kw, c)
                _add_windows(z, out[part], r0, band, padding)

    threads.map_chunks(run, jobs)
    return out


def source_rows(band: slice, padding: int, kh: int, ho: int) -> tuple[int, int]:
    """The gradient rows ``r0 .. r1 - 1`` (of ``ho``) that the input rows ``band`` receive from
    in a stride-1 col2im with ``kh`` kernel rows."""
    return max(0, band.start + padding - kh + 1), min(ho, band.stop + padding)


def _add_windows(z: np.ndarray, out: np.ndarray, r0: int, band: slice, padding: int) -> None:
    """``out[:, y, x] += z[:, y + p - a - r0, x + p - b, a, b]`` over the kernel offsets ``(a, b)``,
    for the input rows ``band``: ``z`` (N, rows, Wo, kh, kw, C) holds what gradient rows
    ``r0 ...`` send to each offset of their window."""
    _, rows_z, wo, kh, kw, _ = z.shape
    w = out.shape[2]
    for a in range(kh):
        y0 = max(band.start, r0 + a - padding)
        y1 = min(band.stop, r0 + rows_z + a - padding)
        for b in range(kw):
            x0, x1 = max(0, b - padding), min(w, wo + b - padding)
            if y1 > y0 and x1 > x0:
                rows = slice(y0 + padding - a - r0, y1 + padding - a - r0)
                cols = slice(x0 + padding - b, x1 + padding - b)
                out[:, y0:y1, x0:x1] += z[:, rows, cols, a, b]


def stored_kernel_input_grad(
    g: np.ndarray, w: np.ndarray, input_hw: tuple[int, int], padding: int
) -> np.ndarray:
    """Stride-1 input gradient of :func:`stored_kernel_conv`: col2im with ``w`` as stored,
    ``Z^T = w.reshape(K, -1)^T g^T`` (rows ordered (c, a, b)), input channels shared among the
    worker threads. NHWC ``g`` -> NCHW, a view of (C, N, H, W) memory, where the shifted adds
    run along contiguous image rows."""
    k, c, kh, kw = w.shape
    n, ho, wo, _ = g.shape
    planes = np.zeros((c, n, *input_hw), dtype=np.result_type(g, w))
    columns, kernel = g.reshape(-1, k).T, w.reshape(k, -1)

    def run(share: Sequence[slice]) -> None:
        for channels in share:
            z = kernel[:, kh * kw * channels.start : kh * kw * channels.stop].T @ columns
            width = channels.stop - channels.start
            z = z.reshape(width, kh, kw, n, ho, wo).transpose(3, 4, 5, 1, 2, 0)
            target = planes[channels].transpose(1, 2, 3, 0)  # seen as NHWC
            _add_windows(z, target, 0, slice(0, input_hw[0]), padding)

    threads.map_chunks(run, _channel_jobs(c))
    return planes.transpose(1, 0, 2, 3)


def _channel_jobs(count: int) -> list[slice]:
    """``range(count)`` cut into one contiguous run per worker thread."""
    return even_runs(count, max(1, min(threads.workers(), count)))


def stored_kernel_conv(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: int,
    bias: np.ndarray | None,
    relu: bool,
) -> np.ndarray:
    r"""NHWC ``x`` -> NCHW ``y`` with one GEMM by ``w`` as stored:
    :math:`Y_{k,(n,i,j)} = \sum_{(c,a,b)} W_{k,(c,a,b)}\, X_{(c,a,b),(n,i,j)}`.

    ``X`` gathers every window with the channel first, matching ``w``'s (K, C, kh, kw) order, so
    ``w.reshape(K, -1)`` multiplies it directly; it is gathered from channel-first memory, where
    each window row is a contiguous run. Output channels are shared among the worker threads.
    The result is a view of (K, N, Ho, Wo) memory.
    """
    k, c, kh, kw = w.shape
    planes = pad(x, padding).transpose(3, 0, 1, 2).copy()  # (C, N, Hp, Wp)
    patches = np.lib.stride_tricks.sliding_window_view(planes, (kh, kw), axis=(2, 3))
    patches = patches[:, :, ::stride, ::stride]  # (C, N, Ho, Wo, kh, kw)
    _, n, ho, wo = patches.shape[:4]
    columns = np.ascontiguousarray(patches.transpose(0, 4, 5, 1, 2, 3))
    columns = columns.reshape(c * kh * kw, n * ho * wo)
    kernel = w.reshape(k, -1)
    y = np.empty((k, n * ho * wo), dtype=np.result_type(x, w))

    def run(share: Sequence[slice]) -> None:
        for channels in share:  # output channels: rows of the kernel and of y
            np.matmul(kernel[channels], columns, out=y[channels])
            _bias_relu(y[channels], None if bias is None else bias[channels, None], relu)

    threads.map_chunks(run, _channel_jobs(k))
    return y.reshape(k, n, ho, wo).transpose(1, 0, 2, 3)
