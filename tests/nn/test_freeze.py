"""``Module.freeze()`` / ``unfreeze()``, ``load_into`` and the frozen-kernel path of the layout
cache.

The promises: a frozen parameter's array never changes; every computation with a frozen model
equals the same computation with the plain model bit for bit; the layout cache never serves the
layouts of another array (not even a dead frozen array whose ``id()`` was reused), nor of another
dtype or shape; frozen and plain kernels with equal contents give correct results in any call
order, also from several threads.
"""

from __future__ import annotations

import copy
import pickle
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.compile import compile as tg_compile
from tinygrad_edu.kernels.frozen import frozen_copy, is_frozen
from tinygrad_edu.kernels.layout_cache import LAYOUTS, LayoutCache


def frozen_twin(module: nn.Module) -> nn.Module:
    """An independent copy of ``module``, frozen."""
    return copy.deepcopy(module).freeze()


def same(a: np.ndarray, b: np.ndarray) -> None:
    """Bit for bit: equal dtype, shape and bytes (NaNs in the same places)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


class no_layout_cache:
    """Every re-layout computed afresh (the reference the cache must reproduce)."""

    def __enter__(self) -> None:
        self.saved = LAYOUTS.min_bytes
        LAYOUTS.min_bytes = sys.maxsize

    def __exit__(self, *exc) -> None:
        LAYOUTS.min_bytes = self.saved


def frozen_array(values: np.ndarray) -> np.ndarray:
    """A frozen array that is ONE ndarray object straight over ``bytes`` (no base array), so
    that its ``id()`` can be steered onto a dead array's."""
    return np.ndarray(values.shape, values.dtype, buffer=values.tobytes())


def reuse_id(ident: int, values: np.ndarray) -> np.ndarray:
    """A new frozen array of ``values`` whose ``id()`` is ``ident`` (a dead array's): allocate,
    keeping every miss alive, until CPython hands that address out again."""
    kept, data = [], values.tobytes()  # one buffer shared by every candidate
    for _ in range(100_000):
        candidate = np.ndarray(values.shape, values.dtype, buffer=data)
        if id(candidate) == ident:
            return candidate
        kept.append(candidate)
    pytest.fail("could not reuse the dead array's id")


# ----------------------------------------------------------------------------- every layer kind
def _layers(dtype):
    return {
        "linear": (lambda: nn.Linear(7, 5, rng=0, dtype=dtype), (3, 7)),
        "conv": (lambda: nn.Conv2d(64, 64, 3, padding=1, rng=0, dtype=dtype), (2, 64, 6, 6)),
        "conv_groups": (
            lambda: nn.Conv2d(64, 64, 3, padding=1, groups=2, rng=0, dtype=dtype),
            (2, 64, 6, 6),
        ),
        "conv_dilation_stride": (
            lambda: nn.Conv2d(8, 6, 3, stride=2, padding=2, dilation=2, rng=0, dtype=dtype),
            (2, 8, 9, 9),
        ),
        "conv_unequal_stride": (
            lambda: nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 0), rng=0, dtype=dtype),
            (1, 4, 7, 8),
        ),
        "conv_transpose": (
            lambda: nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, rng=0, dtype=dtype),
            (1, 64, 5, 5),
        ),
        "conv_transpose_groups": (
            lambda: nn.ConvTranspose2d(6, 4, 3, stride=1, groups=2, dilation=2, rng=0, dtype=dtype),
            (2, 6, 5, 5),
        ),
        "batchnorm": (lambda: nn.BatchNorm2d(5, dtype=dtype), (4, 5, 3, 3)),
        "layernorm": (lambda: nn.LayerNorm((3, 4), dtype=dtype), (2, 3, 4)),
    }


def _perturbed(module: nn.Module) -> nn.Module:
    """Non-trivial values in every parameter (BatchNorm/LayerNorm start at 1 and 0)."""
    rng = np.random.default_rng(1)
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return module


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(_layers(np.float32)))
def test_every_layer_frozen_equals_plain_forward_input_grads_and_second_order(kind, dtype):
    make, shape = _layers(dtype)[kind]
    plain = _perturbed(make())
    frozen = frozen_twin(plain)
    assert all(is_frozen(p.data) for p in frozen.parameters())
    rng = np.random.default_rng(2)
    x_data = rng.standard_normal(shape).astype(dtype)
    for _ in range(2):  # the second call may take cached layouts
        xs = [Tensor(x_data.copy(), requires_grad=True) for _model in (plain, frozen)]
        outs = [model(x) for model, x in zip((plain, frozen), xs)]
        same(outs[0].data, outs[1].data)
        weights = rng.standard_normal(outs[0].shape).astype(dtype)
        losses = [((o * weights) ** 2).sum() for o in outs]
        grads = [tg.grad(loss, [x], create_graph=True)[0] for loss, x in zip(losses, xs)]
        same(grads[0].data, grads[1].data)
        second = [tg.grad((g * g).sum(), [x])[0] for g, x in zip(grads, xs)]
        same(second[0].data, second[1].data)
    for p, q in zip(plain.parameters(), frozen.parameters()):
        same(p.data, q.data)  # nothing moved
    for b, c in zip(plain.buffers(), frozen.buffers()):
        same(b.data, c.data)  # BatchNorm's running statistics updated alike (train mode)


def test_batchnorm_buffers_are_not_frozen_and_keep_updating():
    plain = _perturbed(nn.BatchNorm2d(3))
    frozen = frozen_twin(plain)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32))
    for _ in range(3):
        frozen(x)
        plain(x)
    for name, buffer in frozen.named_buffers():
        assert not is_frozen(buffer.data), name
    assert int(frozen.num_batches_tracked.data) == 3
    assert not np.array_equal(frozen.running_mean.data, np.zeros(3, np.float32))
    same(frozen.running_var.data, plain.running_var.data)
    frozen.eval(), plain.eval()
    same(frozen(x).data, plain(x).data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_frozen_equals_plain(dtype):
    plain = nn.Embedding(10, 4, padding_idx=2, rng=0, dtype=dtype)
    frozen = frozen_twin(plain)
    idx = np.array([[0, 2, 9], [9, 9, 1]])
    same(plain(idx).data, frozen(idx).data)
    same(plain(Tensor(idx)).data, frozen(Tensor(idx)).data)


# ----------------------------------------------------------------------------- the layout cache
def _conv(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return nn.functional.conv2d(Tensor(x), Tensor(w), padding=1).data


def test_a_reused_id_of_a_dead_frozen_kernel_never_serves_its_layouts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 6, 6)).astype(np.float32)
    first = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)  # 147 KiB: cached
    w = frozen_array(first)
    assert is_frozen(w) and w.nbytes >= LAYOUTS.min_bytes
    _conv(w, x)
    second = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    ident = id(w)
    del w
    v = reuse_id(ident, second)
    with no_layout_cache():
        expected = _conv(second.copy(), x)
    same(_conv(v, x), expected)


@pytest.mark.parametrize(
    "other",
    [
        lambda a: a.astype(np.float64),  # another dtype, same values
        lambda a: a.reshape(64, 32, 3, 6)[:, :, :, :3].copy(),  # another shape
        lambda a: a[::-1].copy(),  # same shape, other contents
        lambda a: a.copy(),  # same contents: a plain kernel meeting a dead frozen one's id
    ],
)
def test_reused_ids_with_other_dtypes_and_shapes_get_their_own_layouts(other):
    cache = LayoutCache(min_bytes=0)
    made = []

    def make(w):
        made.append((w.dtype, w.shape))
        return np.ascontiguousarray(w.reshape(w.shape[0], -1).T) * 2

    base = np.random.default_rng(0).standard_normal((64, 64, 3, 3)).astype(np.float32)
    w = frozen_array(base)
    same(cache.get(w, "t", make), make(base))
    values = other(base)  # before the death: it must not take the dead array's address
    ident = id(w)
    del w
    v = reuse_id(ident, values)
    same(cache.get(v, "t", make), make(values))
    plain = values.copy()  # then a plain array with equal contents, and the frozen one again
    same(cache.get(plain, "t", make), make(values))
    same(cache.get(v, "t", make), make(values))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["plain", "frozen", "fresh", "edit", "other"]), max_size=12))
def test_frozen_and_plain_kernels_in_any_order(script):
    rng = np.random.default_rng(len(script))
    x = rng.standard_normal((1, 32, 5, 5)).astype(np.float32)
    values = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)  # 36 KiB: cached
    plain, frozen = values.copy(), frozen_copy(values)
    other = frozen_copy(rng.standard_normal((32, 32, 3, 3)).astype(np.float32))
    for step, action in enumerate(script):
        if action == "edit":
            plain[step % 32] += 1.0
            continue
        w = {"plain": plain, "frozen": frozen, "other": other}.get(action)
        if w is None:
            w = frozen_copy(plain)
        with no_layout_cache():
            expected = _conv(np.array(w), x)
        same(_conv(w, x), expected)


def test_frozen_grouped_convolution_views_give_right_answers_when_kernels_change():
    # the groups are views of the frozen kernel: new objects on every call
    layer = nn.Conv2d(64, 64, 3, padding=1, groups=2, rng=0)
    frozen = frozen_twin(layer)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 64, 5, 5)).astype(np.float32))
    for seed in range(3):
        new = nn.Conv2d(64, 64, 3, padding=1, groups=2, rng=seed + 1).state_dict()
        frozen.load_state_dict(new)
        layer.load_state_dict(new)
        same(frozen(x).data, layer(x).data)


def test_the_layout_cache_under_threads():
    cache = LayoutCache(min_bytes=0)  # the default bound: no eviction needed to race
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for i in range(1500):
                values = np.full((4, 4), float(rng.integers(0, 1000)))
                w = frozen_copy(values) if i % 2 else values
                if not np.array_equal(cache.get(w, "k", lambda w: w * 2), values * 2):
                    errors.append("a wrong layout")
        except Exception as exc:  # any failure is the finding
            errors.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


def test_convolutions_with_frozen_kernels_from_threads_while_others_die():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 32, 5, 5)).astype(np.float32)
    kernels = [frozen_copy(rng.standard_normal((32, 32, 3, 3)).astype(np.float32)) for _ in "ab"]
    with no_layout_cache():
        expected = [_conv(np.array(k), x) for k in kernels]
    results: list[bool] = []

    def steady(k: int) -> None:
        for _ in range(15):
            results.append(_conv(kernels[k], x).tobytes() == expected[k].tobytes())

    def churn(seed: int) -> None:
        r = np.random.default_rng(seed)
        for _ in range(15):
            values = r.standard_normal((32, 32, 3, 3)).astype(np.float32)
            w = frozen_copy(values)  # compared with a plain twin of equal contents
            results.append(_conv(w, x).tobytes() == _conv(values, x).tobytes())
            del w

    threads = [threading.Thread(target=steady, args=(k,)) for k in (0, 1)]
    threads += [threading.Thread(target=churn, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 60 and all(results)


# ----------------------------------------------------------------------------- sharing, twice
def test_tied_parameters_are_frozen_once_and_stay_tied():
    shared = nn.Linear(4, 4, rng=0)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    plain = copy.deepcopy(model)
    model.freeze()
    assert model[0].weight is model[2].weight and is_frozen(model[0].weight.data)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    same(model(x).data, plain(x).data)
    model.unfreeze()
    assert model[0].weight is model[2].weight and model[0].weight.requires_grad


def test_a_parameter_built_over_a_user_array_is_copied_by_freeze():
    user = np.arange(6.0).reshape(2, 3)
    layer = nn.Linear(3, 2, bias=False)
    layer.weight = nn.Parameter(user)
    assert np.shares_memory(layer.weight.data, user)
    layer.freeze()
    assert not np.shares_memory(layer.weight.data, user)
    user[...] = -1  # the user's array is still theirs to change; the frozen one never changes
    same(layer.weight.data, np.arange(6.0).reshape(2, 3))


def test_freeze_twice_and_unfreeze_twice():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=1))
    before = model.state_dict()
    model.freeze()
    arrays = [p.data for p in model.parameters()]
    model.freeze()
    assert all(p.data is a for p, a in zip(model.parameters(), arrays))  # no second copy
    model.unfreeze()
    writable = [p.data for p in model.parameters()]
    model.unfreeze()
    assert all(p.data is a for p, a in zip(model.parameters(), writable))
    for value, p in zip(before.values(), model.parameters()):
        same(p.data, value)
        assert p.requires_grad and p.data.flags.writeable


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
        lambda ps: tg.optim.Adam(ps, lr=0.01),
    ],
)
def test_unfreeze_then_train_equals_a_never_frozen_model(make_optimizer):
    never = nn.Sequential(nn.Linear(3, 8, rng=0), nn.Tanh(), nn.Linear(8, 1, rng=1))
    thawed = frozen_twin(never).unfreeze()
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 3)))
    y = Tensor(rng.standard_normal((5, 1)))
    runs = [(m, make_optimizer(list(m.parameters()))) for m in (never, thawed)]
    for _ in range(4):
        for model, optimizer in runs:
            optimizer.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            optimizer.step()
    for p, q in zip(never.parameters(), thawed.parameters()):
        same(p.data, q.data)


# ----------------------------------------------------------------------------- state dicts
def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.Linear(4, 2, rng=1))


def test_state_dict_round_trips_between_frozen_and_plain():
    plain, frozen = _mlp(), _mlp().freeze()
    source = _perturbed(_mlp())
    state = source.state_dict()
    frozen.load_state_dict(state)
    plain.load_state_dict(frozen.state_dict())
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    for model in (plain, frozen, source):
        model.eval()
    same(frozen(x).data, source(x).data)
    same(plain(x).data, source(x).data)
    assert all(is_frozen(p.data) for p in frozen.parameters())
    for name, value in frozen.state_dict().items():
        same(value, state[name])
        value[...] = 0  # snapshots are the caller's
    for name, value in frozen.state_dict().items():
        same(value, state[name])


def test_loading_never_aliases_the_callers_array():
    frozen = nn.Linear(3, 2, rng=0).freeze()
    weight = np.ones((2, 3), np.float32)
    view = weight[:]
    view.flags.writeable = False  # read-only, but its owner can still write
    frozen.load_state_dict({"weight": view, "bias": Tensor(np.zeros(2, np.float32))})
    weight[...] = 7
    same(frozen.weight.data, np.ones((2, 3), np.float32))
    assert is_frozen(frozen.weight.data) and is_frozen(frozen.bias.data)


def test_partial_loads_into_a_frozen_model():
    frozen = _mlp().freeze()
    kept = {name: p.data for name, p in frozen.named_parameters()}
    result = frozen.load_state_dict({"0.bias": np.full(4, 3.0)}, strict=False)
    assert "0.weight" in result.missing_keys and result.unexpected_keys == []
    same(frozen[0].bias.data, np.full(4, 3.0, np.float32))
    assert is_frozen(frozen[0].bias.data)
    for name, p in frozen.named_parameters():
        if name != "0.bias":
            assert p.data is kept[name], name


@pytest.mark.parametrize(
    "bad",
    [
        {"0.weight": np.zeros((3, 4))},  # transposed shape
        {"0.weight": np.zeros((4, 3), complex)},  # not real numbers
        {"0.weight": np.array([["a"] * 3] * 4)},  # strings
        {"2.bias": np.zeros(3)},  # the last entry is the wrong one
    ],
)
def test_a_bad_entry_changes_nothing_in_a_frozen_model(bad):
    frozen = _mlp().freeze()
    before = {name: t.data for name, t in frozen._state_tensors().items()}
    state = {k: np.full_like(v, 5) for k, v in frozen.state_dict().items()}
    state.update(bad)
    with pytest.raises(nn.StateDictError):
        frozen.load_state_dict(state)
    for name, t in frozen._state_tensors().items():
        assert t.data is before[name], name


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([np.int64, np.int8, np.uint16, np.bool_, np.float64, np.float16]),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=6, max_size=6),
)
def test_loading_other_dtypes_into_frozen_params_equals_loading_into_plain(dtype, values):
    with np.errstate(all="ignore"):
        value = np.array(values).reshape(2, 3)
        if np.dtype(dtype).kind != "f":
            value = np.nan_to_num(value, posinf=3, neginf=-3) % 100
        value = value.astype(dtype)
        plain = nn.Linear(3, 2, rng=0)
        frozen = frozen_twin(plain)
        plain.load_state_dict({"weight": value}, strict=False)
        frozen.load_state_dict({"weight": value}, strict=False)
    same(frozen.weight.data, plain.weight.data)
    assert frozen.weight.dtype == np.float32 and is_frozen(frozen.weight.data)


def test_a_checkpoint_of_a_frozen_model_round_trips(tmp_path):
    source = _perturbed(_mlp()).freeze()
    tg.save(source.state_dict(), tmp_path / "frozen.npz")
    target = _mlp().freeze()
    target.load_state_dict(tg.load(tmp_path / "frozen.npz"))
    assert all(is_frozen(p.data) for p in target.parameters())
    for p, q in zip(source.parameters(), target.parameters()):
        same(p.data, q.data)


@pytest.mark.parametrize(
    "how",
    [
        "deepcopy",
        "pickle2",
        "pickle4",
        "pickle5",
    ],
)
def test_a_copy_of_a_frozen_model_is_frozen(how):
    model = nn.Sequential(nn.Linear(3, 2, rng=0)).freeze()
    if how == "deepcopy":
        twin = copy.deepcopy(model)
    else:
        twin = pickle.loads(pickle.dumps(model, protocol=int(how[-1])))
    for p, q in zip(model.parameters(), twin.parameters()):
        same(p.data, q.data)
        assert not q.requires_grad
        assert is_frozen(q.data)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_copy_of_a_frozen_model_computes_the_same_and_never_writes_the_original(protocol):
    model = _perturbed(nn.Linear(3, 2, rng=0)).freeze()
    original = model.weight.data
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model, protocol=protocol))):
        x = Tensor(np.ones((1, 3), np.float32))
        same(twin(x).data, model(x).data)
        twin.unfreeze()
        twin.weight.data[...] = 0
        assert model.weight.data is original and is_frozen(original)
        assert np.any(original != 0)


# ----------------------------------------------------------------------------- optimizers, compile
def test_an_optimizer_over_a_partly_frozen_model_trains_the_rest_as_without_the_frozen_part():
    reference = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 1, rng=1))
    model = copy.deepcopy(reference)
    model[0].freeze()
    reference[0].requires_grad_(False)
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((6, 3))), Tensor(rng.standard_normal((6, 1)))
    runs = [(m, tg.optim.Adam(list(m.parameters()), lr=0.05)) for m in (reference, model)]
    for _ in range(3):
        for m, optimizer in runs:
            optimizer.zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            optimizer.step()
    for p, q in zip(reference.parameters(), model.parameters()):
        same(p.data, q.data)


def test_freezing_after_backward_then_stepping_leaves_the_frozen_part_alone():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 1, rng=1))
    optimizer = tg.optim.SGD(model.parameters(), lr=0.5)
    model(Tensor(np.ones((2, 3)))).sum().backward()
    model[1].freeze()
    kept = [p.data for p in model[1].parameters()]
    optimizer.step()
    assert all(p.data is k for p, k in zip(model[1].parameters(), kept))


def test_zero_grads_kept_as_zeros_do_not_break_a_step_with_frozen_parameters():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 1, rng=1))
    model[0].freeze()
    optimizer = tg.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    kept = [p.data for p in model[0].parameters()]
    for _ in range(2):
        optimizer.zero_grad(set_to_none=False)
        model(Tensor(np.ones((2, 3)))).sum().backward()
        optimizer.step()
    assert all(p.data is k and p.grad is None for p, k in zip(model[0].parameters(), kept))


def test_a_compiled_step_over_a_frozen_feature_extractor_equals_eager():
    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(3, 6, rng=0), nn.Tanh(), nn.Linear(6, 1, rng=1))

    eager, compiled = build(), build()
    eager[0].freeze(), compiled[0].freeze()
    e_opt = tg.optim.SGD(list(eager.parameters()), lr=0.1, momentum=0.5)
    c_opt = tg.optim.SGD(list(compiled.parameters()), lr=0.1, momentum=0.5)

    def error(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        e = model(x) - y
        return (e * e).mean()

    step = tg_compile(lambda x, y: error(compiled, x, y), c_opt)
    rng = np.random.default_rng(0)
    new_features = _perturbed(nn.Linear(3, 6)).state_dict()
    for i in range(6):
        if i == 4:  # after some replays: new frozen values (a new array, not an in-place copy)
            eager[0].load_state_dict(new_features)
            compiled[0].load_state_dict(new_features)
        x, y = Tensor(rng.standard_normal((4, 3))), Tensor(rng.standard_normal((4, 1)))
        e_opt.zero_grad()
        loss = error(eager, x, y)
        loss.backward()
        e_opt.step()
        same(step(x, y).data, loss.data)
    assert step.replays > 0
    for p, q in zip(eager.parameters(), compiled.parameters()):
        same(p.data, q.data)


# ----------------------------------------------------------------------------- hostile writes
HOSTILE = {
    "writeable flag": lambda a: setattr(a.flags, "writeable", True),
    "setflags": lambda a: a.setflags(write=True),
    "copyto": lambda a: np.copyto(a, 1.0),
    "ufunc out": lambda a: np.add(a, 1, out=a),
    "augmented": lambda a: a.__iadd__(1),
    "setitem": lambda a: a.__setitem__(..., 0),
    "fill": lambda a: a.fill(2),
    "sort": lambda a: a.sort(axis=None),
    "put": lambda a: np.put(a, [0], [9]),
    "as_strided writeable": lambda a: np.lib.stride_tricks.as_strided(a, writeable=True).fill(3),
    "ndarray over it": lambda a: np.ndarray(a.shape, a.dtype, buffer=a).fill(4),
    "view as ints": lambda a: a.view(np.uint8).fill(1),
    "memoryview": lambda a: memoryview(a).cast("B").__setitem__(0, 1),
    "reshape view": lambda a: a.reshape(-1).__setitem__(0, 5),
    "transpose view": lambda a: np.copyto(a.T, 0.0),
    "resize": lambda a: a.resize(a.size + 1, refcheck=False),
}


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_nothing_can_write_a_frozen_parameter(attack):
    layer = _perturbed(nn.Linear(3, 2, rng=0)).freeze()
    weight = layer.weight.data
    before = weight.copy()
    with pytest.raises((ValueError, TypeError)):
        HOSTILE[attack](weight)
    assert layer.weight.data is weight and is_frozen(weight)
    same(weight, before)


def test_engine_operations_never_write_a_frozen_parameter():
    layer = _perturbed(nn.Linear(3, 2, rng=0)).freeze()
    w = layer.weight
    before = w.data.copy()
    results = [w + 1, w * w, w.relu(), w.reshape(6), w.T, w[0], -w, w.exp(), w.sum(), abs(w)]
    results += [w.transpose(1, 0) @ w, Tensor.concatenate([w, w], axis=0), w.clip(-0.1, 0.1)]
    w2 = w
    w2 += 1  # rebinds w2 to a new Tensor, never writes the frozen array
    assert w2 is not w
    same(w.data, before)
    assert is_frozen(w.data) and all(isinstance(r, Tensor) for r in results)


# ----------------------------------------------------------------------------- VGG16
def test_a_frozen_vgg_computes_as_the_plain_one_and_refuses_bad_weights_untouched():
    from tinygrad_edu.models.vgg import WeightsError, vgg16

    plain = vgg16(rng=0)
    frozen = frozen_twin(plain)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32))
    for _ in range(2):
        same(frozen(x, until="block2_conv2").data, plain(x, until="block2_conv2").data)
    state = plain.state_dict()
    arrays = {k: v[::-1].copy() if v.ndim == 4 else v for k, v in state.items()}
    kept = {name: p.data for name, p in frozen.named_parameters()}
    bad = {**arrays, "features.28.weight": np.zeros((3, 3), np.float32)}
    with pytest.raises(WeightsError, match=r"features\.28\.weight"):
        frozen.load_weights(bad, "npz")
    assert all(p.data is kept[name] for name, p in frozen.named_parameters())
    frozen.load_weights(arrays, "npz")
    plain.load_weights(arrays, "npz")
    assert all(is_frozen(p.data) for p in frozen.parameters())
    same(frozen(x, until="block2_conv2").data, plain(x, until="block2_conv2").data)
    keras = {}  # Keras layouts: loading them hands load_into transposed, non-contiguous views
    for name, (path, _) in plain.keras_layers.items():
        if "_conv" in name:
            keras[f"{name}/0"] = np.ascontiguousarray(state[f"{path}.weight"].transpose(2, 3, 1, 0))
            keras[f"{name}/1"] = state[f"{path}.bias"]
    frozen.load_weights(keras, "keras_h5")
    plain.load_weights(keras, "keras_h5")
    for p, q in zip(plain.parameters(), frozen.parameters()):
        same(p.data, q.data)
        assert is_frozen(q.data) and q.data.flags.c_contiguous
    same(frozen(x, until="block2_conv2").data, plain(x, until="block2_conv2").data)


# ----------------------------------------------------------------------------- more cache attacks
@pytest.mark.parametrize("first", ["plain", "frozen"])
@pytest.mark.parametrize(
    "reinterpret",
    [
        lambda a: a.view(np.int32),  # the very same bytes as another dtype
        lambda a: a.reshape(32, 128, 3, 3),  # the very same bytes as another shape
        lambda a: a.reshape(64, 64, 9)[..., :4].reshape(64, 64, 2, 2).copy(),  # a smaller kernel
    ],
)
def test_a_dead_kernels_id_with_the_same_bytes_as_another_dtype_or_shape(first, reinterpret):
    cache = LayoutCache(min_bytes=0)

    def make(w):
        return np.ascontiguousarray(w.reshape(w.shape[0], -1).T).copy()

    base = np.random.default_rng(0).standard_normal((64, 64, 3, 3)).astype(np.float32)
    w = frozen_array(base) if first == "frozen" else base.copy()
    cache.get(w, "t", make)
    values = np.ascontiguousarray(reinterpret(base))
    ident = id(w)
    del w
    v = reuse_id(ident, values)
    layout = cache.get(v, "t", make)
    same(layout, make(values))


def test_a_reload_between_forward_and_backward_is_refused_for_frozen_and_plain_alike():
    """The forward pass saw the old weights; a gradient through the new ones would mix the two
    (in-place detection: both the copied and the swapped-in frozen arrays count as changes)."""
    plain = nn.Conv2d(64, 64, 3, padding=1, rng=0)
    frozen = frozen_twin(plain)
    new = nn.Conv2d(64, 64, 3, padding=1, rng=1).state_dict()
    data = np.random.default_rng(0).standard_normal((1, 64, 5, 5)).astype(np.float32)
    for model in (plain, frozen):
        x = Tensor(data.copy(), requires_grad=True)
        y = model(x)
        model.load_state_dict(new)
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            tg.grad((y * y).sum(), [x])


def test_a_dead_frozen_kernels_layouts_are_freed():
    import gc
    import weakref

    cache = LayoutCache(min_bytes=0)
    w = frozen_copy(np.ones((8, 8)))
    layout = weakref.ref(cache.get(w, "t", lambda w: w * 2))
    del w
    gc.collect()
    assert layout() is None and len(cache._entries) == 0


def test_a_step_into_frozen_arrays_fails_clearly_and_changes_nothing():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 1, rng=1))
    model[1].freeze()
    model.requires_grad_(True)
    optimizer = tg.optim.Adam(model.parameters(), lr=0.1)
    model(Tensor(np.ones((2, 3)))).sum().backward()
    before = model.state_dict()
    with pytest.raises(ValueError, match="frozen"):
        optimizer.step()
    for name, value in model.state_dict().items():
        same(value, before[name])


def test_unfreeze_turns_tracking_on_for_every_parameter_as_documented():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 1, rng=1))
    model[0].requires_grad_(False)  # a choice freeze/unfreeze does not remember
    model.freeze().unfreeze()
    assert all(p.requires_grad for p in model.parameters())


# ----------------------------------------------------------------------------- classes of convs
@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 2, 4]))
    cin = groups * draw(st.sampled_from([1, 3, 16, 32]))  # 32x32x3x3 float32: cached
    cout = groups * draw(st.sampled_from([1, 2, 16, 32]))
    k = draw(st.integers(1, 3))
    dilation, stride = draw(st.integers(1, 2)), draw(st.sampled_from([1, 2, (1, 2)]))
    padding = draw(st.integers(0, 2))
    size = max(dilation * (k - 1) + 1 - 2 * padding, 1) + draw(st.integers(0, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    input_dtype = draw(st.sampled_from([dtype, np.float64, np.float32]))
    return groups, cin, cout, k, dilation, stride, padding, size, dtype, input_dtype


@settings(max_examples=20, deadline=None)
@given(conv_configs(), st.booleans())
def test_conv_classes_frozen_equals_plain(config, frozen_input):
    groups, cin, cout, k, dilation, stride, padding, size, dtype, input_dtype = config
    plain = _perturbed(
        nn.Conv2d(cin, cout, k, stride, padding, dilation, groups, rng=0, dtype=dtype)
    )
    frozen = frozen_twin(plain)
    data = np.random.default_rng(cin + cout).standard_normal((2, cin, size, size))
    data = data.astype(input_dtype)
    if frozen_input:  # a frozen *input* must not be written either
        data = frozen_copy(data)
    for _ in range(2):
        xs = [Tensor(data, requires_grad=True) for _model in (plain, frozen)]
        ys = [model(x) for model, x in zip((plain, frozen), xs)]
        same(ys[0].data, ys[1].data)
        grads = [tg.grad((y * y).sum(), [x])[0] for x, y in zip(xs, ys)]
        same(grads[0].data, grads[1].data)
        tangent = np.ones_like(data)
        jvps = [tg.jvp(model, (Tensor(data),), (Tensor(tangent),)) for model in (plain, frozen)]
        for a, b in zip(jvps[0], jvps[1]):
            same(a.data, b.data)
    assert is_frozen(data) == frozen_input


def test_parameter_gradients_of_a_frozen_model_asked_for_explicitly_equal_the_plain_ones():
    plain = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, rng=0), nn.ReLU(), nn.Flatten())
    frozen = frozen_twin(plain).requires_grad_(True)  # tracked again, arrays still frozen
    x = Tensor(np.random.default_rng(0).standard_normal((2, 32, 4, 4)).astype(np.float32))
    grads = []
    for model in (plain, frozen):
        loss = (model(x) * model(x)).sum()
        grads.append(tg.grad(loss, list(model.parameters()), create_graph=True))
    for g, h in zip(*grads):
        same(g.data, h.data)
    assert all(is_frozen(p.data) for p in frozen.parameters())


# ----------------------------------------------------------------------------- freeze
def test_freeze_makes_every_parameter_constant_and_unfreeze_undoes_it():
    from tinygrad_edu.kernels.frozen import is_frozen

    model = nn.Sequential(nn.Linear(3, 5, rng=0), nn.Sigmoid(), nn.Linear(5, 1, rng=1))
    before = model.state_dict()
    assert model.freeze() is model
    for parameter in model.parameters():
        assert is_frozen(parameter.data) and not parameter.requires_grad
        with pytest.raises(ValueError, match="read-only"):
            parameter.data[...] = 0
    for name, value in model.state_dict().items():  # same values; snapshots stay writable
        np.testing.assert_array_equal(value, before[name])
        value[...] = 1
    out = model(Tensor(np.ones((2, 3))))
    assert not out.requires_grad
    assert model.unfreeze() is model
    for parameter in model.parameters():
        assert not is_frozen(parameter.data) and parameter.requires_grad
        parameter.data[...] = 0  # writable again


def test_a_frozen_model_loads_a_state_dict_and_stays_frozen():
    from tinygrad_edu.kernels.frozen import is_frozen

    model = nn.Linear(3, 2, rng=0).freeze()
    state = {"weight": np.full((2, 3), 2, dtype=np.int64), "bias": np.array([1.0, -1.0])}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32 and is_frozen(model.weight.data)  # its own dtype
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
