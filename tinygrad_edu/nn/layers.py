"""Layers: ``Linear``, convolutions, pooling, resizing, normalisation, dropout, embeddings,
activations, ``Flatten`` and ``Sequential`` -- each a thin module over :mod:`.functional`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..func import side_effect
from ..graph import ShapeError
from ..tensor import Tensor
from . import functional as F
from . import init
from .functional import layers as F_layers
from .module import Module, Parameter


def _positive_ints(layer: str, **sizes: Any) -> None:
    """``ValueError`` naming ``layer`` unless every size is an int > 0."""
    for name, value in sizes.items():
        if not _is_int(value) or value <= 0:
            raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _float_dtype(layer: str, dtype: Any) -> np.dtype:
    """``dtype`` as a floating-point NumPy dtype (parameters are trained), else ``TypeError``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.kind != "f":
        raise TypeError(f"{layer}: dtype must be a floating-point type, got {dtype!r}")
    return resolved


def _check_number(layer: str, name: str, value: Any, low: float, high: float = math.inf) -> None:
    """``ValueError`` unless ``value`` is a real number in ``[low, high]``."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not real or not low <= value <= high:
        limits = f"lie in [{low:g}, {high:g}]" if high < math.inf else f"be a number >= {low:g}"
        raise ValueError(f"{layer}: {name} must {limits}, got {value!r}")


def _parameters(shape, bias: bool, bound: float, rng, dtype, initialise: bool, bias_size=None):
    """(weight, bias): :math:`U(-bound, bound)` entries, or zeros when not ``initialise``.

    The bias has ``bias_size`` entries (default: ``shape[0]``, the output features).
    """
    bias_shape = (shape[0] if bias_size is None else bias_size,)
    if not initialise:
        weight = Parameter(np.zeros(shape, dtype=dtype))
        return weight, (Parameter(np.zeros(bias_shape, dtype=dtype)) if bias else None)
    generator = np.random.default_rng(rng)
    weight = init.uniform(shape, -bound, bound, generator, dtype)
    return weight, (init.uniform(bias_shape, -bound, bound, generator, dtype) if bias else None)


class Linear(Module):
    r"""Fully connected layer :math:`y = x W^T + b`.

    ``weight`` has shape ``(out_features, in_features)`` and ``bias`` shape ``(out_features,)``.
    Both start as :math:`U(-1/\sqrt{in}, 1/\sqrt{in})` (PyTorch's default); ``rng`` (a
    ``numpy.random.Generator`` or seed) makes that reproducible. ``initialise=False`` leaves
    zeros instead, for layers whose weights are about to be loaded.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,  # b, of shape (out_features,)
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        _positive_ints("Linear", in_features=in_features, out_features=out_features)
        dtype = _float_dtype("Linear", dtype)
        self.in_features, self.out_features = in_features, out_features
        self.weight, self.bias = _parameters(
            (out_features, in_features), bias, 1.0 / np.sqrt(in_features), rng, dtype, initialise
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        has_bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={has_bias}"


def _conv_parameters(shape, fan_in: int, bias: bool, rng, dtype, initialise: bool, bias_size=None):
    return _parameters(shape, bias, 1.0 / np.sqrt(fan_in), rng, dtype, initialise, bias_size)


def _checked_conv_sizes(
    layer: str, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], groups: int
) -> tuple[int, int]:
    """The kernel's ``(kh, kw)``, after checking that every size is a positive int and
    ``groups`` divides both channel counts."""
    _positive_ints(layer, in_channels=in_channels, out_channels=out_channels, groups=groups)
    kh, kw = F_layers._pair(kernel_size, "kernel_size", layer, 1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{layer}: groups={groups} must divide in_channels={in_channels} and "
            f"out_channels={out_channels}"
        )
    return kh, kw


class Conv2d(Module):
    r"""2-D convolution layer (NCHW, PyTorch weight layout ``(out, in / groups, kh, kw)``).

    ``stride``, ``padding`` and ``dilation`` are ints or ``(h, w)`` pairs; ``padding`` may also be
    ``"valid"`` or ``"same"``; ``groups`` splits the channels into independent convolutions (see
    :func:`functional.conv2d`). Weights and bias start as
    :math:`U(-1/\sqrt{fan_{in}}, 1/\sqrt{fan_{in}})` with
    :math:`fan_{in} = (in / groups) \cdot kh \cdot kw` (PyTorch's default); ``initialise=False``
    leaves zeros, for layers whose weights are about to be loaded.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,  # one per output channel
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = _checked_conv_sizes("Conv2d", in_channels, out_channels, kernel_size, groups)
        strides = F_layers._pair(stride, "stride", "Conv2d", 1)
        F_layers._pair(dilation, "dilation", "Conv2d", 1)
        F_layers.check_conv_padding(padding, strides, "Conv2d")
        dtype = _float_dtype("Conv2d", dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.dilation, self.groups = dilation, groups
        shape = (out_channels, in_channels // groups, kh, kw)
        fan_in = shape[1] * kh * kw
        self.weight, self.bias = _conv_parameters(shape, fan_in, bias, rng, dtype, initialise)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        text += "" if self.dilation == 1 else f", dilation={self.dilation}"
        text += "" if self.groups == 1 else f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv1d(Module):
    r"""1-D convolution layer over ``(N, C, L)`` inputs (PyTorch weight layout
    ``(out, in / groups, k)``, state_dict keys ``weight`` and ``bias``).

    ``stride``, ``padding`` and ``dilation`` are ints (or 1-tuples); ``padding`` may also be
    ``"valid"`` or ``"same"``; ``groups`` splits the channels into independent convolutions (see
    :func:`functional.conv1d`). Weights and bias start as
    :math:`U(-1/\sqrt{fan_{in}}, 1/\sqrt{fan_{in}})` with :math:`fan_{in} = (in / groups) \cdot k`
    (PyTorch's default); ``initialise=False`` leaves zeros, for weights about to be loaded.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: int | tuple[int] | str = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,  # one per output channel
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        k = F_layers._single(kernel_size, "kernel_size", "Conv1d", 1)
        _checked_conv_sizes("Conv1d", in_channels, out_channels, (1, k), groups)
        strides = F_layers._single(stride, "stride", "Conv1d", 1)
        F_layers._single(dilation, "dilation", "Conv1d", 1)
        if isinstance(padding, str):
            F_layers.check_conv_padding(padding, (strides, strides), "Conv1d")
        else:
            F_layers._single(padding, "padding", "Conv1d")
        dtype = _float_dtype("Conv1d", dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (k,), stride, padding
        self.dilation, self.groups = dilation, groups
        shape = (out_channels, in_channels // groups, k)
        self.weight, self.bias = _conv_parameters(shape, shape[1] * k, bias, rng, dtype, initialise)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    extra_repr = Conv2d.extra_repr  # the same settings, described the same way


class ConvTranspose2d(Module):
    r"""Transposed convolution: the input gradient of a ``Conv2d`` as a layer (upsampling).

    ``weight`` has shape ``(in, out / groups, kh, kw)`` (PyTorch's layout); see
    :func:`functional.conv_transpose2d` for the output size and ``output_padding``.
    """

    def __init__(
        self,
        in_channels: int,  # the weight is (in_channels, out_channels / groups, kh, kw)
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = _checked_conv_sizes(
            "ConvTranspose2d", in_channels, out_channels, kernel_size, groups
        )
        F_layers.check_conv_transpose_settings(
            stride, padding, output_padding, dilation, "ConvTranspose2d"
        )
        dtype = _float_dtype("ConvTranspose2d", dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.output_padding, self.groups, self.dilation = output_padding, groups, dilation
        shape = (in_channels, out_channels // groups, kh, kw)
        fan_in = shape[1] * kh * kw  # PyTorch computes the fan from weight.shape[1]
        self.weight, self.bias = _conv_parameters(
            shape, fan_in, bias, rng, dtype, initialise, bias_size=out_channels
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}"
        )


class MaxPool2d(Module):
    """Max pooling over ``kernel_size`` windows (NCHW); ``stride`` defaults to the kernel size.

    ``padding`` (``-inf`` borders), ``dilation`` and ``ceil_mode`` as in PyTorch.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        F_layers.check_pool_settings(kernel_size, stride, padding, dilation, "MaxPool2d")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """Average pooling over ``kernel_size`` windows; see :func:`functional.avg_pool2d`."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        F_layers.check_pool_settings(kernel_size, stride, padding, 1, "AvgPool2d")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` whatever the input size (``1``: global)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        F_layers.check_output_size(output_size, "AdaptiveAvgPool2d")
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Upsample(Module):
    """Resize by ``scale_factor`` or to ``size``; see :func:`functional.interpolate`."""

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale_factor: float | tuple[float, float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
    ) -> None:
        super().__init__()
        F_layers.check_resize_settings(size, scale_factor, mode, align_corners, "Upsample")
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        where = (
            f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        )
        return f"{where}, mode={self.mode!r}"


class Dropout(Module):
    """Zero each element with probability ``p`` while training (see :func:`functional.dropout`).

    The layer owns a ``numpy.random.Generator`` made from ``rng`` (a Generator or a seed), so a
    seeded model drops the same units on every run; in eval mode it is the identity.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        _check_number("Dropout", "p", p, 0.0, 1.0)
        self.p = p
        self.generator = np.random.default_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def init_channel_statistics(
    layer: Module,
    num_features: int,
    eps: float,
    momentum: float | None,
    affine: bool,
    track_running_stats: bool,
    dtype: type,
) -> None:
    """The state of a per-channel normalisation layer (BatchNorm, InstanceNorm), checked: its
    settings, ``weight``/``bias`` when ``affine``, and the buffers ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` (``None`` unless ``track_running_stats``)."""
    name = type(layer).__name__
    _positive_ints(name, num_features=num_features)
    _check_number(name, "eps", eps, 0.0)
    if momentum is not None:
        _check_number(name, "momentum", momentum, 0.0, 1.0)
    dtype = _float_dtype(name, dtype)
    layer.num_features, layer.eps, layer.momentum = num_features, eps, momentum
    layer.affine, layer.track_running_stats = affine, track_running_stats
    layer.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
    layer.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
    tracked = {
        "running_mean": Tensor(np.zeros(num_features, dtype=dtype)),
        "running_var": Tensor(np.ones(num_features, dtype=dtype)),
        "num_batches_tracked": Tensor(np.array(0), dtype=np.int64),
    }
    for buffer_name, buffer in tracked.items():
        layer.register_buffer(buffer_name, buffer if track_running_stats else None)


class _BatchNorm(Module):
    """Shared by ``BatchNorm1d`` and ``BatchNorm2d``: parameters, buffers, the mode switch."""

    #: the input ranks the layer accepts
    ranks: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        init_channel_statistics(
            self, num_features, eps, momentum, affine, track_running_stats, dtype
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self.ranks:
            raise ShapeError(
                f"{type(self).__name__}: expects a {' or '.join(map(str, self.ranks))}-d input, "
                f"got shape {x.shape}"
            )
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}({self.num_features}): input shape {x.shape} has "
                f"{x.shape[1]} channels"
            )
        momentum = 0.0 if self.momentum is None else self.momentum
        counting = self.training and self.track_running_stats
        if counting:
            side_effect("batch_norm", "updates its running statistics on every call in training")
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / (float(self.num_batches_tracked.data) + 1)
        y = F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            momentum,
            self.eps,
        )
        if counting:  # only once the batch was accepted
            self.num_batches_tracked.data += 1
            self.num_batches_tracked._bump_version()
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs per channel ``C``."""

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs per channel ``C`` (see
    :func:`functional.batch_norm`): batch statistics while training, running ones in eval."""

    ranks = (4,)


def normalized_axes(layer: str, normalized_shape: Any) -> tuple[int, ...]:
    """``normalized_shape`` of LayerNorm or RMSNorm (an int, or a sequence of positive ints) as
    a tuple; a clear error naming ``layer`` otherwise."""
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(normalized_shape)
    except TypeError:
        raise TypeError(
            f"{layer}: normalized_shape must be an int or a tuple of ints, got "
            f"{type(normalized_shape).__name__} {normalized_shape!r}"
        ) from None
    if not shape:
        raise ValueError(f"{layer}: normalized_shape must name at least one axis")
    _positive_ints(layer, **{f"normalized_shape[{i}]": n for i, n in enumerate(shape)})
    return tuple(int(n) for n in shape)


class LayerNorm(Module):
    """Normalise each sample over its last axes ``normalized_shape`` (learned scale and shift)."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        shape = normalized_axes("LayerNorm", normalized_shape)
        _check_number("LayerNorm", "eps", eps, 0.0)
        dtype = _float_dtype("LayerNorm", dtype)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = Parameter(np.ones(shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, dtype=dtype)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class Embedding(Module):
    """A lookup table: integer indices of any shape -> rows of ``weight`` (``N(0, 1)`` start).

    The row ``padding_idx`` starts at zero and receives no gradient.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        _positive_ints("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if padding_idx is not None and (
            not _is_int(padding_idx) or not -num_embeddings <= padding_idx < num_embeddings
        ):
            raise ValueError(
                f"Embedding: padding_idx must be an int in [-{num_embeddings}, {num_embeddings}), "
                f"got {padding_idx!r}"
            )
        dtype = _float_dtype("Embedding", dtype)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = init.normal((num_embeddings, embedding_dim), rng=rng, dtype=dtype)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0
            self.weight._bump_version()

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a removed layer)."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Sigmoid(Module):
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`, elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class ReLU(Module):
    """``max(x, 0)``, elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    """``tanh(x)``, elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Flatten(Module):
    """Merge all axes from ``start_axis`` on (default 1: keep the batch axis)."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        if not _is_int(start_axis):
            raise TypeError(f"Flatten: start_axis must be an int, got {start_axis!r}")
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


class Sequential(Module):
    """Modules applied in order; children are named ``"0"``, ``"1"``, ..."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {index} is a {type(module).__name__}, not a Module"
                )
            setattr(self, str(index), module)

    def forward(self, x: Tensor) -> Tensor:
        return run_in_order(list(self._modules.values()), x)

    def __getitem__(self, index: int) -> Module:
        modules = list(self._modules.values())
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"Sequential has {len(modules)} modules, no index {index}") from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


def run_in_order(modules: list[Module], x: Tensor) -> Tensor:
    """Apply ``modules`` one after another, as :class:`Sequential` does.

    A :class:`Conv2d` directly followed by a :class:`ReLU` runs as one fused op,
    :func:`functional.conv2d_relu` (the same maths in fewer passes over memory), unless either
    class is a subclass with its own ``forward``.
    """
    position = 0
    while position < len(modules):
        module = modules[position]
        following = modules[position + 1] if position + 1 < len(modules) else None
        if _plain(module, Conv2d) and _plain(following, ReLU):
            x = F.conv2d_relu(
                x,
                module.weight,
                module.bias,
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
            )
            position += 2
        else:
            x = module(x)
            position += 1
    return x


def _plain(module: Module | None, kind: type[Module]) -> bool:
    """Whether ``module`` runs ``kind``'s own ``forward`` (it is one, and does not override it)."""
    return isinstance(module, kind) and type(module).forward is kind.forward
