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


# ----------------------------------------------------------------------------- parameters, buffers
def test_parameter_is_a_trainable_tensor_whose_results_are_plain_tensors():
    w = nn.Parameter(np.ones(2))
    assert isinstance(w, Tensor) and w.requires_grad
    assert type(w * 2) is Tensor and type(w[0]) is Tensor
    frozen = nn.Parameter(np.ones(2), requires_grad=False)
    assert not frozen.requires_grad
    assert repr(w).startswith("Parameter containing:\nTensor(")
    assert all(isinstance(p, nn.Parameter) for p in nn.Conv2d(1, 2, 3).parameters())


@pytest.mark.parametrize("change", ["step", "load_state_dict", "copy_"])
def test_a_parameter_made_from_a_tensor_shares_its_version_counter(change):
    """Parameter(w) shares w's memory; changing it in place after an op saved w made backward
    use the new values silently (gradient 1 instead of refusing). PyTorch refuses."""
    w = Tensor(np.ones(3), requires_grad=True)
    loss = (w * w).sum()
    q = nn.Parameter(w)
    if change == "step":
        q.grad = Tensor(np.ones(3))
        tg.optim.SGD([q], lr=0.5).step()
    elif change == "load_state_dict":
        m = nn.Module()
        m.q = q
        m.load_state_dict({"q": np.zeros(3)})
    else:
        with tg.no_grad():
            q.copy_(np.zeros(3))
    assert w._version == q._version == 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    copied = nn.Parameter(w, dtype=np.float32)  # a new array: its own counter
    copied._bump_version()
    assert w._version == 1


def _shared_trees(draw, lib):
    """Two equal module trees in ``lib`` (tinygrad_edu.nn or torch.nn), built from the same
    drawn recipe: children that are new layers or earlier modules again (sharing), and
    tensors that are earlier parameters again (tying)."""
    recipe = draw(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6)), min_size=1, max_size=8)
    )
    roots = []
    for torch_side in (False, True):
        root = lib[torch_side].Module()
        modules, params = [root], []
        for step, (kind, pick) in enumerate(recipe):
            parent = modules[pick % len(modules)]
            if kind == 0:
                layer = lib[torch_side].Linear(2, 2)
            elif kind == 1:
                layer = lib[torch_side].BatchNorm1d(2)
            elif kind == 2:  # an existing module under a new name (never around its parent)
                layer = modules[pick % len(modules)]
                if any(m is parent for m in layer.modules()):
                    continue
            else:
                if not params:
                    continue
                setattr(parent, f"t{step}", params[pick % len(params)])  # a tied parameter
                continue
            setattr(parent, f"m{step}", layer)
            if kind != 2:
                modules.append(layer)
                params.extend(p for _, p in layer.named_parameters())
        roots.append(root)
    return roots


@given(st.data())
def test_state_dict_keys_are_pytorchs_with_shared_modules_and_tied_weights(data):
    """A module or parameter reachable by two paths is saved under both (PyTorch's keys and
    order), so a PyTorch checkpoint of a model with tied weights loads (it was refused with
    'unexpected keys')."""
    torch = pytest.importorskip("torch")
    ours, theirs = _shared_trees(data.draw, {False: nn, True: torch.nn})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


def test_a_module_inside_itself_is_saved_once():
    m = nn.Sequential(nn.Linear(2, 2))
    m.add_module("again", m)
    assert list(m.state_dict()) == ["0.weight", "0.bias"]


def test_buffers_are_saved_but_not_trained():
    class Scaler(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(np.ones(2))
            self.register_buffer("count", Tensor(np.zeros(1)))
            self.register_buffer("cache", Tensor(np.zeros(1)), persistent=False)

    m = nn.Sequential(Scaler())
    assert [n for n, _ in m.named_parameters()] == ["0.scale"]
    assert [n for n, _ in m.named_buffers()] == ["0.count", "0.cache"]
    assert list(m.state_dict()) == ["0.scale", "0.count"]
    m[0].count = Tensor(np.array([5.0]))  # replacing a buffer keeps it a buffer
    assert [n for n, _ in m.named_parameters()] == ["0.scale"]
    copy = nn.Sequential(Scaler())
    copy.load_state_dict(m.state_dict())
    assert copy[0].count.data[0] == 5.0
    with pytest.raises(nn.StateDictError, match=r"missing keys \['0\.count'\]"):
        copy.load_state_dict({"0.scale": np.ones(2)})
    with pytest.raises(TypeError, match="must be a Tensor"):
        m[0].register_buffer("bad", np.zeros(1))


def test_a_parameter_assigned_to_a_buffer_name_becomes_a_parameter_like_pytorch():
    """It stayed a buffer, so no optimizer built from parameters() would ever train it."""
    m = nn.Module()
    m.register_buffer("b", Tensor(np.zeros(1)), persistent=False)
    m.b = nn.Parameter(np.ones(3))
    assert [n for n, _ in m.named_parameters()] == ["b"]
    assert [n for n, _ in m.named_buffers()] == [] and list(m.state_dict()) == ["b"]
    m.register_buffer("c", Tensor(np.zeros(1)))
    m.c = None  # None (and a plain Tensor) keep the buffer's place, as in PyTorch
    assert "c" in m._buffers and "c" not in m._parameters
    torch = pytest.importorskip("torch")
    t = torch.nn.Module()
    t.register_buffer("b", torch.zeros(1), persistent=False)
    t.b = torch.nn.Parameter(torch.ones(3))
    assert [n for n, _ in t.named_parameters()] == ["b"] and list(t.state_dict()) == ["b"]


def test_train_eval_apply_modules_and_repr():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=0),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.Dropout(0.25), nn.Flatten()),
    )
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert net[3][0].training
    assert [n for n, _ in net.named_modules()] == ["", "0", "1", "2", "3", "3.0", "3.1"]
    assert len(list(net.children())) == 4
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "Dropout",
        "Flatten",
        "Sequential",
        "Sequential",
    ]
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=1, padding=1)\n"
        "  (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Sequential(\n"
        "    (0): Dropout(p=0.25)\n"
        "    (1): Flatten(start_axis=1)\n"
        "  )\n"
        ")"
    )
    assert net.requires_grad_(False) is net and not any(p.requires_grad for p in net.parameters())


def test_shared_modules_are_visited_once():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.Tanh(), shared)
    assert [n for n, _ in net.named_modules()] == ["", "0", "1"]
    assert len(list(net.parameters())) == 2


# ----------------------------------------------------------------------------- layers
def test_batchnorm_layer_matches_pytorch_over_training_and_eval():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1
        y = ours(Tensor(x))
        np.testing.assert_allclose(y.data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    state = ours.state_dict()
    reference = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert list(state) == list(reference)  # loads PyTorch BatchNorm state dicts by name
    for key in state:
        np.testing.assert_allclose(state[key], reference[key], rtol=1e-5)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(
        ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5
    )
    cumulative = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((5, 2)) for _ in range(3)]
    for batch in batches:
        cumulative(Tensor(batch))
    np.testing.assert_allclose(
        cumulative.running_mean.data, np.mean([b.mean(0) for b in batches], 0), rtol=1e-5
    )
    with pytest.raises(
        tg.ShapeError, match=r"BatchNorm2d\(3\): input shape \(2, 2, 2, 2\) has 2 channels"
    ):
        ours(Tensor(np.ones((2, 2, 2, 2))))
    with pytest.raises(tg.ShapeError, match="expects a 2 or 3-d input"):
        cumulative(Tensor(np.ones((2, 2, 2, 2))))


def test_layers_without_running_statistics_or_affine():
    bn = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    y = bn(Tensor(np.array([[1.0, 2.0], [3.0, 6.0]])))
    np.testing.assert_allclose(y.data, [[-1, -1], [1, 1]], rtol=1e-4)
    assert list(bn.parameters()) == [] and bn.state_dict() == {}
    assert nn.LayerNorm(3, elementwise_affine=False).state_dict() == {}


def test_dropout_layer_reproducible_and_identity_in_eval():
    x = Tensor(np.ones((4, 8)))
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=3)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)  # the layer's generator moves on
    assert a.eval()(x) is x
    with pytest.raises(ValueError, match="p must lie"):
        nn.Dropout(-0.1)


def test_layer_constructors_and_shapes():
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 6, 6)).astype(np.float32))
    conv = nn.Conv2d(4, 6, 3, stride=(1, 2), padding=(1, 0), groups=2, dilation=(2, 1))
    assert conv.weight.shape == (6, 2, 3, 3) and conv(x).shape == (2, 6, 4, 2)
    assert "groups=2" in repr(conv) and "dilation=(2, 1)" in repr(conv)
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    assert (
        up.weight.shape == (4, 2, 3, 3) and up.bias.shape == (2,) and up(x).shape == (2, 2, 12, 12)
    )
    assert nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)(x).shape == (2, 4, 4, 4)
    assert nn.AvgPool2d(2)(x).shape == (2, 4, 3, 3)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 4, 1, 1)
    assert nn.Upsample(scale_factor=2, mode="bilinear")(x).shape == (2, 4, 12, 12)
    assert nn.LayerNorm((6, 6))(x).shape == x.shape
    emb = nn.Embedding(10, 3, padding_idx=0, rng=0)
    assert emb(np.array([[0, 9]])).shape == (1, 2, 3) and not emb.weight.data[0].any()
    assert nn.Identity()(x) is x
    with pytest.raises(ValueError, match="groups=4 must divide in_channels=6"):
        nn.Conv2d(6, 8, 3, groups=4)


def test_load_state_dict_refuses_non_numeric_arrays_before_assigning_anything():
    """A string array of the right shape in the last entry must not leave earlier ones loaded."""
    model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Linear(2, 1, rng=1))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    bad = {k: np.zeros_like(v) for k, v in before.items()}
    bad["1.bias"] = np.array(["x"])
    with pytest.raises(nn.StateDictError, match=r"'1\.bias' holds <U1 data, not numbers"):
        model.load_state_dict(bad)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


# ----------------------------------------------------------------------------- freeze
def test_freeze_stops_training_every_parameter_and_unfreeze_undoes_it():
    model = nn.Sequential(nn.Linear(3, 5, rng=0), nn.Sigmoid(), nn.Linear(5, 1, rng=1))
    model(Tensor(np.ones((2, 3)))).sum().backward()
    before = model.state_dict()
    arrays = [parameter.data for parameter in model.parameters()]
    assert model.freeze() is model
    for parameter, array in zip(model.parameters(), arrays):
        assert not parameter.requires_grad and parameter.grad is None
        assert parameter.data is array  # the same arrays: nothing copied
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    out = model(Tensor(np.ones((2, 3))))
    assert not out.requires_grad
    assert model.unfreeze() is model
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_a_frozen_model_loads_a_state_dict_and_stays_frozen():
    model = nn.Linear(3, 2, rng=0).freeze()
    state = {"weight": np.full((2, 3), 2, dtype=np.int64), "bias": np.array([1.0, -1.0])}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32 and not model.weight.requires_grad  # its own dtype
    np.testing.assert_array_equal(model.weight.data, np.full((2, 3), 2.0))
    np.testing.assert_array_equal(model.bias.data, [1.0, -1.0])
    with pytest.raises(tg.nn.StateDictError, match="shape"):
        model.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    np.testing.assert_array_equal(model.weight.data, np.full((2, 3), 2.0))  # untouched


def test_an_optimizer_leaves_frozen_parameters_alone():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 1, rng=1))
    model[0].freeze()
    frozen = model[0].weight.data
    optimizer = tg.optim.SGD(model.parameters(), lr=0.5)
    loss = model(Tensor(np.ones((2, 3)))).sum()
    loss.backward()
    optimizer.step()
    assert model[0].weight.data is frozen and model[0].weight.grad is None
    assert model[1].weight.grad is not None


# ----------------------------------------------------------------------------- versions
def _versions(module: nn.Module) -> dict[str, int]:
    return {name: t._version for name, t in module._state_tensors().items()}


def test_load_state_dict_bumps_exactly_the_loaded_tensors():
    net = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.Linear(4, 2, rng=1))
    before = _versions(net)
    net.load_state_dict({"0.weight": np.ones((4, 3)), "1.running_mean": np.ones(4)}, strict=False)
    after = _versions(net)
    assert {k for k in after if after[k] != before[k]} == {"0.weight", "1.running_mean"}
    assert after["0.weight"] == before["0.weight"] + 1
    net.freeze()  # frozen parameters are loaded (and bumped) as well
    before = _versions(net)
    net.load_state_dict(net.state_dict())
    assert all(after == before[k] + 1 for k, after in _versions(net).items())


def test_freeze_and_unfreeze_change_no_values_and_bump_nothing():
    net = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=1))
    net[0].freeze()
    net.freeze()
    net[1].unfreeze()
    assert [p._version for p in net.parameters()] == [0, 0, 0, 0]


def test_a_training_batchnorm_bumps_its_buffers_once_per_batch_and_eval_does_not():
    bn = nn.BatchNorm1d(3)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    bn(x)
    bn(x)
    assert [t._version for t in bn.buffers()] == [2, 2, 2]
    assert [p._version for p in bn.parameters()] == [0, 0]
    bn.eval()(x)
    assert [t._version for t in bn.buffers()] == [2, 2, 2]


def test_a_refused_batch_leaves_batchnorm_counting_nothing():
    bn = nn.BatchNorm1d(3, momentum=None)
    with pytest.raises(ValueError, match="more than one value"):
        bn(Tensor(np.ones((1, 3), np.float32)))
    assert int(bn.num_batches_tracked.data) == 0 and bn.num_batches_tracked._version == 0
    bn(Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)))
    np.testing.assert_allclose(bn.running_mean.data, [1.5, 2.5, 3.5])  # momentum 1/1


def test_embedding_padding_row_zeroed_in_place_is_a_new_version():
    assert nn.Embedding(4, 2, padding_idx=1).weight._version == 1
    assert nn.Embedding(4, 2).weight._version == 0


# ----------------------------------------------------------------------------- member names
class _Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(np.ones(2))
        self.register_buffer("stat", Tensor(np.zeros(2)))
        self.child = nn.Linear(2, 2, rng=0)
        self.note = "plain attribute"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m, t: m.register_parameter("child.weight", t), KeyError, 'contain "."'),
        (lambda m, t: m.register_parameter("", t), KeyError, "empty"),
        (lambda m, t: m.register_parameter(3, t), TypeError, "should be a string"),
        (lambda m, t: m.register_parameter("stat", t), KeyError, "'stat' already exists"),
        (lambda m, t: m.register_parameter("child", t), KeyError, "'child' already exists"),
        (lambda m, t: m.register_parameter("forward", t), KeyError, "'forward' already exists"),
        (lambda m, t: m.register_parameter("note", t), KeyError, "'note' already exists"),
        (lambda m, t: m.register_parameter("w", np.ones(2)), TypeError, "Tensor or None"),
        (lambda m, t: m.register_buffer("a.b", t), KeyError, 'contain "."'),
        (lambda m, t: m.register_buffer("", t), KeyError, "empty"),
        (lambda m, t: m.register_buffer(None, t), TypeError, "should be a string"),
        (lambda m, t: m.register_buffer("weight", t), KeyError, "'weight' already exists"),
        (lambda m, t: m.register_buffer("training", t), KeyError, "'training' already exists"),
        (lambda m, t: m.add_module("a.b", nn.Tanh()), KeyError, 'contain "."'),
        (lambda m, t: m.add_module("", nn.Tanh()), KeyError, "empty"),
        (lambda m, t: m.add_module(0, nn.Tanh()), TypeError, "should be a string"),
        (lambda m, t: m.add_module("weight", nn.Tanh()), KeyError, "'weight' already exists"),
        (lambda m, t: m.add_module("x", t), TypeError, "Module or None"),
        (lambda m, t: setattr(m, "child.weight", t), KeyError, 'contain "."'),
        (lambda m, t: setattr(m, "", nn.Tanh()), KeyError, "empty"),
        (lambda m, t: setattr(m, "forward", t), KeyError, "'forward' already exists"),
        (lambda m, t: setattr(m, "eval", nn.Tanh()), KeyError, "'eval' already exists"),
    ],
)
def test_member_names_are_refused_like_pytorch_and_nothing_changes(call, error, message):
    module = _Holder()
    before = (module.state_dict(), dict(module.__dict__), list(module.named_modules()))
    with pytest.raises(error, match=message):
        call(module, Tensor(np.full(2, 5.0)))
    assert list(module.state_dict()) == list(before[0])
    assert dict(module.__dict__) == before[1]
    assert list(module.named_modules()) == before[2]


def test_members_can_still_be_replaced_and_plain_attributes_become_members():
    module = _Holder()
    module.register_parameter("weight", nn.Parameter(np.zeros(2)))  # same kind: replaced
    module.register_buffer("stat", None)
    module.note = Tensor(np.ones(1))  # a plain attribute may become a parameter (PyTorch)
    module.add_module("child", nn.Tanh())
    module.add_module("extra", None)
    assert list(module.state_dict()) == ["weight", "note"]
    assert module.extra is None and isinstance(module.child, nn.Tanh)


_NAMES = ["w", "b", "", ".", "a.b", "child", "forward", "training", "stat", "weight"]


def _register(module: nn.Module, kind: str, name: str) -> None:
    tensor, child = Tensor(np.zeros(1)), nn.Linear(1, 1, rng=0)
    if kind == "parameter":
        module.register_parameter(name, tensor)
    elif kind == "buffer":
        module.register_buffer(name, tensor)
    elif kind == "module":
        module.add_module(name, child)
    else:
        setattr(module, name, tensor if kind == "setattr-tensor" else child)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["parameter", "buffer", "module", "setattr-tensor", "setattr-module"]),
            st.sampled_from(_NAMES),
        ),
        max_size=12,
    )
)
def test_every_member_is_reachable_by_its_state_dict_name(actions):
    """Whatever sequence of registrations is tried, each either raises and changes nothing, or
    leaves a module whose state_dict names exactly its tensors, each reachable by its path."""
    module = nn.Sequential(_Holder())
    inner = module[0]
    for kind, name in actions:
        before = (list(module.state_dict()), dict(inner.__dict__))
        try:
            _register(inner, kind, name)
        except (KeyError, TypeError):
            assert (list(module.state_dict()), dict(inner.__dict__)) == before
        state = module._state_tensors()
        for path, t in state.items():
            owner = module
            for part in path.split("."):
                owner = getattr(owner, part) if part else None
            assert owner is t, path
        members = [*inner._parameters.values(), *inner._buffers.values()]
        assert {id(t) for t in members if t is not None} <= {id(t) for t in state.values()}


# ----------------------------------------------------------------------------- load_state_dict
def _bn_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.Linear(4, 2, rng=1))


def _snapshot(module: nn.Module) -> dict[str, tuple]:
    return {
        k: (t.data, t.data.copy(), t._version, t.data.flags.writeable)
        for k, t in module._state_tensors().items()
    }


def _unchanged(module: nn.Module, snapshot: dict[str, tuple]) -> None:
    for key, t in module._state_tensors().items():
        array, values, version, writeable = snapshot[key]
        assert t.data is array and t._version == version, key
        assert t.data.flags.writeable == writeable, key
        np.testing.assert_array_equal(t.data, values)


_BAD_VALUES = {
    "wrong shape": lambda v: np.zeros((*v.shape, 1)),
    "transposed": lambda v: np.zeros(v.shape[::-1]) if v.ndim == 2 else np.zeros(v.size + 1),
    "string": lambda v: "0.5",
    "string array": lambda v: np.full(v.shape, "x"),
    "None": lambda v: None,
    "nested dict": lambda v: {"data": v},
    "ragged list": lambda v: [[1.0], [1.0, 2.0]],
    "object array": lambda v: np.full(v.shape, None, dtype=object),
    "complex": lambda v: v.astype(complex),
    "float into an int buffer": lambda v: v.astype(np.float64) + 0.5,
    "a module": lambda v: nn.Tanh(),
}
_GOOD_VALUES = {
    "same": lambda v: v,
    "read-only": lambda v: np.lib.stride_tricks.as_strided(v, writeable=False),
    "other dtype": lambda v: v.astype(np.float64 if v.dtype.kind == "f" else np.int32),
    "list": lambda v: v.tolist(),
    "tensor": lambda v: Tensor(v.copy(), dtype=v.dtype),
}


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10),
            st.sampled_from([*_BAD_VALUES, *_GOOD_VALUES, "drop", "extra key", "int key"]),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
    st.sampled_from(["writable", "frozen", "read-only"]),
)
def test_a_malformed_state_dict_changes_nothing(edits, strict, arrays):
    """Random malformed entries (wrong shapes and types, strings, None, dicts, missing and extra
    keys, floats for the integer counter) anywhere in the dict: refused with one
    StateDictError and nothing changed; well-formed ones (read-only, other dtypes, lists,
    Tensors) load completely, into writable, frozen and read-only arrays alike."""
    net = _bn_net()
    if arrays == "frozen":
        net.freeze()
    for t in net._state_tensors().values() if arrays == "read-only" else ():
        t.data = np.lib.stride_tricks.as_strided(t.data, writeable=False)
    source = {k: v + 1 for k, v in net.state_dict().items()}
    keys = list(source)
    state: dict = dict(source)
    bad_keys, bad_structure = set(), False
    for position, edit in edits:
        key = keys[position % len(keys)]
        if edit == "drop":
            state.pop(key, None)
            bad_keys.discard(key)
            bad_structure |= strict
        elif edit in ("extra key", "int key"):
            state["extra" if edit == "extra key" else 7] = np.zeros(1)
            bad_structure |= strict
        elif edit in _BAD_VALUES:
            if edit == "float into an int buffer" and source[key].dtype.kind == "f":
                continue
            state[key] = _BAD_VALUES[edit](source[key])
            bad_keys.add(key)
        elif key in state:
            state[key] = _GOOD_VALUES[edit](source[key])
            bad_keys.discard(key)
    bad = bad_structure or bool(bad_keys)
    snapshot = _snapshot(net)
    if bad:
        with pytest.raises(nn.StateDictError):
            net.load_state_dict(state, strict=strict)
        _unchanged(net, snapshot)
        return
    result = net.load_state_dict(state, strict=strict)
    assert set(result.missing_keys) == set(keys) - set(state)
    for key, t in net._state_tensors().items():
        array, values, version, writeable = snapshot[key]
        expected = source[key] if key in state else values
        np.testing.assert_array_equal(t.data, expected.astype(t.dtype))
        assert t._version == version + (key in state)
        assert t.data.flags.writeable == writeable
        assert (t.data is array) == (writeable or key not in state)


def test_load_state_dict_refuses_what_is_not_a_mapping():
    with pytest.raises(TypeError, match="mapping of names to arrays, got list"):
        small_net().load_state_dict([("0.weight", np.zeros((4, 3)))])


def test_load_state_dict_names_every_problem_at_once():
    state = small_net().state_dict()
    state["0.bias"], state["2.weight"] = None, np.zeros(3)
    with pytest.raises(nn.StateDictError, match=r"'0\.bias' holds a NoneType.*'2\.weight'"):
        small_net().load_state_dict(state)


def test_loading_arrays_that_alias_each_other_swaps_correctly():
    net = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Linear(2, 2, rng=1))
    w0, w1 = net[0].weight.data.copy(), net[1].weight.data.copy()
    swapped = {"0.weight": net[1].weight.data, "1.weight": net[0].weight.data}
    net.load_state_dict(swapped, strict=False)
    np.testing.assert_array_equal(net[0].weight.data, w1)
    np.testing.assert_array_equal(net[1].weight.data, w0)


def test_a_read_only_parameter_gets_a_read_only_array_of_the_loaded_values():
    layer = nn.Linear(2, 2, rng=0)
    layer.weight.data = np.lib.stride_tricks.as_strided(layer.weight.data, writeable=False)
    layer.load_state_dict({"weight": np.full((2, 2), 3.0)}, strict=False)
    np.testing.assert_array_equal(layer.weight.data, np.full((2, 2), 3.0))
    assert not layer.weight.data.flags.writeable and layer.weight.dtype == np.float32


# ----------------------------------------------------------------------------- constructors
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: nn.Conv2d(2, 2, 3, stride=2, padding="same"),
            ValueError,
            "padding='same' is not supported for strided convolutions",
        ),
        (lambda: nn.Conv2d(2, 2, 3, padding="full"), ValueError, "'valid' or 'same'"),
        (lambda: nn.Conv2d(2, 2, 3, padding=-1), ValueError, "padding must be >= 0"),
        (lambda: nn.Conv2d(2, 2, 3, stride=0), ValueError, "stride must be >= 1"),
        (lambda: nn.Conv2d(2, 2, 3, dilation=(1, 0)), ValueError, "dilation must be >= 1"),
        (lambda: nn.Conv2d(2, 2, (3,)), ValueError, "kernel_size must be an int or a pair"),
        (lambda: nn.Conv2d(2, 2, 2.5), ValueError, "kernel_size must be an int or a pair"),
        (lambda: nn.Conv2d(2.0, 2, 3), ValueError, "in_channels must be a positive int"),
        (lambda: nn.Conv2d(0, 2, 3), ValueError, "in_channels must be a positive int"),
        (lambda: nn.Conv2d(4, 4, 3, groups=0), ValueError, "groups must be a positive int"),
        (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "groups=4 must divide"),
        (lambda: nn.Conv2d(2, 2, 3, dtype=np.int64), TypeError, "floating-point"),
        (lambda: nn.Conv2d(2, 2, 3, dtype="nonsense"), TypeError, "floating-point"),
        (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), ValueError, "pair of ints"),
        (
            lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2),
            ValueError,
            "output_padding",
        ),
        (lambda: nn.ConvTranspose2d(2, 2, 3, stride=(1, 0)), ValueError, "stride must be >= 1"),
        (lambda: nn.Linear(3, -1), ValueError, "out_features must be a positive int"),
        (lambda: nn.Linear(3, 2, dtype=np.int32), TypeError, "floating-point"),
        (lambda: nn.MaxPool2d(0), ValueError, "kernel_size must be >= 1"),
        (lambda: nn.MaxPool2d(2, padding=2), ValueError, "at most half the kernel"),
        (lambda: nn.MaxPool2d(2, stride=-1), ValueError, "stride must be >= 1"),
        (lambda: nn.MaxPool2d(2, dilation=0), ValueError, "dilation must be >= 1"),
        (lambda: nn.AvgPool2d((2, 2, 2)), ValueError, "kernel_size must be an int or a pair"),
        (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "output_size must be an int >= 1"),
        (lambda: nn.AdaptiveAvgPool2d((2, 2, 2)), ValueError, "output_size"),
        (lambda: nn.Upsample(), ValueError, "exactly one of size and scale_factor"),
        (lambda: nn.Upsample(size=2, mode="bicubic"), ValueError, "mode must be one of"),
        (lambda: nn.Upsample(scale_factor=-2), ValueError, "scale_factor must be a finite"),
        (lambda: nn.Upsample(size=(0, 2)), ValueError, "size must be >= 1"),
        (lambda: nn.Upsample(size=2, align_corners=True), ValueError, "align_corners only"),
        (lambda: nn.Dropout("0.5"), ValueError, r"p must lie in \[0, 1\]"),
        (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be a positive int"),
        (lambda: nn.BatchNorm1d(3, momentum=2.0), ValueError, r"momentum must lie in \[0, 1\]"),
        (lambda: nn.BatchNorm1d(3, eps=-1e-5), ValueError, "eps must be a number >= 0"),
        (lambda: nn.LayerNorm(()), ValueError, "at least one axis"),
        (lambda: nn.LayerNorm(3.5), TypeError, "normalized_shape must be an int or a tuple"),
        (lambda: nn.LayerNorm(None), TypeError, "normalized_shape must be an int or a tuple"),
        (lambda: nn.LayerNorm((3, 0)), ValueError, r"normalized_shape\[1\] must be a positive"),
        (lambda: nn.Embedding(4, 2, padding_idx=4), ValueError, r"padding_idx must be an int"),
        (lambda: nn.Embedding(4, 2, padding_idx=-5), ValueError, r"padding_idx must be an int"),
        (lambda: nn.Flatten("1"), TypeError, "start_axis must be an int"),
    ],
)
def test_layer_constructors_refuse_what_would_only_fail_at_the_first_call(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_pytorch_refuses_strided_same_padding_in_the_constructor_too():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        torch.nn.Conv2d(2, 2, 3, stride=2, padding="same")


_SETTING = st.one_of(
    st.integers(-1, 3),
    st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
    st.sampled_from(["same", "valid", "full", 2.5, None, (1, 2, 3), True]),
)


@st.composite
def layer_and_input(draw):
    """A layer built from random, often invalid settings, and an input it should accept."""
    kind = draw(st.sampled_from(["conv", "conv_t", "max", "avg", "adaptive", "upsample"]))
    s = {name: draw(_SETTING) for name in ("a", "b", "c", "d", "e")}
    x = Tensor(np.random.default_rng(0).standard_normal((1, 4, 12, 12)).astype(np.float32))
    builders = {
        "conv": lambda: nn.Conv2d(4, 2, s["a"], s["b"], s["c"], s["d"], rng=0),
        "conv_t": lambda: nn.ConvTranspose2d(4, 2, s["a"], s["b"], s["c"], s["e"], 1, True, s["d"]),
        "max": lambda: nn.MaxPool2d(s["a"], s["b"], s["c"], s["d"]),
        "avg": lambda: nn.AvgPool2d(s["a"], s["b"], s["c"]),
        "adaptive": lambda: nn.AdaptiveAvgPool2d(s["a"]),
        "upsample": lambda: nn.Upsample(s["a"], s["b"], draw(st.sampled_from(["nearest", "x"]))),
    }
    return kind, builders[kind], x


@given(layer_and_input())
def test_a_layer_that_constructs_accepts_a_big_enough_input(case):
    """The class of bug: settings a constructor accepted that fail at the first call. Whatever
    the settings, the constructor refuses them with a ValueError/TypeError, or the layer runs."""
    kind, build, x = case
    try:
        layer = build()
    except (ValueError, TypeError) as error:
        names = {"conv": "Conv2d", "conv_t": "ConvTranspose2d", "max": "MaxPool2d"}
        names |= {"avg": "AvgPool2d", "adaptive": "AdaptiveAvgPool2d", "upsample": "Upsample"}
        assert str(error).startswith(f"{names[kind]}: ")  # ours, naming the layer
        return
    y = layer(x)
    assert y.ndim == 4 and (np.isfinite(y.data).all() or kind == "max")
