"""Layers: ``Linear``, activations, ``Flatten`` and ``Sequential``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module


def _parameters(shape, bias: bool, bound: float, rng, dtype, initialise: bool):
    """(weight, bias): :math:`U(-bound, bound)` entries, or zeros when not ``initialise``."""
    if not initialise:
        weight = Tensor(np.zeros(shape, dtype=dtype), requires_grad=True)
        return weight, (
            Tensor(np.zeros(shape[0], dtype=dtype), requires_grad=True) if bias else None
        )
    generator = np.random.default_rng(rng)
    weight = init.uniform(shape, -bound, bound, generator, dtype)
    return weight, (init.uniform((shape[0],), -bound, bound, generator, dtype) if bias else None)


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
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(
                f"Linear needs positive sizes, got in_features={in_features}, "
                f"out_features={out_features}"
            )
        self.in_features, self.out_features = in_features, out_features
        self.weight, self.bias = _parameters(
            (out_features, in_features), bias, 1.0 / np.sqrt(in_features), rng, dtype, initialise
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        has_bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={has_bias}"


class Conv2d(Module):
    r"""2-D convolution layer (NCHW, PyTorch weight layout ``(out, in, kh, kw)``).

    Weights and bias start as :math:`U(-1/\sqrt{fan_{in}}, 1/\sqrt{fan_{in}})` with
    :math:`fan_{in} = in \cdot kh \cdot kw` (PyTorch's default); ``initialise=False`` leaves
    zeros, for layers whose weights are about to be loaded.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: type = np.float32,
        initialise: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if min(in_channels, out_channels, kh, kw) <= 0:
            raise ValueError(
                f"Conv2d needs positive sizes, got in={in_channels}, out={out_channels}, "
                f"kernel={kernel_size}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        bound = 1.0 / np.sqrt(in_channels * kh * kw)
        shape = (out_channels, in_channels, kh, kw)
        self.weight, self.bias = _parameters(shape, bias, bound, rng, dtype, initialise)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


class MaxPool2d(Module):
    """Max pooling over ``kernel_size`` windows (NCHW); ``stride`` defaults to the kernel size."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


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
        for module in self._modules.values():
            x = module(x)
        return x

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
