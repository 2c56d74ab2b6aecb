"""nn: modules, parameter naming, state dicts, layers and losses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays


def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1), nn.Sigmoid())


def test_parameters_in_registration_order_with_dotted_names():
    net = small_net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.shape for p in net.parameters()] == [(4, 3), (4,), (2, 4), (2,)]


def test_nested_modules_get_nested_names():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = small_net()
            self.scale = Tensor(np.ones(2), requires_grad=True)

        def forward(self, x):
            return self.encoder(x) * self.scale

    names = [n for n, _ in Block().named_parameters()]
    assert names == [
        "scale",
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.2.weight",
        "encoder.2.bias",
    ]


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.w = Tensor(np.ones(2))

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_state_dict_round_trip_and_copy_semantics():
    a, b = (
        small_net(),
        nn.Sequential(nn.Linear(3, 4, rng=5), nn.Tanh(), nn.Linear(4, 2, rng=6), nn.Sigmoid()),
    )
    state = a.state_dict()
    state["0.bias"][0] = 123.0  # a snapshot: editing it does not touch the model
    assert a[0].bias.data[0] != 123.0
    weight_object = b[0].weight
    b.load_state_dict(a.state_dict())
    assert b[0].weight is weight_object  # loaded in place, optimizers keep their references
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_errors_name_keys_and_shapes():
    net = small_net()
    state = net.state_dict()
    state["2.weight"] = np.zeros((3, 4))
    with pytest.raises(nn.StateDictError, match=r"'2\.weight'.*\(3, 4\).*\(2, 4\)"):
        net.load_state_dict(state)
    state = net.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(
        nn.StateDictError, match=r"missing keys \['0\.bias'\].*unexpected keys \['extra'\]"
    ):
        net.load_state_dict(state)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]


def test_load_is_all_or_nothing():
    net = small_net()
    before = net.state_dict()
    bad = {k: np.full_like(v, 7.0) for k, v in before.items()}
    bad["2.bias"] = np.zeros(5)
    with pytest.raises(nn.StateDictError):
        net.load_state_dict(bad)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_zero_grad_and_freezing():
    net = small_net()
    net(Tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not net(Tensor(np.ones((2, 3), dtype=np.float32))).requires_grad


def test_linear_layout_matches_the_formula():
    layer = nn.Linear(3, 2, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-6)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_linear_shape_error_names_features():
    with pytest.raises(tg.ShapeError, match=r"4 features.*expects 3"):
        nn.Linear(3, 2)(Tensor(np.ones((5, 4))))


def test_flatten_and_sequential_indexing():
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 1))
    assert net(Tensor(np.ones((2, 2, 3), dtype=np.float32))).shape == (2, 1)
    assert len(net) == 2 and isinstance(net[1], nn.Linear)
    with pytest.raises(IndexError, match="2 modules"):
        net[5]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.Linear(1, 1), "relu")


def _fused_vs_composite(x, w, b):
    return F.linear(x, w, b)


@given(st.data())
def test_linear_op_gradients_first_and_second_order(data):
    batch = data.draw(st.sampled_from([(), (1,), (3,), (2, 2)]))
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = Tensor(data.draw(arrays((*batch, n_in))), requires_grad=True)
    w = Tensor(data.draw(arrays((n_out, n_in))), requires_grad=True)
    b = Tensor(data.draw(arrays((n_out,))), requires_grad=True)
    assert tg.gradcheck(F.linear, [x, w, b])
    assert tg.gradgradcheck(F.linear, [x, w, b])
    assert tg.gradcheck(F.linear, [x, w])
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data, rtol=1e-12)


# ----------------------------------------------------------------------------- losses
def test_mse_reductions():
    p, t = Tensor(np.array([1.0, 2.0, 4.0])), np.array([1.0, 0.0, 1.0])
    assert nn.MSELoss()(p, t).item() == pytest.approx(13 / 3)
    assert nn.MSELoss("sum")(p, t).item() == pytest.approx(13)
    np.testing.assert_allclose(nn.MSELoss("none")(p, t).data, [0, 4, 9])
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


def test_loss_refuses_silent_broadcasting():
    with pytest.raises(tg.ShapeError, match=r"\(4, 1\).*\(4,\)"):
        F.mse_loss(Tensor(np.ones((4, 1))), np.ones(4))


def test_bce_matches_formula_and_is_finite_at_the_edges():
    p = Tensor(np.array([0.2, 0.9, 0.0, 1.0]), requires_grad=True)
    t = np.array([0.0, 1.0, 1.0, 0.0])
    loss = nn.BCELoss("none")(p, t)
    np.testing.assert_allclose(loss.data[:2], [-np.log(0.8), -np.log(0.9)])
    np.testing.assert_allclose(loss.data[2:], [100.0, 100.0])
    loss.sum().backward()
    assert np.isfinite(p.grad.data[:2]).all()


@given(st.data())
def test_bce_gradcheck(data):
    shape = data.draw(st.sampled_from([(), (3,), (2, 2)]))
    p = Tensor(data.draw(arrays(shape, low=0.05, high=0.95)), requires_grad=True)
    t = Tensor(data.draw(arrays(shape, low=0.0, high=1.0)))
    assert tg.gradcheck(lambda q: F.binary_cross_entropy(q, t), [p])


def test_cross_entropy_indices_and_probabilities_agree():
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((4, 3)) * 5, requires_grad=True)
    labels = np.array([0, 2, 1, 2])
    by_index = nn.CrossEntropyLoss()(logits, labels)
    by_prob = nn.CrossEntropyLoss()(logits, np.eye(3)[labels])
    assert by_index.item() == pytest.approx(by_prob.item())
    log_probs = logits.data - np.log(np.exp(logits.data).sum(1, keepdims=True))
    assert by_index.item() == pytest.approx(-log_probs[np.arange(4), labels].mean())
    assert tg.gradcheck(lambda z: F.cross_entropy(z, labels, "sum"), [logits])


def test_cross_entropy_is_stable_and_checks_classes():
    logits = Tensor(np.array([[1000.0, -1000.0]]))
    assert np.isfinite(F.cross_entropy(logits, np.array([1])).item())
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        F.cross_entropy(logits, np.array([2]))
    with pytest.raises(tg.ShapeError, match="class indices"):
        F.cross_entropy(logits, np.array([[0]]))


def test_init_helpers():
    w = nn.init.normal((200, 100), std=0.15, rng=0)
    assert w.requires_grad and abs(w.data.std() - 0.15) < 0.01
    bound = np.sqrt(6 / (3 + 4))
    assert np.abs(nn.init.xavier_uniform((4, 3), rng=0).data).max() <= bound
    assert nn.init.zeros((2,)).data.sum() == 0
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.kaiming_normal((3,))
