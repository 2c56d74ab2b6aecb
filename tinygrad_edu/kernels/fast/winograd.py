r"""Winograd's minimal filtering F(2x2, 3x3): 3x3 convolutions with fewer multiplications.

A direct 3x3 convolution spends 9 multiplications per output pixel and channel pair. Winograd's
algorithm F(m x m, 3x3) computes an ``m x m`` block of outputs from its ``(m+2) x (m+2)`` input
tile in a transformed domain where the convolution is an elementwise product:

.. math::
    Y = A^T \big[ (G\, g\, G^T) \odot (B^T d\, B) \big] A

with ``d`` the input tile, ``g`` the 3x3 kernel and constant matrices ``A, B, G`` (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2015). Summed over input channels, the
``(m+2)^2`` elementwise products become that many independent matrix products --
``(tiles, C) @ (C, K)`` -- which is where BLAS does the work.

Here F(2x2, 3x3): 16 multiplications per 4 outputs (2.25x fewer than direct), transformed data
4x the input; its transforms only add, subtract and halve, so it is as accurate as direct
convolution in float32.

Each 2-D transform is a 1-D transform along the rows followed by the same along the columns,
written as a few NumPy passes with shared subexpressions. Memory: images are processed in chunks
whose transformed tiles fit a budget, which also keeps the passes in cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import threads
from .layout import blocks, select

#: bytes of transformed tiles per chunk (small enough to stay in cache)
CHUNK_BUDGET = 2 * 2**20
#: fewest tiles per chunk when whole images fit: BLAS is slow on GEMMs with few rows
MIN_TILES = 128
#: fewest output channels per job when a chunk's channels are shared among worker threads
MIN_SHARED_CHANNELS = 64

Arrays = Sequence[np.ndarray]
#: a permutation of the ``a`` tile positions (:data:`FLIP_ORDER` for the input gradient)
Order = Sequence[int]


def _transform_input(d: Arrays, o: Arrays) -> None:
    """``B^T d`` for F(2x2, 3x3): ``B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]``."""
    np.subtract(d[0], d[2], out=o[0])
    np.add(d[1], d[2], out=o[1])
    np.subtract(d[2], d[1], out=o[2])
    np.subtract(d[1], d[3], out=o[3])


def _transform_output(m: Arrays, o: Arrays) -> None:
    """``A^T m`` for F(2x2, 3x3): ``A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]``."""
    np.add(m[0], m[1], out=o[0])
    o[0] += m[2]
    np.subtract(m[1], m[2], out=o[1])
    o[1] -= m[3]


#: kernel transform ``G`` (4, 3)
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: outputs per tile side, and the tile side ``a = m + 2``
M, TILE = 2, 4
#: ``q`` with ``G J = P_q G`` (``J`` reverses a kernel row, ``P_q`` permutes rows): G's rows
#: reversed, row 0 <-> row 3, rows 1 and 2 symmetric. So the rotated kernel's transform is the
#: kernel's own, positions permuted by ``q``
FLIP_ORDER = (3, 1, 2, 0)


def transform_kernel(w: np.ndarray) -> np.ndarray:
    """``w`` (K, C, 3, 3) -> ``U`` (16, C, K) with ``U[4 i + j] = (G w G^T)[i, j]``.

    Computed in float64 and rounded once to ``w``'s dtype."""
    half = np.tensordot(G, w.astype(np.float64), axes=(1, 2))  # (a, K, C, 3)
    full = np.tensordot(half, G, axes=(3, 1))  # (a, K, C, a)
    a = TILE
    u = full.transpose(0, 3, 2, 1).reshape(a * a, w.shape[1], w.shape[0])
    return np.ascontiguousarray(u, dtype=w.dtype)


def conv3x3(
    x: np.ndarray,
    w: np.ndarray | None,
    chunk_budget: int | None = None,
    u: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    relu: bool = False,
    mask: np.ndarray | None = None,
    order: Sequence[int] | None = None,
) -> np.ndarray:
    """3x3 cross-correlation, stride 1, padding 1: NHWC ``x`` (N, H, W, C), ``w`` (K, C, 3, 3)
    -> NHWC (N, H, W, K).

    Fused while a chunk is in cache: ``mask`` (NHWC, like ``x``) convolves ``x`` where
    ``mask > 0`` and 0 elsewhere instead of ``x`` (a ReLU's backward pass, :func:`.select`);
    ``bias`` (K,) is added to and ``relu`` applied on the output.

    Works through chunks small enough for the transformed tiles to stay in cache: several whole
    images when they are small, else bands of tile rows of one image. Each worker allocates its
    chunk buffers once per call.
    ``chunk_budget`` (bytes, default :data:`CHUNK_BUDGET`) sets the chunk size; ``u`` is
    ``transform_kernel(w)`` when the caller has it already.

    ``order`` (a permutation ``q`` of the ``m + 2`` positions) makes tile position ``(i, j)`` use
    ``u[(m+2) q(i) + q(j)]``: with :data:`FLIP_ORDER` and ``u`` the *forward* kernel's transform
    seen as ``(a*a, K, C)``, this convolves with the rotated, channel-swapped kernel -- the input
    gradient -- without a second transformed copy of the weights.
    """
    budget = CHUNK_BUDGET if chunk_budget is None else chunk_budget
    n, h, width, c = x.shape
    u = transform_kernel(w) if u is None else u
    k = u.shape[2]
    m, a = M, TILE
    dtype = np.result_type(x, u)
    u = u.astype(dtype, copy=False)
    order = tuple(range(a)) if order is None else tuple(order)
    th, tw = -(-h // m), -(-width // m)
    result = np.empty((n, m * th, m * tw, k), dtype=dtype)
    row_bytes = a * a * tw * max(c, k) * np.dtype(dtype).itemsize  # one tile row, transformed
    chunks = blocks(n, th, row_bytes, budget, min_rows=-(-MIN_TILES // tw))
    if not chunks:  # an empty batch, or empty images
        return result[:, :h, :width]
    images = max(part.stop - part.start for part, _ in chunks)
    band = max(band.stop - band.start for _, band in chunks)
    # too few chunks for the workers (a small batch of small images): share output channels too
    splits = max(1, min(-(-threads.workers() // len(chunks)), k // MIN_SHARED_CHANNELS))
    width_k = max(1, -(-k // splits))
    jobs = [
        (*chunk, slice(k0, min(k, k0 + width_k))) for chunk in chunks for k0 in range(0, k, width_k)
    ]

    def run(share: Sequence[tuple[slice, slice, slice]]) -> None:
        """One worker's chunks, through scratch arrays allocated once."""
        padded = np.empty((images, m * band + 2, m * tw + 2, c), dtype=dtype)
        padded[:, :, 0] = padded[:, :, width + 1 :] = 0  # the side borders; rows: per chunk
        rows_buffer = np.empty((a, images * band * (m * tw + 2) * c), dtype=dtype)
        v = np.empty((a * a, images * band * tw, c), dtype=dtype)
        mm = np.empty((a * a, images * band * tw, width_k), dtype=dtype)
        out_rows = np.empty((m, images * band * tw * a * width_k), dtype=dtype)
        for part, tile_rows, channels in share:
            i0, count = part.start, part.stop - part.start
            t0, rows = tile_rows.start, tile_rows.stop - tile_rows.start
            chunk = padded[:count, : m * rows + 2]
            first = m * t0 - 1  # the input row that chunk row 0 holds (-1: the top padding)
            lo, hi = max(first, 0), min(h, first + m * rows + 2)
            if first < 0 or first + m * rows + 2 > h:  # the chunk overlaps the zero border
                chunk[:, :, 1 : width + 1] = 0
            inside = chunk[:, lo - first : hi - first, 1 : width + 1]
            if mask is None:
                inside[...] = x[i0 : i0 + count, lo:hi]
            else:
                select(x[i0 : i0 + count, lo:hi], mask[i0 : i0 + count, lo:hi] > 0, inside)
            tiles = count * rows * tw
            vb, mb = v[:, :tiles], mm[:, :tiles, : channels.stop - channels.start]
            _tiles_in(chunk, (rows, tw), rows_buffer, vb, order)
            np.matmul(vb, u[:, :, channels], out=mb)  # a*a GEMMs: (tiles, C) @ (C, K)
            target = result[i0 : i0 + count, m * t0 : m * (t0 + rows), :, channels]
            _tiles_out(mb, (count, rows, tw), out_rows, target, order)
            if bias is not None:
                target += bias[channels]
            if relu:
                np.maximum(target, 0, out=target)

    threads.map_chunks(run, jobs)
    return result[:, :h, :width]


def _tiles_in(
    padded: np.ndarray, grid: tuple[int, int], scratch: np.ndarray, out: np.ndarray, order: Order
) -> None:
    """``B^T d B`` for every tile (stride m) of a padded NHWC chunk, ``grid = (th, tw)`` tiles
    per image -> ``out`` (a*a, tiles, C), position ``(i, j)`` at
    ``out[a * order[i] + order[j]]``."""
    n, _, wp, c = padded.shape
    th, tw = grid
    m, a = M, TILE
    d = [padded[:, r : r + m * th : m] for r in range(a)]  # (n, th, Wp, C) views
    mixed = [scratch[i, : n * th * wp * c].reshape(n, th, wp, c) for i in range(a)]
    _transform_input(d, mixed)
    for i, t in enumerate(mixed):
        cols = [t[:, :, q : q + m * tw : m] for q in range(a)]  # (n, th, tw, C) views
        slots = [out[a * order[i] + order[j]].reshape(n, th, tw, c) for j in range(a)]
        _transform_input(cols, slots)


def _tiles_out(
    mm: np.ndarray, grid: tuple[int, int, int], scratch: np.ndarray, out: np.ndarray, order: Order
) -> None:
    """``A^T M A`` for every tile: ``mm`` (a*a, tiles, K) of ``grid = (n, th, tw)`` tiles,
    position ``(i, j)`` at ``mm[a * order[i] + order[j]]`` -> m x m blocks of ``out``."""
    n, th, tw = grid
    m, a = M, TILE
    k = mm.shape[2]
    tiles = mm.reshape(a, a, n, th, tw, k)
    firsts = [scratch[i, : a * n * th * tw * k].reshape(a, n, th, tw, k) for i in range(m)]
    _transform_output([tiles[order[i]] for i in range(a)], firsts)
    for i, f in enumerate(firsts):
        _transform_output([f[order[j]] for j in range(a)], [out[:, i::m, j::m] for j in range(m)])
