r"""Winograd F(2x2, 3x3) with its transforms fused (numba); the products stay BLAS.

:mod:`tinygrad_edu.kernels.fast.winograd` explains the algorithm,
:math:`Y = A^T [(G g G^T) \odot (B^T d B)] A`. Its NumPy path makes separate passes: copy the
input into a zero-padded chunk (through the ReLU mask for an input gradient), ``B^T d`` along
the rows into a scratch array, ``(.) B`` along the columns, and after the products ``A^T m``,
``(.) A``, ``+ bias`` and ``max(., 0)``, each over whole arrays.

Here the input transform reads each input row twice (neighbouring tile rows share two rows)
and writes the transformed tiles once: the zero padding is never stored (rows outside the image
are read from a row of zeros, the two border columns are zeros of a small buffer per tile row,
which stays in cache) and the mask is applied as the values are read. The output transform
reads the 16 products of a tile once and writes its 2x2 outputs with the bias added and the ReLU
applied. The arithmetic is the NumPy path's, the same additions in the same order, so both paths
give the same bits on the same products.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..fast import threads, winograd
from ..fast.layout import blocks
from .compiler import fused

M, TILE = winograd.M, winograd.TILE


@fused
def _tiles_in(x, mask, use_mask, i0, t0, count, rows, order, v):
    """``B^T d B`` of the tiles of images ``i0 .. i0+count``, tile rows ``t0 .. t0+rows``, of NHWC
    ``x`` (zero-padded by one pixel, never stored) -> ``v`` (16, tiles, C), position ``(i, j)``
    at ``v[4 order[i] + order[j]]``; through ``mask > 0`` when ``use_mask``."""
    _, h, w, c = x.shape
    tw = (w + 1) // 2
    zeros = np.zeros((w, c), dtype=x.dtype)
    zero = zeros[0, 0]
    for band in range(count * rows):
        image, ty = i0 + band // rows, t0 + band % rows
        mixed = np.zeros((4, 2 * tw + 2, c), dtype=x.dtype)  # B^T d, padding columns zero
        y = 2 * ty - 1
        d0 = x[image, y] if 0 <= y < h else zeros
        d1 = x[image, y + 1] if 0 <= y + 1 < h else zeros
        d2 = x[image, y + 2] if 0 <= y + 2 < h else zeros
        d3 = x[image, y + 3] if 0 <= y + 3 < h else zeros
        if use_mask:  # a ReLU's backward pass: the input where mask > 0, +0.0 elsewhere
            e0 = mask[image, y] if 0 <= y < h else zeros
            e1 = mask[image, y + 1] if 0 <= y + 1 < h else zeros
            e2 = mask[image, y + 2] if 0 <= y + 2 < h else zeros
            e3 = mask[image, y + 3] if 0 <= y + 3 < h else zeros
        for col in range(w):
            o0, o1, o2, o3 = (
                mixed[0, col + 1],
                mixed[1, col + 1],
                mixed[2, col + 1],
                mixed[3, col + 1],
            )
            a0, a1, a2, a3 = d0[col], d1[col], d2[col], d3[col]
            if use_mask:
                k0, k1, k2, k3 = e0[col], e1[col], e2[col], e3[col]
                for k in range(c):
                    b0 = a0[k] if k0[k] > 0 else zero
                    b1 = a1[k] if k1[k] > 0 else zero
                    b2 = a2[k] if k2[k] > 0 else zero
                    b3 = a3[k] if k3[k] > 0 else zero
                    o0[k], o1[k], o2[k], o3[k] = b0 - b2, b1 + b2, b2 - b1, b1 - b3
            else:
                for k in range(c):
                    b0, b1, b2, b3 = a0[k], a1[k], a2[k], a3[k]
                    o0[k], o1[k], o2[k], o3[k] = b0 - b2, b1 + b2, b2 - b1, b1 - b3
        for tx in range(tw):
            tile = band * tw + tx
            for i in range(4):
                row = 4 * order[i]
                o0, o1 = v[row + order[0], tile], v[row + order[1], tile]
                o2, o3 = v[row + order[2], tile], v[row + order[3], tile]
                a0, a1 = mixed[i, 2 * tx], mixed[i, 2 * tx + 1]
                a2, a3 = mixed[i, 2 * tx + 2], mixed[i, 2 * tx + 3]
                for k in range(c):
                    b0, b1, b2, b3 = a0[k], a1[k], a2[k], a3[k]
                    o0[k], o1[k], o2[k], o3[k] = b0 - b2, b1 + b2, b2 - b1, b1 - b3


@fused
def _tiles_out(mm, bias, use_bias, relu, order, i0, t0, count, rows, k0, out):
    """``A^T m A`` of every tile of ``mm`` (16, tiles, K'), position ``(i, j)`` at
    ``mm[4 order[i] + order[j]]`` -> 2x2 blocks of channels ``k0 .. k0+K'`` of NHWC ``out`` (cut
    at its edges), plus ``bias`` when ``use_bias``, then ``max(., 0)`` when ``relu`` (NaN stays
    NaN)."""
    _, h, w, _ = out.shape
    kk = mm.shape[2]
    tw = (w + 1) // 2
    zero = out.dtype.type(0)
    for band in range(count * rows):
        image, ty = i0 + band // rows, t0 + band % rows
        f = np.empty((2, 4, kk), dtype=out.dtype)  # A^T m: output row, tile column, channel
        for tx in range(tw):
            tile = band * tw + tx
            for j in range(4):  # A^T along the rows
                m0, m1 = mm[4 * order[0] + order[j], tile], mm[4 * order[1] + order[j], tile]
                m2, m3 = mm[4 * order[2] + order[j], tile], mm[4 * order[3] + order[j], tile]
                f0, f1 = f[0, j], f[1, j]
                for k in range(kk):
                    f0[k] = (m0[k] + m1[k]) + m2[k]
                    f1[k] = (m1[k] - m2[k]) - m3[k]
            for i in range(2):  # then along the columns, + bias, ReLU
                y = 2 * ty + i
                if y >= h:
                    continue
                g0, g1, g2, g3 = f[i, 0], f[i, 1], f[i, 2], f[i, 3]
                for j in range(2):
                    x = 2 * tx + j
                    if x >= w:
                        continue
                    target = out[image, y, x, k0 : k0 + kk]
                    for k in range(kk):
                        value = (g0[k] + g1[k]) + g2[k] if j == 0 else (g1[k] - g2[k]) - g3[k]
                        if use_bias:
                            value += bias[k0 + k]
                        if relu and value < zero:
                            value = zero
                        target[k] = value


def conv3x3(
    x: np.ndarray,
    u: np.ndarray,
    bias: np.ndarray | None = None,
    relu: bool = False,
    mask: np.ndarray | None = None,
    order: Sequence[int] | None = None,
    chunk_budget: int | None = None,
) -> np.ndarray:
    """:func:`tinygrad_edu.kernels.fast.winograd.conv3x3` with fused transforms: NHWC ``x``
    (N, H, W, C) and ``u`` (16, C, K), both float32 or both float64 (``mask``, NHWC like ``x``,
    and ``bias`` too; ``x`` and ``mask`` contiguous) -> NHWC (N, H, W, K), a fresh contiguous
    array.

    The chunks (and, for few chunks, ranges of output channels) are shared among the worker
    threads exactly as on the NumPy path (:mod:`..fast.threads`, BLAS on one thread each): one
    hand-over per convolution, where parallel loops inside each transform would synchronise
    three times per chunk.
    """
    budget = winograd.CHUNK_BUDGET if chunk_budget is None else chunk_budget
    n, h, width, c = x.shape
    k = u.shape[2]
    dtype = x.dtype
    th, tw = -(-h // M), -(-width // M)
    result = np.empty((n, h, width, k), dtype=dtype)
    row_bytes = TILE * TILE * tw * max(c, k) * dtype.itemsize
    chunks = blocks(n, th, row_bytes, budget, min_rows=-(-winograd.MIN_TILES // tw))
    if not chunks:
        return result
    most = max((p.stop - p.start) * (b.stop - b.start) for p, b in chunks) * tw
    splits = max(1, min(-(-threads.workers() // len(chunks)), k // winograd.MIN_SHARED_CHANNELS))
    width_k = max(1, -(-k // splits))
    jobs = [(*chunk, k0) for chunk in chunks for k0 in range(0, k, width_k)]
    order_array = np.array(tuple(range(TILE)) if order is None else order, dtype=np.int64)
    use_mask, use_bias = mask is not None, bias is not None
    mask_array = x if mask is None else mask
    bias_array = np.zeros(1, dtype=dtype) if bias is None else bias

    def run(share: Sequence[tuple[slice, slice, int]]) -> None:
        """One worker's chunks, through buffers allocated once (contiguous per chunk)."""
        v_buffer = np.empty(TILE * TILE * most * c, dtype=dtype)
        mm_buffer = np.empty(TILE * TILE * most * width_k, dtype=dtype)
        transformed = None  # the chunk whose input transform v_buffer holds
        for part, band, k0 in share:
            count, rows = part.stop - part.start, band.stop - band.start
            tiles, kk = count * rows * tw, min(k, k0 + width_k) - k0
            v = v_buffer[: TILE * TILE * tiles * c].reshape(TILE * TILE, tiles, c)
            mm = mm_buffer[: TILE * TILE * tiles * kk].reshape(TILE * TILE, tiles, kk)
            start = (part.start, band.start, count, rows)
            if transformed != start:  # channel ranges of one chunk share its transform
                _tiles_in(x, mask_array, use_mask, *start, order_array, v)
                transformed = start
            np.matmul(v, u[:, :, k0 : k0 + kk], out=mm)  # 16 GEMMs: (tiles, C) @ (C, K')
            _tiles_out(mm, bias_array, use_bias, relu, order_array, *start, k0, result)

    threads.map_chunks(run, jobs)
    return result
