"""Loss modules; each holds a ``reduction`` ("mean", "sum" or "none") and calls ``functional``.

``reduction`` is the first positional argument (this library's contract); the other PyTorch
options are keywords, e.g. ``CrossEntropyLoss(label_smoothing=0.1, ignore_index=0)``.
"""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _Loss(Module):
    #: reductions this loss accepts beyond ``REDUCTIONS``
    extra_reductions: tuple[str, ...] = ()

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        allowed = (*F.REDUCTIONS, *self.extra_reductions)
        if reduction not in allowed:
            raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean (or summed) squared error; see :func:`functional.mse_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean (or summed) absolute error; see :func:`functional.l1_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, L1 above; see :func:`functional.smooth_l1_loss`."""

    def __init__(self, reduction: str = "mean", *, beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above; see :func:`functional.huber_loss`."""

    def __init__(self, reduction: str = "mean", *, delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, self.reduction, delta=self.delta)


class BCELoss(_Loss):
    """Binary cross entropy on probabilities; see :func:`functional.binary_cross_entropy`."""

    def __init__(self, reduction: str = "mean", *, weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.reduction, weight=self.weight)


class BCEWithLogitsLoss(_Loss):
    """Stable binary cross entropy on logits; see
    :func:`functional.binary_cross_entropy_with_logits`."""

    def __init__(
        self, reduction: str = "mean", *, weight: Any = None, pos_weight: Any = None
    ) -> None:
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.reduction, weight=self.weight, pos_weight=self.pos_weight
        )


class NLLLoss(_Loss):
    """Negative log likelihood of log-probabilities; see :func:`functional.nll_loss`."""

    def __init__(
        self, reduction: str = "mean", *, weight: Any = None, ignore_index: int = -100
    ) -> None:
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(
            input, target, self.reduction, weight=self.weight, ignore_index=self.ignore_index
        )


class CrossEntropyLoss(_Loss):
    """Softmax cross entropy on logits; see :func:`functional.cross_entropy`."""

    def __init__(
        self,
        reduction: str = "mean",
        *,
        weight: Any = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            self.reduction,
            weight=self.weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities from a target; see :func:`functional.kl_div`."""

    extra_reductions = ("batchmean",)

    def __init__(self, reduction: str = "mean", *, log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.kl_div(input, target, self.reduction, log_target=self.log_target)
