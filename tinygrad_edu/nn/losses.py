"""Loss modules; each holds a ``reduction`` ("mean", "sum" or "none") and calls ``functional``."""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in F.REDUCTIONS:
            raise ValueError(f"reduction must be one of {F.REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean (or summed) squared error; see :func:`functional.mse_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross entropy on probabilities; see :func:`functional.binary_cross_entropy`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross entropy on logits; see :func:`functional.cross_entropy`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, self.reduction)
