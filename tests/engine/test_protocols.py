"""Python and NumPy protocols on Tensors: iteration, unpacking, ``sum()``, NumPy ufuncs and
functions. Each either keeps the graph or refuses clearly; none silently returns an ndarray."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.numpy_interop import UFUNC_METHODS
from tinygrad_edu.testing import arrays, axes, shapes


# ----------------------------------------------------------------------------- Python protocols
@given(arrays(shapes(min_dims=1)))
def test_iteration_yields_differentiable_rows(x):
    t = Tensor(x, requires_grad=True)
    rows = list(t)
    assert len(rows) == len(t) == x.shape[0]
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(row.data, x[i])
    weights = np.arange(1.0, len(rows) + 1)
    total = sum((row * float(w) for row, w in zip(rows, weights)), Tensor(np.zeros(())))
    (g,) = tg.grad(total.sum(), [t])
    expected = np.broadcast_to(weights.reshape(-1, *[1] * (x.ndim - 1)), x.shape)
    np.testing.assert_array_equal(g.data, expected)


def test_for_loop_unpacking_and_builtin_sum():
    t = Tensor(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), requires_grad=True)
    seen = [row.data.tolist() for row in t]
    assert seen == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    a, b, c = t
    np.testing.assert_array_equal((a + b + c).data, [9.0, 12.0])
    s = sum(t)
    np.testing.assert_array_equal(s.data, [9.0, 12.0])
    (g,) = tg.grad(s.sum(), [t])
    np.testing.assert_array_equal(g.data, np.ones((3, 2)))
    with pytest.raises(ValueError, match="unpack"):
        a, b = t


def test_iterating_or_sizing_a_0d_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="0-d"):
        list(Tensor(np.float64(1.0)))
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


@given(shapes(min_dims=1))
def test_indexing_past_the_end_raises_index_error(shape):
    t = Tensor(np.zeros(shape))
    with pytest.raises(IndexError):
        t[shape[0]]
    with pytest.raises(IndexError):
        t[-shape[0] - 1]


# ----------------------------------------------------------------------------- NumPy ufuncs
def _dispatched(ufunc: np.ufunc) -> bool:
    """Whether ``ufunc`` on a Tensor runs a Tensor method (the rule in numpy_interop)."""
    return hasattr(Tensor, UFUNC_METHODS.get(ufunc.__name__, ufunc.__name__))


def _differentiable(ufunc: np.ufunc) -> bool:
    with np.errstate(all="ignore"):
        out = ufunc(*[np.full((2, 2), 0.5)] * ufunc.nin)
    return all(np.asarray(o).dtype.kind == "f" for o in (out if isinstance(out, tuple) else (out,)))


ALL_UFUNCS = sorted(
    {u for u in vars(np).values() if isinstance(u, np.ufunc)}, key=lambda u: u.__name__
)
#: every ufunc that dispatches to a differentiable op (as new Tensor methods appear, so do they)
UNARY_UFUNCS = [u for u in ALL_UFUNCS if u.nin == 1 and _dispatched(u) and _differentiable(u)]
BINARY_UFUNCS = [u for u in ALL_UFUNCS if u.nin == 2 and _dispatched(u) and _differentiable(u)]
#: where each unary ufunc is smooth and defined: [0.2, 0.9] unless said otherwise
DOMAINS = {np.arccosh: (1.2, 2.0)}


def test_the_basic_ufuncs_dispatch():
    basic = {np.exp, np.log, np.sqrt, np.tanh, np.absolute, np.negative, np.positive}
    assert basic <= set(UNARY_UFUNCS)
    assert {np.add, np.subtract, np.multiply, np.divide, np.power, np.matmul} <= set(BINARY_UFUNCS)


@pytest.mark.parametrize("ufunc", UNARY_UFUNCS, ids=lambda f: f.__name__)
@given(data=st.data())
def test_unary_ufuncs_dispatch_to_our_ops_and_keep_the_graph(ufunc, data):
    low, high = DOMAINS.get(ufunc, (0.2, 0.9))
    x = data.draw(arrays(shapes(), low=low, high=high))
    t = Tensor(x, requires_grad=True)
    y = ufunc(t)
    assert isinstance(y, Tensor) and y.requires_grad
    np.testing.assert_allclose(y.data, ufunc(x), rtol=1e-15)
    fresh = Tensor(x, requires_grad=True)
    expected = getattr(fresh, UFUNC_METHODS.get(ufunc.__name__, ufunc.__name__))()
    (g,) = tg.grad(y.sum(), [t])
    (ge,) = tg.grad(expected.sum(), [fresh])
    np.testing.assert_allclose(g.data, ge.data, rtol=1e-15)


@pytest.mark.parametrize("ufunc", BINARY_UFUNCS, ids=lambda f: f.__name__)
@given(st.booleans())
def test_binary_ufuncs_with_an_ndarray_on_either_side_keep_the_graph(ufunc, tensor_first):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, (3, 3)), rng.uniform(0.5, 2, (3, 3))
    t = Tensor(a, requires_grad=True)
    y = ufunc(t, b) if tensor_first else ufunc(b, t)
    assert isinstance(y, Tensor) and y.requires_grad
    np.testing.assert_allclose(y.data, ufunc(a, b) if tensor_first else ufunc(b, a), rtol=1e-15)
    assert tg.gradcheck(lambda x: ufunc(x, b) if tensor_first else ufunc(b, x), [t])


def test_ndarray_times_tensor_is_a_tensor_with_the_right_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    (g,) = tg.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.data, [3.0, 4.0])


def test_np_exp_keeps_the_graph():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    y = np.exp(x)
    assert isinstance(y, Tensor) and y._node is not None and y._node.name == "exp"
    (g,) = tg.grad(y.sum(), [x])
    np.testing.assert_allclose(g.data, np.exp([0.0, 1.0]))


@pytest.mark.parametrize("ufunc", [np.arctan2, np.hypot, np.logaddexp, np.fmod, np.copysign])
def test_a_ufunc_we_lack_refuses_a_tensor_that_requires_grad(ufunc):
    x = Tensor(np.array([0.5, 1.5]), requires_grad=True)
    args = (x, x) if ufunc.nin == 2 else (x,)
    with pytest.raises(TypeError, match=rf"np.{ufunc.__name__} has no differentiable version"):
        ufunc(*args)
    plain = ufunc(*[Tensor(np.array([0.5, 1.5]))] * ufunc.nin)  # no graph to drop: computed
    np.testing.assert_array_equal(np.asarray(plain), ufunc(*[np.array([0.5, 1.5])] * ufunc.nin))


def test_boolean_ufuncs_and_predicates_work_on_tensors_that_require_grad():
    x = Tensor(np.array([0.5, np.nan]), requires_grad=True)
    np.testing.assert_array_equal(np.asarray(np.isnan(x)), [False, True])
    assert np.allclose(Tensor(np.ones(2), requires_grad=True), np.ones(2))


def test_ufunc_out_argument_is_refused():
    with pytest.raises(TypeError, match="out="):
        np.exp(Tensor(np.ones(2)), out=np.empty(2))


# ----------------------------------------------------------------------------- NumPy functions
@given(data=st.data())
def test_numpy_reductions_dispatch_to_tensor_methods(data):
    shape = data.draw(shapes())
    x = data.draw(arrays(shape, spacing=0.01, unique=True))
    axis = data.draw(axes(len(shape)) if shape else st.none())  # NumPy: no axis 0 on 0-d
    keepdims = data.draw(st.booleans())
    for fn in (np.sum, np.mean, np.max):
        t = Tensor(x, requires_grad=True)
        y = fn(t, axis=axis, keepdims=keepdims)
        assert isinstance(y, Tensor) and y.requires_grad
        np.testing.assert_allclose(y.data, fn(x, axis=axis, keepdims=keepdims), rtol=1e-14)
        assert tg.gradcheck(lambda a, fn=fn: fn(a, axis=axis, keepdims=keepdims), [t])


def test_np_sum_of_a_tensor():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    s = np.sum(x)
    assert isinstance(s, Tensor) and s.item() == 6.0
    (g,) = tg.grad(s, [x])
    np.testing.assert_array_equal(g.data, [1.0, 1.0, 1.0])


def test_numpy_joins_and_reshapes_keep_the_graph():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)
    for y in (np.stack([a, b]), np.concatenate([a, b]), np.reshape(a, (2, 1)), np.transpose(a)):
        assert isinstance(y, Tensor) and y.requires_grad


def test_a_numpy_function_we_lack_refuses_a_tensor_that_requires_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(TypeError, match=r"np\.diff has no differentiable version"):
        np.diff(x)
    np.testing.assert_array_equal(np.diff(Tensor(np.array([1.0, 2.0]))), [1.0])


# ------------------------------------------------------------------ both modes of autodiff agree
FLOAT_UFUNCS = sorted(
    {
        u
        for u in vars(np).values()
        if isinstance(u, np.ufunc)
        and u.signature is None  # not matmul's gufunc
        and ("d->d" if u.nin == 1 else "dd->d") in u.types
    },
    key=lambda u: u.__name__,
)

FUNCTIONS_WITHOUT_RULES = [
    lambda t: np.diff(t),
    lambda t: np.sort(t),
    lambda t: np.convolve(t, np.ones(2)),
    lambda t: np.cross(t, np.ones(3)),
    lambda t: np.interp(t, [0.0, 1.0], [0.0, 2.0]),
    lambda t: np.outer(t, t),
    lambda t: np.add.accumulate(t),
    lambda t: np.multiply.reduce(t),
]


def _outcome(transform, f, x):
    """``("ok", value)`` or ``("refused", None)`` for a TypeError naming the lost graph/tangent."""
    try:
        return "ok", transform(f, x)
    except TypeError as err:
        assert "no differentiable version" in str(err), err
        return "refused", None


def _forward(f, x):
    return tg.jvp(f, (x,), (Tensor(np.ones(x.shape)),))[1].data


def _reverse(f, x):
    return tg.jacrev(f)(x).data.reshape(-1, x.size).sum(axis=1)


NUMPY_CALLS = {
    **{f"{u.__name__}(t)": lambda t, u=u: u(t) for u in FLOAT_UFUNCS if u.nin == 1},
    **{f"{u.__name__}(t, c)": lambda t, u=u: u(t, 0.7) for u in FLOAT_UFUNCS if u.nin == 2},
    **{f"{u.__name__}(c, t)": lambda t, u=u: u(0.7, t) for u in FLOAT_UFUNCS if u.nin == 2},
    **{f"function {i}": f for i, f in enumerate(FUNCTIONS_WITHOUT_RULES)},
}


@pytest.mark.parametrize("name", sorted(NUMPY_CALLS))
def test_forward_and_reverse_mode_agree_on_every_numpy_call(name):
    """Every float ufunc (either operand) and a few NumPy functions: forward mode either computes
    what reverse mode computes, or both refuse -- never a silent zero tangent (np.arctan2 in
    jvp returned zeros where jacrev raised)."""
    f, x = NUMPY_CALLS[name], Tensor(np.array([0.3, 0.45, 0.8]))
    with np.errstate(all="ignore"):
        (fwd, j_fwd), (rev, j_rev) = _outcome(_forward, f, x), _outcome(_reverse, f, x)
    assert fwd == rev
    if fwd == "ok":
        np.testing.assert_allclose(j_fwd, j_rev, rtol=1e-12, atol=1e-12)


def test_jvp_through_a_ufunc_without_a_rule_raises_like_jacrev():
    x = Tensor(np.array([0.5, 1.5]))
    for transform in (
        lambda f: tg.jvp(f, (x,), (Tensor(np.ones(2)),)),
        lambda f: tg.jacfwd(f)(x),
        lambda f: tg.jacrev(f)(x),
        lambda f: tg.hessian(lambda t: f(t).sum())(x),
    ):
        with pytest.raises(TypeError, match=r"np\.arctan2 has no differentiable version"):
            transform(lambda t: np.arctan2(t, 1.0))


def test_ufunc_at_cannot_write_into_a_tensor():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * x
    with pytest.raises(TypeError, match=r"np\.add\.at cannot write into a Tensor"):
        np.add.at(y, [0], 1.0)
    np.testing.assert_array_equal(y.data, [1.0, 4.0])  # nothing changed
    with pytest.raises(TypeError, match="at cannot write"):
        np.add.at(Tensor(np.ones(2)), [0], 1.0)


IN_PLACE_WRITERS = {
    "copyto": lambda t: np.copyto(t, np.full(t.shape, 7.0)),
    "put": lambda t: np.put(t, [0], [7.0]),
    "place": lambda t: np.place(t, np.ones(t.shape, dtype=bool), [7.0]),
    "putmask": lambda t: np.putmask(t, np.ones(t.shape, dtype=bool), 7.0),
    "fill_diagonal": lambda t: np.fill_diagonal(t, 7.0),
    "put_along_axis": lambda t: np.put_along_axis(t, np.zeros((1, 2), dtype=int), 7.0, 0),
    "ufunc.at": lambda t: np.multiply.at(t, [0], 7.0),
    "ravel view": lambda t: np.ravel(t).__setitem__(0, 7.0),
    "asarray view": lambda t: np.asarray(t).__setitem__((0, 0), 7.0),
    "asanyarray fill": lambda t: np.asanyarray(t).fill(7.0),
    "array(copy=False) view": lambda t: np.array(t, copy=False).__setitem__((0, 0), 7.0),
    "ufunc out= of asarray": lambda t: np.negative(np.asarray(t), out=np.asarray(t)),
}


def test_np_array_of_a_tensor_is_a_writable_copy_and_numpy_the_shared_array():
    t = Tensor(np.arange(4.0))
    copy = np.array(t)
    copy[0] = 7.0
    assert t.data[0] == 0.0 and np.asarray(t)[0] == 0.0
    assert t.numpy() is t.data  # the documented escape hatch, shared like .data


@pytest.mark.parametrize("name", sorted(IN_PLACE_WRITERS))
@pytest.mark.parametrize("requires_grad", [False, True])
def test_numpy_calls_cannot_change_a_tensor_in_place(name, requires_grad):
    """NumPy functions that write into an argument (or a view of it) would change a Tensor's array
    behind the graph's back (no version bump, so a later backward mixes old and new values)."""
    t = Tensor(np.arange(4.0).reshape(2, 2), requires_grad=requires_grad)
    version = t._version
    with pytest.raises((TypeError, ValueError), match=r"in place|read-only|no differentiable"):
        IN_PLACE_WRITERS[name](t)
    np.testing.assert_array_equal(t.data, np.arange(4.0).reshape(2, 2))  # nothing changed
    assert t._version == version
