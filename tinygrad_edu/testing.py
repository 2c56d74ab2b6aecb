"""Hypothesis strategies for property-testing differentiable code.

The engine's own test suite is built from these; use them to test your ops and models the same
way. Requires ``hypothesis`` (``pip install "tinygrad_edu[testing]"``).

>>> from hypothesis import given
>>> import tinygrad_edu as tg
>>> from tinygrad_edu.testing import broadcastable_shapes, tensors
>>> @given(broadcastable_shapes(2).flatmap(lambda s: tensors(s[0]).map(lambda a: (a, s[1]))))
... def test_square(pair):
...     a, _ = pair
...     assert tg.gradcheck(lambda x: x * x, [a])
>>> test_square()
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        "tinygrad_edu.testing needs hypothesis: pip install 'tinygrad_edu[testing]'"
    ) from err

from .tensor import Tensor

Shape = tuple[int, ...]


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes, 0-d included by default, with sides of size 1 as likely as any other."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
):
    """Tuples of ``num_shapes`` shapes that broadcast together (size-1 and missing axes)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda result: result.input_shapes)


def matmul_shapes(max_side: int = 4):
    """Pairs of shapes valid for ``@`` under NumPy rules: 1-d operands and broadcast batch axes."""

    def build(drawn: tuple) -> tuple[Shape, Shape]:
        (batch_a, batch_b), m, k, n, a_is_vector, b_is_vector = drawn
        a = (k,) if a_is_vector else (*batch_a, m, k)
        b = (k,) if b_is_vector else (*batch_b, k, n)
        return a, b

    batches = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)
    side = st.integers(1, max_side)
    return st.tuples(
        batches.map(lambda r: r.input_shapes), side, side, side, st.booleans(), st.booleans()
    ).map(build)


def elements(
    low: float = -2.0, high: float = 2.0, away_from_zero: float = 0.0, spacing: float | None = None
):
    """Floats in ``[low, high]``; optionally ``|x| >= away_from_zero``; optionally on a grid.

    ``away_from_zero`` keeps samples off kinks and poles (``abs``, ``relu``, ``1/x``);
    ``spacing`` puts them on multiples of a step, so distinct values are never closer than it
    (ties and near-ties break ``max``).
    """
    if spacing is not None:
        values = st.integers(int(np.ceil(low / spacing)), int(np.floor(high / spacing))).map(
            lambda i: i * spacing
        )
    else:
        values = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if away_from_zero > 0:
        values = values.filter(lambda v: abs(v) >= away_from_zero)
    return values


def arrays(shape: Shape | Any, dtype: Any = np.float64, unique: bool = False, **element_options):
    """NumPy arrays of ``shape`` (a shape or a strategy of shapes) with :func:`elements` values."""
    return hnp.arrays(dtype, shape, elements=elements(**element_options), unique=unique)


def tensors(shape: Shape | Any, requires_grad: bool = True, dtype: Any = np.float64, **options):
    """Tensors wrapping :func:`arrays`; float64 and ``requires_grad=True`` by default."""
    return arrays(shape, dtype=dtype, **options).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )
