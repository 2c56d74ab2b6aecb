"""In-place changes and the backward pass: never a silent mix of old and new values.

Promises: every tensor carries a version counter that each in-place change bumps (the methods
``copy_``, ``zero_``, ``fill_``; optimizers' steps; ``load_state_dict``; BatchNorm's running
statistics); every recorded op remembers its inputs' versions, and ``backward`` / ``grad``
refuse with a clear ``RuntimeError`` to apply a VJP whose inputs or output changed since, as
PyTorch does. Without a change the gradient is the usual one. ``detach()`` shares the counter
(it shares the memory), and so do ``Tensor(t)`` and ``Parameter(t)`` when they hold ``t``'s
array: a change through any alias of a saved tensor is seen. The in-place methods refuse,
changing nothing, what PyTorch refuses: a leaf that requires grad while recording, a recorded
result, a read-only array, non-numbers, shapes that do not broadcast.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn, optim

MODIFIED = "modified by an in-place operation"


def _weights() -> Tensor:
    return Tensor(np.array([1.0, 2.0]), requires_grad=True)


# ------------------------------------------------------------------ the example, and torch
def test_an_optimizer_step_between_forward_and_backward_is_refused():
    w = _weights()
    opt = optim.SGD([w], lr=0.5)
    w.grad = Tensor(np.array([1.0, 1.0]))
    loss = (w**3).sum()  # d/dw = 3 w^2 = [3, 12] at the forward's weights
    opt.step()  # the weights change before backward
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_pytorch_refuses_the_same_sequence():
    torch = pytest.importorskip("torch")
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    w.grad = torch.ones(2)
    loss = (w**3).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_without_a_change_the_gradient_is_the_usual_one():
    w = _weights()
    loss = (w**3).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 12.0])


# ------------------------------------------------------------------ every in-place path
def _step(make: Callable[[list[Tensor]], optim.Optimizer]) -> Callable[[Tensor], None]:
    def change(w: Tensor) -> None:
        opt = make([w])
        w.grad = Tensor(np.array([1.0, -1.0]))
        opt.step()

    return change


def _load_state_dict(w: Tensor) -> None:
    layer = nn.Linear(2, 1, bias=False)
    layer.weight = w.reshape(1, 2).detach()  # shares w's memory and version counter
    layer.load_state_dict({"weight": np.array([[5.0, 6.0]])})


def _copy(w: Tensor) -> None:
    with tg.no_grad():
        w.copy_(np.array([5.0, 6.0]))


def _fill(w: Tensor) -> None:
    with tg.no_grad():
        w.fill_(7.0)


def _zero(w: Tensor) -> None:
    with tg.no_grad():
        w.zero_()


def _copy_through_detach(w: Tensor) -> None:
    w.detach().copy_(np.array([5.0, 6.0]))


IN_PLACE_PATHS = {
    "SGD": _step(lambda p: optim.SGD(p, lr=0.1)),
    "SGD momentum": _step(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "Adam": _step(lambda p: optim.Adam(p, lr=0.1)),
    "AdamW": _step(lambda p: optim.AdamW(p, lr=0.1)),
    "RMSprop": _step(lambda p: optim.RMSprop(p, lr=0.1)),
    "Adagrad": _step(lambda p: optim.Adagrad(p, lr=0.1)),
    "copy_": _copy,
    "fill_": _fill,
    "zero_": _zero,
    "detach().copy_": _copy_through_detach,
}


@pytest.mark.parametrize("path", sorted(IN_PLACE_PATHS))
def test_every_in_place_path_bumps_the_version_and_backward_refuses(path):
    w = _weights()
    loss = (w * w).sum()
    before = w._version
    IN_PLACE_PATHS[path](w)
    assert w._version > before
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


@pytest.mark.parametrize("path", sorted(IN_PLACE_PATHS))
def test_grad_refuses_too(path):
    w = _weights()
    y = (w.exp() * w).sum()
    IN_PLACE_PATHS[path](w)
    with pytest.raises(RuntimeError, match=MODIFIED):
        tg.grad(y, [w])


def test_load_state_dict_between_forward_and_backward_is_refused():
    layer = nn.Linear(2, 1)
    loss = layer(Tensor(np.ones((3, 2)))).sum()
    layer.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)})
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_batchnorm_running_statistics_changed_after_an_eval_forward_are_detected():
    bn = nn.BatchNorm1d(2)
    x = Tensor(np.random.default_rng(0).normal(size=(4, 2)), requires_grad=True)
    bn.eval()
    loss = bn(x).sum()  # reads running_mean / running_var
    bn.train()
    bn(x)  # updates them in place
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


@pytest.mark.parametrize(
    "view",
    [lambda t: t.reshape(2, 1), lambda t: t[::-1], lambda t: t.T, lambda t: t.reshape(1, 2)[0]],
    ids=["reshape", "reversed slice", "transpose", "reshape then index"],
)
def test_a_view_shares_its_bases_version_like_pytorch(view):
    """``x * buffer.reshape(...)``: mul saves the view, so a later change of the buffer must be
    seen through it (and a change through the view seen by ops that saved the buffer)."""
    x = _weights()
    buffer = Tensor(np.array([3.0, 4.0]))
    loss = (x * view(buffer).reshape(2)).sum()
    _copy(buffer)
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()
    loss = (x * buffer).sum()
    with tg.no_grad():
        view(buffer).fill_(0.0)
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_view_of_a_tensor_at_version_n_is_not_refused_for_that():
    w = _weights()
    _copy(w)
    _copy(w)  # version 2 before the forward pass
    loss = (w.reshape(2, 1) * 3).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])


def test_a_result_changed_in_place_under_no_grad_is_detected():
    x = _weights()
    y = x.exp()  # exp's VJP reads its output
    with tg.no_grad():
        y.copy_(np.zeros(2))
    with pytest.raises(RuntimeError, match="its output of op 'exp'"):
        y.sum().backward()


def test_the_error_names_the_op_the_input_and_both_versions():
    w = _weights()
    x = Tensor(np.array([3.0, 4.0]))
    loss = (x * w).sum()
    _copy(w)
    with pytest.raises(RuntimeError, match=r"input 1 of op 'mul' .* version 1; expected version 0"):
        loss.backward()


def test_a_change_to_a_tensor_the_loss_does_not_use_is_fine():
    w, other = _weights(), _weights()
    loss = (w * w).sum()
    _copy(other)
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])


def test_changes_before_the_forward_pass_are_fine():
    w = _weights()
    _copy(w)
    loss = (w * w).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [10.0, 12.0])


# ------------------------------------------------------------------ the in-place methods
def test_copy_broadcasts_and_casts_like_pytorch():
    t = Tensor(np.zeros((2, 3), np.float32))
    t.copy_(Tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(t.data, [[1, 2, 3], [1, 2, 3]])
    assert t.dtype == np.float32
    i = Tensor(np.zeros(2, np.int64))
    i.copy_(np.array([1.7, -2.2]))
    np.testing.assert_array_equal(i.data, [1, -2])


def test_in_place_methods_return_the_tensor_itself():
    t = Tensor(np.zeros(3))
    assert t.copy_(np.ones(3)) is t
    assert t.fill_(2.0) is t
    assert t.zero_() is t


def _refusal_cases() -> dict[str, tuple[Callable[[], Tensor], Callable[[Tensor], object], type]]:
    def frozen() -> Tensor:
        array = np.ones(3)
        array.flags.writeable = False
        return Tensor(array)

    return {
        "leaf requiring grad, recording": (
            lambda: Tensor(np.ones(3), requires_grad=True),
            lambda t: t.copy_(np.zeros(3)),
            RuntimeError,
        ),
        "recorded result": (
            lambda: Tensor(np.ones(3), requires_grad=True) * 2,
            lambda t: t.fill_(0.0),
            RuntimeError,
        ),
        "read-only array": (frozen, lambda t: t.zero_(), ValueError),
        "string values": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.copy_(["a", "b", "c"]),
            TypeError,
        ),
        "object values": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.copy_(np.array([object()] * 3)),
            TypeError,
        ),
        "shape that does not broadcast": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.copy_(np.ones(4)),
            ValueError,
        ),
        "shape that would grow the tensor": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.copy_(np.ones((2, 3))),
            ValueError,
        ),
        "fill_ with a string": (lambda: Tensor(np.ones(3)), lambda t: t.fill_("1"), TypeError),
        "fill_ with a tensor of two elements": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.fill_(Tensor(np.ones(2))),
            ValueError,
        ),
        # PyTorch records these copies (the target then depends on the source); we cannot, and
        # the gradient through them would silently be missing
        "copy_ from a tensor that requires grad, recording": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.copy_(Tensor(np.arange(3.0), requires_grad=True) * 2),
            RuntimeError,
        ),
        "fill_ with a tensor that requires grad, recording": (
            lambda: Tensor(np.ones(3)),
            lambda t: t.fill_(Tensor(2.0, requires_grad=True)),
            RuntimeError,
        ),
    }


def test_copying_a_tensor_that_requires_grad_is_fine_without_recording():
    w = _weights()
    target = Tensor(np.zeros(2))
    target.copy_(w.detach() * 2)
    with tg.no_grad():
        target.copy_(w * 3)
        target.fill_(w[0])
    np.testing.assert_array_equal(target.data, [1.0, 1.0])


@pytest.mark.parametrize("case", sorted(_refusal_cases()))
def test_refused_in_place_changes_change_nothing(case):
    make, change, error = _refusal_cases()[case]
    t = make()
    values, version = t.data.copy(), t._version
    with pytest.raises(error):
        change(t)
    np.testing.assert_array_equal(t.data, values)
    assert t._version == version


def test_a_leaf_requiring_grad_can_be_set_under_no_grad():
    w = _weights()
    with tg.no_grad():
        w.copy_(np.array([4.0, 5.0]))
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [8.0, 10.0])


# ------------------------------------------------------------------ the class: any sequence
CHANGES = sorted(IN_PLACE_PATHS)


@settings(max_examples=40, deadline=None)
@given(
    changes=st.lists(st.tuples(st.sampled_from(CHANGES), st.sampled_from(["a", "b", "c"]))),
    use_c=st.booleans(),
)
def test_backward_refuses_exactly_when_a_tensor_it_reads_changed(changes, use_c):
    """Random in-place changes of the loss's inputs (``a``, ``b``) or of an unrelated tensor
    (``c`` unless the loss uses it) between forward and backward: backward raises iff an input
    of the loss changed, and otherwise returns the gradient computed from untouched values."""
    a, b, c = _weights(), _weights(), _weights()
    tensors = {"a": a, "b": b, "c": c}
    loss = (a * b.tanh()).sum() + ((c * c).sum() if use_c else 0.0)
    used = {"a", "b", "c"} if use_c else {"a", "b"}
    for path, name in changes:
        IN_PLACE_PATHS[path](tensors[name])
        tensors[name].grad = None
    if any(name in used for _, name in changes):
        with pytest.raises(RuntimeError, match=MODIFIED):
            loss.backward()
    else:
        loss.backward()
        np.testing.assert_allclose(a.grad.data, np.tanh([1.0, 2.0]))
        np.testing.assert_allclose(b.grad.data, [1.0, 2.0] * (1 - np.tanh([1.0, 2.0]) ** 2))


# ------------------------------------------------------------------ the class: any alias
ALIASES: dict[str, Callable[[Tensor], Tensor]] = {
    "detach": lambda t: t.detach(),
    "Tensor(t)": lambda t: Tensor(t),
    "Tensor(t, dtype=its dtype)": lambda t: Tensor(t, dtype=t.dtype),
    "Tensor(t, dtype=float32)": lambda t: Tensor(t, dtype=np.float32),
    "Parameter(t)": lambda t: nn.Parameter(t, requires_grad=False),
    "astype(its dtype)": lambda t: t.astype(t.dtype),
    "reshape": lambda t: t.reshape(t.shape[::-1]),
    "slice": lambda t: t[..., ::2],
    "transpose": lambda t: t.T,
    "flip over no axes": lambda t: t.flip(()),
    "[...]": lambda t: t[...],
}


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.sampled_from(sorted(ALIASES)), min_size=1, max_size=3),
    change=st.sampled_from(["fill_", "zero_", "copy_"]),
)
def test_a_change_through_any_alias_of_a_saved_tensor_is_seen(steps, change):
    """Whatever chain of aliases a user makes of a saved result (``detach``, ``Tensor(t)``,
    ``Parameter(t)``, views), a change through the last one is refused by backward exactly
    when it shares the result's memory; otherwise the gradient is the usual one."""
    x = Tensor(np.arange(6.0).reshape(2, 3) / 4, requires_grad=True)
    y = x.exp()  # exp's VJP reads its output
    with tg.no_grad():
        alias = y
        for step in steps:
            alias = ALIASES[step](alias)
        shared = np.shares_memory(alias.data, y.data)
        if change == "copy_":
            alias.copy_(np.full(alias.shape, 2.0))
        else:
            getattr(alias, change)(*([2.0] if change == "fill_" else []))
    if shared:
        with pytest.raises(RuntimeError, match=MODIFIED):
            y.sum().backward()
    else:
        y.sum().backward()
        np.testing.assert_allclose(x.grad.data, np.exp(x.data))
