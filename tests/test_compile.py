"""tg.compile: a replayed step equals eager execution bit for bit, and falls back when it must."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tests.op_specs import SPECS, OpSpec
from tinygrad_edu import Tensor, nn
from tinygrad_edu.compile import CACHE_SIZE, CompileWarning
from tinygrad_edu.compile import compile as tg_compile
from tinygrad_edu.models.text_color import COLORS, LABELS, build_mlp, error

#: specs whose op has a derivative rule that reads values outside ops: they must run eagerly
EAGER_ONLY = {"pow", "pow_nonzero_exponent", "pow_scalar", "rpow_scalar"}
EAGER_ONLY |= {"abs", "relu", "clip", "max"}


class _OpKinds(tg.graph.Observer):
    """Collects the ops a function applies (forward and backward)."""

    def __init__(self) -> None:
        self.ops: list[tg.graph.Op] = []

    def op_applied(self, op, inputs, out) -> None:
        self.ops.append(op)


def _must_run_eagerly(spec: OpSpec, arrays, kwargs) -> bool:
    """Whether a step through ``spec`` uses an op the tape may not replay: a derivative rule
    outside REPLAYABLE_VJPS, or an index array (which may be computed from values)."""
    from tinygrad_edu.compile import REPLAYABLE_VJPS
    from tinygrad_edu.ops.shape import is_advanced

    with tg.graph.observe(_OpKinds()) as seen:
        spec.fn(*[Tensor(a.copy(), requires_grad=True) for a in arrays], **kwargs).sum().backward()
    return any(
        (op.inputs and type(op) not in REPLAYABLE_VJPS)
        or (isinstance(op, (tg.ops.GetItem, tg.ops.ScatterAdd)) and is_advanced(op.index))
        for op in seen.ops
    )


def assert_same(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), np.max(np.abs(a - b))


def twins(optimizer: type, **options):
    """The document's network twice, identically initialised, each with its own optimizer."""
    models = [build_mlp(rng=3), build_mlp(rng=3)]
    return [(m, optimizer(m.parameters(), **options)) for m in models]


def eager_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = error(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def assert_models_equal(a: nn.Module, b: nn.Module) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        assert_same(p.data, q.data)
        assert_same(p.grad.data, q.grad.data)


@pytest.mark.parametrize(
    ("optimizer", "options"),
    [
        (tg.optim.SGD, {"lr": 0.2}),
        (tg.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}),
        (tg.optim.Adam, {"lr": 0.01}),
    ],
)
def test_training_replays_bit_for_bit(optimizer, options):
    (eager_model, eager_opt), (model, opt) = twins(optimizer, **options)
    step = tg_compile(lambda x, y: error(model(x), y), opt)
    x, y = Tensor(COLORS), Tensor(LABELS)
    for _ in range(300):
        assert_same(eager_step(eager_model, eager_opt, x, y).data, step(x, y).data)
        assert_models_equal(eager_model, model)
    assert (step.recordings, step.replays) == (2, 298)


def test_shape_and_dtype_changes_record_again_and_reuse_the_cache():
    (eager_model, eager_opt), (model, opt) = twins(tg.optim.SGD, lr=0.2)
    step = tg_compile(lambda x, y: error(model(x), y), opt)
    rng = np.random.default_rng(0)
    batches = [10, 7, 10, 1, 7, 10]
    for i in range(60):
        n = batches[i % len(batches)]
        colors = rng.uniform(size=(n, 3))
        labels = (colors.sum(axis=1, keepdims=True) < 1.5).astype(np.float64)
        x, y = Tensor(colors), Tensor(labels)
        assert_same(eager_step(eager_model, eager_opt, x, y).data, step(x, y).data)
        assert_models_equal(eager_model, model)
    assert step.recordings == 6  # two per batch size, then every call replays
    assert step.replays == 54
    assert "linear" in step.code and "sigmoid_backward" in step.code


def test_argument_dtype_change_records_again():
    w = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    step = tg_compile(lambda x: (x * w).sum())
    for dtype in (np.float64, np.float64, np.float32, np.float32, np.float64):
        step(Tensor(np.ones(2, dtype=dtype)))
    assert (step.recordings, step.replays) == (4, 1)


def test_without_optimizer_gradients_accumulate_like_backward():
    w_eager = Tensor(np.array([[0.3, -0.2], [0.1, 0.4]]), requires_grad=True)
    w = Tensor(w_eager.data.copy(), requires_grad=True)
    step = tg_compile(lambda x: ((x @ w).tanh() * 2.0).sum())
    for k in range(5):
        x = Tensor(np.full((3, 2), 0.1 * k))
        (x @ w_eager).tanh().__mul__(2.0).sum().backward()
        step(x)
        assert_same(w.grad.data, w_eager.grad.data)
    assert step.replays == 3


def test_gradient_reaches_the_new_argument_tensor_on_every_call():
    w = Tensor(np.array([1.0, 2.0, 3.0]))
    step = tg_compile(lambda x: (x.exp() * w).sum())
    for k in range(3):
        x = Tensor(np.linspace(-1, 1, 3) * k, requires_grad=True)
        step(x)
        twin = Tensor(x.data.copy(), requires_grad=True)
        (twin.exp() * w).sum().backward()
        assert_same(x.grad.data, twin.grad.data)
    assert step.replays == 1


def test_parameter_replaced_by_another_shape_fails_the_guard_and_records_again():
    w = Tensor(np.ones(3), requires_grad=True)
    step = tg_compile(lambda x: (x * w).sum())
    x = Tensor(np.arange(3.0))
    assert [step(x).item() for _ in range(3)] == [3.0] * 3
    w.data = np.ones((2, 3))
    assert [step(x).item() for _ in range(3)] == [6.0] * 3
    assert w.grad.shape == (2, 3)
    assert (step.recordings, step.replays) == (4, 2)


def test_parameter_updated_in_place_or_rebound_is_read_live():
    w = Tensor(np.ones(3), requires_grad=True)
    step = tg_compile(lambda x: (x * w).sum())
    x = Tensor(np.arange(3.0))
    step(x)
    step(x)
    w.data *= 2
    assert step(x).item() == 6.0
    w.data = np.full(3, 3.0)
    assert step(x).item() == 9.0
    assert step.replays == 2


def test_static_arguments_are_part_of_the_signature():
    w = Tensor(np.ones(2), requires_grad=True)
    step = tg_compile(lambda x, scale: (x * w * scale).sum())
    x = Tensor(np.ones(2))
    scales = (2.0, 3.0, 2.0, 2.0, 3.0, 3.0)
    assert [step(x, s).item() for s in scales] == [2 * s for s in scales]
    assert (step.recordings, step.replays) == (4, 2)
    with pytest.raises(TypeError, match="argument 1 is a list"):
        step(x, [1.0])


def test_data_dependent_control_flow_is_frozen_at_the_recorded_path():
    """The documented limit of any tracer: a Python branch on a value is not on the tape."""
    w = Tensor(np.array([1.0]), requires_grad=True)
    step = tg_compile(lambda x: (x * w).sum() if x.data[0] > 0 else (x * w * -1.0).sum())
    x = Tensor(np.array([2.0]))
    assert step(x).item() == step(x).item() == 2.0  # recorded twice on the same branch
    x.data[0] = -2.0
    assert step(x).item() == -2.0  # eager would take the other branch and give 2.0


def test_two_recordings_that_differ_run_eagerly():
    w = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    branchy = tg_compile(lambda x: (x * w).sum() if x.data[0] > 0 else (x * w).exp().sum())
    masked = tg_compile(lambda x: (x * w * Tensor((x.data > 0).astype(np.float64))).sum())
    for step, match in ((branchy, "different ops"), (masked, "changed between two calls")):
        step(Tensor(np.array([2.0, 1.0])))
        with pytest.warns(CompileWarning, match=match):
            step(Tensor(np.array([-2.0, 1.0])))
        assert step(Tensor(np.array([-3.0, 1.0]))).item() == pytest.approx(
            (np.exp(-3.0) + np.exp(-1.0)) if step is branchy else -1.0
        )
        assert step.replays == 0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@given(data=st.data())
def test_every_op_replays_its_gradients_bit_for_bit(spec: OpSpec, data):
    """Record on one draw, replay on other values of the same shapes, compare with eager."""
    arrays, kwargs = spec.draw(data)

    def loss_fn(*xs):
        out = spec.fn(*xs, **kwargs)
        weights = np.cos(np.arange(out.size, dtype=np.float64)).reshape(out.shape)
        return (out * Tensor(weights)).sum()

    step = tg_compile(loss_fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two recordings
            step(*[Tensor(a.copy(), requires_grad=True) for a in arrays])
    eager_only = _must_run_eagerly(spec, arrays, kwargs)
    assert spec.name not in EAGER_ONLY or eager_only  # the hand-kept list agrees with the rule
    assert bool(caught) == eager_only, [str(w.message) for w in caught]
    flipped = [a.ravel()[::-1].reshape(a.shape).copy() for a in arrays]  # same values, moved
    compiled = [Tensor(a, requires_grad=True) for a in flipped]
    eager = [Tensor(a.copy(), requires_grad=True) for a in flipped]
    assert_same(step(*compiled).data, (expected := loss_fn(*eager)).data)
    expected.backward()
    for c, e in zip(compiled, eager):
        assert (c.grad is None) == (e.grad is None)
        if c.grad is not None:
            assert_same(c.grad.data, e.grad.data)
    assert step.replays == (0 if eager_only else 1)


def test_relu_network_warns_once_and_runs_eagerly():
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU())
    step = tg_compile(lambda x: model(x).sum())
    x = Tensor(COLORS)
    with pytest.warns(CompileWarning, match="'relu'"):
        step(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(x)
    assert (step.recordings, step.replays) == (1, 0)


def test_hooks_force_eager_execution():
    w = Tensor(np.ones(2), requires_grad=True)
    seen = []
    w.register_hook(seen.append)
    step = tg_compile(lambda x: (x * w).sum())
    with pytest.warns(CompileWarning, match="hooks"):
        step(Tensor(np.ones(2)))
    step(Tensor(np.ones(2)))
    assert len(seen) == 2 and step.replays == 0


def test_a_tensor_from_outside_the_step_forces_eager_execution():
    w = Tensor(np.ones(2), requires_grad=True)
    outside = w * 2
    step = tg_compile(lambda x: (x * outside).sum())
    with pytest.warns(CompileWarning, match="computed outside"):
        step(Tensor(np.ones(2)))


def test_observers_and_no_grad_run_eagerly():
    w = Tensor(np.ones(2), requires_grad=True)
    step = tg_compile(lambda x: (x * w).exp().sum())
    x = Tensor(np.ones(2))
    step(x)
    with tg.trace() as t:
        step(x)
    assert [s.op for s in t.steps] == ["sum", "exp", "mul"]
    with tg.no_grad(), pytest.raises(RuntimeError, match="does not require grad"):
        step(x)
    assert step.replays == 0


def test_the_cache_keeps_the_latest_signatures():
    w = Tensor(np.ones(()), requires_grad=True)
    step = tg_compile(lambda x: (x * w).sum())
    for n in range(1, CACHE_SIZE + 2):
        step(Tensor(np.ones(n)))
        step(Tensor(np.ones(n)))
    step(Tensor(np.ones(CACHE_SIZE + 1)))
    step(Tensor(np.ones(1)))  # evicted: records again
    assert (step.recordings, step.replays) == (2 * CACHE_SIZE + 3, 1)


def test_bad_uses_are_named():
    with pytest.raises(TypeError, match="expected a function"):
        tg_compile(3)
    with pytest.raises(TypeError, match="Optimizer"):
        tg_compile(lambda: None, optimizer=[])
    w = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"single-element Tensor, got shape \(2,\)"):
        tg_compile(lambda x: x * w)(Tensor(np.ones(2)))


def test_the_compiled_step_drops_dead_and_repeated_ops_and_frees_buffers():
    w = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    w_eager = Tensor(w.data.copy(), requires_grad=True)

    def loss_fn(x, w=w):
        (x * 3).exp()  # computed but unused: not on the replayed tape
        return ((x * w).tanh() + (x * w).tanh()).sum()  # the same kernels twice: computed once

    step = tg_compile(loss_fn)
    for k in range(3):
        x = Tensor(np.linspace(-1, 1, 3) * (k + 1))
        assert_same(step(x).data, (expected := loss_fn(x, w_eager)).data)
        expected.backward()
        assert_same(w.grad.data, w_eager.grad.data)
    lines = [line.split("#")[-1].strip() for line in step.code.splitlines() if "#" in line]
    assert "exp" not in lines and lines.count("tanh") == 1 and "del " in step.code


def test_the_text_colour_training_loop_compiled_matches_train_bit_for_bit():
    """The document's training loop, compiled: same errors, same weights, bit for bit."""
    from tinygrad_edu.models.text_color.training import train

    reference = train(build_mlp(rng=0), COLORS, LABELS, max_iteration=199, target=None)
    model = build_mlp(rng=0)
    optimizer = tg.optim.SGD(model.parameters(), lr=0.2)
    x, y = Tensor(np.asarray(COLORS, dtype=np.float64)), np.asarray(LABELS, dtype=np.float64)
    step = tg_compile(lambda: error(model(x), y), optimizer)
    errors = np.array([step().item() for _ in range(200)])
    assert_same(errors, reference.errors)
    for p, q in zip(model.parameters(), reference.model.parameters()):
        assert_same(p.data, q.data)
    assert step.replays == 198


def test_an_index_computed_from_values_is_never_frozen_on_the_tape():
    """``x[x > 0]`` picks other positions on other values: the step must run eagerly."""
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)

    def loss_fn(x):
        return (x * w)[x > 0].sum()

    step = tg_compile(loss_fn)
    same = Tensor(np.array([1.0, 1.0, -1.0]))
    with pytest.warns(CompileWarning, match="index array"):
        step(same)
    step(same)
    moved = Tensor(np.array([-1.0, 1.0, 1.0]))
    assert step(moved).item() == loss_fn(moved).item() == 5.0
    assert step.replays == 0
