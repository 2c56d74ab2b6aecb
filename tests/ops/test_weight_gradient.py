"""``WeightGradient``: ``Linear``'s weight gradient ``g^T x`` as one op."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.gradcheck import gradcheck, gradgradcheck
from tinygrad_edu.nn import functional as F
from tinygrad_edu.ops.linalg import WeightGradient


def _leaves(rng, *shapes):
    return [Tensor(rng.normal(size=shape), requires_grad=True) for shape in shapes]


def test_it_is_the_product_of_the_transpose_bit_for_bit():
    g, x = _leaves(np.random.default_rng(0), (7, 3), (7, 5))
    assert np.array_equal(WeightGradient.apply(g, x).data, (g.T @ x).data)


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
def test_its_vjp_and_jvp_match_finite_differences(check):
    g, x = _leaves(np.random.default_rng(1), (4, 3), (4, 5))
    assert check(lambda g, x: WeightGradient.apply(g, x), (g, x), modes=("rev", "fwd"))


def test_linear_weight_gradient_is_the_transposed_product_bit_for_bit():
    x, weight, bias = _leaves(np.random.default_rng(2), (2, 6, 4), (3, 4), (3,))
    out = F.linear(x, weight, bias)
    upstream = np.random.default_rng(3).normal(size=out.shape)
    out.backward(upstream)
    expected = upstream.reshape(-1, 3).T @ x.data.reshape(-1, 4)
    assert np.array_equal(weight.grad.data, expected)
    assert np.array_equal(bias.grad.data, upstream.sum(axis=(0, 1)))


def test_second_derivatives_through_a_linear_layer_match_finite_differences():
    x, weight, bias = _leaves(np.random.default_rng(4), (2, 5, 4), (3, 4), (3,))
    assert gradgradcheck(lambda x, w, b: F.linear(x, w, b).sigmoid(), (x, weight, bias))
