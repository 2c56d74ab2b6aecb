"""Recurrent cells and layers (``RNNCell``, ``LSTMCell``, ``GRUCell``, ``RNN``, ``LSTM``, ``GRU``):
outputs, final states and every input and parameter gradient against PyTorch in float64 over
random sizes and options, with PyTorch's state_dict loaded unchanged; gradients of first and
second order in both modes; backpropagation through 200 steps; initialisation bounds; bad
arguments refused by name."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.module_gradients import check_both_orders, with_parameters
from tinygrad_edu import Tensor, nn

TOLERANCE = {"rtol": 1e-9, "atol": 1e-11}


def loaded_pair(torch_module, ours):
    """``ours`` with ``torch_module``'s state_dict loaded as it is (PyTorch's tensors)."""
    state = torch_module.state_dict()
    assert sorted(ours.state_dict()) == sorted(state)
    ours.load_state_dict(state)
    return ours


def flat(outputs):
    """The tensors of a (possibly nested) output tuple, in order."""
    if isinstance(outputs, (tuple, list)):
        return [t for item in outputs for t in flat(item)]
    return [outputs]


def assert_same_as_torch(torch_module, ours, inputs, rng):
    """Outputs, input gradients and parameter gradients agree for a random upstream gradient.

    ``inputs`` is a list of arrays or ``None`` / pairs of arrays (LSTM states)."""
    torch = pytest.importorskip("torch")

    def build(convert):
        return [
            None if a is None else tuple(map(convert, a)) if isinstance(a, tuple) else convert(a)
            for a in inputs
        ]

    ours_in = build(lambda a: Tensor(a.copy(), requires_grad=True))
    theirs_in = build(lambda a: torch.tensor(a.copy(), requires_grad=True))
    mine, reference = flat(ours(*ours_in)), flat(torch_module(*theirs_in))
    assert len(mine) == len(reference)
    total, total_t = 0.0, 0.0
    for y, yt in zip(mine, reference):
        assert y.shape == tuple(yt.shape)
        np.testing.assert_allclose(y.data, yt.detach().numpy(), **TOLERANCE)
        upstream = rng.standard_normal(y.shape)
        total = total + (y * Tensor(upstream)).sum()
        total_t = total_t + (yt * torch.tensor(upstream)).sum()
    total.backward()
    total_t.backward()
    for a, at in zip(flat(ours_in), flat(theirs_in)):
        if a is not None:
            np.testing.assert_allclose(a.grad.data, at.grad.numpy(), **TOLERANCE)
    params = dict(ours.named_parameters())
    for name, p in torch_module.named_parameters():
        np.testing.assert_allclose(params[name].grad.data, p.grad.numpy(), **TOLERANCE)


# ----------------------------------------------------------------------------- cells
CELLS = ["RNNCell-tanh", "RNNCell-relu", "LSTMCell", "GRUCell"]


def make_cell(kind, input_size, hidden_size, bias):
    torch = pytest.importorskip("torch")
    name, _, nonlinearity = kind.partition("-")
    options = {"nonlinearity": nonlinearity} if nonlinearity else {}
    theirs = getattr(torch.nn, name)(input_size, hidden_size, bias, **options).double()
    ours = getattr(nn, name)(input_size, hidden_size, bias, dtype=np.float64, **options)
    return theirs, loaded_pair(theirs, ours)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(CELLS),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([None, 1, 3]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_cells_match_torch(kind, input_size, hidden_size, batch, bias, with_state, seed):
    rng = np.random.default_rng(seed)
    theirs, ours = make_cell(kind, input_size, hidden_size, bias)
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, input_size))
    state = None
    if with_state:
        state = rng.standard_normal((*lead, hidden_size))
        if kind == "LSTMCell":
            state = (state, rng.standard_normal((*lead, hidden_size)))
    assert_same_as_torch(theirs, ours, [x, state], rng)


# ----------------------------------------------------------------------------- sequence layers
@st.composite
def sequence_case(draw):
    return {
        "kind": draw(st.sampled_from(["RNN-tanh", "RNN-relu", "LSTM", "GRU"])),
        "input_size": draw(st.integers(1, 3)),
        "hidden_size": draw(st.integers(1, 3)),
        "num_layers": draw(st.integers(1, 2)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
        "steps": draw(st.integers(1, 4)),
        "batch": draw(st.sampled_from([None, 1, 2])),
        "with_state": draw(st.booleans()),
    }


def make_sequence_layer(case, dropout=0.0):
    torch = pytest.importorskip("torch")
    name, _, nonlinearity = case["kind"].partition("-")
    options = {
        "num_layers": case["num_layers"],
        "bias": case["bias"],
        "batch_first": case["batch_first"],
        "dropout": dropout,
        "bidirectional": case["bidirectional"],
    }
    if nonlinearity:
        options["nonlinearity"] = nonlinearity
    size = (case["input_size"], case["hidden_size"])
    theirs = getattr(torch.nn, name)(*size, **options).double()
    ours = getattr(nn, name)(*size, dtype=np.float64, **options)
    return theirs, loaded_pair(theirs, ours)


@settings(max_examples=30, deadline=None)
@given(sequence_case(), st.integers(0, 2**32 - 1))
def test_sequence_layers_match_torch(case, seed):
    rng = np.random.default_rng(seed)
    theirs, ours = make_sequence_layer(case)
    steps, batch = case["steps"], case["batch"]
    if batch is None:
        shape = (steps, case["input_size"])
    elif case["batch_first"]:
        shape = (batch, steps, case["input_size"])
    else:
        shape = (steps, batch, case["input_size"])
    state = None
    if case["with_state"]:
        stacked = case["num_layers"] * (2 if case["bidirectional"] else 1)
        state_shape = (
            (stacked, case["hidden_size"])
            if batch is None
            else (stacked, batch, case["hidden_size"])
        )
        state = rng.standard_normal(state_shape)
        if case["kind"] == "LSTM":
            state = (state, rng.standard_normal(state_shape))
    assert_same_as_torch(theirs, ours, [rng.standard_normal(shape), state], rng)


def test_state_dict_keys_follow_torch():
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, bias=False)
    assert list(model.state_dict()) == [
        f"weight_{kind}_l{layer}{suffix}"
        for layer in range(2)
        for suffix in ("", "_reverse")
        for kind in ("ih", "hh")
    ]
    assert model.weight_ih_l1.shape == (16, 8)


@pytest.mark.parametrize("layer", [nn.RNNCell, nn.LSTMCell, nn.GRUCell, nn.RNN, nn.LSTM, nn.GRU])
def test_init_is_uniform_within_one_over_sqrt_hidden(layer):
    model = layer(5, 16, rng=0)
    values = np.concatenate([p.data.ravel() for p in model.parameters()])
    assert np.abs(values).max() <= 0.25
    assert np.abs(values).max() > 0.24  # the bound is reached, not a narrower range
    assert np.all(np.isfinite(values))


def test_dropout_between_layers_only_while_training():
    torch = pytest.importorskip("torch")
    case = {
        "kind": "GRU",
        "input_size": 2,
        "hidden_size": 3,
        "num_layers": 2,
        "bias": True,
        "batch_first": False,
        "bidirectional": False,
    }
    theirs, ours = make_sequence_layer(case, dropout=0.5)
    x = np.random.default_rng(1).standard_normal((5, 2, 2))
    train_out = ours(Tensor(x))[0].data
    ours.eval()
    theirs.eval()
    eval_out = ours(Tensor(x))[0].data
    np.testing.assert_allclose(eval_out, theirs(torch.tensor(x))[0].detach().numpy(), **TOLERANCE)
    assert not np.allclose(train_out, eval_out)
    one_layer = nn.GRU(2, 3, dropout=0.5)  # dropout acts between layers: none with one layer
    np.testing.assert_array_equal(one_layer(Tensor(x))[0].data, one_layer.eval()(Tensor(x))[0].data)


def test_dropout_between_layers_masks_the_stacked_sequence():
    """Layer 1 reads layer 0's outputs (both directions) through one mask, drawn from the
    layer's generator as for the stacked sequence, though the layers pass it step by step."""
    model = nn.LSTM(2, 3, num_layers=2, dropout=0.4, bidirectional=True, dtype=np.float64, rng=5)
    first = nn.LSTM(2, 3, bidirectional=True, dtype=np.float64)
    second = nn.LSTM(6, 3, bidirectional=True, dtype=np.float64)
    state = model.state_dict()
    for layer, part in enumerate((first, second)):
        part.load_state_dict(
            {key.replace(f"_l{layer}", "_l0"): value for key, value in state.items()
             if f"_l{layer}" in key}
        )  # fmt: skip
    x = Tensor(np.random.default_rng(6).standard_normal((5, 2, 2)))
    generator = copy.deepcopy(model.generator)
    expected = second(nn.functional.dropout(first(x)[0], 0.4, True, generator))[0]
    np.testing.assert_allclose(model(x)[0].data, expected.data, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- gradients
def test_backward_through_200_lstm_steps():
    lstm = nn.LSTM(2, 4, dtype=np.float64, rng=0)
    x = Tensor(np.random.default_rng(4).standard_normal((200, 1, 2)), requires_grad=True)
    output, _ = lstm(x)
    output[-1].sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    assert np.abs(x.grad.data[0]).sum() > 0  # the first step still receives a gradient
    assert np.all(np.isfinite(lstm.weight_hh_l0.grad.data))


class GradientSizes(tg.graph.Observer):
    """Counts the elements of every gradient the backward sweep's VJPs return."""

    def __init__(self) -> None:
        self.elements = 0

    def vjp_applied(self, node, out, g, input_grads) -> None:
        self.elements += sum(grad.data.size for grad in input_grads if grad is not None)


@pytest.mark.parametrize("layer", [nn.RNN, nn.LSTM, nn.GRU])
def test_backward_cost_is_linear_in_the_sequence_length(layer):
    """Doubling T doubles what the sweep computes: no step's VJP returns a gradient the size of
    the whole sequence (as indexing step ``t`` out of a tensor that needs a gradient would),
    through two bidirectional layers, between which the sequence needs a gradient."""
    model = layer(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    elements = []
    for steps in (10, 20):
        x = Tensor(np.random.default_rng(7).standard_normal((steps, 2, 3)))
        output, _ = model(x)
        with tg.graph.observe(GradientSizes()) as sizes:
            output.sum().backward()
        elements.append(sizes.elements)
    assert 1.9 < elements[1] / elements[0] < 2.1


# ----------------------------------------------------------------------------- bad arguments
def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(2, 3, nonlinearity="gelu")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTM(2, 0)
    with pytest.raises(ValueError, match="num_layers"):
        nn.GRU(2, 3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(2, 3, dropout=1.5)
    with pytest.raises(ValueError, match="input must have shape"):
        nn.LSTM(2, 3)(Tensor(np.zeros((4, 1, 5))))
    with pytest.raises(ValueError, match="input must have shape"):
        nn.GRUCell(2, 3)(Tensor(np.zeros((1, 5))))
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 1, 3\)"):
        nn.RNN(2, 3, num_layers=2)(Tensor(np.zeros((4, 1, 2))), Tensor(np.zeros((1, 1, 3))))
    with pytest.raises(ValueError, match=r"hx\[1\] must have shape"):
        nn.LSTMCell(2, 3)(Tensor(np.zeros((1, 2))), (Tensor(np.zeros((1, 3))), Tensor(np.zeros(3))))
    with pytest.raises(TypeError, match="hx must be a pair"):
        nn.LSTM(2, 3)(Tensor(np.zeros((4, 1, 2))), Tensor(np.zeros((1, 1, 3))))


# ------------------------------------------------- gradients of first and second order, both modes
# Every input, initial state and parameter is checked against central differences in float64:
# first order by reverse mode (one VJP) and forward mode (one JVP per element), second order by
# differentiating the reverse pass again, both ways (tests/module_gradients.py). The parameters
# reach the layer through the checked function's arguments, so their differences move the layer.
@settings(max_examples=16, deadline=None)
@given(
    st.sampled_from(CELLS),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from([None, 1, 2]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_cells_first_and_second_order_gradients_both_modes(
    kind, input_size, hidden_size, batch, bias, seed
):
    name, _, nonlinearity = kind.partition("-")
    options = {"nonlinearity": nonlinearity} if nonlinearity else {}
    cell = getattr(nn, name)(input_size, hidden_size, bias, rng=seed, dtype=np.float64, **options)
    parameters, bind = with_parameters(cell)
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    states = 2 if name == "LSTMCell" else 1
    values = [rng.standard_normal((*lead, input_size))]
    values += [rng.standard_normal((*lead, hidden_size)) for _ in range(states)]
    inputs = [Tensor(v, requires_grad=True) for v in values] + parameters

    def fn(x, *rest):
        bind(rest[states:])
        if name == "LSTMCell":
            return cell(x, (rest[0], rest[1]))
        return cell(x, rest[0])

    check_both_orders(fn, inputs)


def sequence_gradient_inputs(layer, case, rng):
    """Input, initial state(s) and every parameter of ``layer`` as gradcheck inputs, and the
    function that runs ``layer`` on them and returns every output."""
    steps, batch, lstm = case["steps"], case["batch"], case["kind"] == "LSTM"
    stacked = case["num_layers"] * (2 if case["bidirectional"] else 1)
    if batch is None:
        shape, state_shape = (steps, case["input_size"]), (stacked, case["hidden_size"])
    else:
        order = (batch, steps) if case["batch_first"] else (steps, batch)
        shape, state_shape = (*order, case["input_size"]), (stacked, batch, case["hidden_size"])
    values = [rng.standard_normal(shape)]
    values += [rng.standard_normal(state_shape) for _ in range(2 if lstm else 1)]
    parameters, bind = with_parameters(layer)
    inputs = [Tensor(v, requires_grad=True) for v in values] + parameters

    def fn(x, *rest):
        states = 2 if lstm else 1
        bind(rest[states:])
        return flat(layer(x, (rest[0], rest[1]) if lstm else rest[0]))

    return inputs, fn


def tiny_sequence_layer(case):
    name, _, nonlinearity = case["kind"].partition("-")
    options = {"nonlinearity": nonlinearity} if nonlinearity else {}
    sizes = (case["input_size"], case["hidden_size"])
    return getattr(nn, name)(
        *sizes,
        num_layers=case["num_layers"],
        bias=case["bias"],
        batch_first=case["batch_first"],
        bidirectional=case["bidirectional"],
        rng=0,
        dtype=np.float64,
        **options,
    )


@settings(max_examples=12, deadline=None)
@given(sequence_case(), st.integers(0, 2**32 - 1))
def test_sequence_layers_first_and_second_order_gradients_both_modes(case, seed):
    if case["num_layers"] == 2 and case["bidirectional"]:
        case = {**case, "hidden_size": 1, "steps": min(case["steps"], 2)}  # keeps the run short
    else:
        case = {**case, "hidden_size": min(case["hidden_size"], 2)}
    layer = tiny_sequence_layer(case)
    inputs, fn = sequence_gradient_inputs(layer, case, np.random.default_rng(seed))
    check_both_orders(fn, inputs)


@pytest.mark.parametrize("kind", ["RNN-tanh", "RNN-relu", "LSTM", "GRU"])
def test_two_bidirectional_layers_first_and_second_order_gradients_both_modes(kind):
    case = {
        "kind": kind,
        "input_size": 2,
        "hidden_size": 1,
        "num_layers": 2,
        "bias": True,
        "batch_first": True,
        "bidirectional": True,
        "steps": 2,
        "batch": 2,
    }
    layer = tiny_sequence_layer(case)
    inputs, fn = sequence_gradient_inputs(layer, case, np.random.default_rng(5))
    check_both_orders(fn, inputs)
