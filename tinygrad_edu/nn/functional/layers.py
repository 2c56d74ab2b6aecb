r"""Layer functions: the stateless maths behind ``nn.Linear``, ``nn.Conv2d``, ``nn.MaxPool2d``.

Each validates its arguments (naming the shapes that do not fit) and applies an op from
:mod:`tinygrad_edu.ops`.
"""

from __future__ import annotations

from ... import ops
from ...graph import ShapeError
from ...tensor import Tensor

__all__ = ["conv2d", "linear", "max_pool2d"]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""y = x W^T + b, with ``W`` of shape ``(out, in)`` and ``x`` of shape ``(..., in)``."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ShapeError(
            f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
            f"the weight expects {weight.shape[1]} (weight shape {weight.shape})"
        )
    if bias is None:
        return ops.Linear.apply(x, weight)
    return ops.Linear.apply(x, weight, bias)


def _pair_to_int(value: int | tuple[int, int], name: str) -> int:
    if isinstance(value, tuple):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{name} must be an int or a pair of equal ints, got {value}")
        value = value[0]
    return int(value)


def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0
) -> Tensor:
    r"""2-D cross-correlation of NCHW ``x`` with ``weight`` of shape ``(out, in, kh, kw)``.

    :math:`y_{n,k,i,j} = b_k + \sum_{c,a,b} x_{n,c,\,is+a-p,\,js+b-p}\; w_{k,c,a,b}` with zero
    padding ``p`` and stride ``s``; output size :math:`\lfloor (H + 2p - kh) / s \rfloor + 1`.
    """
    stride, padding = _pair_to_int(stride, "stride"), _pair_to_int(padding, "padding")
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(
            f"conv2d: needs input (N, C, H, W) and weight (K, C, kh, kw), got {x.shape} and "
            f"{weight.shape}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(
            f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but the weight expects "
            f"{weight.shape[1]} (weight shape {weight.shape})"
        )
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    if any(x.shape[2 + i] + 2 * padding < weight.shape[2 + i] for i in range(2)):
        raise ShapeError(
            f"conv2d: kernel {weight.shape[2:]} is larger than the padded input "
            f"{tuple(n + 2 * padding for n in x.shape[2:])} (input shape {x.shape})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"conv2d: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return ops.Conv2d.apply(*inputs, stride=stride, padding=padding)


def max_pool2d(x: Tensor, kernel_size: int, stride: int | None = None) -> Tensor:
    """Maximum over ``kernel_size`` windows of NCHW ``x``; ``stride`` defaults to the kernel."""
    kernel = _pair_to_int(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair_to_int(stride, "stride")
    if x.ndim != 4:
        raise ShapeError(f"max_pool2d: needs input (N, C, H, W), got {x.shape}")
    if kernel < 1 or stride < 1 or kernel > min(x.shape[2:]):
        raise ShapeError(
            f"max_pool2d: kernel {kernel} (stride {stride}) does not fit the input {x.shape}"
        )
    return ops.MaxPool2d.apply(x, kernel=kernel, stride=stride)
