r"""Stateless functions behind the layers and losses.

Each is a few Tensor operations, so its gradient comes from the op table; no function here has a
hand-written backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..graph import ShapeError
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _as_tensor(x: Any, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=like.dtype))


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _same_shape(name: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ShapeError(
            f"{name}: input shape {input.shape} and target shape {target.shape} differ "
            "(broadcasting a loss silently is a classic bug, so it is refused; reshape one of them)"
        )


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


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def relu(x: Tensor) -> Tensor:
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    r"""Squared error :math:`(x - t)^2`, reduced by ``reduction``.

    The document's :math:`E = \frac12 \sum (o - t)^2` is ``0.5 * mse_loss(o, t, reduction="sum")``.
    """
    target = _as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    r""":math:`-[t \log p + (1 - t) \log(1 - p)]` for probabilities ``p`` in [0, 1].

    Each log is clamped at -100 (as PyTorch does), so ``p = 0`` or ``1`` gives a finite loss,
    and the gradient stays finite where a sigmoid has saturated to exactly 0 or 1 (the rule is
    in :mod:`tinygrad_edu.ops.losses`).
    """
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    return _reduce(ops.BinaryCrossEntropy.apply(input, target), reduction)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    r""":math:`-\log \mathrm{softmax}(z)_t` for logits ``(N, C, ...)`` and classes ``(N, ...)``.

    ``target`` may also hold class probabilities of the logits' shape; the loss is then
    :math:`-\sum_c t_c \log \mathrm{softmax}(z)_c`. Computed through ``log_softmax``, so large
    logits cannot overflow.
    """
    if logits.ndim < 2:
        raise ShapeError(f"cross_entropy: logits need shape (N, C, ...), got {logits.shape}")
    log_probs = logits.log_softmax(axis=1)
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind in "iub":
        expected = logits.shape[:1] + logits.shape[2:]
        if target_array.shape != expected:
            raise ShapeError(
                f"cross_entropy: class indices need shape {expected} for logits {logits.shape}, "
                f"got {target_array.shape}"
            )
        classes = logits.shape[1]
        if target_array.size and (target_array.min() < 0 or target_array.max() >= classes):
            raise ValueError(
                f"cross_entropy: class indices must lie in [0, {classes}), got values from "
                f"{target_array.min()} to {target_array.max()}"
            )
        class_axis = np.arange(classes).reshape((1, classes) + (1,) * (logits.ndim - 2))
        weights = Tensor((np.expand_dims(target_array, 1) == class_axis).astype(logits.dtype))
    else:  # class probabilities: a Tensor target keeps its graph (soft labels can be learned)
        weights = _as_tensor(target, logits)
        _same_shape("cross_entropy", logits, weights)
    return _reduce(-(weights * log_probs).sum(axis=1), reduction)
