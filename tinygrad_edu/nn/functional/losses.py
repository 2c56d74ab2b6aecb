r"""Loss functions; each reduces with ``reduction``: ``"mean"`` (default), ``"sum"``, ``"none"``.

Every loss here is a composition of differentiable ops, written in a form that cannot overflow:
class losses go through ``log_softmax`` and the logistic losses through the log-sigmoid
:math:`\log \sigma(z) = \mathrm{log\_softmax}([0, z])_1`, so logits of :math:`\pm 1000` give
finite losses and exact gradients. Only binary cross entropy on probabilities needs a rule of
its own (:class:`tinygrad_edu.ops.losses.BinaryCrossEntropy`).

``reduction`` is the third positional argument (this library's contract); PyTorch's other
options (``weight``, ``ignore_index``, ``label_smoothing``, ``beta`` ...) are keywords.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import ops
from ...graph import ShapeError
from ...ops.common import constant
from ...tensor import Tensor, where

__all__ = [
    "REDUCTIONS",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]

REDUCTIONS = ("mean", "sum", "none")


def _as_tensor(x: Any, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x, dtype=like.dtype))


def _check_reduction(reduction: Any, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if not isinstance(reduction, str) or reduction not in allowed:
        hint = "" if isinstance(reduction, str) else " (class weights go in weight=)"
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}{hint}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _same_shape(name: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ShapeError(
            f"{name}: input shape {input.shape} and target shape {target.shape} differ "
            "(broadcasting a loss silently is a classic bug, so it is refused; reshape one of them)"
        )


# ----------------------------------------------------------------------------- regression
def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    r"""Squared error :math:`(x - t)^2`, reduced by ``reduction``.

    The document's :math:`E = \frac12 \sum (o - t)^2` is ``0.5 * mse_loss(o, t, reduction="sum")``.
    """
    target = _as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    r"""Absolute error :math:`|x - t|`, reduced by ``reduction``."""
    target = _as_tensor(target, input)
    _same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def _quadratic_then_linear(name: str, input: Tensor, target: Any, width: float) -> Tensor:
    """:math:`d^2 / 2` for :math:`|d| < w`, :math:`w (|d| - w / 2)` beyond: Huber's loss."""
    if width < 0:
        raise ValueError(f"{name}: the threshold must be >= 0, got {width}")
    target = _as_tensor(target, input)
    _same_shape(name, input, target)
    diff = input - target
    size = diff.abs()
    if width == 0:
        return size
    return where(size.data < width, 0.5 * diff * diff, width * (size - 0.5 * width))


def smooth_l1_loss(
    input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    r""":math:`\frac{d^2}{2\beta}` for :math:`|d| < \beta`, else :math:`|d| - \frac{\beta}{2}`
    (:math:`d = x - t`): quadratic near zero, L1 beyond; ``beta=0`` is the L1 loss."""
    loss = _quadratic_then_linear("smooth_l1_loss", input, target, beta)
    return _reduce(loss / beta if beta else loss, reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    r""":math:`\frac{d^2}{2}` for :math:`|d| < \delta`, else
    :math:`\delta (|d| - \frac{\delta}{2})`: ``smooth_l1_loss`` scaled by :math:`\delta`."""
    return _reduce(_quadratic_then_linear("huber_loss", input, target, delta), reduction)


# ----------------------------------------------------------------------------- classification
def _class_indices(name: str, logits: Tensor, target: Any, ignore_index: int) -> np.ndarray:
    """Validated integer class indices of shape ``(N, ...)`` for ``(N, C, ...)`` scores."""
    indices = np.asarray(target.data if isinstance(target, Tensor) else target)
    expected = logits.shape[:1] + logits.shape[2:]
    if indices.dtype.kind not in "iub":
        raise TypeError(
            f"{name}: class indices must be integers, got dtype {indices.dtype} "
            "(Tensor(labels) keeps integer labels int64; convert float labels with "
            ".astype(np.int64))"
        )
    if indices.shape != expected:
        raise ShapeError(
            f"{name}: class indices need shape {expected} for input {logits.shape}, "
            f"got {indices.shape}"
        )
    classes = logits.shape[1]
    real = indices[indices != ignore_index]
    if real.size and (real.min() < 0 or real.max() >= classes):
        raise ValueError(
            f"{name}: class indices must lie in [0, {classes}) (or be ignore_index="
            f"{ignore_index}), got values from {real.min()} to {real.max()}"
        )
    return indices


def _class_weights(name: str, weight: Any, classes: int, dtype) -> np.ndarray:
    if weight is None:
        return np.ones(classes, dtype=dtype)
    values = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=dtype)
    if values.shape != (classes,):
        raise ShapeError(f"{name}: weight must have shape ({classes},), got {values.shape}")
    return values


def _is_index_target(target: Any) -> bool:
    kind = (target.data if isinstance(target, Tensor) else np.asarray(target)).dtype.kind
    return kind in "iub"


def nll_loss(
    input: Tensor,  # log-probabilities (N, C, ...)
    target: Any,  # class indices (N, ...)
    reduction: str = "mean",
    *,
    weight: Any = None,
    ignore_index: int = -100,
) -> Tensor:
    r"""Negative log likelihood :math:`-w_{t}\, x_{n, t_n}` of log-probabilities ``(N, C, ...)``.

    ``target`` holds class indices ``(N, ...)``; entries equal to ``ignore_index`` contribute
    nothing. ``"mean"`` divides by the summed weights of the counted targets (PyTorch's rule).
    """
    _check_reduction(reduction)
    if input.ndim < 2:
        raise ShapeError(f"nll_loss: input needs shape (N, C, ...), got {input.shape}")
    indices = _class_indices("nll_loss", input, target, ignore_index)
    classes = input.shape[1]
    weights = _class_weights("nll_loss", weight, classes, input.dtype)
    kept = indices != ignore_index
    safe = np.where(kept, indices, 0)
    picked = weights[safe] * kept  # the weight of each target (0 where ignored)
    class_axis = np.arange(classes).reshape((1, classes) + (1,) * (input.ndim - 2))
    selector = (np.expand_dims(safe, 1) == class_axis) * np.expand_dims(picked, 1)
    loss = -(input * constant(selector.astype(input.dtype))).sum(axis=1)
    if reduction == "mean":
        return loss.sum() / float(picked.sum())
    return _reduce(loss, reduction)


def cross_entropy(
    input: Tensor,  # logits (N, C, ...)
    target: Any,  # class indices (N, ...) or probabilities (N, C, ...)
    reduction: str = "mean",
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    r""":math:`-\log \mathrm{softmax}(z)_t` for logits ``(N, C, ...)`` and classes ``(N, ...)``.

    ``target`` may also hold class probabilities of the logits' shape; the loss is then
    :math:`-\sum_c w_c t_c \log \mathrm{softmax}(z)_c` (a Tensor target keeps its graph, so
    soft labels can be learned). ``label_smoothing`` :math:`\varepsilon` mixes the target with
    the uniform distribution, :math:`(1 - \varepsilon) t + \varepsilon / C`; ``weight`` scales
    each class; targets equal to ``ignore_index`` count for nothing. Computed through
    ``log_softmax``, so large logits cannot overflow. Matches PyTorch, including its ``"mean"``
    normalisation by the summed weights of the counted targets.
    """
    _check_reduction(reduction)
    if input.ndim < 2:
        raise ShapeError(f"cross_entropy: logits need shape (N, C, ...), got {input.shape}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}"
        )
    classes = input.shape[1]
    log_probs = input.log_softmax(axis=1)
    weights = _class_weights("cross_entropy", weight, classes, input.dtype)
    class_shape = (1, classes) + (1,) * (input.ndim - 2)
    if not _is_index_target(target):  # class probabilities
        probabilities = _as_tensor(target, input)
        if probabilities.shape == input.shape[:1] + input.shape[2:]:
            _class_indices("cross_entropy", input, target, ignore_index)  # float class labels
        _same_shape("cross_entropy", input, probabilities)
        if label_smoothing:
            probabilities = probabilities * (1 - label_smoothing) + label_smoothing / classes
        scaled = (
            log_probs * constant(weights.reshape(class_shape)) if weight is not None else log_probs
        )
        return _reduce(-(probabilities * scaled).sum(axis=1), reduction)
    loss = nll_loss(log_probs, target, reduction, weight=weight, ignore_index=ignore_index)
    if not label_smoothing:
        return loss
    indices = _class_indices("cross_entropy", input, target, ignore_index)
    kept = indices != ignore_index
    uniform = -(log_probs * constant(weights.reshape(class_shape))).sum(axis=1)
    uniform = uniform * constant(kept.astype(input.dtype))
    if reduction == "mean":
        counted = (
            weights[np.where(kept, indices, 0)][kept].sum() if weight is not None else kept.sum()
        )
        smooth = uniform.sum() / float(counted)
    else:
        smooth = _reduce(uniform, reduction)
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def binary_cross_entropy(
    input: Tensor, target: Any, reduction: str = "mean", *, weight: Any = None
) -> Tensor:
    r""":math:`-w [t \log p + (1 - t) \log(1 - p)]` for probabilities ``p`` in [0, 1].

    Each log is clamped at -100 (as PyTorch does), so ``p = 0`` or ``1`` gives a finite loss,
    and the gradient stays finite where a sigmoid has saturated to exactly 0 or 1 (the rule is
    in :mod:`tinygrad_edu.ops.losses`). Prefer :func:`binary_cross_entropy_with_logits`.
    """
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    loss = ops.losses.BinaryCrossEntropy.apply(input, target)
    return _reduce(loss if weight is None else loss * _as_tensor(weight, input), reduction)


def _log_sigmoid_pair(z: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`(\log \sigma(z), \log \sigma(-z))` from one ``log_softmax`` over :math:`[0, z]`."""
    both = Tensor.stack([constant(np.zeros(z.shape, z.dtype)), z], axis=-1).log_softmax(axis=-1)
    return both[..., 1], both[..., 0]


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    reduction: str = "mean",
    *,
    weight: Any = None,
    pos_weight: Any = None,
) -> Tensor:
    r"""Binary cross entropy on logits :math:`z`, stable for any :math:`z`:

    .. math::
        \ell = -w\,[\,p\, t \log \sigma(z) + (1 - t) \log \sigma(-z)\,]

    with ``pos_weight`` :math:`p` (broadcast over the last axis: one per class) and ``weight``
    :math:`w`. Both log-sigmoids come from one ``log_softmax`` of :math:`[0, z]`, so
    :math:`z = \pm 1000` is finite and the gradient is exactly
    :math:`w(\sigma(z)(1 + (p - 1) t) - p t)`.
    """
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    log_p, log_not_p = _log_sigmoid_pair(input)
    positive = target * log_p
    if pos_weight is not None:
        positive = positive * _as_tensor(pos_weight, input)
    loss = -(positive + (1 - target) * log_not_p)
    return _reduce(loss if weight is None else loss * _as_tensor(weight, input), reduction)


# ----------------------------------------------------------------------------- distributions
def kl_div(
    input: Tensor, target: Any, reduction: str = "mean", *, log_target: bool = False
) -> Tensor:
    r"""Kullback-Leibler divergence :math:`t (\log t - x)` with ``input`` :math:`x` = log q.

    ``target`` holds probabilities :math:`t` (terms with :math:`t = 0` are 0), or their logs
    with ``log_target=True`` (:math:`e^{t} (t - x)`). ``reduction="batchmean"`` divides the sum
    by the batch size -- the true KL divergence per sample; ``"mean"`` averages every element,
    as PyTorch does.
    """
    _check_reduction(reduction, (*REDUCTIONS, "batchmean"))
    target = _as_tensor(target, input)
    _same_shape("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target.data > 0
        one, zero = (constant(np.asarray(v, dtype=target.dtype)) for v in (1, 0))
        x_log_x = where(positive, target * where(positive, target, one).log(), zero)
        loss = x_log_x - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)
