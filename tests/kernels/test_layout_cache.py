"""The layout cache (:mod:`tinygrad_edu.kernels.fast.layout_cache`): kernel re-layouts reused while
the weight's version counter stands, never a stale one.

The property: any sequence of in-place updates (``copy_``, optimizer steps, ``load_state_dict``),
``.data`` rebinding and ``requires_grad`` toggles (``freeze``/``unfreeze`` too), interleaved with
convolution forwards and backwards, gives bit for bit the results of the same run without the
cache. And the point of it: a weight that is not being changed is laid out once, whichever way
it is kept still (``p.requires_grad = False``, ``freeze()``, or simply not stepping it).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.kernels.fast import gemm, winograd
from tinygrad_edu.kernels.fast.layout_cache import LAYOUTS, LayoutCache
from tinygrad_edu.kernels.jit import winograd4x4
from tinygrad_edu.nn import functional as F


@contextmanager
def layout_cache(on: bool):
    """Every kernel cached (``on``), or every re-layout computed afresh (the reference)."""
    saved = LAYOUTS.min_bytes
    LAYOUTS.min_bytes = 0 if on else 2**62
    try:
        yield
    finally:
        LAYOUTS.min_bytes = saved


def network() -> nn.Module:
    """Every formulation the cache serves: im2col forward with a col2im input gradient, a
    grouped convolution (kernels sliced afresh on every call), Winograd, im2col with stride 2."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, rng=0, dtype=np.float64),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=2, rng=1, dtype=np.float64),
        nn.ReLU(),
        nn.Conv2d(32, 33, 3, padding=1, rng=2, dtype=np.float64),
        nn.ReLU(),
        nn.Conv2d(33, 5, 2, stride=2, rng=3, dtype=np.float64),
    )


class Run:
    """One model, its optimizer and whether the layout cache is on while it computes."""

    def __init__(self, model: nn.Module, cached: bool) -> None:
        self.model, self.cached = model, cached
        self.optimizer = tg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def do(self, action: tuple, x: np.ndarray) -> list[np.ndarray | None]:
        """Apply ``action``; return every array it computed (and the parameters' values)."""
        kind, *args = action
        params = list(self.model.parameters())
        results: list[np.ndarray | None] = []
        with layout_cache(self.cached):
            if kind == "forward":
                with tg.no_grad():
                    results.append(self.model(Tensor(x)).data)
            elif kind == "backward":
                image = Tensor(x, requires_grad=True)
                y = self.model(image)
                weights = np.random.default_rng(args[0]).standard_normal(y.shape)
                (y * Tensor(weights)).sum().backward()
                results.append(y.data)
                results.append(image.grad.data)
                results.extend(None if p.grad is None else p.grad.data for p in params)
            elif kind == "step":
                self.optimizer.step()
            elif kind == "zero_grad":
                self.optimizer.zero_grad()
            elif kind == "copy_":
                p = params[args[0] % len(params)]
                with tg.no_grad():
                    p.copy_(np.random.default_rng(args[1]).standard_normal(p.shape) * 0.1)
            elif kind == "rebind":
                p = params[args[0] % len(params)]
                p.data = np.random.default_rng(args[1]).standard_normal(p.shape) * 0.1
            elif kind == "requires_grad":
                p = params[args[0] % len(params)]
                p.requires_grad = not p.requires_grad  # PyTorch's idiom, as an attribute
            elif kind == "freeze":
                self.model.freeze()
            elif kind == "unfreeze":
                self.model.unfreeze()
            elif kind == "load_state_dict":
                rng = np.random.default_rng(args[0])
                state = {
                    k: rng.standard_normal(v.shape) * 0.1
                    for k, v in self.model.state_dict().items()
                }
                self.model.load_state_dict(state)
        return results + [p.data for p in params]


seeds = st.integers(0, 2**32 - 1)
actions = st.one_of(
    st.tuples(st.just("forward")),
    st.tuples(st.just("backward"), seeds),
    st.tuples(st.just("step")),
    st.tuples(st.just("zero_grad")),
    st.tuples(st.just("copy_"), st.integers(0, 7), seeds),
    st.tuples(st.just("rebind"), st.integers(0, 7), seeds),
    st.tuples(st.just("requires_grad"), st.integers(0, 7)),
    st.tuples(st.just("freeze")),
    st.tuples(st.just("unfreeze")),
    st.tuples(st.just("load_state_dict"), seeds),
)


@given(st.lists(actions, min_size=1, max_size=12), seeds)
def test_any_sequence_of_updates_and_convolutions_equals_the_run_without_the_cache(script, seed):
    model = network()
    cached, plain = Run(copy.deepcopy(model), True), Run(copy.deepcopy(model), False)
    x = np.random.default_rng(seed).standard_normal((2, 3, 6, 6))
    for action in [("forward",), *script, ("backward", 0)]:
        for ours, theirs in zip(cached.do(action, x), plain.do(action, x), strict=True):
            if theirs is None:
                assert ours is None, action
            else:
                np.testing.assert_array_equal(ours, theirs, err_msg=str(action))


def count_layouts(patch: pytest.MonkeyPatch) -> list[str]:
    """A list that records each re-layout the convolution kernels compute."""
    made: list[str] = []
    kernels = [(winograd, "transform_kernel"), (winograd4x4, "transform_kernel")]
    for module, name in [*kernels, (gemm, "im2col_matrix")]:
        original = getattr(module, name)
        patch.setattr(module, name, lambda w, f=original, n=name: made.append(n) or f(w))
    return made


def input_gradient_step(model: nn.Module, x: np.ndarray) -> np.ndarray:
    image = Tensor(x, requires_grad=True)
    (g,) = tg.grad(model(image).sum(), [image])
    return g.data


@pytest.mark.parametrize("idiom", ["requires_grad attribute", "freeze", "trainable, not stepped"])
def test_a_weight_that_is_not_changed_is_laid_out_once(idiom, monkeypatch):
    """The visualisation's loop (gradient with respect to the input) lays each kernel out on
    the first iteration only, however the weights are kept still: no special call needed."""
    model = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1, rng=0), nn.ReLU())
    if idiom == "requires_grad attribute":
        for p in model.parameters():
            p.requires_grad = False
    elif idiom == "freeze":
        model.freeze()
    x = np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32)
    made = count_layouts(monkeypatch)
    first = input_gradient_step(model, x)
    assert made == ["transform_kernel"]  # forward and input gradient share Winograd's U
    for _ in range(3):
        np.testing.assert_array_equal(input_gradient_step(model, x), first)
    assert made == ["transform_kernel"]


def test_a_trained_weight_is_laid_out_once_per_step(monkeypatch):
    model = nn.Conv2d(32, 64, 3, padding=1, rng=0)
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32))
    made = count_layouts(monkeypatch)
    for step in range(1, 4):
        optimizer.zero_grad()
        model(x).sum().backward()  # forward, and the weight gradient (no input gradient)
        model(x)  # another forward with the same weights: cached
        assert len(made) == step
        optimizer.step()


def test_two_tensors_over_one_array_are_never_trusted():
    """Each tensor counts only its own changes: a kernel tracked under two counters is re-laid
    out on every call, so a change through either one is seen."""
    weight = np.random.default_rng(0).standard_normal((64, 32, 3, 3)).astype(np.float32)
    first, second = Tensor(weight), Tensor(weight)
    assert first.data is second.data and first._version_counter is not second._version_counter
    x = Tensor(np.random.default_rng(1).standard_normal((1, 32, 6, 6)).astype(np.float32))
    before = F.conv2d(x, first, padding=1).data
    np.testing.assert_array_equal(F.conv2d(x, second, padding=1).data, before)
    first.copy_(weight * 2)  # bumps first's counter only
    after = F.conv2d(x, second, padding=1).data
    np.testing.assert_allclose(after, 2 * before, rtol=1e-5, atol=1e-5)


def test_dead_memory_never_serves_its_layouts_to_an_array_that_got_its_id():
    """A rebound ``.data`` keeps the tensor's counter at the same count: the new array must not
    find the dead one's layouts even where CPython gives it the dead array's address."""
    cache, counter = LayoutCache(min_bytes=0), [0]
    w = np.ndarray((4, 4), np.float64, buffer=np.ones(16).tobytes())  # no base array
    cache.track(w, counter)
    np.testing.assert_array_equal(cache.get(w, "double", lambda a: a * 2), np.full((4, 4), 2.0))
    ident = id(w)
    del w
    data, kept = np.full(16, 3.0).tobytes(), []
    for _ in range(100_000):  # until CPython hands the dead array's address out again
        v = np.ndarray((4, 4), np.float64, buffer=data)
        if id(v) == ident:
            cache.track(v, counter)
            np.testing.assert_array_equal(cache.get(v, "double", lambda a: a * 2), 2 * v)
            return
        kept.append(v)
    pytest.skip("CPython never reused the address")


def test_an_untracked_kernel_is_never_cached_and_the_cache_is_bounded():
    cache = LayoutCache(max_bytes=3 * 800, min_bytes=0)
    made = []
    untracked = np.arange(100.0)
    for _ in range(2):
        cache.get(untracked, "copy", lambda a: made.append(1) or a.copy())
    assert len(made) == 2
    kept = [np.full(100, float(i)) for i in range(5)]  # 800 bytes each, one 800-byte layout
    for w in kept:
        cache.track(w, [0])
        cache.get(w, "copy", np.copy)
    assert cache.nbytes == sum(entry.nbytes for entry in cache._entries.values()) <= 3 * 800
    assert cache.nbytes == 3 * 800  # the three most recent layouts, each counted once


def test_nbytes_counts_each_kind_of_layout_held():
    cache = LayoutCache(min_bytes=0)
    assert cache.nbytes == 0
    w, counter = np.ones((4, 4, 3, 3), np.float32), [0]
    cache.track(w, counter)
    cache.get(w, "twice", lambda a: np.concatenate([a, a]))
    cache.get(w, "same", np.copy)
    cache.get(w, "same", np.copy)  # served, not added again
    assert cache.nbytes == 3 * w.nbytes
    counter[0] += 1  # changed: the next lookup starts its layouts afresh
    cache.get(w, "same", np.copy)
    assert cache.nbytes == w.nbytes
