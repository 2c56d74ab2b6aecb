"""``nn.utils``: get_total_norm, clip_grads_with_norm_ and clip_grad_norm_ against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, nn

torch = pytest.importorskip("torch")

NORM_TYPES = st.sampled_from([1.0, 2.0, 3.0, 0.5, np.inf, -np.inf, 0.0])
SHAPES = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=4)


def _arrays(shapes, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=rng.uniform(0.1, 3.0), size=shape) for shape in shapes]


@settings(max_examples=15, deadline=None)
@given(shapes=SHAPES, norm_type=NORM_TYPES, seed=st.integers(0, 2**16))
def test_get_total_norm_matches_pytorch(shapes, norm_type, seed):
    arrays = _arrays(shapes, seed)
    ours = nn.utils.get_total_norm([Tensor(a) for a in arrays], norm_type)
    theirs = torch.nn.utils.get_total_norm([torch.tensor(a) for a in arrays], norm_type)
    assert ours.shape == ()
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-9)


@settings(max_examples=15, deadline=None)
@given(
    shapes=SHAPES,
    max_norm=st.floats(0.01, 10.0),
    norm_type=NORM_TYPES,
    seed=st.integers(0, 2**16),
)
def test_clip_in_two_calls_matches_pytorch_and_clip_grad_norm(shapes, max_norm, norm_type, seed):
    arrays = _arrays(shapes, seed)
    ours = [Tensor(np.zeros(a.shape), requires_grad=True) for a in arrays]
    again = [Tensor(np.zeros(a.shape), requires_grad=True) for a in arrays]
    theirs = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrays]
    for a, p, q, t in zip(arrays, ours, again, theirs):
        p.grad, q.grad, t.grad = Tensor(a.copy()), Tensor(a.copy()), torch.tensor(a.copy())
    total = nn.utils.get_total_norm([p.grad for p in ours], norm_type)
    nn.utils.clip_grads_with_norm_(ours, max_norm, total)
    returned = nn.utils.clip_grad_norm_(again, max_norm, norm_type)
    their_total = torch.nn.utils.get_total_norm([t.grad for t in theirs], norm_type)
    torch.nn.utils.clip_grads_with_norm_(theirs, max_norm, their_total)
    assert float(returned.data) == float(total.data)
    for p, q, t in zip(ours, again, theirs):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(p.grad.data, q.grad.data)


def test_no_tensors_have_norm_zero_and_a_single_tensor_is_accepted():
    assert float(nn.utils.get_total_norm([]).data) == 0.0
    assert float(nn.utils.get_total_norm(Tensor(np.array([3.0, 4.0]))).data) == 5.0


def test_a_nonfinite_norm_raises_only_when_asked():
    grads = [Tensor(np.array([1.0, np.inf]))]
    assert np.isinf(nn.utils.get_total_norm(grads).data)
    with pytest.raises(RuntimeError, match=r"get_total_norm.*inf.*error_if_nonfinite"):
        nn.utils.get_total_norm(grads, error_if_nonfinite=True)


def test_clipping_replaces_gradients_and_skips_missing_ones():
    a, b = (Tensor(np.zeros(2), requires_grad=True) for _ in range(2))
    shared = np.array([3.0, 4.0])
    a.grad = Tensor._wrap(shared)
    nn.utils.clip_grads_with_norm_([a, b], 1.0, 5.0)
    np.testing.assert_allclose(a.grad.data, [3 / (5 + 1e-6), 4 / (5 + 1e-6)])
    np.testing.assert_array_equal(shared, [3.0, 4.0])
    assert b.grad is None


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: nn.utils.get_total_norm([], foreach=1), TypeError, "foreach"),
        (lambda: nn.utils.get_total_norm([], norm_type="fro"), TypeError, "norm_type"),
        (lambda: nn.utils.clip_grads_with_norm_([], "1", 1.0), TypeError, "max_norm"),
        (lambda: nn.utils.clip_grads_with_norm_([], 1.0, 1.0, foreach="yes"), TypeError, "foreach"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
