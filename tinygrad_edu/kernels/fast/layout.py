"""Memory layouts shared by the kernels: NHWC views, zero padding, window views, chunking.

The public API is NCHW, like PyTorch; the kernels work on NHWC memory, where the channels of one
pixel are contiguous. Results go back as NCHW-shaped *views* of NHWC arrays, which costs nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from . import threads

#: upper bound, in bytes, for the temporary im2col matrix of one chunk
IM2COL_BUDGET = 16 * 2**20
#: least work, in bytes of a kernel's chunk data, worth handing to another worker thread
MIN_SHARED_BYTES = 64 * 2**10


def nhwc(x: np.ndarray) -> np.ndarray:
    """The NHWC array behind an NCHW-shaped array (free when it is a view of NHWC memory)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def as_nchw(y: np.ndarray) -> np.ndarray:
    """An NHWC array seen as NCHW (a view, no copy)."""
    return y.transpose(0, 3, 1, 2)


def pad(x: np.ndarray, padding: int) -> np.ndarray:
    """Zero-pad the two spatial axes of an NHWC array."""
    if padding == 0:
        return x
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
    padded[:, padding : padding + h, padding : padding + w] = x
    return padded


def select(x: np.ndarray, keep: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = x`` where ``keep`` holds, ``+0`` elsewhere: a ReLU's or a max pool's backward pass.

    Bitwise, an AND of ``x`` with all-ones or all-zeros: as fast as ``x * keep``, but an ``inf``
    or NaN in ``x`` gives 0 where ``keep`` is off, not ``inf * 0 = NaN`` (PyTorch's result).
    ``keep`` is a boolean array the caller no longer needs: it becomes the all-ones/zeros mask in
    place (a fresh copy would cost another pass). ``x`` is cast to ``out``'s dtype first if they
    differ."""
    ones = keep.view(np.int8)
    np.negative(ones, out=ones)  # True (1) -> -1: every bit set
    bits = f"i{out.itemsize}"
    if x.dtype != out.dtype:
        out[...] = x
        x = out
    np.bitwise_and(x.view(bits), ones, out=out.view(bits), casting="unsafe")
    return out


def windows(padded: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """View ``(N, Ho, Wo, kh, kw, C)`` of every window of a padded NHWC array (no copy)."""
    n, hp, wp, c = padded.shape
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    sn, sh, sw, sc = padded.strides
    return np.lib.stride_tricks.as_strided(
        padded,
        shape=(n, ho, wo, kh, kw, c),
        strides=(sn, sh * stride, sw * stride, sh, sw, sc),
        writeable=False,
    )


def chunks(count: int, bytes_per_item: int, budget: int = IM2COL_BUDGET) -> Iterator[slice]:
    """Slices of ``range(count)`` whose items together take at most ``budget`` bytes (>= 1 item)."""
    step = max(1, budget // max(bytes_per_item, 1))
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))


def blocks(
    n: int, rows: int, row_bytes: int, budget: int, min_rows: int = 1, min_share: int | None = None
) -> list[tuple[slice, slice]]:
    """Cut ``n`` images of ``rows`` rows each into ``(images, rows)`` blocks for a chunked kernel.

    A block is a band of rows of one image when one image takes more than ``budget`` bytes (at
    ``row_bytes`` per row), else whole images: as many as fit ``budget``, and at least enough for
    ``min_rows`` rows (BLAS is slow on GEMMs with few rows). Blocks are then made smaller, if
    possible, so that each worker thread (:mod:`.threads`) gets one -- but not below
    ``min_rows`` rows, and not when a worker would get less than ``min_share`` bytes (default
    :data:`MIN_SHARED_BYTES`), where starting a thread costs more than it saves.
    Either way a block is one contiguous run of an NHWC array.
    """
    if n == 0 or rows == 0:
        return []
    band = max(1, min(rows, budget // max(row_bytes, 1)))
    images = 1
    if band == rows:
        images = max(budget // max(row_bytes * rows, 1), -(-min_rows // rows))
        images = max(1, min(n, images))
    least = MIN_SHARED_BYTES if min_share is None else min_share
    workers = min(threads.workers(), max(1, n * rows * row_bytes // least))
    if -(-n // images) < workers:  # fewer groups of images than workers: smaller groups
        images = min(images, max(1, n // workers, -(-min_rows // rows)))
    if images == 1 and n * -(-rows // band) < workers:  # still too few (n < workers): bands
        band = min(band, max(1, rows // -(-workers // n), min(rows, min_rows)))
    few = images == 1 and n * -(-rows // band) < 4 * workers  # few bands in all: even them out
    return [
        (group, rows_)
        for group in _cuts(n, images, workers)
        for rows_ in _cuts(rows, band, workers if few else 1)
    ]


def _cuts(total: int, size: int, workers: int) -> list[slice]:
    """``range(total)`` cut into ``ceil(total / size)`` runs whose lengths differ by at most one
    (none longer than ``size``: no thin remainder). When that makes several runs but fewer than
    ``4 * workers``, their number is rounded up to a multiple of ``workers``, so that the workers
    finish together; one run stays one (a kernel shares its output channels then, which keeps
    its products' rows)."""
    count = -(-total // size)
    if 1 < count < 4 * workers:
        count = min(total, -(-count // workers) * workers)
    return even_runs(total, count)


def even_runs(total: int, count: int) -> list[slice]:
    """``range(total)`` cut into ``count`` runs, in order, whose lengths differ by at most one
    (empty runs only when ``count > total``)."""
    bounds = [total * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]
