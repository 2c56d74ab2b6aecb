r"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution with 2.25x fewer multiplications.

A direct 3x3 convolution spends 9 multiplications per output pixel and channel pair; computing a
2x2 block of outputs from its 4x4 input tile costs 36. Winograd's algorithm computes the same
block with 16, by moving to a transformed domain where the convolution is an elementwise product:

.. math::
    Y = A^T \big[ (G\, g\, G^T) \odot (B^T d\, B) \big] A

with ``d`` the 4x4 input tile, ``g`` the 3x3 kernel and the constant matrices below (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2015). Summed over input channels, the 16
elementwise products become 16 independent matrix products -- (tiles x C) @ (C x K) -- which is
where BLAS does the work. The transforms only add and subtract (and halve), so float32 accuracy
matches the direct method.

Memory: the transformed input is 4x the size of the (padded) input, so images are processed in
chunks whose transformed tiles fit a budget, which also keeps them in cache.
"""

from __future__ import annotations

import numpy as np

#: bytes of transformed tiles per band of tile rows (small enough to stay in cache)
CHUNK_BUDGET = 2 * 2**20

# G (4 x 3): the kernel transform
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def transform_kernel(w: np.ndarray) -> np.ndarray:
    """``w`` (K, C, 3, 3) -> ``U`` (16, C, K) with ``U[4i + j] = (G w G^T)[i, j]`` for each k, c."""
    g = G.astype(w.dtype)
    half = np.tensordot(g, w, axes=(1, 2))  # (4, K, C, 3)
    full = np.tensordot(half, g, axes=(3, 1))  # (4, K, C, 4)
    return np.ascontiguousarray(full.transpose(0, 3, 2, 1)).reshape(16, w.shape[1], w.shape[0])


def _transform_input(padded: np.ndarray, th: int, tw: int, out: np.ndarray) -> None:
    """``B^T d B`` for every 4x4 tile (stride 2) of a padded NHWC chunk, written to ``out``
    (16, n*th*tw, C). With ``B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`` the row pass is
    ``(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`` and the column pass the same on its result."""
    n, _, _, c = padded.shape
    rows = [padded[:, r : r + 2 * th : 2] for r in range(4)]  # (n, th, Wp, C) views
    mixed = (rows[0] - rows[2], rows[1] + rows[2], rows[2] - rows[1], rows[1] - rows[3])
    for i, t in enumerate(mixed):
        cols = [t[:, :, q : q + 2 * tw : 2] for q in range(4)]  # (n, th, tw, C) views
        targets = [out[4 * i + j].reshape(n, th, tw, c) for j in range(4)]
        np.subtract(cols[0], cols[2], out=targets[0])
        np.add(cols[1], cols[2], out=targets[1])
        np.subtract(cols[2], cols[1], out=targets[2])
        np.subtract(cols[1], cols[3], out=targets[3])


def _transform_output(m: np.ndarray, n: int, th: int, tw: int, out: np.ndarray) -> None:
    """``A^T M A`` for every tile: ``m`` (16, n*th*tw, K) -> 2x2 blocks of ``out`` (n, 2th, 2tw, K).
    With ``A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]``: ``(m0 + m1 + m2, m1 - m2 - m3)`` per pass."""
    k = m.shape[2]
    tiles = m.reshape(4, 4, n, th, tw, k)
    first = tiles[0] + tiles[1]
    first += tiles[2]
    second = tiles[1] - tiles[2]
    second -= tiles[3]
    for i, s in enumerate((first, second)):
        block = out[:, i::2, 0::2]
        np.add(s[0], s[1], out=block)
        block += s[2]
        block = out[:, i::2, 1::2]
        np.subtract(s[1], s[2], out=block)
        block -= s[3]


def conv3x3(
    x: np.ndarray, w: np.ndarray, chunk_budget: int | None = None, u: np.ndarray | None = None
) -> np.ndarray:
    """3x3 cross-correlation, stride 1, padding 1: NHWC ``x`` (N, H, W, C), ``w`` (K, C, 3, 3)
    -> NHWC (N, H, W, K).

    Works through chunks small enough for the transformed tiles to stay in cache: several whole
    images when they are small, else bands of tile rows of one image. The chunk buffers are
    allocated once and reused (fresh large allocations cost a page fault per 4 KiB).
    ``chunk_budget`` (bytes, default :data:`CHUNK_BUDGET`) sets the chunk size; ``u`` is
    ``transform_kernel(w)`` when the caller has it already.
    """
    budget = CHUNK_BUDGET if chunk_budget is None else chunk_budget
    n, h, width, c = x.shape
    k = w.shape[0]
    dtype = np.result_type(x, w)
    u = transform_kernel(w) if u is None else u
    u = u.astype(dtype, copy=False)
    th, tw = (h + 1) // 2, (width + 1) // 2
    result = np.empty((n, 2 * th, 2 * tw, k), dtype=dtype)
    tile_row_bytes = 16 * tw * max(c, k) * np.dtype(dtype).itemsize
    band = max(1, min(th, budget // tile_row_bytes))
    images = max(1, min(n, budget // (tile_row_bytes * th))) if band == th else 1
    padded = np.zeros((images, 2 * band + 2, 2 * tw + 2, c), dtype=dtype)
    v = np.empty((16, images * band * tw, c), dtype=dtype)
    m = np.empty((16, images * band * tw, k), dtype=dtype)
    for i0 in range(0, n, images):
        count = min(images, n - i0)
        for t0 in range(0, th, band):
            rows = min(band, th - t0)
            chunk = padded[:count, : 2 * rows + 2]
            first = 2 * t0 - 1  # the input row that chunk row 0 holds (-1: the top padding)
            lo, hi = max(first, 0), min(h, first + 2 * rows + 2)
            if first < 0 or first + 2 * rows + 2 > h:  # the chunk overlaps the zero border
                chunk[:, :, 1 : width + 1] = 0
            chunk[:, lo - first : hi - first, 1 : width + 1] = x[i0 : i0 + count, lo:hi]
            tiles = count * rows * tw
            vb, mb = v[:, :tiles], m[:, :tiles]
            _transform_input(chunk, rows, tw, vb)
            np.matmul(vb, u, out=mb)  # 16 GEMMs: (tiles, C) @ (C, K)
            target = result[i0 : i0 + count, 2 * t0 : 2 * (t0 + rows)]
            _transform_output(mb, count, rows, tw, target)
    return result[:, :h, :width]
