"""The engine's switches are per thread, as in PyTorch.

Promises: ``no_grad()`` / ``enable_grad()`` in one thread never change what another thread
records; grad mode is restored in every thread after blocks that run concurrently (and after
concurrent backward passes, which record with ``create_graph``); observers (``trace``,
``detect_anomaly``, forward mode's levels) watch only the thread that opened them; one decorated
``no_grad`` function can run in several threads at once; a decorated generator function runs its
body in the decorator's mode; ``grad()`` calls with different targets over one retained graph --
in several threads, or one nested in another's hook -- each get their exact gradients and leave
the graph as recorded; backward passes in several threads that reach one leaf each add their
share to its ``.grad``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.graph import observers

TIMEOUT = 60


def _run_threads(targets: list[Callable[[], None]]) -> None:
    """Run each target in its own thread, started together; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def run(target: Callable[[], None]) -> None:
        try:
            start.wait(TIMEOUT)
            target()
        except BaseException as err:  # reported to the test thread below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread did not finish: a deadlock?"
    if errors:
        raise errors[0]


def _backward_many_times(rounds: int, results: list[bool]) -> Callable[[], None]:
    def work() -> None:
        for _ in range(rounds):
            x = Tensor(np.arange(3.0), requires_grad=True)
            ((x * x).sum()).backward()
            results.append(np.array_equal(x.grad.data, 2 * np.arange(3.0)))

    return work


def _inside_no_grad_many_times(rounds: int, seen: list[bool]) -> Callable[[], None]:
    def work() -> None:
        for _ in range(rounds):
            with tg.no_grad():
                y = Tensor(np.ones(2), requires_grad=True) * 2
                seen.append(y.requires_grad)

    return work


def test_no_grad_in_one_thread_does_not_stop_another_threads_backward():
    backward_ok: list[bool] = []
    recorded_inside: list[bool] = []
    _run_threads(
        [
            _backward_many_times(100, backward_ok),
            _inside_no_grad_many_times(100, recorded_inside),
        ]
    )
    assert backward_ok == [True] * 100
    assert recorded_inside == [False] * 100
    assert tg.is_grad_enabled()


def test_grad_mode_is_restored_after_concurrent_backward_and_create_graph():
    def work() -> None:
        for _ in range(50):
            w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
            (g,) = tg.grad((w**3).sum(), [w], create_graph=True)
            (h,) = tg.grad(g.sum(), [w])
            np.testing.assert_allclose(h.data, 6 * w.data)
            (w * 2).sum().backward()
            assert tg.is_grad_enabled()

    _run_threads([work] * 4)
    assert tg.is_grad_enabled()


def test_one_decorated_no_grad_function_runs_in_several_threads_at_once():
    inside = threading.Barrier(3)

    @tg.no_grad()
    def predict(x: Tensor) -> bool:
        inside.wait(TIMEOUT)  # every thread is inside the decorated block at once
        return (x * 2).requires_grad

    answers: list[bool] = []

    def work() -> None:
        answers.append(predict(Tensor(np.ones(2), requires_grad=True)))
        answers.append(tg.is_grad_enabled())

    _run_threads([work] * 3)
    assert sorted(answers) == [False] * 3 + [True] * 3
    assert tg.is_grad_enabled()


def test_a_new_thread_starts_with_grad_mode_on_and_no_observers():
    seen: dict[str, object] = {}

    def look() -> None:
        seen["grad"] = tg.is_grad_enabled()
        seen["observers"] = observers()

    with tg.no_grad(), tg.trace():
        _run_threads([look])
        assert not tg.is_grad_enabled()
    assert seen == {"grad": True, "observers": ()}


def test_trace_records_only_its_own_thread():
    other_thread_done = threading.Event()

    def other() -> None:
        x = Tensor(np.ones(3), requires_grad=True)
        (x.exp() * 3).sum().backward()
        other_thread_done.set()

    with tg.trace() as recording:
        x = Tensor(np.ones(2), requires_grad=True)
        loss = x.tanh().sum()
        _run_threads([other])
        loss.backward()
    assert other_thread_done.is_set()
    names = str(recording)
    assert "tanh" in names
    assert "exp" not in names


def test_anomaly_mode_checks_only_its_own_thread():
    def other() -> None:
        with np.errstate(divide="ignore"):
            Tensor(np.array([0.0]), requires_grad=True).log()  # -inf: fine outside anomaly mode

    with tg.detect_anomaly():
        _run_threads([other])
        with pytest.raises(Exception, match="log"):
            Tensor(np.array([0.0]), requires_grad=True).log()


def test_forward_mode_levels_are_per_thread():
    def work(scale: float) -> Callable[[], None]:
        def run() -> None:
            for _ in range(30):
                x = Tensor(np.array([1.0, 2.0]))
                _, tangent = tg.jvp(lambda t: (t * t).sum() * scale, (x,), (np.ones(2),))
                assert tangent.item() == pytest.approx(scale * 6.0)

        return run

    _run_threads([work(1.0), work(2.0), work(3.0)])


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(["no_grad", "enable_grad", "backward", "grad"]), max_size=8))
def test_any_mix_of_mode_switches_in_threads_leaves_each_thread_its_own_mode(actions):
    def work(action: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(10):
                x = Tensor(np.arange(1.0, 4.0), requires_grad=True)
                if action == "no_grad":
                    with tg.no_grad():
                        assert not (x * 2).requires_grad
                elif action == "enable_grad":
                    with tg.no_grad(), tg.enable_grad():
                        assert (x * 2).requires_grad
                elif action == "backward":
                    (x * x).sum().backward()
                    np.testing.assert_array_equal(x.grad.data, 2 * x.data)
                else:
                    (g,) = tg.grad((x**2).sum(), [x], create_graph=True)
                    assert g.requires_grad
                assert tg.is_grad_enabled()

        return run

    if actions:
        _run_threads([work(a) for a in actions])
    assert tg.is_grad_enabled()
    assert observers() == ()


def test_a_decorated_generator_runs_its_body_in_the_decorators_mode():
    x = Tensor(np.ones(2), requires_grad=True)

    @tg.no_grad()
    def halves():
        sent = yield (x * 2).requires_grad
        assert tg.is_grad_enabled() is False
        yield (x * sent).requires_grad

    @tg.enable_grad()
    def recorded():
        yield (x * 2).requires_grad

    steps = halves()
    assert next(steps) is False
    assert tg.is_grad_enabled()  # the caller's mode between the yields
    assert steps.send(3.0) is False
    with tg.no_grad():
        assert list(recorded()) == [True]
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_an_exception_thrown_into_a_decorated_generator_reaches_its_body():
    @tg.no_grad()
    def catching():
        try:
            yield 1
        except KeyError:
            yield tg.is_grad_enabled()

    steps = catching()
    next(steps)
    assert steps.throw(KeyError("k")) is False
    assert tg.is_grad_enabled()
    steps.close()


def _shared_graph() -> tuple[Tensor, Tensor, Tensor, np.ndarray, np.ndarray]:
    """``loss(x, w)`` reaching ``x`` and ``w`` along several paths, and its exact gradients."""
    x = Tensor(np.array([1.0, 2.0, -1.5]), requires_grad=True)
    w = Tensor(np.array([3.0, 4.0, 0.5]), requires_grad=True)
    h = x * w
    loss = (h * x + h * w).sum()
    dx = 2 * x.data * w.data + w.data**2
    dw = x.data**2 + 2 * x.data * w.data
    return x, w, loss, dx, dw


def test_grad_for_different_targets_in_threads_over_one_retained_graph():
    x, w, loss, dx, dw = _shared_graph()

    def gradient_of(target: Tensor, expected: np.ndarray) -> Callable[[], None]:
        def run() -> None:
            for _ in range(150):
                (g,) = tg.grad(loss, [target], retain_graph=True)
                np.testing.assert_allclose(g.data, expected)

        return run

    _run_threads([gradient_of(x, dx), gradient_of(w, dw), gradient_of(x, dx)])
    loss.backward()  # the graph is as recorded: every leaf gets its whole gradient
    np.testing.assert_allclose(x.grad.data, dx)
    np.testing.assert_allclose(w.grad.data, dw)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["x", "w", "both"]), min_size=1, max_size=3), st.booleans())
def test_grad_nested_in_a_hook_sees_the_recorded_graph(inner_targets, backward_inside):
    """A hook that calls ``grad()`` (or ``backward()``) on the graph its sweep is walking gets
    the same answer as outside it, and the outer sweep's answer is unchanged too."""
    x, w, loss, dx, dw = _shared_graph()
    expected = {"x": [dx], "w": [dw], "both": [dx, dw]}
    inner: list[list[np.ndarray]] = []
    depth = [0]

    def hook(g: Tensor) -> None:
        if depth[0]:  # the nested sweeps run this hook too
            return
        depth[0] += 1
        for which in inner_targets:
            targets = {"x": [x], "w": [w], "both": [x, w]}[which]
            inner.append([t.data for t in tg.grad(loss, targets, retain_graph=True)])
        if backward_inside:
            loss.backward(retain_graph=True)
        depth[0] -= 1

    loss._node.inputs[0].register_hook(hook)
    (gx,) = tg.grad(loss, [x], retain_graph=True)
    np.testing.assert_allclose(gx.data, dx)
    for got, which in zip(inner, inner_targets):
        for value, want in zip(got, expected[which]):
            np.testing.assert_allclose(value, want)
    if backward_inside:
        np.testing.assert_allclose(x.grad.data, dx)
        np.testing.assert_allclose(w.grad.data, dw)


@pytest.mark.parametrize("create_graph", [False, True])
def test_concurrent_backward_passes_into_one_leaf_add_every_share(create_graph):
    """Each thread's ``.grad`` update reads, sums and writes back: interleaved without a lock,
    one thread's share was lost (2154 of 2400)."""
    w = Tensor(np.ones(100_000), requires_grad=True)  # NumPy's sums release the GIL
    threads, rounds = 4, 100

    def work() -> None:
        for _ in range(rounds):
            (w * 2.0).sum().backward(create_graph=create_graph)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        _run_threads([work] * threads)
    finally:
        sys.setswitchinterval(interval)
    np.testing.assert_array_equal(w.grad.data, np.full(w.shape, 2.0 * threads * rounds))
