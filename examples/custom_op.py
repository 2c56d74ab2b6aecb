"""Writing your own op, then proving its gradient right with gradcheck and hypothesis.

The op is softplus, y = log(1 + e^x), whose derivative is the sigmoid. Run:

    python examples/custom_op.py
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.testing import shapes, tensors


class Softplus(tg.graph.Op):
    r"""y = log(1 + e^x).   dy/dx = sigmoid(x), so the VJP is g * sigmoid(x)."""

    name = "softplus"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(0, x)  # stable for large |x|

    def vjp(self, g: Tensor, out: Tensor, x: Tensor) -> Tensor:
        return g * x.sigmoid()  # Tensor ops: so second derivatives work too


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(x)


@settings(max_examples=25, deadline=None)
@given(tensors(shapes(), low=-4, high=4))
def check_softplus(x: Tensor) -> None:
    assert tg.gradcheck(softplus, [x])
    assert tg.gradgradcheck(softplus, [x])


def main() -> None:
    x = Tensor(np.array([-1000.0, 0.0, 3.0]), requires_grad=True)
    y = softplus(x).sum()
    y.backward()
    print("softplus:", softplus(x).data, " gradient:", x.grad.data)
    check_softplus()
    print("gradcheck and gradgradcheck passed on 25 random shapes")


if __name__ == "__main__":
    main()
