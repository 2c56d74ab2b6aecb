"""2x2, stride-2 max pooling and its gradient scatter, each in one pass over memory (numba).

The NumPy path (:func:`tinygrad_edu.kernels.pooling.max_pool2d`) makes three ``maximum`` passes
for the values, three comparisons and five passes over bytes for the winners' positions; its
scatter, per window position, a comparison and a masked copy. Here one loop reads each input
element once and writes the output and the winner's position together; the scatter writes every
input-gradient element once. Both share their rows among the worker threads
(:mod:`..fast.threads`) when the arrays are large enough.

Arrays are NHWC. The rule is the NumPy path's, exactly: position ``p = 2 * row + column`` of a
window; a later position beats an earlier one when it is larger, or when it is the first NaN
(as ``np.argmax``); on ties the earlier position wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..fast import threads
from ..fast.layout import even_runs
from .compiler import fused


@fused
def _pool_2x2(x, y, choice, first, stop):
    """The maxima ``y`` and winners ``choice`` of the 2x2 windows of NHWC ``x``, output rows
    ``first .. stop`` counted over all images (``n * Ho`` in all)."""
    _, ho, wo, c = y.shape
    for row in range(first, stop):
        i, r = row // ho, row % ho
        for q in range(wo):
            for k in range(c):
                v0, v1 = x[i, 2 * r, 2 * q, k], x[i, 2 * r, 2 * q + 1, k]
                v2, v3 = x[i, 2 * r + 1, 2 * q, k], x[i, 2 * r + 1, 2 * q + 1, k]
                # a later position wins when larger, or when it is the first NaN
                top, p_top = (v1, 1) if v1 > v0 or (v1 != v1 and v0 == v0) else (v0, 0)
                bottom, p_bottom = (v3, 3) if v3 > v2 or (v3 != v3 and v2 == v2) else (v2, 2)
                if bottom > top or (bottom != bottom and top == top):
                    y[i, r, q, k], choice[i, r, q, k] = bottom, p_bottom
                else:
                    y[i, r, q, k], choice[i, r, q, k] = top, p_top


@fused
def _scatter_2x2(g, choice, out, first, stop):
    """``out``: ``g`` at each window's winner, +0.0 elsewhere (odd last rows and columns too),
    rows ``first .. stop`` of ``out`` counted over all images (``n * H`` in all)."""
    _, h, w, c = out.shape
    ho, wo = g.shape[1], g.shape[2]
    zero = out.dtype.type(0)
    for row in range(first, stop):
        i, rr = row // h, row % h
        r, rp = rr // 2, rr % 2
        if r >= ho:  # the odd last row no window read
            out[i, rr] = zero
            continue
        for cc in range(w):
            q, qp = cc // 2, cc % 2
            if q >= wo:
                out[i, rr, cc] = zero
                continue
            position = 2 * rp + qp
            for k in range(c):
                out[i, rr, cc, k] = g[i, r, q, k] if choice[i, r, q, k] == position else zero


def max_pool_2x2(x: np.ndarray, min_share: int) -> tuple[np.ndarray, np.ndarray]:
    """NHWC ``x`` (N, H, W, C) -> the window maxima (N, H//2, W//2, C) and the winners'
    positions (int8), in one pass; rows shared among the worker threads when ``x`` has at least
    ``min_share`` bytes per thread."""
    n, h, w, c = x.shape
    y = np.empty((n, h // 2, w // 2, c), dtype=x.dtype)
    choice = np.empty(y.shape, dtype=np.int8)
    if y.size:

        def run(share: Sequence[slice]) -> None:
            for rows in share:
                _pool_2x2(x, y, choice, rows.start, rows.stop)

        threads.map_chunks(run, _row_runs(n * (h // 2), x.nbytes, min_share))
    return y, choice


def max_pool_2x2_scatter(
    g: np.ndarray, choice: np.ndarray, input_hw: tuple[int, int], min_share: int
) -> np.ndarray:
    """NHWC gradient ``g`` of the pooled output -> the input's gradient (N, H, W, C): ``g`` at
    each window's winner, +0.0 everywhere else (rows and columns no window read included);
    rows shared among the worker threads as in :func:`max_pool_2x2`."""
    n, _, _, c = g.shape
    out = np.empty((n, *input_hw, c), dtype=g.dtype)
    if out.size:

        def run(share: Sequence[slice]) -> None:
            for rows in share:
                _scatter_2x2(g, choice, out, rows.start, rows.stop)

        threads.map_chunks(run, _row_runs(n * input_hw[0], out.nbytes, min_share))
    return out


def _row_runs(rows: int, nbytes: int, min_share: int) -> list[slice]:
    """``range(rows)`` cut into one run per worker thread (:mod:`..fast.threads`), as many as the
    ``nbytes`` of a pass allow at ``min_share`` bytes per worker (at least one)."""
    return even_runs(rows, max(1, min(threads.workers(), nbytes // min_share, rows)))
