"""Forward mode: every op's JVP against its VJP (the transpose identity) and finite differences,
nesting levels, mixing with reverse mode, and the contract on tangents. (Each op's JVP, and the
JVPs of the ops its VJP is built from, are gradchecked in both modes in
tests/ops/test_ops_gradcheck.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.op_specs import SPECS, OpSpec
from tinygrad_edu import Tensor
from tinygrad_edu.forward import JVPError, jvp, vjp
from tinygrad_edu.graph import Observer, Op, no_grad, observe


def _directions(data, shapes):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="direction seed"))
    return [rng.standard_normal(shape) for shape in shapes]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_jvp_is_the_transpose_of_vjp_and_matches_finite_differences(spec: OpSpec, data):
    """<v, J u> from forward mode == <J^T v, u> from reverse mode == finite differences."""
    arrays, kwargs = spec.draw(data)
    xs = [Tensor(np.asarray(a, dtype=np.float64)) for a in arrays]

    def f(*args):
        return spec.fn(*args, **kwargs)

    us = _directions(data, [x.shape for x in xs])
    out, ju = jvp(f, xs, [Tensor(u) for u in us])
    assert ju.shape == out.shape and ju.dtype == np.float64
    (v,) = _directions(data, [out.shape])
    same_out, vjp_fn = vjp(f, *xs)
    np.testing.assert_array_equal(same_out.data, out.data)
    jtv = vjp_fn(Tensor(v))
    assert [g.shape for g in jtv] == [x.shape for x in xs]

    forward = float(np.vdot(v, ju.data))
    reverse = float(sum(np.vdot(g.data, u) for g, u in zip(jtv, us)))
    eps = 1e-6
    plus = f(*[Tensor(x.data + eps * u) for x, u in zip(xs, us)]).data
    minus = f(*[Tensor(x.data - eps * u) for x, u in zip(xs, us)]).data
    numeric = float(np.vdot(v, (plus - minus) / (2 * eps)))
    scale = 1.0 + abs(reverse)
    assert abs(forward - reverse) <= 1e-10 * scale, (forward, reverse)
    assert abs(forward - numeric) <= 1e-5 + 1e-4 * abs(numeric), (forward, numeric)


# ------------------------------------------------------------------------------ negative controls
class WrongSquareJVP(Op):
    """d(x^2) = 2x dx, but this JVP forgets the 2 (its VJP is right)."""

    name = "wrong_square_jvp"

    def forward(self, x):
        return x * x

    def vjp(self, g, out, x):
        return g * x * 2

    def jvp(self, tangents, out, x):
        return tangents[0] * x


def test_gradcheck_fwd_catches_a_wrong_jvp_that_rev_passes():
    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    assert tg.gradcheck(WrongSquareJVP.apply, [x])
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(WrongSquareJVP.apply, [x], modes=("rev", "fwd"))
    err = caught.value
    assert err.mode == "fwd" and err.input_position == 0
    assert err.analytic == pytest.approx(err.numeric / 2, rel=1e-5)
    assert "analytic (forward mode)" in str(err) and "input 0" in str(err)


def test_gradcheck_rejects_unknown_modes():
    with pytest.raises(ValueError, match="modes"):
        tg.gradcheck(lambda x: x, [Tensor(np.ones(2), requires_grad=True)], modes=("sideways",))


def test_the_transpose_identity_catches_a_wrong_jvp():
    x, u, v = (Tensor(np.array([0.5, -1.5])), np.array([1.0, 2.0]), np.array([0.3, -0.7]))
    _, ju = jvp(WrongSquareJVP.apply, (x,), (Tensor(u),))
    _, vjp_fn = vjp(WrongSquareJVP.apply, x)
    (jtv,) = vjp_fn(Tensor(v))
    assert not np.isclose(np.vdot(v, ju.data), np.vdot(jtv.data, u))


def test_a_jvp_returning_the_wrong_shape_is_named():
    class BadShape(Op):
        name = "bad_shape"

        def forward(self, x):
            return x * 2

        def jvp(self, tangents, out, x):
            return tangents[0].sum()[None].broadcast_to((3,))

    with pytest.raises(JVPError, match=r"'bad_shape'.*\(3,\).*\(2,\)"):
        jvp(BadShape.apply, (Tensor(np.ones(2)),), (Tensor(np.ones(2)),))


def test_a_jvp_returning_an_array_is_named():
    class ReturnsArray(Op):
        name = "returns_array"

        def forward(self, x):
            return x * 2

        def jvp(self, tangents, out, x):
            return tangents[0].data * 2

    with pytest.raises(JVPError, match=r"returns_array.*ndarray"):
        jvp(ReturnsArray.apply, (Tensor(np.ones(2)),), (Tensor(np.ones(2)),))


def test_a_missing_jvp_names_the_op():
    class NoJVP(Op):
        name = "no_jvp"

        def forward(self, x):
            return x + 1

    with pytest.raises(NotImplementedError, match="no_jvp"):
        jvp(NoJVP.apply, (Tensor(np.ones(2)),), (Tensor(np.ones(2)),))


# ------------------------------------------------------------------------------ semantics
def test_broadcast_smaller_tangents_grow_to_the_output_shape():
    """``a (2, 3) + b (3,)`` with a tangent on b only: the rule returns b's (3,) tangent; forward
    mode broadcasts it to (2, 3) in one place."""
    a, b = Tensor(np.zeros((2, 3))), Tensor(np.zeros(3))
    _, t = jvp(lambda b: a + b, (b,), (Tensor(np.array([1.0, 2.0, 3.0])),))
    assert t.shape == (2, 3)
    np.testing.assert_array_equal(t.data, [[1, 2, 3], [1, 2, 3]])


def test_outputs_independent_of_the_primals_get_zero_tangents():
    x = Tensor(np.ones(3))
    _, (t_same, t_const) = jvp(
        lambda x: (x, Tensor(np.arange(2.0))), (x,), (Tensor(np.full(3, 5.0)),)
    )
    np.testing.assert_array_equal(t_same.data, 5.0)
    np.testing.assert_array_equal(t_const.data, [0.0, 0.0])


def test_duplicate_primals_are_distinct_inputs():
    x = Tensor(np.array([2.0]))
    _, t = jvp(lambda a, b: a * b, (x, x), (Tensor(np.array([1.0])), Tensor(np.array([0.0]))))
    assert t.item() == 2.0  # d(ab)/da * 1 + d(ab)/db * 0 = b
    _, vjp_fn = vjp(lambda a, b: a * b * b, x, x)
    ga, gb = vjp_fn(Tensor(np.array([1.0])))
    assert (ga.item(), gb.item()) == (4.0, 8.0)


def test_forward_mode_ignores_no_grad_and_builds_no_graph():
    x = Tensor(np.array([1.0, 2.0]))
    with no_grad():
        out, t = jvp(lambda x: (x * x).sum(), (x,), (Tensor(np.ones(2)),))
    assert t.item() == 6.0 and not out.requires_grad and not t.requires_grad


class OpCounter(Observer):
    def __init__(self):
        self.names = []

    def op_applied(self, op, inputs, out):
        self.names.append(op.name)


def test_the_observer_does_not_recurse_into_its_own_rules():
    """exp's rule is one ``mul``: per primal op one rule op, no tangents of tangents."""
    x = Tensor(np.array([0.5]))
    with observe(OpCounter()) as counter:
        jvp(lambda x: x.exp().exp(), (x,), (Tensor(np.ones(1)),))
    assert counter.names.count("exp") == 2 and counter.names.count("mul") == 2


def test_nested_levels_give_second_and_third_derivatives():
    """d^k/dx^k of e^(x^2) along u = 1, by jvp of jvp (of jvp)."""
    x0 = 0.7
    one = Tensor(np.array(1.0))

    def f(x):
        return (x * x).exp()

    def df(x):
        return jvp(f, (x,), (one,))[1]

    def d2f(x):
        return jvp(df, (x,), (one,))[1]

    e = np.exp(x0**2)
    x = Tensor(np.array(x0))
    assert df(x).item() == pytest.approx(2 * x0 * e)
    assert d2f(x).item() == pytest.approx((2 + 4 * x0**2) * e)
    assert jvp(d2f, (x,), (one,))[1].item() == pytest.approx((12 * x0 + 8 * x0**3) * e)


def test_perturbation_confusion_is_avoided():
    """The classic test (Siskind & Pearlmutter): d/dx [x * d/dy (x + y)] = 1, not 2."""
    one = Tensor(np.array(1.0))

    def outer(x):
        inner = jvp(lambda y: x + y, (Tensor(np.array(2.0)),), (one,))[1]
        return x * inner

    assert jvp(outer, (Tensor(np.array(3.0)),), (one,))[1].item() == 1.0


def test_forward_over_reverse_and_reverse_over_forward_agree():
    """The Hessian-vector product of f(x) = sum(x^3 + sin-free stuff) computed both ways."""
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal(4), rng.standard_normal(4)

    def f(x):
        return (x * x * x).sum() + (x.tanh() * x).sum()

    def gradient(x):
        return vjp(f, x)[1](Tensor(np.array(1.0)))[0]

    _, fwd_over_rev = jvp(gradient, (Tensor(x),), (Tensor(v),))

    def directional(x):
        return jvp(f, (x,), (Tensor(v),))[1]

    (rev_over_fwd,) = vjp(directional, Tensor(x))[1](Tensor(np.array(1.0)))
    t = np.tanh(x)
    exact = (6 * x + 2 * (1 - t**2) - 2 * x * t * (1 - t**2)) * v
    np.testing.assert_allclose(fwd_over_rev.data, exact, rtol=1e-12)
    np.testing.assert_allclose(rev_over_fwd.data, exact, rtol=1e-12)


def test_the_text_color_network_in_forward_mode():
    """Forward mode through Linear and Sigmoid agrees with reverse mode on the real network."""
    from tinygrad_edu.models.text_color import COLORS, LABELS, build_mlp, error

    model = build_mlp(rng=0)
    weight = model[0].weight
    direction = np.random.default_rng(1).standard_normal(weight.shape)

    def loss(w):
        saved = weight.data
        model[0].weight = w
        try:
            return error(model(Tensor(COLORS)), LABELS)
        finally:
            model[0].weight = weight
            weight.data = saved

    _, directional = jvp(loss, (Tensor(weight.data.copy()),), (Tensor(direction),))
    (gradient,) = vjp(loss, Tensor(weight.data.copy()))[1](Tensor(np.array(1.0)))
    assert directional.item() == pytest.approx(np.vdot(gradient.data, direction), rel=1e-10)


def test_jvp_checks_its_arguments():
    x = Tensor(np.ones(2))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        jvp(lambda a, b: a, (x, x), (x,))
    with pytest.raises(ValueError, match=r"tangent 0 has shape \(3,\)"):
        jvp(lambda a: a, (x,), (Tensor(np.ones(3)),))
    with pytest.raises(TypeError, match="must return a Tensor"):
        jvp(lambda a: 3.0, (x,), (x,))
    _, vjp_fn = vjp(lambda a: a * 2, x)
    with pytest.raises(ValueError, match=r"cotangent 0 has shape \(1,\)"):
        vjp_fn(Tensor(np.ones(1)))


# ------------------------------------------------------------------------ ops outside the table
def _ops_outside_the_table():
    from tinygrad_edu.nn import functional as F
    from tinygrad_edu.ops.image import warp

    rng = np.random.default_rng(3)

    def r(*shape):
        return rng.standard_normal(shape)

    probabilities = rng.uniform(0.1, 0.9, (3, 2))
    return {
        "conv2d": (
            lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
            r(1, 2, 5, 5),
            r(3, 2, 3, 3),
            r(3),
        ),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), rng.permutation(32).reshape(1, 2, 4, 4) / 8.0),
        "linear": (F.linear, r(4, 3), r(2, 3), r(2)),
        "binary_cross_entropy": (
            lambda p, t: F.binary_cross_entropy(p, t, reduction="none"),
            probabilities,
            rng.uniform(0, 1, (3, 2)),
        ),
        "warp": (lambda x: warp(x, 3, [[0.2, -0.1]], [1.1], [0.3]), r(1, 2, 4, 4)),
        "cross_entropy": (lambda z: F.cross_entropy(z, np.array([0, 2, 1])), r(3, 4)),
    }


@pytest.mark.parametrize("name", sorted(_ops_outside_the_table()))
def test_ops_outside_the_table_in_both_modes_and_second_order(name):
    fn, *arrays = _ops_outside_the_table()[name]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    assert tg.gradcheck(fn, tensors, modes=("rev", "fwd"))
    assert tg.gradgradcheck(fn, tensors, modes=("fwd",))


# ------------------------------------------------------------------------------------- threads
def test_forward_mode_levels_are_per_thread():
    """Two threads in jvp at once: neither sees, silences nor renumbers the other's levels (a
    rule being computed in one thread used to make the other's ops invisible: zero tangents)."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(scale: float) -> None:
        try:
            barrier.wait()
            for _ in range(200):
                x = Tensor(np.array([1.0, 2.0]) * scale)
                _, dy = jvp(lambda t: (t * t).exp().sum(), (x,), (Tensor(np.ones(2)),))
                expected = float(np.sum(2 * x.data * np.exp(x.data**2)))
                assert dy.item() == pytest.approx(expected, rel=1e-12)
                _, (_, d2y) = jvp(  # a second level inside the first
                    lambda t: jvp(lambda s: (s**3).sum(), (t,), (Tensor(np.ones(2)),)),
                    (x,),
                    (Tensor(np.ones(2)),),
                )
                assert d2y.item() == pytest.approx(float(np.sum(6 * x.data)), rel=1e-12)
                h = tg.hessian(lambda t: (t**3).sum())(x)  # forward over reverse
                np.testing.assert_allclose(h.data, np.diag(6 * x.data), rtol=1e-12)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(s,)) for s in (0.5, 0.25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
