"""One row per differentiable op: how to draw valid inputs and how to call it.

Shared by the finite-difference property tests and the PyTorch differential tests, so adding an
op to the table tests it both ways.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.nn import functional as F
from tinygrad_edu.testing import arrays, broadcastable_shapes, matmul_shapes, shapes


@dataclass(frozen=True)
class OpSpec:
    """``draw(data)`` returns ``(arrays, kwargs)``; ``fn(*tensors, **kwargs)`` runs the op."""

    name: str
    draw: Callable
    fn: Callable
    torch_fn: Callable | None = None  # same maths in PyTorch, for the differential tests


def _unary(options: dict | None = None, min_dims: int = 0):
    def draw(data):
        shape = data.draw(shapes(min_dims=min_dims), label="shape")
        return [data.draw(arrays(shape, **(options or {})), label="x")], {}

    return draw


def _binary(a_options: dict | None = None, b_options: dict | None = None):
    def draw(data):
        sa, sb = data.draw(broadcastable_shapes(2), label="shapes")
        a = data.draw(arrays(sa, **(a_options or {})), label="a")
        b = data.draw(arrays(sb, **(b_options or {})), label="b")
        return [a, b], {}

    return draw


def _axis_and_keepdims(data, ndim: int, allow_tuple: bool = True):
    choices = [st.none()]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            choices.append(
                st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
                    tuple
                )
            )
    return data.draw(st.one_of(*choices), label="axis"), data.draw(st.booleans(), label="keepdims")


def _reduction(options: dict | None = None, unique: bool = False):
    def draw(data):
        shape = data.draw(shapes(), label="shape")
        x = data.draw(arrays(shape, unique=unique, **(options or {})), label="x")
        axis, keepdims = _axis_and_keepdims(data, len(shape))
        return [x], {"axis": axis, "keepdims": keepdims}

    return draw


def _softmax_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape, low=-3, high=3), label="x")
    return [x], {"axis": data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")}


def _softmax_axes_draw(data):
    """Several axes at once (a tuple, maybe negative, in any order) or all of them (None)."""
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape, low=-3, high=3), label="x")
    ndim = len(shape)
    several = st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim).filter(
        lambda a: len({i % ndim for i in a}) == len(a)
    )
    return [x], {"axis": data.draw(st.one_of(st.none(), several.map(tuple)), label="axis")}


def _torch_log_softmax_axes(x, axis):
    """PyTorch's softmax takes one dim; over several it is ``x - logsumexp(x, dims)``."""
    return x - _torch().logsumexp(x, dim=_dim(x, axis), keepdim=True)


def _matmul_draw(data):
    sa, sb = data.draw(matmul_shapes(), label="shapes")
    return [data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")], {}


def _reshape_draw(data):
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape), label="x")
    size = int(np.prod(shape))
    targets = [(size,), (1, size), (-1, 1)] + ([()] if size == 1 else [])
    target = data.draw(st.sampled_from(targets), label="target")
    return [x], {"shape": target}


def _transpose_draw(data):
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape), label="x")
    axes = data.draw(st.permutations(range(len(shape))), label="axes")
    return [x], {"axes": tuple(axes)}


def _getitem_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape), label="x")
    n = shape[0]
    kind = data.draw(st.sampled_from(["int", "slice", "array", "tuple", "bool"]), label="kind")
    if kind == "int":
        index = data.draw(st.integers(-n, n - 1))
    elif kind == "slice":
        start, stop = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
        index = slice(start, stop, data.draw(st.sampled_from([1, 2, -1])))
    elif kind == "array":  # repeats allowed: the gradient must add up
        index = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)))
    elif kind == "bool":
        index = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    else:
        index = (slice(None), *([0] if len(shape) > 1 else []), None)
    return [x], {"index": index}


def _joined_draw(stacking: bool):
    def draw(data):
        shape = data.draw(shapes(min_dims=0 if stacking else 1), label="shape")
        count = data.draw(st.integers(1, 3), label="count")
        ndim = len(shape) + (1 if stacking else 0)
        axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
        xs = []
        for _ in range(count):
            this = list(shape)
            if not stacking:
                this[axis % len(shape)] = data.draw(st.integers(1, 3))
            xs.append(data.draw(arrays(tuple(this))))
        return xs, {"axis": axis}

    return draw


def _clip_draw(data):
    shape = data.draw(shapes(), label="shape")
    # values on a 0.1 grid, bounds between grid points: no sample sits on a kink
    return [data.draw(arrays(shape, spacing=0.1), label="x")], {"lo": -0.55, "hi": 0.65}


def _torch():
    import torch

    return torch


def _torch_reduce(name):
    def fn(x, axis=None, keepdims=False):
        torch = _torch()
        dim = tuple(range(x.ndim)) if axis is None else axis
        if name == "sum":
            return torch.sum(x, dim=dim, keepdim=keepdims) if x.ndim else x.sum()
        if name == "mean":
            return torch.mean(x, dim=dim, keepdim=keepdims) if x.ndim else x.mean()
        return torch.amax(x, dim=dim, keepdim=keepdims) if x.ndim else x

    return fn


def _index_for_torch(index, length: int):
    """PyTorch has no negative slice steps: spell those as the integer positions they select."""
    torch = _torch()
    if isinstance(index, slice) and (index.step or 1) < 0:
        index = np.arange(length)[index].copy()
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


def _torch_f():
    import torch.nn.functional as torch_f

    return torch_f


def _dim(x, axis):
    """Our ``axis`` (None: all) as a PyTorch ``dim``."""
    return tuple(range(x.ndim)) if axis is None else axis


def _off(step: float, margin: float = 0.02):
    """Elementwise draws at least ``margin`` away from every multiple of ``step`` (the jumps of
    floor/ceil/round/trunc/sign): the derivative there is 0 and finite differences agree."""

    def draw(data):
        shape = data.draw(shapes(), label="shape")
        values = st.floats(-3, 3).filter(lambda v: abs(v / step - round(v / step)) * step > margin)
        return [data.draw(hnp.arrays(np.float64, shape, elements=values), label="x")], {}

    return draw


def _offset_grid(shape_draw, step: float, offset: float, low: float, high: float):
    """Values ``k * step + offset``: never on a kink placed on the ``step`` grid."""
    values = st.integers(int(low / step), int(high / step)).map(lambda k: k * step + offset)
    return hnp.arrays(np.float64, shape_draw, elements=values)


def _grid_draw(step: float, offset: float, low: float, high: float, **kwargs):
    def draw(data):
        shape = data.draw(shapes(), label="shape")
        return [data.draw(_offset_grid(shape, step, offset, low, high), label="x")], dict(kwargs)

    return draw


def _no_tie_draw(data):
    """a on the 0.2 grid, b on the grid shifted by 0.1: never equal, never a kink."""
    sa, sb = data.draw(broadcastable_shapes(2), label="shapes")
    a = data.draw(_offset_grid(sa, 0.2, 0.0, -2, 2), label="a")
    b = data.draw(_offset_grid(sb, 0.2, 0.1, -2, 2), label="b")
    return [a, b], {}


def _division_draw(data):
    """a and b with a/b at least 0.01 away from an integer (the jumps of % and //)."""
    sa, sb = data.draw(broadcastable_shapes(2), label="shapes")
    a = data.draw(arrays(sa, low=-3, high=3), label="a")
    b = data.draw(arrays(sb, low=-2, high=2, away_from_zero=0.5), label="b")
    ratio = a / b
    assume(np.all(np.abs(ratio - np.round(ratio)) > 0.01))
    return [a, b], {}


def _ternary_draw(data):
    shapes3 = data.draw(broadcastable_shapes(3), label="shapes")
    return [data.draw(arrays(s), label=f"x{i}") for i, s in enumerate(shapes3)], {}


def _where_draw(data):
    sc, sa, sb = data.draw(broadcastable_shapes(3), label="shapes")
    condition = data.draw(hnp.arrays(bool, sc), label="condition")
    return [data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")], {
        "condition": condition
    }


def _param_draw(options: dict | None = None, **params):
    """A unary draw plus keyword parameters, each drawn from its strategy."""

    def draw(data):
        shape = data.draw(shapes(), label="shape")
        x = data.draw(arrays(shape, **(options or {})), label="x")
        return [x], {k: data.draw(v, label=k) for k, v in params.items()}

    return draw


def _with_zeros(data, shape):
    """Values on the 0.5 grid in [-1.5, 1.5]: zeros (none, one, several) are common."""
    return data.draw(_offset_grid(shape, 0.5, 0.0, -1.5, 1.5), label="x")


def _prod_draw(data):
    shape = data.draw(shapes(), label="shape")
    axis, keepdims = _axis_and_keepdims(data, len(shape))
    return [_with_zeros(data, shape)], {"axis": axis, "keepdims": keepdims}


def _scan_draw(zeros: bool):
    def draw(data):
        shape = data.draw(shapes(), label="shape")
        x = _with_zeros(data, shape) if zeros else data.draw(arrays(shape), label="x")
        return [x], {"axis": data.draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1))}

    return draw


def _var_draw(data):
    shape = data.draw(shapes(), label="shape")
    x = data.draw(arrays(shape, unique=True, spacing=0.1), label="x")
    axis, keepdims = _axis_and_keepdims(data, len(shape))
    correction = data.draw(st.sampled_from([0, 1]), label="correction")
    count = int(np.prod([shape[a] for a in tg.axes.normalize_axes(axis, len(shape))]))
    assume(count >= 2)  # one element: the variance is 0 and the std has no derivative
    return [x], {"axis": axis, "correction": correction, "keepdims": keepdims}


def _norm_draw(data):
    shape = data.draw(shapes(), label="shape")
    p = data.draw(st.sampled_from([2, 1, math.inf]), label="p")
    magnitudes = data.draw(arrays(shape, low=0.1, high=2, spacing=0.1, unique=True), label="|x|")
    signs = data.draw(hnp.arrays(bool, shape), label="signs")
    axis, keepdims = _axis_and_keepdims(data, len(shape))
    return [np.where(signs, magnitudes, -magnitudes)], {"p": p, "axis": axis, "keepdims": keepdims}


def _torch_prod(x, axis, keepdims):
    """``torch.prod`` takes one dim: reduce the axes one at a time (from the last)."""
    axes = sorted(tg.axes.normalize_axes(axis, x.ndim), reverse=True)
    for a in axes:
        x = x.prod(a, keepdim=keepdims)
    return x * 1


def _torch_var(x, axis, correction, keepdims):
    torch = _torch()
    return torch.var(x, dim=None if axis is None else axis, correction=correction, keepdim=keepdims)


def _torch_logsumexp(x, axis=None, keepdims=False):
    return _torch().logsumexp(x, dim=_dim(x, axis), keepdim=keepdims) if x.ndim else x * 1


def _torch_norm(x, p, axis, keepdims):
    torch = _torch()
    return torch.linalg.vector_norm(x, ord=p, dim=None if axis is None else axis, keepdim=keepdims)


def _squeeze_draw(data):
    shape = data.draw(shapes(), label="shape")
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = data.draw(st.sampled_from([None, *ones, *[i - len(shape) for i in ones]]), label="axis")
    return [data.draw(arrays(shape), label="x")], {"axis": axis}


def _unsqueeze_draw(data):
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    return [data.draw(arrays(shape), label="x")], {"axis": axis}


def _expand_draw(data):
    small, large = data.draw(broadcastable_shapes(2), label="shapes")
    target = np.broadcast_shapes(small, large)
    sizes = tuple(
        -1 if i >= len(target) - len(small) and data.draw(st.booleans()) else n
        for i, n in enumerate(target)
    )
    return [data.draw(arrays(small), label="x")], {"sizes": sizes}


def _axes_draw(data, ndim: int):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    return _axis_and_keepdims(data, ndim)[0]


def _flip_draw(data):
    shape = data.draw(shapes(), label="shape")
    return [data.draw(arrays(shape), label="x")], {"axis": _axes_draw(data, len(shape))}


def _roll_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape), label="x")
    if data.draw(st.booleans(), label="flat"):
        return [x], {"shifts": data.draw(st.integers(-5, 5)), "axis": None}
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))
    shifts = tuple(data.draw(st.integers(-5, 5)) for _ in axes)
    return [x], {"shifts": shifts, "axis": tuple(axes)}


def _tile_draw(data):
    shape = data.draw(shapes(), label="shape")
    reps = data.draw(st.lists(st.integers(1, 3), min_size=len(shape), max_size=len(shape) + 1))
    return [data.draw(arrays(shape), label="x")], {"reps": tuple(reps)}


def _interleave_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)), label="axis")
    return [data.draw(arrays(shape), label="x")], {
        "repeats": data.draw(st.integers(1, 3)),
        "axis": axis,
    }


def _split_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    n = shape[axis]
    if data.draw(st.booleans(), label="sections"):
        cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
        sizes = np.diff([0, *cuts, n]).tolist()
        return [data.draw(arrays(shape), label="x")], {"sizes": sizes, "axis": axis}
    return [data.draw(arrays(shape), label="x")], {
        "sizes": data.draw(st.integers(1, 4)),
        "axis": axis,
    }


def _weighted_pieces(pieces):
    """The pieces of a split, each times its position + 1, flattened and joined: one output."""
    return [piece.reshape(-1) * (i + 1) for i, piece in enumerate(pieces)]


def _chunk_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    return [data.draw(arrays(shape), label="x")], {
        "chunks": data.draw(st.integers(1, 4)),
        "axis": axis,
    }


def _same_shapes_draw(min_dims: int):
    def draw(data):
        shape = data.draw(shapes(min_dims=min_dims), label="shape")
        count = data.draw(st.integers(1, 3), label="count")
        return [data.draw(arrays(shape)) for _ in range(count)], {}

    return draw


def _moveaxis_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    ndim = len(shape)
    source = data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    destination = data.draw(st.permutations(range(-ndim, 0)).map(lambda p: p[: len(source)]))
    return [data.draw(arrays(shape), label="x")], {
        "source": tuple(source),
        "destination": tuple(destination),
    }


def _flatten_range_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    ndim = len(shape)
    start = data.draw(st.integers(-ndim, ndim - 1), label="start")
    end = data.draw(st.integers(start % ndim, ndim - 1), label="end")
    end = end - ndim if data.draw(st.booleans()) else end
    return [data.draw(arrays(shape), label="x")], {"start": start, "end": end}


def _unflatten_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    n = shape[axis]
    sizes = data.draw(st.sampled_from([(n,), (1, n), (n, 1), (-1, 1), (1, -1)]), label="sizes")
    return [data.draw(arrays(shape), label="x")], {"axis": axis, "sizes": sizes}


def _gather_draw(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    index_shape = tuple(
        data.draw(st.integers(1, 4)) if i == axis % len(shape) else data.draw(st.integers(1, n))
        for i, n in enumerate(shape)
    )
    n = shape[axis]
    index = data.draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, n - 1)))
    return [data.draw(arrays(shape), label="x")], {"axis": axis, "index": index}


def _scatter_add_draw(data):
    [x], kwargs = _gather_draw(data)
    # PyTorch's VJP requires src of the index's shape (a larger src is tested in test_ops_breadth)
    return [x, data.draw(arrays(kwargs["index"].shape), label="src")], kwargs


def _masked_fill_draw(data):
    sx, sm = data.draw(broadcastable_shapes(2), label="shapes")
    sm = sm[-len(sx) :] if len(sx) else ()  # the mask broadcasts to x, not beyond
    sm = tuple(m if m == n else 1 for m, n in zip(sm, sx[len(sx) - len(sm) :]))
    mask = data.draw(hnp.arrays(bool, sm), label="mask")
    return [data.draw(arrays(sx), label="x")], {"mask": mask, "value": data.draw(st.floats(-2, 2))}


def _triangle_draw(data):
    shape = data.draw(shapes(min_dims=2), label="shape")
    return [data.draw(arrays(shape), label="x")], {"diagonal": data.draw(st.integers(-2, 2))}


def _diagonal_draw(data):
    shape = data.draw(shapes(min_dims=2), label="shape")
    ndim = len(shape)
    axis1, axis2 = data.draw(st.permutations(range(ndim)).map(lambda p: p[:2]), label="axes")
    axis1 = axis1 - ndim if data.draw(st.booleans()) else axis1
    return [data.draw(arrays(shape), label="x")], {
        "offset": data.draw(st.integers(-2, 2), label="offset"),
        "axis1": axis1,
        "axis2": axis2,
    }


EINSUM_PATTERNS = [
    "ij,jk->ik",  # matrix product
    "ij,kj->ik",  # product with a transpose
    "i,i->",  # dot product
    "i,j->ij",  # outer product
    "bij,bjk->bik",  # batched matrix product
    "bi,bi->b",  # batched dot product
    "ij,ij->ij",  # Hadamard product
    "ij,j->i",  # matrix-vector product
    "ijk,ik->j",  # contraction over two labels
    "ij,kl->ilkj",  # outer product, permuted
    "ij,jk",  # implicit output (sorted free labels: "ik")
    "ij,k->i",  # labels summed inside one operand alone
    "ij->j",  # one operand: a sum
]


def _einsum_draw(data):
    pattern = data.draw(st.sampled_from(EINSUM_PATTERNS), label="pattern")
    sizes = {c: data.draw(st.integers(1, 3)) for c in sorted(set(pattern) - set(",->"))}
    terms = pattern.split("->")[0].split(",")
    xs = [data.draw(arrays(tuple(sizes[c] for c in term)), label=term) for term in terms]
    return xs, {"pattern": pattern}


def _tensordot_draw(data):
    dims = data.draw(st.sampled_from([0, 1, 2, "pairs"]), label="dims")
    sizes = [data.draw(st.integers(1, 3)) for _ in range(4)]
    if dims == "pairs":  # a's axes (0, 2) against b's axes (1, 0)
        sa, sb = (sizes[0], sizes[3], sizes[1]), (sizes[1], sizes[0], sizes[2])
        dims = ([0, 2], [1, 0])
    else:
        sa = tuple(sizes[:2]) + tuple(sizes[2 : 2 + dims])
        sb = (*sizes[2 : 2 + dims], sizes[3])
    return [data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")], {"dims": dims}


def _through_wider(x):
    """``x * x`` computed in a wider float dtype and cast back to ``x``'s (ours or PyTorch's)."""
    if isinstance(x, Tensor):
        wide = x.astype(np.longdouble)
        return (wide * wide).astype(x.dtype)
    wide = x.to(_torch().float64)
    return (wide * wide).to(x.dtype)


def _activation(name: str, **params):
    """``F.<name>(x, **params)`` for us and for PyTorch."""
    return (
        lambda x, **k: getattr(F, name)(x, **params, **k),
        lambda x, **k: getattr(_torch_f(), name)(x, **params, **k),
    )


def _elementwise_spec(name: str, draw, torch_name: str | None = None) -> OpSpec:
    """A Tensor method with the same meaning as PyTorch's method ``torch_name``."""
    return OpSpec(
        name,
        draw,
        lambda x: getattr(x, name)(),
        lambda x: getattr(x, torch_name or name)(),
    )


SPECS = [
    OpSpec("add", _binary(), lambda a, b: a + b, lambda a, b: a + b),
    OpSpec("sub", _binary(), lambda a, b: a - b, lambda a, b: a - b),
    OpSpec("mul", _binary(), lambda a, b: a * b, lambda a, b: a * b),
    OpSpec(
        "div", _binary(b_options={"away_from_zero": 0.5}), lambda a, b: a / b, lambda a, b: a / b
    ),
    OpSpec(  # the finite-difference tests cover exponent 0; PyTorch masks it (see below)
        "pow",
        _binary(a_options={"low": 0.5, "high": 2.0}),
        lambda a, b: a**b,
        None,
    ),
    OpSpec(  # PyTorch's pow VJP returns 0 where the exponent is 0, which also zeroes the true
        # mixed second derivative d/db (b a^(b-1)) = a^(b-1) there; compare away from it
        "pow_nonzero_exponent",
        _binary(a_options={"low": 0.5, "high": 2.0}, b_options={"away_from_zero": 0.1}),
        lambda a, b: a**b,
        lambda a, b: a**b,
    ),
    OpSpec("pow_scalar", _unary({"low": 0.3, "high": 2.0}), lambda x: x**2.5, lambda x: x**2.5),
    OpSpec("rpow_scalar", _unary(), lambda x: 2.0**x, lambda x: 2.0**x),
    OpSpec("rsub_scalar", _unary(), lambda x: 1.0 - x, lambda x: 1.0 - x),
    OpSpec("rdiv_scalar", _unary({"away_from_zero": 0.5}), lambda x: 3.0 / x, lambda x: 3.0 / x),
    OpSpec("neg", _unary(), lambda x: -x, lambda x: -x),
    OpSpec(  # the cast op both ways: float80 where NumPy has it, so float64 loses nothing
        "cast", _unary(), lambda x: _through_wider(x), lambda x: _through_wider(x)
    ),
    OpSpec("matmul", _matmul_draw, lambda a, b: a @ b, lambda a, b: a @ b),
    OpSpec("abs", _unary({"away_from_zero": 0.1}), lambda x: x.abs(), lambda x: x.abs()),
    OpSpec("exp", _unary(), lambda x: x.exp(), lambda x: x.exp()),
    OpSpec("log", _unary({"low": 0.3, "high": 3.0}), lambda x: x.log(), lambda x: x.log()),
    OpSpec("sqrt", _unary({"low": 0.3, "high": 3.0}), lambda x: x.sqrt(), lambda x: x.sqrt()),
    OpSpec("sigmoid", _unary({"low": -4, "high": 4}), lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    OpSpec("tanh", _unary(), lambda x: x.tanh(), lambda x: x.tanh()),
    OpSpec("relu", _unary({"away_from_zero": 0.1}), lambda x: x.relu(), lambda x: x.relu()),
    OpSpec("clip", _clip_draw, lambda x, lo, hi: x.clip(lo, hi), lambda x, lo, hi: x.clamp(lo, hi)),
    OpSpec("sum", _reduction(), lambda x, **k: x.sum(**k), _torch_reduce("sum")),
    OpSpec("mean", _reduction(), lambda x, **k: x.mean(**k), _torch_reduce("mean")),
    OpSpec(
        "max",
        _reduction({"spacing": 0.1, "low": -3, "high": 3}, unique=True),
        lambda x, **k: x.max(**k),
        _torch_reduce("max"),
    ),
    OpSpec(
        "softmax", _softmax_draw, lambda x, axis: x.softmax(axis), lambda x, axis: x.softmax(axis)
    ),
    OpSpec(
        "log_softmax",
        _softmax_draw,
        lambda x, axis: x.log_softmax(axis),
        lambda x, axis: x.log_softmax(axis),
    ),
    OpSpec(
        "softmax_axes",
        _softmax_axes_draw,
        lambda x, axis: x.softmax(axis),
        lambda x, axis: _torch_log_softmax_axes(x, axis).exp(),
    ),
    OpSpec(
        "log_softmax_axes",
        _softmax_axes_draw,
        lambda x, axis: x.log_softmax(axis),
        _torch_log_softmax_axes,
    ),
    OpSpec(
        "reshape",
        _reshape_draw,
        lambda x, shape: x.reshape(shape),
        lambda x, shape: x.reshape(shape),
    ),
    OpSpec(
        "transpose",
        _transpose_draw,
        lambda x, axes: x.transpose(*axes),
        lambda x, axes: x.permute(axes),
    ),
    OpSpec("T", _unary(), lambda x: x.T, lambda x: x.permute(tuple(reversed(range(x.ndim))))),
    OpSpec(
        "flatten",
        _unary(min_dims=1),
        lambda x: x.flatten(1 if x.ndim > 1 else 0),
        lambda x: x.flatten(1 if x.ndim > 1 else 0),
    ),
    OpSpec(
        "getitem",
        _getitem_draw,
        lambda x, index: x[index],
        lambda x, index: x[_index_for_torch(index, x.shape[0])],
    ),
    OpSpec(
        "stack",
        _joined_draw(stacking=True),
        lambda *xs, axis: Tensor.stack(xs, axis=axis),
        lambda *xs, axis: _torch().stack(xs, dim=axis),
    ),
    OpSpec(
        "concatenate",
        _joined_draw(stacking=False),
        lambda *xs, axis: Tensor.concatenate(xs, axis=axis),
        lambda *xs, axis: _torch().cat(xs, dim=axis),
    ),
    OpSpec(
        "broadcast_then_sum_to",
        _binary(),
        lambda a, b: (a + b).sum_to(a.shape) * b.broadcast_to((a + b).shape).sum_to(b.shape).sum(),
        None,
    ),
    # ---------------------------------------------------------------- breadth: elementwise
    _elementwise_spec("sin", _unary()),
    _elementwise_spec("cos", _unary()),
    _elementwise_spec("tan", _unary({"low": -1.2, "high": 1.2})),
    _elementwise_spec("arcsin", _unary({"low": -0.9, "high": 0.9}), "asin"),
    _elementwise_spec("arccos", _unary({"low": -0.9, "high": 0.9}), "acos"),
    _elementwise_spec("arctan", _unary(), "atan"),
    _elementwise_spec("sinh", _unary()),
    _elementwise_spec("cosh", _unary()),
    _elementwise_spec("asinh", _unary()),
    _elementwise_spec("acosh", _unary({"low": 1.2, "high": 3.0})),
    _elementwise_spec("atanh", _unary({"low": -0.9, "high": 0.9})),
    _elementwise_spec("log2", _unary({"low": 0.3, "high": 3.0})),
    _elementwise_spec("log10", _unary({"low": 0.3, "high": 3.0})),
    _elementwise_spec("log1p", _unary({"low": -0.7, "high": 3.0})),
    _elementwise_spec("exp2", _unary()),
    _elementwise_spec("expm1", _unary()),
    _elementwise_spec("rsqrt", _unary({"low": 0.3, "high": 3.0})),
    _elementwise_spec("erf", _unary({"low": -3.0, "high": 3.0})),
    _elementwise_spec("square", _unary()),
    _elementwise_spec("reciprocal", _unary({"away_from_zero": 0.5})),
    _elementwise_spec("sign", _off(1e9, margin=0.1)),  # the only jump is at 0
    _elementwise_spec("floor", _off(1.0)),
    _elementwise_spec("ceil", _off(1.0)),
    _elementwise_spec("round", _off(0.5)),
    _elementwise_spec("trunc", _off(1.0)),
    OpSpec("maximum", _no_tie_draw, lambda a, b: a.maximum(b), lambda a, b: a.maximum(b)),
    OpSpec("minimum", _no_tie_draw, lambda a, b: a.minimum(b), lambda a, b: a.minimum(b)),
    OpSpec("remainder", _division_draw, lambda a, b: a % b, lambda a, b: a % b),
    OpSpec("mod_scalar", _off(0.7), lambda x: x % 0.7, lambda x: x % 0.7),
    OpSpec(  # PyTorch's floor_divide has no derivative; floor(a / b) is the same function
        "floor_divide", _division_draw, lambda a, b: a // b, lambda a, b: (a / b).floor()
    ),
    OpSpec(
        "lerp",
        _ternary_draw,
        lambda a, b, w: a.lerp(b, w),
        lambda a, b, w: _torch().lerp(*_torch().broadcast_tensors(a, b, w)),
    ),
    OpSpec(
        "where",
        _where_draw,
        lambda a, b, condition: tg.where(condition, a, b),
        lambda a, b, condition: _torch().where(_torch().from_numpy(condition), a, b),
    ),
    # ---------------------------------------------------------------- breadth: activations
    OpSpec(
        "leaky_relu",
        _unary({"away_from_zero": 0.1}),
        *_activation("leaky_relu", negative_slope=0.2),
    ),
    OpSpec(
        "elu",
        _param_draw({"away_from_zero": 0.1}, alpha=st.sampled_from([1.0, 0.5])),
        *_activation("elu"),
    ),
    OpSpec("selu", _unary({"away_from_zero": 0.1}), *_activation("selu")),
    OpSpec(  # alphas exact in float32: PyTorch's celu VJP rounds 1/alpha to float32 (at
        # alpha = 0.7 its gradient is off by 1e-9 relative; ours is the exact e^(x/alpha))
        "celu",
        _param_draw({"away_from_zero": 0.1}, alpha=st.sampled_from([1.0, 0.5])),
        *_activation("celu"),
    ),
    OpSpec("silu", _unary({"low": -4, "high": 4}), *_activation("silu")),
    OpSpec(
        "gelu", _param_draw(approximate=st.sampled_from(["none", "tanh"])), *_activation("gelu")
    ),
    OpSpec(
        "softplus", _param_draw(beta=st.sampled_from([1.0, 0.5, 2.0])), *_activation("softplus")
    ),
    OpSpec(
        "mish", _unary({"low": -4, "high": 4}), F.mish, lambda x: x * _torch_f().softplus(x).tanh()
    ),
    OpSpec("hardtanh", _grid_draw(0.1, 0.05, -2, 2), *_activation("hardtanh", min_val=-0.5)),
    OpSpec("relu6", _grid_draw(0.1, 0.05, -1, 7), *_activation("relu6")),
    OpSpec(
        "hardsigmoid",
        _grid_draw(0.1, 0.05, -4, 4),
        F.hardsigmoid,
        lambda x: _torch_f().relu6(x + 3) / 6,
    ),  # PyTorch has no 2nd order
    OpSpec("hardswish", _grid_draw(0.1, 0.05, -4, 4), *_activation("hardswish")),
    OpSpec("logsigmoid", _unary({"low": -4, "high": 4}), *_activation("logsigmoid")),
    OpSpec("softsign", _unary({"away_from_zero": 0.1}), *_activation("softsign")),
    # ---------------------------------------------------------------- breadth: reductions
    OpSpec(
        "min",
        _reduction({"spacing": 0.1, "low": -3, "high": 3}, unique=True),
        lambda x, **k: x.min(**k),
        lambda x, axis=None, keepdims=False: (
            _torch().amin(x, dim=_dim(x, axis), keepdim=keepdims) if x.ndim else x * 1
        ),
    ),
    OpSpec(
        "prod",
        _prod_draw,
        lambda x, **k: x.prod(**k),
        lambda x, axis=None, keepdims=False: _torch_prod(x, axis, keepdims),
    ),
    OpSpec("var", _var_draw, lambda x, **k: x.var(**k), _torch_var),
    OpSpec(
        "std",
        _var_draw,
        lambda x, **k: x.std(**k),
        lambda x, **k: _torch_var(x, **k).sqrt(),
    ),
    OpSpec("logsumexp", _reduction(), lambda x, **k: x.logsumexp(**k), _torch_logsumexp),
    OpSpec(
        "cumsum",
        _scan_draw(zeros=False),
        lambda x, axis: x.cumsum(axis),
        lambda x, axis: x.cumsum(axis),
    ),
    OpSpec(
        "cumprod",
        _scan_draw(zeros=True),
        lambda x, axis: x.cumprod(axis),
        lambda x, axis: x.cumprod(axis),
    ),
    OpSpec("norm", _norm_draw, lambda x, **k: x.norm(**k), _torch_norm),
    # ---------------------------------------------------------------- breadth: shape
    OpSpec(
        "squeeze",
        _squeeze_draw,
        lambda x, axis: x.squeeze(axis),
        lambda x, axis: x.squeeze() if axis is None else x.squeeze(axis),
    ),
    OpSpec(
        "unsqueeze",
        _unsqueeze_draw,
        lambda x, axis: x.unsqueeze(axis),
        lambda x, axis: x.unsqueeze(axis),
    ),
    OpSpec(
        "expand", _expand_draw, lambda x, sizes: x.expand(*sizes), lambda x, sizes: x.expand(sizes)
    ),
    OpSpec(
        "flip",
        _flip_draw,
        lambda x, axis: x.flip(axis),
        lambda x, axis: x.flip(
            _dim(x, axis) if axis is None or isinstance(axis, tuple) else (axis,)
        ),
    ),
    OpSpec(
        "roll",
        _roll_draw,
        lambda x, shifts, axis: x.roll(shifts, axis),
        lambda x, shifts, axis: x.roll(shifts, axis),
    ),
    OpSpec("tile", _tile_draw, lambda x, reps: x.tile(reps), lambda x, reps: x.tile(reps)),
    OpSpec("repeat", _tile_draw, lambda x, reps: x.repeat(reps), lambda x, reps: x.repeat(reps)),
    OpSpec(
        "repeat_interleave",
        _interleave_draw,
        lambda x, repeats, axis: x.repeat_interleave(repeats, axis),
        lambda x, repeats, axis: x.repeat_interleave(repeats, axis),
    ),
    OpSpec(
        "split",
        _split_draw,
        lambda x, sizes, axis: Tensor.cat(_weighted_pieces(x.split(sizes, axis))),
        lambda x, sizes, axis: _torch().cat(_weighted_pieces(x.split(sizes, axis))),
    ),
    OpSpec(
        "chunk",
        _chunk_draw,
        lambda x, chunks, axis: Tensor.cat(_weighted_pieces(x.chunk(chunks, dim=axis))),
        lambda x, chunks, axis: _torch().cat(_weighted_pieces(x.chunk(chunks, dim=axis))),
    ),
    OpSpec(
        "hstack", _same_shapes_draw(0), lambda *xs: tg.hstack(xs), lambda *xs: _torch().hstack(xs)
    ),
    OpSpec(
        "vstack", _same_shapes_draw(0), lambda *xs: tg.vstack(xs), lambda *xs: _torch().vstack(xs)
    ),
    OpSpec(
        "moveaxis",
        _moveaxis_draw,
        lambda x, source, destination: x.moveaxis(source, destination),
        lambda x, source, destination: x.movedim(source, destination),
    ),
    OpSpec(
        "flatten_range",
        _flatten_range_draw,
        lambda x, start, end: x.flatten(start, end),
        lambda x, start, end: x.flatten(start, end),
    ),
    OpSpec(
        "unflatten",
        _unflatten_draw,
        lambda x, axis, sizes: x.unflatten(axis, sizes),
        lambda x, axis, sizes: x.unflatten(axis, sizes),
    ),
    OpSpec(
        "gather",
        _gather_draw,
        lambda x, axis, index: x.gather(axis, index),
        lambda x, axis, index: x.gather(axis, _torch().from_numpy(index)),
    ),
    OpSpec(
        "scatter_add",
        _scatter_add_draw,
        lambda x, src, axis, index: x.scatter_add(axis, index, src),
        lambda x, src, axis, index: x.scatter_add(axis, _torch().from_numpy(index), src),
    ),
    OpSpec(
        "masked_fill",
        _masked_fill_draw,
        lambda x, mask, value: x.masked_fill(mask, value),
        lambda x, mask, value: x.masked_fill(_torch().from_numpy(mask), value),
    ),
    OpSpec(
        "tril",
        _triangle_draw,
        lambda x, diagonal: x.tril(diagonal),
        lambda x, diagonal: x.tril(diagonal),
    ),
    OpSpec(
        "triu",
        _triangle_draw,
        lambda x, diagonal: x.triu(diagonal),
        lambda x, diagonal: x.triu(diagonal),
    ),
    OpSpec(
        "diagonal",
        _diagonal_draw,
        lambda x, **k: x.diagonal(**k),
        lambda x, offset, axis1, axis2: x.diagonal(offset, axis1, axis2),
    ),
    OpSpec(
        "einsum",
        _einsum_draw,
        lambda *xs, pattern: tg.einsum(pattern, *xs),
        lambda *xs, pattern: _torch().einsum(pattern, *xs),
    ),
    OpSpec(
        "tensordot",
        _tensordot_draw,
        lambda a, b, dims: tg.tensordot(a, b, dims),
        lambda a, b, dims: _torch().tensordot(a, b, dims),
    ),
]

SPECS_BY_NAME = {spec.name: spec for spec in SPECS}
