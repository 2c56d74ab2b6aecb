r"""Winograd's minimal filtering: 3x3 convolutions with fewer multiplications.

A direct 3x3 convolution spends 9 multiplications per output pixel and channel pair. Winograd's
algorithm F(m x m, 3x3) computes an ``m x m`` block of outputs from its ``(m+2) x (m+2)`` input
tile in a transformed domain where the convolution is an elementwise product:

.. math::
    Y = A^T \big[ (G\, g\, G^T) \odot (B^T d\, B) \big] A

with ``d`` the input tile, ``g`` the 3x3 kernel and constant matrices ``A, B, G`` (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2015). Summed over input channels, the
``(m+2)^2`` elementwise products become that many independent matrix products --
``(tiles, C) @ (C, K)`` -- which is where BLAS does the work.

Two schemes are implemented (:data:`F2`, :data:`F4`):

=============  ===================  ===================  =========================================
scheme         multiplications      transformed data     float32 accuracy
=============  ===================  ===================  =========================================
F(2x2, 3x3)    16 per 4 outputs     4x the input         as direct convolution (transforms add)
               (2.25x fewer)
F(4x4, 3x3)    36 per 16 outputs    2.25x the input      ~10x the rounding of direct convolution
               (4x fewer)                                (coefficients up to 8 and 1/24)
=============  ===================  ===================  =========================================

Each 2-D transform is a 1-D transform along the rows followed by the same along the columns,
written as a few NumPy passes with shared subexpressions. Memory: images are processed in chunks
whose transformed tiles fit a budget, which also keeps the passes in cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import buffers, threads
from .layout import blocks, select

#: bytes of transformed tiles per chunk (small enough to stay in cache)
CHUNK_BUDGET = 2 * 2**20
#: fewest tiles per chunk when whole images fit: BLAS is slow on GEMMs with few rows
MIN_TILES = 128
#: fewest output channels per job when a chunk's channels are shared among worker threads
MIN_SHARED_CHANNELS = 64

Arrays = Sequence[np.ndarray]


def _input_f2(d: Arrays, o: Arrays) -> None:
    """``B^T d`` for F(2x2, 3x3): ``B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]``."""
    np.subtract(d[0], d[2], out=o[0])
    np.add(d[1], d[2], out=o[1])
    np.subtract(d[2], d[1], out=o[2])
    np.subtract(d[1], d[3], out=o[3])


def _output_f2(m: Arrays, o: Arrays) -> None:
    """``A^T m`` for F(2x2, 3x3): ``A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]``."""
    np.add(m[0], m[1], out=o[0])
    o[0] += m[2]
    np.subtract(m[1], m[2], out=o[1])
    o[1] -= m[3]


def _input_f4(d: Arrays, o: Arrays) -> None:
    """``B^T d`` for F(4x4, 3x3), interpolation points 0, +-1, +-2 (Lavin & Gray)::

    B^T = [[4,  0, -5,  0, 1, 0],      o0 = 4 (d0 - d2) + (d4 - d2)
           [0, -4, -4,  1, 1, 0],      o1 = (d4 - 4 d2) + (d3 - 4 d1)
           [0,  4, -4, -1, 1, 0],      o2 = (d4 - 4 d2) - (d3 - 4 d1)
           [0, -2, -1,  2, 1, 0],      o3 = (d4 - d2) + 2 (d3 - d1)
           [0,  2, -1, -2, 1, 0],      o4 = (d4 - d2) - 2 (d3 - d1)
           [0,  4,  0, -5, 0, 1]]      o5 = (d5 - d3) - 4 (d3 - d1)
    """
    np.multiply(d[2], -4.0, out=o[1])
    o[1] += d[4]  # a = d4 - 4 d2
    np.multiply(d[1], -4.0, out=o[2])
    o[2] += d[3]  # b = d3 - 4 d1
    np.subtract(o[1], o[2], out=o[0])  # temporary: a - b
    o[1] += o[2]
    o[2][...] = o[0]
    np.subtract(d[3], d[1], out=o[4])  # e = d3 - d1
    np.multiply(o[4], -4.0, out=o[0])  # temporary: -4 e
    np.subtract(d[5], d[3], out=o[5])
    o[5] += o[0]
    np.subtract(d[4], d[2], out=o[3])  # c = d4 - d2
    np.subtract(d[0], d[2], out=o[0])
    o[0] *= 4.0
    o[0] += o[3]
    o[4] *= 2.0  # 2 e
    o[3] += o[4]  # c + 2e
    o[4] *= -2.0
    o[4] += o[3]  # (c + 2e) - 4e = c - 2e


def _output_f4(m: Arrays, o: Arrays) -> None:
    """``A^T m`` for F(4x4, 3x3)::

    A^T = [[1, 1,  1, 1,  1, 0],      p = m1 + m2, q = m1 - m2, r = m3 + m4, s = m3 - m4
           [0, 1, -1, 2, -2, 0],      o0 = m0 + p + r,  o1 = q + 2 s
           [0, 1,  1, 4,  4, 0],      o2 = p + 4 r,     o3 = q + 8 s + m5
           [0, 1, -1, 8, -8, 1]]
    """
    p, q = np.add(m[1], m[2]), np.subtract(m[1], m[2])
    r, s = np.add(m[3], m[4]), np.subtract(m[3], m[4])
    np.add(m[0], p, out=o[0])
    o[0] += r
    np.multiply(s, 2.0, out=o[1])
    o[1] += q
    np.multiply(r, 4.0, out=o[2])
    o[2] += p
    np.multiply(s, 8.0, out=o[3])
    o[3] += q
    o[3] += m[5]


@dataclass(frozen=True)
class Scheme:
    """One Winograd algorithm F(m x m, 3x3): its matrices and its 1-D transforms."""

    name: str
    m: int  #: outputs per tile side
    G: np.ndarray  #: kernel transform, ``(m + 2, 3)``
    transform_input: Callable[[Arrays, Arrays], None]  #: ``m + 2`` rows -> ``m + 2`` rows
    transform_output: Callable[[Arrays, Arrays], None]  #: ``m + 2`` rows -> ``m`` rows
    #: ``q`` with ``G J = P_q G`` (J reverses a kernel row, P_q permutes rows), when one exists:
    #: then the rotated kernel's transform is the kernel's own, positions permuted by ``q``
    flip_order: tuple[int, ...] | None = None

    @property
    def tile(self) -> int:
        return self.m + 2


F2 = Scheme(
    "F(2x2,3x3)",
    2,
    np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]),
    _input_f2,
    _output_f2,
    flip_order=(3, 1, 2, 0),  # G's rows reversed: row 0 <-> row 3, rows 1 and 2 symmetric
)
F4 = Scheme(
    "F(4x4,3x3)",
    4,
    np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
    _input_f4,
    _output_f4,
)


def transform_kernel(w: np.ndarray, scheme: Scheme = F2) -> np.ndarray:
    """``w`` (K, C, 3, 3) -> ``U`` (a*a, C, K) with ``U[a*i + j] = (G w G^T)[i, j]``, a = m + 2.

    Computed in float64 and rounded once to ``w``'s dtype."""
    g = scheme.G
    half = np.tensordot(g, w.astype(np.float64), axes=(1, 2))  # (a, K, C, 3)
    full = np.tensordot(half, g, axes=(3, 1))  # (a, K, C, a)
    a = scheme.tile
    u = full.transpose(0, 3, 2, 1).reshape(a * a, w.shape[1], w.shape[0])
    return np.ascontiguousarray(u, dtype=w.dtype)


def conv3x3(
    x: np.ndarray,
    w: np.ndarray | None,
    chunk_budget: int | None = None,
    u: np.ndarray | None = None,
    scheme: Scheme = F2,
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
    images when they are small, else bands of tile rows of one image. Each worker takes its
    chunk buffers once per call, from the pool of reused memory (:mod:`.buffers`).
    ``chunk_budget`` (bytes, default :data:`CHUNK_BUDGET`) sets the chunk size; ``u`` is
    ``transform_kernel(w, scheme)`` when the caller has it already.

    ``order`` (a permutation ``q`` of the ``m + 2`` positions) makes tile position ``(i, j)`` use
    ``u[(m+2) q(i) + q(j)]``: with ``scheme.flip_order`` and ``u`` the *forward* kernel's transform
    seen as ``(a*a, K, C)``, this convolves with the rotated, channel-swapped kernel -- the input
    gradient -- without a second transformed copy of the weights.
    """
    budget = CHUNK_BUDGET if chunk_budget is None else chunk_budget
    n, h, width, c = x.shape
    u = transform_kernel(w, scheme) if u is None else u
    k = u.shape[2]
    m, a = scheme.m, scheme.tile
    dtype = np.result_type(x, u)
    u = u.astype(dtype, copy=False)
    order = tuple(range(a)) if order is None else tuple(order)
    th, tw = -(-h // m), -(-width // m)
    result = buffers.empty((n, m * th, m * tw, k), dtype=dtype)
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
        """One worker's chunks, through buffers taken once (:mod:`.buffers`)."""
        padded = buffers.empty((images, m * band + 2, m * tw + 2, c), dtype=dtype)
        padded[:, :, 0] = padded[:, :, width + 1 :] = 0  # the side borders; rows: per chunk
        rows_buffer = buffers.empty((a, images * band * (m * tw + 2) * c), dtype=dtype)
        v = buffers.empty((a * a, images * band * tw, c), dtype=dtype)
        mm = buffers.empty((a * a, images * band * tw, width_k), dtype=dtype)
        out_rows = buffers.empty((m, images * band * tw * a * width_k), dtype=dtype)
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
            _tiles_in(chunk, rows, tw, scheme, rows_buffer, vb, order)
            np.matmul(vb, u[:, :, channels], out=mb)  # a*a GEMMs: (tiles, C) @ (C, K)
            target = result[i0 : i0 + count, m * t0 : m * (t0 + rows), :, channels]
            _tiles_out(mb, count, rows, tw, scheme, out_rows, target, order)
            if bias is not None:
                target += bias[channels]
            if relu:
                np.maximum(target, 0, out=target)

    threads.map_chunks(run, jobs)
    return result[:, :h, :width]


def _tiles_in(
    padded: np.ndarray,
    th: int,
    tw: int,
    s: Scheme,
    scratch: np.ndarray,
    out: np.ndarray,
    order: Sequence[int],
) -> None:
    """``B^T d B`` for every tile (stride m) of a padded NHWC chunk -> ``out`` (a*a, tiles, C),
    position ``(i, j)`` at ``out[a * order[i] + order[j]]``."""
    n, _, wp, c = padded.shape
    m, a = s.m, s.tile
    d = [padded[:, r : r + m * th : m] for r in range(a)]  # (n, th, Wp, C) views
    mixed = [scratch[i, : n * th * wp * c].reshape(n, th, wp, c) for i in range(a)]
    s.transform_input(d, mixed)
    for i, t in enumerate(mixed):
        cols = [t[:, :, q : q + m * tw : m] for q in range(a)]  # (n, th, tw, C) views
        slots = [out[a * order[i] + order[j]].reshape(n, th, tw, c) for j in range(a)]
        s.transform_input(cols, slots)


def _tiles_out(
    mm: np.ndarray,
    n: int,
    th: int,
    tw: int,
    s: Scheme,
    scratch: np.ndarray,
    out: np.ndarray,
    order: Sequence[int],
) -> None:
    """``A^T M A`` for every tile: ``mm`` (a*a, tiles, K), position ``(i, j)`` at
    ``mm[a * order[i] + order[j]]`` -> m x m blocks of ``out``."""
    m, a = s.m, s.tile
    k = mm.shape[2]
    tiles = mm.reshape(a, a, n, th, tw, k)
    firsts = [scratch[i, : a * n * th * tw * k].reshape(a, n, th, tw, k) for i in range(m)]
    s.transform_output([tiles[order[i]] for i in range(a)], firsts)
    for i, f in enumerate(firsts):
        s.transform_output([f[order[j]] for j in range(a)], [out[:, i::m, j::m] for j in range(m)])
