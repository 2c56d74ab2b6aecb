r"""Scaled dot-product attention, as in ``torch.nn.functional.scaled_dot_product_attention``.

.. math::

    \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(s\, Q K^T + M\right) V,
    \qquad s = 1 / \sqrt{E}

with queries ``Q`` of shape ``(..., L, E)``, keys ``K`` of shape ``(..., S, E)`` and values ``V``
of shape ``(..., S, Ev)``. The mask ``M`` is additive (a float mask) or picks the key positions
each query may look at (a boolean mask: ``True`` takes part, the others get :math:`-\infty`).
Everything is ``matmul``, ``where`` and ``softmax``, so the gradients come from the op table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...graph import ShapeError
from ...tensor import Tensor, where
from .layers import RNG, dropout

__all__ = ["scaled_dot_product_attention"]


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    rng: RNG = None,
) -> Tensor:
    r"""Attention of ``query`` over ``key``/``value`` (see the module for the formula).

    Parameters
    ----------
    query, key, value
        Shapes ``(..., L, E)``, ``(..., S, E)`` and ``(..., S, Ev)``; the leading axes broadcast.
    attn_mask
        Boolean (``True`` = the key position takes part) or float (added to the scores), of a
        shape that broadcasts to ``(..., L, S)``.
    dropout_p
        Probability of dropping each attention weight (always applied when > 0, as in PyTorch;
        ``rng`` draws the mask).
    is_causal
        Query ``i`` sees keys ``j <= i`` only (the lower triangle); excludes ``attn_mask``.
    scale
        :math:`s`; default :math:`1 / \sqrt{E}`.

    Returns
    -------
    Tensor
        Shape ``(..., L, Ev)``. A query whose keys are all masked out gets zero weights and a
        zero output, as PyTorch's function returns.
    """
    output, _ = attention_with_weights(
        query, key, value, attn_mask, dropout_p, is_causal, scale, rng
    )
    return output


def attention_with_weights(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    rng: RNG = None,
) -> tuple[Tensor, Tensor]:
    """:func:`scaled_dot_product_attention` and the attention weights (after dropout)."""
    name = "scaled_dot_product_attention"
    for label, tensor in (("query", query), ("key", key), ("value", value)):
        if not isinstance(tensor, Tensor) or tensor.ndim < 2:
            raise ShapeError(f"{name}: {label} must be a Tensor with at least 2 axes")
    if query.shape[-1] != key.shape[-1]:
        raise ShapeError(
            f"{name}: query {query.shape} and key {key.shape} must share the last axis (E)"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"{name}: key {key.shape} and value {value.shape} must share the sequence axis (S)"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout_p must lie in [0, 1], got {dropout_p!r}")
    length, source = query.shape[-2], key.shape[-2]
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{name}: give either attn_mask or is_causal=True, not both")
        attn_mask = np.tril(np.ones((length, source), dtype=bool))
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = (query @ key.swapaxes(-1, -2)) * scale
    if attn_mask is not None:
        scores = _apply_mask(name, scores, attn_mask)
    dead = np.all(np.isneginf(scores.data), axis=-1, keepdims=True)  # no key to look at
    if dead.any():  # the softmax of a row of -inf is NaN: such a row gets zero weights
        weights = where(dead, 0.0, where(dead, 0.0, scores).softmax(-1))
    else:  # the usual case: no where over all the scores (nor its VJP) for nothing
        weights = scores.softmax(-1)
    weights = dropout(weights, dropout_p, True, rng)
    return weights @ value, weights


def _apply_mask(name: str, scores: Tensor, attn_mask: Any) -> Tensor:
    """``scores`` with a boolean mask applied as :math:`-\\infty` or a float mask added."""
    mask = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
    try:
        fits = np.broadcast_shapes(mask.shape, scores.shape) == scores.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"{name}: attn_mask of shape {mask.shape} does not broadcast to the scores "
            f"(..., L, S) = {scores.shape}"
        )
    if mask.dtype == bool:
        return where(mask, scores, -math.inf)
    if mask.dtype.kind != "f":
        raise TypeError(f"{name}: attn_mask must be boolean or floating, got dtype {mask.dtype}")
    return scores + (attn_mask if isinstance(attn_mask, Tensor) else mask.astype(scores.dtype))
