"""Normalisation layers beside ``BatchNorm`` and ``LayerNorm``: ``GroupNorm``, ``InstanceNorm1d``,
``InstanceNorm2d`` and ``RMSNorm`` -- each a thin module over :mod:`.functional`, with PyTorch's
arguments, parameters and state_dict keys."""

from __future__ import annotations

import numpy as np

from ..graph import ShapeError
from ..tensor import Tensor
from . import functional as F
from .layers import (
    _check_number,
    _float_dtype,
    _positive_ints,
    init_channel_statistics,
    normalized_axes,
)
from .module import Module, Parameter


class GroupNorm(Module):
    r"""Normalise ``(N, C, *)`` inputs per sample over groups of ``C / num_groups`` channels
    (see :func:`functional.group_norm`); with ``affine`` a learned per-channel scale ``weight``
    (ones) and shift ``bias`` (zeros)."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        _positive_ints("GroupNorm", num_groups=num_groups, num_channels=num_channels)
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels={num_channels} must be divisible by "
                f"num_groups={num_groups}"
            )
        _check_number("GroupNorm", "eps", eps, 0.0)
        dtype = _float_dtype("GroupNorm", dtype)
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        self.weight = Parameter(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(
                f"GroupNorm(num_channels={self.num_channels}): expects input (N, "
                f"{self.num_channels}, *), got shape {x.shape}"
            )
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(Module):
    """Shared by ``InstanceNorm1d`` and ``InstanceNorm2d``: parameters, buffers, the mode switch,
    and inputs without a batch axis (normalised as a batch of one)."""

    #: the rank of one sample, ``(C, *spatial)``
    sample_rank: int = 0

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        init_channel_statistics(
            self, num_features, eps, momentum, affine, track_running_stats, dtype
        )

    def forward(self, x: Tensor) -> Tensor:
        layer, rank = type(self).__name__, self.sample_rank
        if x.ndim not in (rank, rank + 1):
            raise ShapeError(
                f"{layer}: expects a {rank}-d (unbatched) or {rank + 1}-d input, got shape "
                f"{x.shape}"
            )
        batched = x.ndim == rank + 1
        channels = x.shape[1] if batched else x.shape[0]
        if channels != self.num_features:
            raise ShapeError(
                f"{layer}({self.num_features}): input shape {x.shape} has {channels} channels"
            )
        y = F.instance_norm(
            x if batched else x.reshape(1, *x.shape),
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            0.0 if self.momentum is None else self.momentum,
            self.eps,
        )
        return y if batched else y.reshape(x.shape)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` (or unbatched ``(C, L)``) inputs: each channel
    of each sample over its length (see :func:`functional.instance_norm`)."""

    sample_rank = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` (or unbatched ``(C, H, W)``) inputs: each
    channel of each sample over its image (see :func:`functional.instance_norm`)."""

    sample_rank = 3


class RMSNorm(Module):
    r"""Scale each sample by the root mean square over its last axes ``normalized_shape``
    (see :func:`functional.rms_norm`); with ``elementwise_affine`` a learned scale ``weight``
    (ones). ``eps=None`` uses the input dtype's machine epsilon, as PyTorch."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float | None = None,
        elementwise_affine: bool = True,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        shape = normalized_axes("RMSNorm", normalized_shape)
        if eps is not None:
            _check_number("RMSNorm", "eps", eps, 0.0)
        dtype = _float_dtype("RMSNorm", dtype)
        self.normalized_shape = shape
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(np.ones(shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )
