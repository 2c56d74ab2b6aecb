"""A Hessian-vector product without ever forming the Hessian.

For f(w) = sum(log(1 + exp(X w))) (a logistic-regression-like loss), compute H v by
differentiating g(w) = grad f(w) in the direction v, and compare with the explicit Hessian
X^T diag(s (1 - s)) X. Run:

    python examples/hessian_vector_product.py
"""

from __future__ import annotations

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import Tensor


def main(seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, 5))
    w = Tensor(rng.standard_normal(5), requires_grad=True)
    v = rng.standard_normal(5)

    z = Tensor(X) @ w
    f = (1 + z.exp()).log().sum()
    (g,) = tg.grad(f, [w], create_graph=True)  # g is differentiable: it has its own graph
    (hv,) = tg.grad(g, [w], grad_outputs=Tensor(v))  # d/dw (g . v) = H v

    s = 1 / (1 + np.exp(-(X @ w.data)))
    explicit = X.T @ np.diag(s * (1 - s)) @ X @ v
    error = float(np.max(np.abs(hv.data - explicit)))
    print("H v (autodiff):", np.round(hv.data, 6))
    print("H v (explicit):", np.round(explicit, 6))
    print(f"largest difference: {error:.2e}")
    return error


if __name__ == "__main__":
    main()
