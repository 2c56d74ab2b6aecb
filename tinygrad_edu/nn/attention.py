r"""Attention layers: ``MultiheadAttention`` and ``TransformerEncoderLayer`` (PyTorch's names,
arguments, defaults and state_dict keys).

Multi-head attention projects the inputs, splits the ``E`` features into ``H`` heads of
``E / H``, attends within each head (:func:`.functional.scaled_dot_product_attention`) and
projects the joined heads back:

.. math::

    \operatorname{head}_h = \operatorname{Attention}(Q W_q^h, K W_k^h, V W_v^h), \qquad
    \operatorname{MHA}(Q, K, V) = [\operatorname{head}_1, \dots, \operatorname{head}_H] W_o^T + b_o
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import ShapeError
from ..tensor import Tensor
from . import functional as F
from . import init
from .functional.attention import attention_with_weights
from .layers import Dropout, LayerNorm, Linear, _check_number, _float_dtype, _positive_ints
from .module import Module, Parameter

RNG = np.random.Generator | int | None


class MultiheadAttention(Module):
    r"""Multi-head attention (see the module), as ``torch.nn.MultiheadAttention``.

    Parameters are ``in_proj_weight`` ``(3E, E)`` (:math:`W_q, W_k, W_v` stacked, Xavier-uniform),
    ``in_proj_bias`` ``(3E,)`` (zeros) and ``out_proj`` (a :class:`Linear`, bias zeros), so a
    PyTorch state_dict loads unchanged. Keys and values have ``embed_dim`` features (``kdim`` and
    ``vdim`` other than ``embed_dim``, ``add_bias_kv`` and ``add_zero_attn`` are not provided).

    Differences from PyTorch: a query whose keys are all masked out gets zero weights and a zero
    output (PyTorch's layer returns NaN there; its ``scaled_dot_product_attention`` returns 0).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        rng: RNG = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        _positive_ints("MultiheadAttention", embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                f"num_heads={num_heads}"
            )
        _check_number("MultiheadAttention", "dropout", dropout, 0.0, 1.0)
        for name, size in (("kdim", kdim), ("vdim", vdim)):
            if size not in (None, embed_dim):
                raise NotImplementedError(
                    f"MultiheadAttention: {name}={size} other than embed_dim is not provided"
                )
        for name, flag in (("add_bias_kv", add_bias_kv), ("add_zero_attn", add_zero_attn)):
            if flag:
                raise NotImplementedError(f"MultiheadAttention: {name}=True is not provided")
        dtype = _float_dtype("MultiheadAttention", dtype)
        generator = np.random.default_rng(rng)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = init.xavier_uniform((3 * embed_dim, embed_dim), 1.0, generator, dtype)
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias, generator, dtype)
        if bias:
            self.out_proj.bias = Parameter(np.zeros(embed_dim, dtype=dtype))
        self.generator = generator

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        r"""Attend from ``query`` to ``key``/``value``.

        Parameters
        ----------
        query, key, value
            ``(L, N, E)``, ``(S, N, E)``, ``(S, N, E)`` (``(N, L, E)``... with ``batch_first``),
            or unbatched ``(L, E)``, ``(S, E)``, ``(S, E)``.
        key_padding_mask
            ``(N, S)`` (or ``(S,)`` unbatched): boolean ``True`` = ignore that key, or float
            (added to the scores).
        need_weights, average_attn_weights
            Also return the attention weights, averaged over the heads ``(N, L, S)`` or per head
            ``(N, H, L, S)``.
        attn_mask
            ``(L, S)`` or ``(N * H, L, S)``: boolean ``True`` = *not* allowed to attend (the
            opposite of :func:`.functional.scaled_dot_product_attention`), or float (added).
        is_causal
            A hint that ``attn_mask`` is the causal mask; it must then be given.

        Returns
        -------
        tuple
            The output (the shape of ``query``) and the weights or ``None``.
        """
        name = "MultiheadAttention"
        unbatched = query.ndim == 2
        for label, tensor in (("query", query), ("key", key), ("value", value)):
            if tensor.ndim != (2 if unbatched else 3) or tensor.shape[-1] != self.embed_dim:
                raise ShapeError(
                    f"{name}: {label} of shape {tensor.shape} must be (L, N, {self.embed_dim}), "
                    f"(N, L, {self.embed_dim}) with batch_first, or unbatched (L, {self.embed_dim})"
                )
        if is_causal and attn_mask is None:
            raise ValueError(f"{name}: is_causal=True is a hint that needs attn_mask as well")
        if unbatched:
            query, key, value = (t.reshape(1, *t.shape) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (t.swapaxes(0, 1) for t in (query, key, value))
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]
        if key.shape[:2] != value.shape[:2] or key.shape[0] != batch:
            raise ShapeError(
                f"{name}: key {key.shape} and value {value.shape} must share (S, N) with query"
            )
        w_q, w_k, w_v = (
            self.in_proj_weight[i * self.embed_dim : (i + 1) * self.embed_dim] for i in range(3)
        )
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = (
                self.in_proj_bias[i * self.embed_dim : (i + 1) * self.embed_dim] for i in range(3)
            )
        q, k, v = (
            self._heads(F.linear(x, w, b))
            for x, w, b in ((query, w_q, b_q), (key, w_k, b_k), (value, w_v, b_v))
        )
        mask = self._merged_mask(attn_mask, key_padding_mask, batch, length, source, unbatched)
        dropout_p = self.dropout if self.training else 0.0
        heads, weights = attention_with_weights(
            q, k, v, mask, dropout_p=dropout_p, rng=self.generator
        )
        joined = heads.swapaxes(1, 2).reshape(batch, length, self.embed_dim)
        output = self.out_proj(joined)
        if unbatched:
            output = output.reshape(length, self.embed_dim)
        elif not self.batch_first:
            output = output.swapaxes(0, 1)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(axis=1)
        return output, (weights.reshape(*weights.shape[1:]) if unbatched else weights)

    def _heads(self, x: Tensor) -> Tensor:
        """``(N, L, E)`` split into heads: ``(N, H, L, E / H)``."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dim).swapaxes(1, 2)

    def _merged_mask(
        self,
        attn_mask: Any,
        key_padding_mask: Any,
        batch: int,
        length: int,
        source: int,
        unbatched: bool,
    ) -> np.ndarray | Tensor | None:
        """One float mask ``(N, H, L, S)``-broadcastable from both masks, or ``None``."""
        name = "MultiheadAttention"
        merged = None
        if attn_mask is not None:
            mask = _additive(name, "attn_mask", attn_mask)
            if mask.shape == (length, source):
                merged = mask
            elif mask.shape == (batch * self.num_heads, length, source):
                merged = mask.reshape(batch, self.num_heads, length, source)
            else:
                raise ShapeError(
                    f"{name}: attn_mask of shape {tuple(mask.shape)} must be (L, S) = "
                    f"{(length, source)} or (N * num_heads, L, S) = "
                    f"{(batch * self.num_heads, length, source)}"
                )
        if key_padding_mask is not None:
            mask = _additive(name, "key_padding_mask", key_padding_mask)
            expected = (source,) if unbatched else (batch, source)
            if tuple(mask.shape) != expected:
                raise ShapeError(
                    f"{name}: key_padding_mask of shape {tuple(mask.shape)} must be {expected}"
                )
            padding = mask.reshape(batch, 1, 1, source)
            merged = padding if merged is None else merged + padding
        return merged

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )


def _additive(layer: str, name: str, mask: Any) -> np.ndarray | Tensor:
    """A boolean "ignore" mask as 0 / :math:`-\\infty`, a float mask as it is."""
    values = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if values.dtype == bool:
        return np.where(values, -np.inf, 0.0)
    if values.dtype.kind != "f":
        raise TypeError(f"{layer}: {name} must be boolean or floating, got dtype {values.dtype}")
    return mask if isinstance(mask, Tensor) else values


class TransformerEncoderLayer(Module):
    r"""Self-attention then a feed-forward network, each with a residual connection and
    ``LayerNorm``, as ``torch.nn.TransformerEncoderLayer``.

    Post-norm (default): :math:`x = \operatorname{norm}_1(x + \operatorname{SA}(x))`,
    :math:`x = \operatorname{norm}_2(x + \operatorname{FF}(x))`; with ``norm_first``:
    :math:`x = x + \operatorname{SA}(\operatorname{norm}_1(x))`,
    :math:`x = x + \operatorname{FF}(\operatorname{norm}_2(x))`, where
    :math:`\operatorname{FF}(x) = W_2\, \operatorname{dropout}(\sigma(W_1 x + b_1)) + b_2`.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        rng: RNG = None,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        _positive_ints("TransformerEncoderLayer", d_model=d_model, dim_feedforward=dim_feedforward)
        if isinstance(activation, str):
            if activation not in ("relu", "gelu"):
                raise ValueError(
                    f'TransformerEncoderLayer: activation must be "relu", "gelu" or a callable, '
                    f"got {activation!r}"
                )
            activation = F.relu if activation == "relu" else F.gelu
        generator = np.random.default_rng(rng)
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout, bias, batch_first=batch_first, rng=generator, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias, generator, dtype)
        self.dropout = Dropout(dropout, generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias, generator, dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, generator)
        self.dropout2 = Dropout(dropout, generator)
        self.activation = activation

    def forward(
        self,
        src: Tensor,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> Tensor:
        """``src`` through the layer; the masks are those of :class:`MultiheadAttention`
        (``attn_mask`` and ``key_padding_mask``)."""
        x = src
        if self.norm_first:
            x = x + self._attend(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward(x))

    def _attend(self, x: Tensor, mask: Any, padding: Any, is_causal: bool) -> Tensor:
        attended, _ = self.self_attn(
            x, x, x, padding, need_weights=False, attn_mask=mask, is_causal=is_causal
        )
        return self.dropout1(attended)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
