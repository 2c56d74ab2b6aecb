"""Attention: ``scaled_dot_product_attention``, ``MultiheadAttention`` and
``TransformerEncoderLayer`` against PyTorch (outputs, attention weights, gradients of inputs and
parameters, with PyTorch's state_dicts loaded unchanged), float64 gradients of first and second
order in both modes, fully masked rows, and bad arguments refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.module_gradients import check_both_orders, with_parameters
from tinygrad_edu import Tensor, nn
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
    additive = np.where(mask, 0.0, -np.inf)
    y_float = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), attn_mask=additive)
    yt_float = torch.nn.functional.scaled_dot_product_attention(
        *map(torch.tensor, (q, k, v)), attn_mask=torch.tensor(additive)
    )
    np.testing.assert_allclose(y_float.data, yt_float.numpy(), atol=1e-12)


def test_sdpa_adds_no_where_over_the_scores_unless_a_row_is_fully_masked():
    # the guard against all-masked rows used to put a where over the whole (..., L, S) score
    # tensor into every graph (~5% of a small transformer's training step, forward + VJP)
    from tinygrad_edu.observers.trace import graph_records

    q, k, v = (Tensor(a, requires_grad=True) for a in _inputs(6, (2, 5, 4), (2, 5, 4), (2, 5, 3)))

    def ops(**mask) -> list[str]:
        output = F.scaled_dot_product_attention(q, k, v, **mask)
        return [r.op for r in graph_records([output]).values() if r.op is not None]

    assert "where" not in ops()
    assert ops(is_causal=True).count("where") == 1  # the causal mask itself
    empty_row = np.tril(np.ones((5, 5), dtype=bool))
    empty_row[2] = False
    assert ops(attn_mask=empty_row).count("where") == 3  # mask, and the guard on both sides


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


def _compare_gradients(ours, theirs, our_params, their_params, rtol=1e-9, atol=1e-11):
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=rtol, atol=atol)
    their_grads = {name: p.grad for name, p in their_params}
    for name, parameter in our_params:
        np.testing.assert_allclose(
            parameter.grad.data, their_grads[name].numpy(), rtol=rtol, atol=atol, err_msg=name
        )


def _attention_masks(seed, kind_attn, kind_padding, batch, heads, length, source, unbatched):
    """PyTorch-style masks (boolean True = ignore) in which every query keeps key 0."""
    rng = np.random.default_rng(seed + 7)
    attn = None
    if kind_attn != "none":
        shape = (length, source) if kind_attn.endswith("2d") else (batch * heads, length, source)
        attn = rng.random(shape) < 0.4 if kind_attn.startswith("bool") else rng.normal(size=shape)
        attn[..., 0] = False if attn.dtype == bool else 0.0
    padding = None
    if kind_padding != "none":
        shape = (source,) if unbatched else (batch, source)
        padding = rng.random(shape) < 0.4 if kind_padding == "bool" else rng.normal(size=shape)
        padding[..., 0] = False if padding.dtype == bool else 0.0
    return attn, padding


# torch warns when the two masks differ in kind, which it still supports (and so do we)
@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    heads=st.integers(1, 3),
    head_dim=st.integers(1, 3),
    length=st.integers(1, 4),
    source=st.integers(1, 4),
    bias=st.booleans(),
    batch_first=st.booleans(),
    unbatched=st.booleans(),
    kind_attn=st.sampled_from(["none", "bool2d", "float2d", "bool3d", "float3d"]),
    kind_padding=st.sampled_from(["none", "bool", "float"]),
    average=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_multihead_attention_matches_torch(
    batch, heads, head_dim, length, source, bias, batch_first, unbatched, kind_attn,
    kind_padding, average, seed,
):  # fmt: skip
    torch = pytest.importorskip("torch")

    if unbatched:
        batch = 1
        kind_attn = kind_attn.replace("3d", "2d")
    embed = heads * head_dim
    torch.manual_seed(seed)
    reference = torch.nn.MultiheadAttention(embed, heads, bias=bias, batch_first=batch_first)
    reference = reference.double()
    layer = nn.MultiheadAttention(
        embed, heads, bias=bias, batch_first=batch_first, dtype=np.float64
    )
    layer.load_state_dict(reference.state_dict())

    def shaped(sequence):
        if unbatched:
            return (sequence, embed)
        return (batch, sequence, embed) if batch_first else (sequence, batch, embed)

    values = _inputs(seed, shaped(length), shaped(source), shaped(source))
    attn, padding = _attention_masks(
        seed, kind_attn, kind_padding, batch, heads, length, source, unbatched
    )
    ours = [Tensor(a.copy(), requires_grad=True) for a in values]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in values]
    out, weights = layer(
        *ours, key_padding_mask=padding, attn_mask=attn, average_attn_weights=average
    )
    out_t, weights_t = reference(
        *theirs,
        key_padding_mask=None if padding is None else torch.tensor(padding),
        attn_mask=None if attn is None else torch.tensor(attn),
        average_attn_weights=average,
    )
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(weights.data, weights_t.detach().numpy(), rtol=1e-9, atol=1e-11)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    ((out * Tensor(upstream)).sum() + weights.sum() * 0.5).backward()
    ((out_t * torch.tensor(upstream)).sum() + weights_t.sum() * 0.5).backward()
    _compare_gradients(ours, theirs, layer.named_parameters(), reference.named_parameters())


def test_multihead_attention_fully_masked_query_gives_zeros_where_torch_gives_nan():
    torch = pytest.importorskip("torch")
    reference = torch.nn.MultiheadAttention(4, 2).double()
    layer = nn.MultiheadAttention(4, 2, dtype=np.float64)
    layer.load_state_dict(reference.state_dict())
    x = _inputs(2, (3, 4))[0]
    attn = np.zeros((3, 3), dtype=bool)
    attn[1] = True  # query 1 may attend to nothing
    query = Tensor(x, requires_grad=True)
    out, weights = layer(query, query, query, attn_mask=attn)
    out_t, weights_t = reference(*[torch.tensor(x)] * 3, attn_mask=torch.tensor(attn))
    assert np.all(np.isnan(weights_t.detach().numpy()[1]))
    np.testing.assert_array_equal(weights.data[1], 0.0)
    np.testing.assert_allclose(out.data[1], layer.out_proj.bias.data)  # zero heads, then + b_o
    rows = [0, 2]
    np.testing.assert_allclose(out.data[rows], out_t.detach().numpy()[rows], atol=1e-12)
    out.sum().backward()
    assert np.all(np.isfinite(query.grad.data))


def test_multihead_attention_causal_hint_and_dropout():
    torch = pytest.importorskip("torch")
    reference = torch.nn.MultiheadAttention(4, 2, batch_first=True).double()
    layer = nn.MultiheadAttention(4, 2, batch_first=True, dtype=np.float64)
    layer.load_state_dict(reference.state_dict())
    x = _inputs(4, (2, 5, 4))[0]
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    out, _ = layer(*[Tensor(x)] * 3, attn_mask=causal, is_causal=True, need_weights=False)
    out_t, _ = reference(
        *[torch.tensor(x)] * 3, attn_mask=torch.tensor(causal), is_causal=True, need_weights=False
    )
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), atol=1e-12)
    dropping = nn.MultiheadAttention(4, 2, dropout=0.5, batch_first=True, rng=0)
    assert not np.allclose(
        dropping(*[Tensor(x)] * 3)[0].data, dropping.eval()(*[Tensor(x)] * 3)[0].data
    )


def test_multihead_attention_refuses_bad_arguments_by_name():
    with pytest.raises(ValueError, match="embed_dim=6 must be divisible by num_heads=4"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="num_heads"):
        nn.MultiheadAttention(6, 0)
    with pytest.raises(ValueError, match="dropout"):
        nn.MultiheadAttention(6, 2, dropout=2.0)
    with pytest.raises(NotImplementedError, match="kdim"):
        nn.MultiheadAttention(6, 2, kdim=3)
    layer = nn.MultiheadAttention(4, 2)
    x = Tensor(np.ones((3, 2, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match="attn_mask"):
        layer(x, x, x, attn_mask=np.zeros((3, 2), dtype=bool))
    with pytest.raises(ShapeError, match="key_padding_mask"):
        layer(x, x, x, key_padding_mask=np.zeros((3, 2), dtype=bool))
    with pytest.raises(TypeError, match="key_padding_mask"):
        layer(x, x, x, key_padding_mask=np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="is_causal"):
        layer(x, x, x, is_causal=True)
    with pytest.raises(ShapeError, match="query"):
        layer(Tensor(np.ones((3, 2, 5))), x, x)


@settings(max_examples=15, deadline=None)
@given(
    batch=st.integers(1, 3),
    heads=st.integers(1, 2),
    head_dim=st.integers(1, 3),
    length=st.integers(1, 4),
    feedforward=st.integers(1, 5),
    activation=st.sampled_from(["relu", "gelu"]),
    batch_first=st.booleans(),
    norm_first=st.booleans(),
    bias=st.booleans(),
    masks=st.sampled_from(["none", "causal", "padding", "both"]),
    seed=st.integers(0, 1000),
)
def test_transformer_encoder_layer_matches_torch(
    batch, heads, head_dim, length, feedforward, activation, batch_first, norm_first, bias,
    masks, seed,
):  # fmt: skip
    torch = pytest.importorskip("torch")
    d_model = heads * head_dim
    options = dict(
        dim_feedforward=feedforward,
        activation=activation,
        layer_norm_eps=1e-4,
        batch_first=batch_first,
        norm_first=norm_first,
        bias=bias,
    )
    torch.manual_seed(seed)
    reference = torch.nn.TransformerEncoderLayer(d_model, heads, **options).double().eval()
    layer = nn.TransformerEncoderLayer(d_model, heads, **options, dtype=np.float64).eval()
    assert list(layer.state_dict()) == list(reference.state_dict())
    layer.load_state_dict(reference.state_dict())
    shape = (batch, length, d_model) if batch_first else (length, batch, d_model)
    (x,) = _inputs(seed, shape)
    causal = (
        np.triu(np.ones((length, length), dtype=bool), 1) if masks in ("causal", "both") else None
    )
    padding = None
    if masks in ("padding", "both"):
        padding = np.random.default_rng(seed).random((batch, length)) < 0.4
        padding[:, 0] = False
    src, src_t = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    y = layer(src, src_mask=causal, src_key_padding_mask=padding, is_causal=causal is not None)
    y_t = reference(
        src_t,
        src_mask=None if causal is None else torch.tensor(causal),
        src_key_padding_mask=None if padding is None else torch.tensor(padding),
        is_causal=causal is not None,
    )
    np.testing.assert_allclose(y.data, y_t.detach().numpy(), rtol=1e-8, atol=1e-10)
    upstream = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    y_t.backward(torch.tensor(upstream))
    _compare_gradients(
        [src], [src_t], layer.named_parameters(), reference.named_parameters(), 1e-7, 1e-9
    )


def test_transformer_encoder_layer_float32_and_arguments():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    layer.load_state_dict(reference.state_dict())
    (x,) = _inputs(0, (5, 3, 8))
    x = x.astype(np.float32)
    y = layer(Tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, reference(torch.tensor(x)).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.TransformerEncoderLayer(8, 3)
    with pytest.raises(ValueError, match="dim_feedforward"):
        nn.TransformerEncoderLayer(8, 2, dim_feedforward=0)


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_gradcheck_both_modes(batch_first):
    layer = nn.MultiheadAttention(4, 2, batch_first=batch_first, rng=1, dtype=np.float64)
    query, key = _inputs(6, (2, 3, 4), (2, 2, 4))  # (N, L, E), (N, S, E)
    if not batch_first:
        query, key = query.swapaxes(0, 1).copy(), key.swapaxes(0, 1).copy()
    padding = np.array([[False, True], [False, False]])
    inputs = [Tensor(query, requires_grad=True), Tensor(key, requires_grad=True)]
    inputs += [layer.in_proj_weight, layer.out_proj.weight]

    def attend(query, key, in_proj_weight, out_proj_weight):
        layer.in_proj_weight, layer.out_proj.weight = in_proj_weight, out_proj_weight
        output, weights = layer(query, key, key, key_padding_mask=padding)
        return output.sum() + (weights * weights).sum()

    assert tg.gradcheck(attend, inputs, modes=MODES)


# ------------------------------------------------- gradients of first and second order, both modes
# Queries, keys, values, float masks and every parameter against central differences in float64:
# first order by reverse and forward mode, second order by differentiating the reverse pass again
# both ways (tests/module_gradients.py). Sizes stay tiny: forward mode costs one JVP per element.
@settings(max_examples=20, deadline=None)
@given(
    batch=st.sampled_from([(), (2,)]),
    length=st.integers(1, 3),
    source=st.integers(1, 3),
    embed=st.integers(1, 2),
    value_dim=st.integers(1, 2),
    kind=st.sampled_from(["none", "bool", "float", "causal"]),
    scale=st.sampled_from([None, 0.7]),
    seed=st.integers(0, 1000),
)
def test_sdpa_first_and_second_order_gradients_both_modes(
    batch, length, source, embed, value_dim, kind, scale, seed
):
    shapes = [(*batch, length, embed), (*batch, source, embed), (*batch, source, value_dim)]
    if kind == "float":
        shapes.append((length, source))  # the additive mask is differentiated too
    inputs = [Tensor(a, requires_grad=True) for a in _inputs(seed, *shapes)]
    mask = _mask(seed, kind, (length, source)) if kind == "bool" else None
    # a boolean mask may hide every key of a query: that row is zero, and so are its gradients

    def attend(query, key, value, *additive):
        return F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=additive[0] if additive else mask,
            is_causal=kind == "causal",
            scale=scale,
        )

    check_both_orders(attend, inputs)


def away_from_constants(layer, parameters, rng):
    """The parameters with every bias and norm weight drawn at random instead of PyTorch's
    constant start (0 or 1), so their gradients are checked at a general point."""
    names = [name for name, _ in layer.named_parameters()]
    return [
        Tensor(rng.standard_normal(p.shape), requires_grad=True)
        if name.endswith("bias") or name.startswith("norm")
        else p
        for name, p in zip(names, parameters)
    ]


@settings(max_examples=10, deadline=None)
@given(
    heads=st.integers(1, 2),
    length=st.integers(1, 3),
    source=st.integers(1, 2),
    batch_first=st.booleans(),
    unbatched=st.booleans(),
    bias=st.booleans(),
    kind_attn=st.sampled_from(["none", "bool2d", "float3d"]),
    kind_padding=st.sampled_from(["none", "bool", "float"]),
    average=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_multihead_attention_first_and_second_order_gradients_both_modes(
    heads, length, source, batch_first, unbatched, bias, kind_attn, kind_padding, average, seed
):
    embed, batch = 2, 1 if unbatched else 2
    layer = nn.MultiheadAttention(
        embed, heads, bias=bias, batch_first=batch_first, rng=seed, dtype=np.float64
    )
    parameters, bind = with_parameters(layer)
    parameters = away_from_constants(layer, parameters, np.random.default_rng(seed + 3))
    if unbatched:
        shapes = [(length, embed), (source, embed), (source, embed)]
    elif batch_first:
        shapes = [(batch, length, embed), (batch, source, embed), (batch, source, embed)]
    else:
        shapes = [(length, batch, embed), (source, batch, embed), (source, batch, embed)]
    attn, padding = _attention_masks(
        seed, kind_attn, kind_padding, batch, heads, length, source, unbatched
    )
    inputs = [Tensor(a, requires_grad=True) for a in _inputs(seed, *shapes)] + parameters

    def attend(query, key, value, *values):
        bind(values)
        options = {"key_padding_mask": padding, "average_attn_weights": average}
        return layer(query, key, value, attn_mask=attn, **options)

    check_both_orders(attend, inputs)


@pytest.mark.parametrize(
    "norm_first, activation, causal",
    [(False, "relu", False), (True, "gelu", True), (False, "gelu", True), (True, "relu", False)],
)
def test_transformer_encoder_layer_first_and_second_order_gradients_both_modes(
    norm_first, activation, causal
):
    layer = nn.TransformerEncoderLayer(
        4,  # LayerNorm over two features would give only +-1: four keep its gradients general
        2,
        dim_feedforward=3,
        dropout=0.0,
        activation=activation,
        norm_first=norm_first,
        batch_first=True,
        rng=4,
        dtype=np.float64,
    )
    rng = np.random.default_rng(4)
    parameters, bind = with_parameters(layer)
    parameters = away_from_constants(layer, parameters, rng)
    mask = np.triu(np.ones((3, 3), dtype=bool), 1) if causal else None
    inputs = [Tensor(rng.standard_normal((1, 3, 4)), requires_grad=True), *parameters]

    def encode(src, *values):
        bind(values)
        return layer(src, src_mask=mask, is_causal=causal)

    check_both_orders(encode, inputs)
