"""Bilinear resampling of NCHW images through precomputed taps: arrays in, arrays out.

A warp (shift, scale, rotation) maps each output pixel to a point of the input; its value is the
bilinear blend of the four input pixels around that point. :func:`bilinear_taps` computes, per
image and output pixel, those four source indices and weights; :func:`gather` applies them and
:func:`scatter` is its exact adjoint (each output value added back to its four sources).
"""

from __future__ import annotations

import numpy as np


def bilinear_taps(
    size_in: int, size_out: int, shifts: np.ndarray, scales: np.ndarray, angles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each image and output pixel: 4 source indices (flat, clipped) and bilinear weights."""
    n = len(shifts)
    centre_out, centre_in = (size_out - 1) / 2, (size_in - 1) / 2
    rows, cols = np.meshgrid(np.arange(size_out), np.arange(size_out), indexing="ij")
    y = (rows - centre_out)[None] / scales[:, None, None] * (size_in / size_out)
    x = (cols - centre_out)[None] / scales[:, None, None] * (size_in / size_out)
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    src_y = cos * y - sin * x + centre_in - shifts[:, 0, None, None]
    src_x = sin * y + cos * x + centre_in - shifts[:, 1, None, None]
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = src_y - y0, src_x - x0
    taps, weights = [], []
    for dy, dx, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy = np.clip(y0 + dy, 0, size_in - 1).astype(np.intp)
        xx = np.clip(x0 + dx, 0, size_in - 1).astype(np.intp)
        taps.append((yy * size_in + xx).reshape(n, -1))
        weights.append(w.reshape(n, -1))
    return np.stack(taps, 1), np.stack(weights, 1)  # (N, 4, P)


def gather(x: np.ndarray, taps: np.ndarray, weights: np.ndarray, size_out: int) -> np.ndarray:
    """``y[n, c, p] = sum_t weights[n, t, p] * x[n, c, taps[n, t, p]]``, as NCHW images."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    out = np.zeros((n, c, taps.shape[2]), dtype=x.dtype)
    for t in range(4):
        gathered = np.take_along_axis(flat, taps[:, None, t, :], axis=2)
        out += gathered * weights[:, None, t, :].astype(x.dtype)
    return out.reshape(n, c, size_out, size_out)


def scatter(
    g: np.ndarray, taps: np.ndarray, weights: np.ndarray, input_hw: tuple[int, int]
) -> np.ndarray:
    """The adjoint of :func:`gather`: add each value of ``g`` to its four source pixels."""
    n, c = g.shape[:2]
    pixels = input_hw[0] * input_hw[1]
    flat = g.reshape(n, c, -1)
    out = np.empty((n, c, pixels), dtype=g.dtype)
    for i in range(n):
        idx = taps[i].ravel()
        for ch in range(c):
            values = (flat[i, ch][None, :] * weights[i]).ravel()
            out[i, ch] = np.bincount(idx, weights=values, minlength=pixels)
    return out.reshape(n, c, *input_hw)
