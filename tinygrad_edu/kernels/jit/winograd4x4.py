r"""Winograd F(4x4, 3x3) with fused transforms (numba): 4x fewer multiplications than direct.

F(m x m, 3x3) computes an ``m x m`` block of outputs from a ``(m+2) x (m+2)`` input tile as
:math:`Y = A^T [(G g G^T) \odot (B^T d B)] A` (:mod:`tinygrad_edu.kernels.fast.winograd` derives
it for ``m = 2``). The larger the block, the fewer multiplications: ``(m+2)^2`` per ``m^2``
outputs, against 9 each directly -- 2.25x fewer for ``m = 2``, 4x for ``m = 4``. The price is
accuracy: the matrices are built from ``m + 1`` interpolation points plus infinity, and the
larger the points, the larger the coefficients and the rounding errors in float32.

The points here are ``0, 2, 1/2, -2, -1/2, infinity``. Among the sets tried (Lavin's ``0, +-1,
+-2``; ``0, +-1, 2, 1/2``; ``0, +-1, 1/2, -2``; ``0, +-1, +-1/2``) they give the float32 error of
the best in a float32 simulation of random tiles (4e-7 of the sum of the terms' magnitudes,
against Lavin's 9e-7). Measured on this kernel, 256 channels, border tiles included: up to 1.3e-6
of the terms' magnitudes and 5e-6 of the largest output, about 10x F(2x2, 3x3)'s 1.1e-7 and
6e-7 (``tests/kernels/test_jit.py`` bounds it). And they are closed under ``p -> 1/p``,
which is what reversing a 3x3 kernel does to its transform: with the rows of ``G`` scaled as
below, ``G J = P G`` for the row reversal ``J`` and the permutation :data:`FLIP_ORDER`. So the
input gradient (the kernel rotated by 180 degrees) reuses the forward's transformed kernel with
its positions permuted, as F(2x2, 3x3) does, and one ``U`` per kernel is cached, not two.

.. math::
    A^T = \begin{bmatrix} 1&1&1&1&1&0 \\ 0&2&\frac12&-2&-\frac12&0 \\
          0&4&\frac14&4&\frac14&0 \\ 0&8&\frac18&-8&-\frac18&1 \end{bmatrix},\quad
    G = \begin{bmatrix} \frac14&0&0 \\ \frac1{120}&\frac1{60}&\frac1{30} \\
        \frac1{30}&\frac1{60}&\frac1{120} \\ \frac1{120}&-\frac1{60}&\frac1{30} \\
        \frac1{30}&-\frac1{60}&\frac1{120} \\ 0&0&\frac14 \end{bmatrix},\quad
    B^T = \begin{bmatrix} 4&0&-17&0&4&0 \\ 0&-2&-1&8&4&0 \\ 0&32&64&-8&-16&0 \\
          0&2&-1&-8&4&0 \\ 0&-32&64&8&-16&0 \\ 0&4&0&-17&0&4 \end{bmatrix}

The transforms are fused as in :mod:`.winograd`: the input transform reads the image rows
(zero padding never stored, a ReLU's mask applied as the values are read) and writes the 36
transformed values of each tile, 2.25x the input (F(2x2, 3x3): 4x); the output transform reads a
tile's 36 products and writes its 4x4 outputs with the bias added and the ReLU applied. The 36
products per chunk, ``(tiles, C) @ (C, K)``, are BLAS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..fast import threads
from ..fast.layout import blocks
from .compiler import fused

#: outputs per tile side, and the tile side ``a = m + 2``
M, TILE = 4, 6
#: kernel transform ``G`` (6, 3); exact in binary floating point except its thirds and fifths,
#: so ``U`` is computed in float64 and rounded once
G = np.array(
    [
        [1 / 4, 0, 0],
        [1 / 120, 1 / 60, 1 / 30],
        [1 / 30, 1 / 60, 1 / 120],
        [1 / 120, -1 / 60, 1 / 30],
        [1 / 30, -1 / 60, 1 / 120],
        [0, 0, 1 / 4],
    ]
)
#: input transform ``B^T`` (6, 6), as :func:`_transform_input` computes it
BT = np.array(
    [
        [4, 0, -17, 0, 4, 0],
        [0, -2, -1, 8, 4, 0],
        [0, 32, 64, -8, -16, 0],
        [0, 2, -1, -8, 4, 0],
        [0, -32, 64, 8, -16, 0],
        [0, 4, 0, -17, 0, 4],
    ],
    dtype=np.float64,
)
#: output transform ``A^T`` (4, 6), as :func:`_transform_output` computes it
AT = np.array(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 2, 1 / 2, -2, -1 / 2, 0],
        [0, 4, 1 / 4, 4, 1 / 4, 0],
        [0, 8, 1 / 8, -8, -1 / 8, 1],
    ]
)
#: ``q`` with ``G J = P_q G``: reversing a kernel row maps point ``p`` to ``1/p`` (rows 1 <-> 2,
#: 3 <-> 4, 0 <-> infinity), so the rotated kernel's transform is the kernel's own, permuted
FLIP_ORDER = (5, 2, 1, 4, 3, 0)
#: bytes of transformed tiles per chunk, and the fewest tiles per chunk (BLAS is slow on GEMMs
#: with few rows)
CHUNK_BUDGET = 4 * 2**20
MIN_TILES = 128
#: fewest output channels per job when a chunk's channels are shared among worker threads
MIN_SHARED_CHANNELS = 64
#: a kernel read transposed (the input gradient's) by products of at most :data:`FEW_TILES` rows
#: is multiplied :data:`NARROW_COLUMNS` columns at a time: on VGG16's 8x8 and 16x16 layers at
#: batch 1 to 4 that made the input gradient 1.5-1.9x faster; with more rows it makes it slower
#: (docs/performance.md)
FEW_TILES, NARROW_COLUMNS = 16, 64


def transform_kernel(w: np.ndarray) -> np.ndarray:
    """``w`` (K, C, 3, 3) -> ``U`` (36, C, K) with ``U[6 i + j] = (G w G^T)[i, j]``, computed in
    float64 and rounded once to ``w``'s dtype."""
    full = np.einsum("ia,kcab,jb->ijck", G, w.astype(np.float64), G, optimize=True)
    return np.ascontiguousarray(full.reshape(TILE * TILE, w.shape[1], w.shape[0]), dtype=w.dtype)


@fused
def _tiles_in(x, mask, use_mask, i0, t0, count, rows, order, v):
    """``B^T d B`` of the tiles of images ``i0 .. i0+count``, tile rows ``t0 .. t0+rows``, of NHWC
    ``x`` (zero-padded by one pixel, never stored) -> ``v`` (36, tiles, C), position ``(i, j)``
    at ``v[6 order[i] + order[j]]``; through ``mask > 0`` when ``use_mask``."""
    _, _, w, c = x.shape
    tw = (w + 3) // 4
    number = x.dtype.type  # constants of x's dtype: float32 stays float32 (vector width)
    zero, two, four, eight, sixteen = number(0), number(2), number(4), number(8), number(16)
    seventeen, thirty_two, sixty_four = number(17), number(32), number(64)
    zeros = np.zeros((w, c), dtype=x.dtype)
    mixed = np.zeros((6, 4 * tw + 2, c), dtype=x.dtype)  # B^T d; padding columns stay zero
    d = np.empty((6, c), dtype=x.dtype)  # one column of the six rows, masked

    def transform(b0, b1, b2, b3, b4, b5):  # B^T (b0 .. b5), shared subexpressions
        a, b = four * b4 - b2, eight * b3 - two * b1
        p, q = sixty_four * b2 - sixteen * b4, thirty_two * b1 - eight * b3
        first = (four * b0 - seventeen * b2) + four * b4
        return first, a + b, p + q, a - b, p - q, (four * b1 - seventeen * b3) + four * b5

    def rows_of(array, image, top, zeros):  # six image rows, zeros outside (the padding)
        h = array.shape[1]
        pick = [array[image, y] if 0 <= y < h else zeros for y in range(top, top + 6)]
        return pick[0], pick[1], pick[2], pick[3], pick[4], pick[5]

    for band in range(count * rows):
        image, ty = i0 + band // rows, t0 + band % rows
        top = 4 * ty - 1
        d0, d1, d2, d3, d4, d5 = rows_of(x, image, top, zeros)
        if use_mask:  # a ReLU's backward pass: the input where mask > 0, +0.0 elsewhere
            e0, e1, e2, e3, e4, e5 = rows_of(mask, image, top, zeros)
        for col in range(w):
            o = mixed[:, col + 1]
            if use_mask:
                for k in range(c):
                    d[0, k] = d0[col, k] if e0[col, k] > 0 else zero
                    d[1, k] = d1[col, k] if e1[col, k] > 0 else zero
                    d[2, k] = d2[col, k] if e2[col, k] > 0 else zero
                    d[3, k] = d3[col, k] if e3[col, k] > 0 else zero
                    d[4, k] = d4[col, k] if e4[col, k] > 0 else zero
                    d[5, k] = d5[col, k] if e5[col, k] > 0 else zero
                for k in range(c):
                    o[0, k], o[1, k], o[2, k], o[3, k], o[4, k], o[5, k] = transform(
                        d[0, k], d[1, k], d[2, k], d[3, k], d[4, k], d[5, k]
                    )
            else:
                a0, a1, a2, a3, a4, a5 = d0[col], d1[col], d2[col], d3[col], d4[col], d5[col]
                for k in range(c):
                    o[0, k], o[1, k], o[2, k], o[3, k], o[4, k], o[5, k] = transform(
                        a0[k], a1[k], a2[k], a3[k], a4[k], a5[k]
                    )
        for tx in range(tw):
            tile = band * tw + tx
            for i in range(6):
                row = 6 * order[i]
                a = mixed[i, 4 * tx : 4 * tx + 6]
                o0, o1 = v[row + order[0], tile], v[row + order[1], tile]
                o2, o3 = v[row + order[2], tile], v[row + order[3], tile]
                o4, o5 = v[row + order[4], tile], v[row + order[5], tile]
                for k in range(c):
                    o0[k], o1[k], o2[k], o3[k], o4[k], o5[k] = transform(
                        a[0, k], a[1, k], a[2, k], a[3, k], a[4, k], a[5, k]
                    )


@fused
def _tiles_out(mm, bias, use_bias, relu, order, i0, t0, count, rows, k0, out):
    """``A^T m A`` of every tile of ``mm`` (36, tiles, K'), position ``(i, j)`` at
    ``mm[6 order[i] + order[j]]`` -> 4x4 blocks of channels ``k0 .. k0+K'`` of NHWC ``out`` (cut
    at its edges), plus ``bias`` when ``use_bias``, then ``max(., 0)`` when ``relu`` (NaN stays
    NaN)."""
    _, h, w, _ = out.shape
    kk = mm.shape[2]
    tw = (w + 3) // 4
    number = out.dtype.type  # constants of out's dtype: float32 stays float32 (vector width)
    zero, two, four, eight = number(0), number(2), number(4), number(8)
    half, quarter, eighth = number(0.5), number(0.25), number(0.125)
    f = np.empty((4, 6, kk), dtype=out.dtype)  # A^T m: output row, tile column, channel
    y4 = np.empty((4, kk), dtype=out.dtype)  # one output row of a tile

    def transform(m0, m1, m2, m3, m4, m5):  # A^T (m0 .. m5), shared subexpressions
        p, q, s, t = m1 + m3, m1 - m3, m2 + m4, m2 - m4
        return (
            (m0 + p) + s,
            two * q + half * t,
            four * p + quarter * s,
            (eight * q + eighth * t) + m5,
        )

    for band in range(count * rows):
        image, ty = i0 + band // rows, t0 + band % rows
        for tx in range(tw):
            tile = band * tw + tx
            for j in range(6):  # A^T along the rows
                m0, m1 = mm[6 * order[0] + order[j], tile], mm[6 * order[1] + order[j], tile]
                m2, m3 = mm[6 * order[2] + order[j], tile], mm[6 * order[3] + order[j], tile]
                m4, m5 = mm[6 * order[4] + order[j], tile], mm[6 * order[5] + order[j], tile]
                for k in range(kk):
                    f[0, j, k], f[1, j, k], f[2, j, k], f[3, j, k] = transform(
                        m0[k], m1[k], m2[k], m3[k], m4[k], m5[k]
                    )
            for i in range(4):  # then along the columns, + bias, ReLU
                y = 4 * ty + i
                if y >= h:
                    break
                g = f[i]
                for k in range(kk):
                    y4[0, k], y4[1, k], y4[2, k], y4[3, k] = transform(
                        g[0, k], g[1, k], g[2, k], g[3, k], g[4, k], g[5, k]
                    )
                for j in range(min(4, w - 4 * tx)):
                    target = out[image, y, 4 * tx + j, k0 : k0 + kk]
                    for k in range(kk):
                        value = y4[j, k]
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
    """A 3x3, stride-1, padding-1 convolution by F(4x4, 3x3): NHWC ``x`` (N, H, W, C) and ``u``
    (36, C, K) from :func:`transform_kernel`, both float32 or both float64 (``mask``, NHWC like
    ``x``, and ``bias`` too; ``x`` and ``mask`` contiguous) -> NHWC (N, H, W, K), a fresh
    contiguous array. ``order`` permutes the tile positions (:data:`FLIP_ORDER` with ``u``
    transposed to (36, K, C) for the input gradient).

    The chunks (and, for few chunks, ranges of output channels) are shared among the worker
    threads (:mod:`..fast.threads`, BLAS on one thread each), as in :func:`.winograd.conv3x3`;
    a transposed ``u`` meets few tiles in narrow products (:data:`NARROW_COLUMNS`).
    """
    budget = CHUNK_BUDGET if chunk_budget is None else chunk_budget
    n, h, width, c = x.shape
    k = u.shape[2]
    dtype = x.dtype
    a = TILE * TILE
    th, tw = -(-h // M), -(-width // M)
    result = np.empty((n, h, width, k), dtype=dtype)
    row_bytes = a * tw * max(c, k) * dtype.itemsize
    chunks = blocks(n, th, row_bytes, budget, min_rows=-(-MIN_TILES // tw))
    if not chunks:
        return result
    most = max((p.stop - p.start) * (b.stop - b.start) for p, b in chunks) * tw
    splits = max(1, min(-(-threads.workers() // len(chunks)), k // MIN_SHARED_CHANNELS))
    width_k = max(1, -(-k // splits))
    jobs = [(*chunk, k0) for chunk in chunks for k0 in range(0, k, width_k)]
    order_array = np.array(tuple(range(TILE)) if order is None else order, dtype=np.int64)
    use_mask, use_bias = mask is not None, bias is not None
    transposed = u.strides[1] < u.strides[2]  # (36, C, K) read from a (36, K, C) array
    mask_array = x if mask is None else mask
    bias_array = np.zeros(1, dtype=dtype) if bias is None else bias

    def run(share: Sequence[tuple[slice, slice, int]]) -> None:
        """One worker's chunks, through buffers allocated once (contiguous per chunk)."""
        v_buffer = np.empty(a * most * c, dtype=dtype)
        mm_buffer = np.empty(a * most * width_k, dtype=dtype)
        transformed = None  # the chunk whose input transform v_buffer holds
        for part, band, k0 in share:
            count, rows = part.stop - part.start, band.stop - band.start
            tiles, kk = count * rows * tw, min(k, k0 + width_k) - k0
            v = v_buffer[: a * tiles * c].reshape(a, tiles, c)
            mm = mm_buffer[: a * tiles * kk].reshape(a, tiles, kk)
            start = (part.start, band.start, count, rows)
            if transformed != start:  # channel ranges of one chunk share its transform
                _tiles_in(x, mask_array, use_mask, *start, order_array, v)
                transformed = start
            narrow = transposed and tiles <= FEW_TILES
            step = NARROW_COLUMNS if narrow else kk
            for c0 in range(0, kk, step):  # 36 GEMMs: (tiles, C) @ (C, K'), by column blocks
                c1 = min(kk, c0 + step)
                np.matmul(v, u[:, :, k0 + c0 : k0 + c1], out=mm[:, :, c0:c1])
            _tiles_out(mm, bias_array, use_bias, relu, order_array, *start, k0, result)

    threads.map_chunks(run, jobs)
    return result
