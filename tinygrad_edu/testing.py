"""Hypothesis strategies for property-testing differentiable code.

The engine's own test suite is built from these; use them to test your ops and models the same
way. Requires ``hypothesis`` (the ``testing`` extra: ``pip install hypothesis``).

Generate *classes* of input, not examples: most wrong gradients hide in a corner that a
hand-picked example never visits. The strategies below each cover one such class:

=============================  ===========================================================
strategy                       the class of input
=============================  ===========================================================
:func:`shapes`,                shapes with 0-d and size-1 axes, broadcasting pairs,
:func:`broadcastable_shapes`,  ``@``-compatible pairs (1-d operands, batch axes)
:func:`matmul_shapes`
:func:`arrays`, :func:`tensors` float values, optionally away from kinks or on a grid
:func:`axes`,                  every spelling of an axis argument: negative, tuple, ``None``;
:func:`axis_permutations`      permutations written with negative entries
:func:`indices`                mixed basic/advanced/boolean indices on any axis: ints, slices
                               with negative steps, ``None``, ``...``, integer arrays with
                               repeats, boolean masks, in combination
:func:`python_scalars`,        Python ``bool``/``int``/``float`` operands and integer or
:func:`integer_arrays`         boolean arrays that meet them (dtype promotion)
:func:`edge_values`,           domain edges: 0, -0, +-inf, huge and tiny magnitudes; logits
:func:`saturating_logits`      whose float32 sigmoid is exactly 0 or 1
:func:`selections`             picks of positions with repeats (duplicate outputs and inputs
                               of :func:`tinygrad_edu.grad`)
=============================  ===========================================================

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

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        "tinygrad_edu.testing needs hypothesis (the 'testing' extra): pip install hypothesis"
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


# ---------------------------------------------------------------------------------- axes
def axes(ndim: int, allow_none: bool = True, allow_tuple: bool = True, allow_negative: bool = True):
    """Axis arguments for a ``ndim``-d input: an int, a tuple of distinct axes or ``None``.

    Each axis is as likely to be written negatively (``-1``) as positively, so code that
    forgets to normalise ``axis=-1`` before comparing or permuting is found. For ``ndim == 0``
    it draws ``None``, ``0`` or ``-1`` (PyTorch's and our reductions accept the latter two on a
    0-d tensor; NumPy's do not).
    """
    if ndim == 0:
        return st.sampled_from([None, 0, -1] if allow_negative else [None, 0])

    def spell(a: int, negative: bool) -> int:
        return a - ndim if negative and allow_negative else a

    single = st.tuples(st.integers(0, ndim - 1), st.booleans()).map(lambda p: spell(*p))
    choices = [single]
    if allow_none:
        choices.append(st.none())
    if allow_tuple:
        picks = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
        choices.append(
            st.tuples(picks, st.lists(st.booleans(), min_size=ndim, max_size=ndim)).map(
                lambda p: tuple(spell(a, neg) for a, neg in zip(p[0], p[1]))
            )
        )
    return st.one_of(*choices)


def axis_permutations(ndim: int, allow_negative: bool = True):
    """Permutations of ``range(ndim)``, each entry possibly written as its negative spelling.

    ``x.transpose(-1, 0)`` is the same permutation as ``x.transpose(1, 0)``; its VJP must
    invert the permutation, not the spelling.
    """
    flags = st.lists(st.booleans(), min_size=ndim, max_size=ndim)
    return st.tuples(st.permutations(range(ndim)), flags).map(
        lambda p: tuple(a - ndim if neg and allow_negative else a for a, neg in zip(*p))
    )


# ---------------------------------------------------------------------------------- indices
def _index_for_axis(draw: Any, side: int, advanced_ok: bool, mask_ok: bool) -> tuple[str, Any]:
    kinds = ["int", "slice", "full"] + (["array"] if advanced_ok else [])
    kinds += ["mask"] if mask_ok else []
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        return kind, draw(st.integers(-side, side - 1))
    if kind == "full":
        return kind, slice(None)
    if kind == "slice":
        bound = st.one_of(st.none(), st.integers(-side - 1, side + 1))
        step = draw(st.sampled_from([None, 1, 2, 3, -1, -2]))
        return kind, slice(draw(bound), draw(bound), step)
    if kind == "mask":
        return kind, np.array(draw(st.lists(st.booleans(), min_size=side, max_size=side)))
    return kind, None  # "array": drawn later, once the broadcast length is known


@st.composite
def indices(
    draw: Any,
    shape: Shape,
    allow_newaxis: bool = True,
    allow_ellipsis: bool = True,
    allow_advanced: bool = True,
    max_array_length: int = 4,
):
    """Valid NumPy indices for an array of ``shape``, mixing every kind on any axis.

    Per axis: an int (negative too), a slice (negative steps, bounds past the ends), a full
    slice, an integer array, or a boolean mask of that axis's length. Integer arrays share one
    length so they broadcast together -- the mask's count of ``True`` when a mask is present,
    else any length -- and their values repeat, so a gradient has to *add* up. ``None``
    (new axes) may be inserted anywhere and a run of axes may be replaced by ``...``.
    Multi-dimensional masks and integer arrays appear as ``x[mask]`` or ``x[(array_2d,)]``.
    Returns a tuple (or a bare array / mask for the whole-array forms).
    """
    ndim = len(shape)
    if allow_advanced and ndim and draw(st.integers(0, 9)) == 0:  # whole-array forms
        if draw(st.booleans()):
            return draw(hnp.arrays(np.bool_, shape))
        side = shape[0]
        rows = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3))
        return (draw(hnp.arrays(np.intp, rows, elements=st.integers(-side, side - 1))),)
    parts: list[tuple[str, Any]] = []
    mask_used = False
    for side in shape:
        kind, value = _index_for_axis(draw, side, allow_advanced, allow_advanced and not mask_used)
        mask_used |= kind == "mask"
        parts.append((kind, value))
    mask_count = next((int(v.sum()) for k, v in parts if k == "mask"), None)
    length = draw(st.integers(0 if mask_count is None else 1, max_array_length))
    if mask_count is not None:
        length = draw(st.sampled_from([mask_count, 1]))
    index: list[Any] = []
    for (kind, value), side in zip(parts, shape):
        if kind == "array":
            value = np.array(
                draw(st.lists(st.integers(-side, side - 1), min_size=length, max_size=length)),
                dtype=np.intp,
            )
        index.append(value)
    if allow_ellipsis and draw(st.booleans()):
        start = draw(st.integers(0, ndim))
        stop = draw(st.integers(start, ndim))
        if all(kind == "full" for kind, _ in parts[start:stop]):
            index[start:stop] = [Ellipsis]
    if allow_newaxis:
        for _ in range(draw(st.integers(0, 2))):
            index.insert(draw(st.integers(0, len(index))), None)
    return tuple(index)


# ---------------------------------------------------------------------------------- dtypes
def python_scalars(allow_bool: bool = True, allow_int: bool = True, allow_float: bool = True):
    """Python numbers as they appear in user code: ``True``, ``3``, ``-2``, ``0.5``, ``-0.0``.

    Ints stay within int8's range, so they fit every integer dtype (a Python int beyond an
    integer tensor's dtype wraps around, as in PyTorch; NumPy refuses it).
    """
    choices = []
    if allow_bool:
        choices.append(st.booleans())
    if allow_int:
        choices.append(st.integers(-100, 100))
    if allow_float:
        choices.append(
            st.one_of(
                st.sampled_from([0.0, -0.0, 0.5, -1.5, 2.0]),
                st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
            )
        )
    return st.one_of(*choices)


INTEGER_DTYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8)


def integer_arrays(shape: Shape | Any, dtypes: Sequence[Any] = INTEGER_DTYPES):
    """Boolean and integer arrays (signed and unsigned) of ``shape``, small values.

    ``Tensor(a)`` keeps their dtype.
    """

    def values(dtype: Any):
        dtype = np.dtype(dtype)
        if dtype.kind == "b":
            return hnp.arrays(dtype, shape)
        low = 0 if dtype.kind == "u" else -10
        return hnp.arrays(dtype, shape, elements=st.integers(low, 10))

    return st.sampled_from(list(dtypes)).flatmap(values)


# ---------------------------------------------------------------------------------- domain edges
#: the values :func:`edge_values` draws from (small enough to test exhaustively, e.g. all pairs)
EDGE_VALUES = (0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, -1e-30, 1e30, -1e30, 1e300, -1e300)
EDGE_VALUES += (np.inf, -np.inf)


def edge_values(include_infinity: bool = True, include_huge: bool = True):
    """Floats at the edges of most functions' domains: 0, -0, +-1, +-inf, huge, tiny.

    A derivative rule that is right in the interior can still produce ``0 * inf = nan`` or
    ``inf - inf`` there; compare against a reference (PyTorch) rather than finite differences,
    which cannot step across an edge.
    """
    values = [v for v in EDGE_VALUES if include_huge or not 1e3 < abs(v) < np.inf]
    return st.sampled_from([v for v in values if include_infinity or np.isfinite(v)])


def saturating_logits(dtype: Any = np.float32, side: str = "both"):
    """Logits whose sigmoid in ``dtype`` rounds to exactly 1.0 (``side="high"``) or 0.0.

    The engine's float32 sigmoid is exactly 1.0 from ``x = 17.01`` on (``1 - 2**-24`` is the
    largest float32 below 1), float64's from ``x = 37.64``; exactly 0.0 is reached only far
    lower (``-103.97`` and ``-745.13``), where ``exp`` underflows.
    """
    one_from = 17.5 if np.dtype(dtype) == np.float32 else 38.0
    zero_below = -104.0 if np.dtype(dtype) == np.float32 else -746.0
    high = st.floats(one_from, 3 * one_from)
    low = st.floats(3 * zero_below, zero_below)
    return {"high": high, "low": low, "both": st.one_of(high, low)}[side]


# ---------------------------------------------------------------------------------- grad()
def selections(count: int, min_size: int = 1, max_size: int = 4):
    """Lists of positions in ``range(count)`` with repeats: which outputs (or inputs) to pass
    to :func:`tinygrad_edu.grad`, so an output listed twice counts twice and an input listed
    twice gets its gradient twice."""
    return st.lists(st.integers(0, count - 1), min_size=min_size, max_size=max_size)
