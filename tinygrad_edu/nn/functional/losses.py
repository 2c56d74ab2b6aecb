r"""Loss functions; each reduces with ``reduction``: ``"mean"`` (default), ``"sum"``, ``"none"``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import ops
from ...graph import ShapeError
from ...tensor import Tensor

__all__ = ["REDUCTIONS", "binary_cross_entropy", "cross_entropy", "mse_loss"]

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
