"""nn modules: parameter naming, state dicts, parameters and buffers, train/eval, freeze, version
counters, member names, and loading state dicts (all or nothing)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn


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


# ----------------------------------------------------------------------------- PyTorch's tensors
def _torch_and_ours(torch, kind: str):
    """A PyTorch module and ours of the same kind and sizes (float32, PyTorch's defaults)."""
    pairs = {
        "Linear": (lambda lib: lib.Linear(3, 2)),
        "Conv1d": (lambda lib: lib.Conv1d(2, 3, 3, padding="same")),
        "BatchNorm2d": (lambda lib: lib.BatchNorm2d(3)),
        "GroupNorm": (lambda lib: lib.GroupNorm(2, 4)),
        "Embedding": (lambda lib: lib.Embedding(5, 3)),
        "LSTM": (lambda lib: lib.LSTM(3, 4, num_layers=2, bidirectional=True)),
        "GRU": (lambda lib: lib.GRU(3, 4, batch_first=True)),
        "MultiheadAttention": (lambda lib: lib.MultiheadAttention(4, 2)),
        "TransformerEncoderLayer": (lambda lib: lib.TransformerEncoderLayer(4, 2, 8)),
    }
    make = pairs[kind]
    return make(torch.nn), make(nn)


@pytest.mark.parametrize(
    "kind",
    [
        "Linear",
        "Conv1d",
        "BatchNorm2d",
        "GroupNorm",
        "Embedding",
        "LSTM",
        "GRU",
        "MultiheadAttention",
        "TransformerEncoderLayer",
    ],
)
def test_a_pytorch_state_dict_loads_as_it_is(kind):
    """``load_state_dict(torch_module.state_dict())``: no conversion by the user, same keys,
    the values copied (a later change on PyTorch's side does not reach ours)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs, ours = _torch_and_ours(torch, kind)
    with torch.no_grad():
        for value in theirs.state_dict().values():
            if value.is_floating_point():
                value.normal_()
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    loaded = ours.state_dict()
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(loaded[key], value.numpy(), err_msg=key)
        assert loaded[key].dtype == value.numpy().dtype, key
    with torch.no_grad():
        next(iter(theirs.parameters())).add_(1.0)
    for key, value in loaded.items():
        np.testing.assert_array_equal(ours.state_dict()[key], value)


def test_pytorch_parameters_that_record_gradients_load_too():
    """Parameters themselves (``requires_grad=True``), not only ``state_dict``'s detached views."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(3, 2)
    ours = nn.Linear(3, 2)
    ours.load_state_dict(dict(theirs.named_parameters()))
    np.testing.assert_array_equal(ours.weight.data, theirs.weight.detach().numpy())
    np.testing.assert_array_equal(ours.bias.data, theirs.bias.detach().numpy())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda torch: torch.zeros(2, 3, dtype=torch.bfloat16), "'weight' holds no array"),
        (lambda torch: torch.zeros(2, 3, dtype=torch.complex64), "'weight' holds complex64"),
        (lambda torch: torch.zeros(3, 2), r"'weight' has shape \(3, 2\)"),
        (lambda torch: torch.zeros(2, 3, device="meta"), "'weight' holds no array"),
    ],
)
def test_a_pytorch_tensor_that_does_not_fit_is_refused_and_nothing_changes(make, message):
    torch = pytest.importorskip("torch")
    layer = nn.Linear(3, 2, rng=0)
    before = layer.state_dict()
    with pytest.raises(nn.StateDictError, match=message):
        layer.load_state_dict({"weight": make(torch), "bias": torch.ones(2)})
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
