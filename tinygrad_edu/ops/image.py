r"""Image warps: bilinear resampling as a differentiable op (used by the improved feature
visualisation for jitter, scaling and rotation).

Resampling is linear in the image, :math:`y = W x` with a sparse ``W`` of four bilinear weights
per output pixel, so the VJP is the adjoint :math:`\bar x = W^T \bar y` (:class:`WarpAdjoint`) and
the JVP is the warp itself. The arithmetic lives in :mod:`tinygrad_edu.kernels.resample`.
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from ..kernels import resample
from ..tensor import Tensor


class Warp(Op):
    r"""Bilinear resampling of NCHW images: ``y[n, c, p] = sum_t w[n,t,p] x[n, c, i[n,t,p]]``.

    Linear in ``x``; its VJP is the adjoint :class:`WarpAdjoint`, which adds each output
    gradient back to the four source pixels with the same weights.
    """

    name = "warp"

    def __init__(self, taps: np.ndarray, weights: np.ndarray, size_out: int) -> None:
        self.taps, self.weights, self.size_out = taps, weights, size_out

    def forward(self, x):
        return resample.gather(x, self.taps, self.weights, self.size_out)

    def vjp(self, g, out, x):
        return WarpAdjoint.apply(g, warp=self, input_hw=x.shape[2:])

    def jvp(self, tangents, out, x):
        (t,) = tangents
        if t is None:
            return None
        return Warp.apply(t, taps=self.taps, weights=self.weights, size_out=self.size_out)


class WarpAdjoint(Op):
    """Scatter-add through the bilinear taps: the transpose of :class:`Warp`."""

    name = "warp_adjoint"

    def __init__(self, warp: Warp, input_hw: tuple[int, int]) -> None:
        self.warp, self.input_hw = warp, tuple(input_hw)

    def forward(self, g):
        return resample.scatter(g, self.warp.taps, self.warp.weights, self.input_hw)

    def vjp(self, gz, out, g):
        return Warp.apply(
            gz, taps=self.warp.taps, weights=self.warp.weights, size_out=self.warp.size_out
        )

    def jvp(self, tangents, out, g):
        (t,) = tangents
        return None if t is None else WarpAdjoint.apply(t, warp=self.warp, input_hw=self.input_hw)


def warp(x: Tensor, size_out: int, shifts, scales, angles) -> Tensor:
    """Resample square NCHW images to ``size_out``, each shifted, scaled and rotated (radians)."""
    taps, weights = resample.bilinear_taps(
        x.shape[2],
        size_out,
        np.asarray(shifts, float),
        np.asarray(scales, float),
        np.asarray(angles, float),
    )
    return Warp.apply(x, taps=taps, weights=weights, size_out=size_out)
