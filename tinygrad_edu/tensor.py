"""The Tensor: a NumPy array plus the links reverse mode needs.

A ``Tensor`` holds

* ``data`` -- the ``numpy.ndarray`` with the values,
* ``requires_grad`` -- whether gradients should flow back to it,
* ``grad`` -- the accumulated gradient (a ``Tensor`` of the same shape) after ``backward``,
* ``_node`` -- the :class:`~tinygrad_edu.graph.Op` that produced it, or ``None`` for a leaf.

Every operator here is a one-line delegation to a rule in :mod:`tinygrad_edu.ops`, where each
op's forward computation sits beside its vector-Jacobian product. Nothing in this file knows any
derivative. The constructors come from :class:`~tinygrad_edu.creation.Constructors`, the methods
built from other methods from :class:`~tinygrad_edu.composites.Composites`, the in-place
methods from :class:`~tinygrad_edu.inplace.InPlace`, NumPy's dispatch protocols from
:class:`~tinygrad_edu.numpy_interop.NumpyProtocols`, and the dtype rules from
:mod:`tinygrad_edu.dtypes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import creation, dtypes
from .axes import Axis, ShapeError, normalize_axes, shape_argument, torch_aliases
from .composites import Composites, along, check_index_shape, integer_array
from .creation import Constructors
from .graph import is_grad_enabled, kept_by_observer
from .inplace import InPlace
from .masks import Masks
from .numpy_interop import NumpyProtocols
from .numpy_like import NumpyLike

ArrayLike = Any  # anything ``numpy.asarray`` accepts, or a Tensor
Index = Any  # what ``ndarray.__getitem__`` accepts, Tensors of integers included

_FLOAT_KINDS = "f"


class Tensor(NumpyLike, InPlace, NumpyProtocols, Constructors, Composites, Masks):
    """An n-dimensional array that records the operations applied to it.

    Parameters
    ----------
    data
        Array-like numbers, with PyTorch's dtypes: Python floats become ``float32``, Python ints
        ``int64`` and Python bools ``bool`` (also inside nested lists: ``[1, 2.5]`` is float32).
        A NumPy array keeps its dtype and is *not* copied (the tensor shares its memory, like
        ``torch.from_numpy``); NumPy scalars and Tensors keep their dtype too. Strings, objects,
        structured, datetime and complex data raise ``TypeError``.
    requires_grad
        Whether :meth:`backward` should compute a gradient for this tensor. Only floating-point
        tensors can require gradients (``TypeError`` otherwise).
    dtype
        Optional numeric dtype to convert the data to, always honoured: a NumPy dtype, its name
        (``"float64"``) or ``float`` / ``int`` / ``bool`` (float64, int64, bool, as in
        :func:`numpy.dtype`).

    Notes
    -----
    Operations promote dtypes like PyTorch (``torch.result_type``, see :mod:`tinygrad_edu.dtypes`):
    ``int64_t + float32_t`` is float32, a Python number takes the tensor's dtype when it fits
    its kind (``int32_t * 2`` stays int32, ``float32_t * 0.5`` float32, ``int32_t * 0.5`` is
    float32) and ``int_t / int_t`` is float32. Axis arguments are spelled ``axis``/``keepdims``
    (NumPy) or ``dim``/``keepdim`` (PyTorch), see :func:`~tinygrad_edu.axes.torch_aliases`.

    Examples
    --------
    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    Tensor([2., 4., 6.], dtype=float32)
    """

    __slots__ = (
        "__weakref__",
        "_hooks",
        "_node",
        "_version_counter",
        "data",
        "grad",
        "requires_grad",
    )

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        source = data if isinstance(data, Tensor) else None
        self.data = creation.array(data if source is None else source.data, dtype)
        self.grad: Tensor | None = None
        self._node = None
        self._hooks: list[Callable[[Tensor], Tensor | None]] | None = None
        # a Tensor made from a Tensor without a cast holds the same array: it shares the
        # version counter too (as detach() does), so a change through either one is seen
        shared = source is not None and self.data is source.data
        self._version_counter = source._version_counter if shared else [0]
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # what the mixins, which import no engine module, ask the engine
    _grad_enabled = staticmethod(is_grad_enabled)
    _kept_by_observer = kept_by_observer

    @classmethod
    def _wrap(cls, data: np.ndarray, node: Any = None) -> Tensor:
        """Fast constructor for op results: no conversion, ``requires_grad`` iff it has a node."""
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t._node = node
        t._hooks = None
        t._version_counter = [0]
        t.requires_grad = node is not None
        return t

    # ------------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """Pickling and deep copies: every slot but ``__weakref__``."""
        return {name: getattr(self, name) for name in Tensor.__slots__ if name != "__weakref__"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------------ autograd surface
    @property
    def is_leaf(self) -> bool:
        """True for tensors the user created (no recorded op produced them)."""
        return self._node is None

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (only on leaves and floating-point tensors)."""
        if requires_grad and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype {self.dtype}; "
                "create it with dtype=np.float32 or np.float64"
            )
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad can only be switched off on a leaf; use detach()")
        self.requires_grad = requires_grad
        return self

    def backward(
        self, grad: ArrayLike | None = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Reverse-mode pass from this tensor.

        Gradients *accumulate* into ``.grad`` of every leaf with ``requires_grad=True`` that this
        tensor depends on. ``grad`` is the upstream gradient dL/dself; it may be omitted only when
        this tensor has a single element (it then defaults to 1). The graph is released afterwards
        unless ``retain_graph`` (or ``create_graph``) is true.
        """
        autograd.backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Run ``hook(grad)`` when this tensor's gradient has been computed.

        A returned Tensor replaces the gradient (for a leaf: before it is accumulated into
        ``.grad``; otherwise: before it flows further back). Returns a function that removes the
        hook again.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        hooks = self._hooks

        def remove() -> None:
            if hook in hooks:
                hooks.remove(hook)

        return remove

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and in-place version counter), cut off from
        the graph."""
        detached = Tensor._wrap(self.data)
        detached._version_counter = self._version_counter
        return detached

    def zero_grad(self) -> None:
        """Clear the accumulated gradient (sets ``.grad`` to ``None``)."""
        self.grad = None

    def to_dot(self, names: dict[int, str] | None = None) -> str:
        """The graph behind this tensor as Graphviz DOT text (see :mod:`tinygrad_edu.dot`).

        ``names`` optionally labels tensors by ``id``, e.g.
        ``{id(p): n for n, p in model.named_parameters()}``.
        """
        from .observers.dot import graph_to_dot

        return graph_to_dot(self, names)

    # ------------------------------------------------------------------------ joining
    @staticmethod
    @torch_aliases
    def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
        """Join tensors of equal shape along a new axis."""
        return ops.shape.Stack.apply(*_promoted_all(tensors, "stack"), axis=axis)

    @staticmethod
    @torch_aliases
    def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
        """Join tensors along an existing axis (``Tensor.cat`` is the same)."""
        return ops.shape.Concatenate.apply(*_promoted_all(tensors, "concatenate"), axis=axis)

    cat = concatenate

    @staticmethod
    def hstack(tensors: Sequence[ArrayLike]) -> Tensor:
        """Join along axis 1, or axis 0 for 1-d tensors (``torch.hstack``)."""
        tensors = [t.reshape(1) if t.ndim == 0 else t for t in _promoted_all(tensors, "hstack")]
        return ops.shape.Concatenate.apply(*tensors, axis=0 if tensors[0].ndim == 1 else 1)

    @staticmethod
    def vstack(tensors: Sequence[ArrayLike]) -> Tensor:
        """Join along axis 0 after making 0-d and 1-d tensors rows (``torch.vstack``)."""
        tensors = [t.reshape(1, -1) if t.ndim < 2 else t for t in _promoted_all(tensors, "vstack")]
        return ops.shape.Concatenate.apply(*tensors, axis=0)

    @staticmethod
    def einsum(subscripts: str, *operands: ArrayLike) -> Tensor:
        """Einstein summation over labelled axes (``torch.einsum``), differentiable in every
        operand: ``"ij,jk->ik"`` is ``a @ b``, ``"bi,bi->b"`` a batched dot product, ``"i,j->ij"``
        an outer product. Labels are single letters; ellipses and labels repeated within one
        operand (traces) are not supported."""
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        tensors = [x if isinstance(x, Tensor) else Tensor(x) for x in operands]
        terms, output = ops.contraction.parse(subscripts, len(tensors))
        return ops.contraction.Einsum.apply(*tensors, terms=tuple(terms), output=output)

    # ------------------------------------------------------------------------ arithmetic
    # ``operands`` promotes like PyTorch (``torch.result_type``) and names the operation for the
    # dtype rules that depend on it (true division of integers, booleans).
    def __matmul__(self, other: ArrayLike) -> Tensor:
        return ops.linalg.MatMul.apply(*operands(self, other, "matmul"))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return ops.linalg.MatMul.apply(*operands(self, other, "matmul")[::-1])

    def __neg__(self) -> Tensor:
        return ops.elementwise.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.elementwise.Abs.apply(self)

    def lerp(self, end: ArrayLike, weight: ArrayLike) -> Tensor:
        """``self + weight * (end - self)``, differentiable in all three (``torch.lerp``)."""
        start, end = operands(self, end, "lerp")
        return start + (end - start) * weight

    def where(self, condition: ArrayLike, other: ArrayLike) -> Tensor:
        """``self`` where ``condition`` holds, else ``other`` (``torch.Tensor.where``)."""
        return where(condition, self, other)

    def astype(self, dtype: Any) -> Tensor:
        """This tensor in the numeric ``dtype`` (``TypeError`` for others). Between floating
        dtypes the gradient flows (cast back); to an integer or boolean dtype the result is a
        constant. The same dtype returns ``self``."""
        dtype = dtypes.as_dtype(dtype, "astype")
        if dtype == self.dtype:
            return self
        if dtype.kind in _FLOAT_KINDS and self.data.dtype.kind in _FLOAT_KINDS:
            return ops.elementwise.Cast.apply(self, dtype=dtype)
        return Tensor._wrap(self.data.astype(dtype))

    # ------------------------------------------------------------------------ elementwise maths
    # ``exp``, ``log``, ``sin`` ... and the arithmetic operators are not written here: each is one
    # rule of ops/elementwise.py applied to the tensor, and the rule's row names its method (see
    # the loop at the end of this module). The methods below need more than their rule.
    def square(self) -> Tensor:
        """``x * x``; of a boolean tensor int64, as in PyTorch (NumPy says int8)."""
        return ops.elementwise.Square.apply(
            _accumulated(self) if self.data.dtype.kind == "b" else self
        )

    def sign(self) -> Tensor:
        """-1, 0 or 1 (zero gradient, as for floor/ceil/round/trunc); a boolean tensor is its
        own sign."""
        if self.data.dtype.kind == "b":
            return Tensor._wrap(self.data.copy())
        return ops.elementwise.Sign.apply(self)

    def round(self) -> Tensor:
        """Round half to even, like NumPy and PyTorch; a boolean tensor stays boolean (as with
        floor, ceil and trunc)."""
        if self.data.dtype.kind == "b":
            return Tensor._wrap(self.data.copy())
        return ops.elementwise.Round.apply(self)

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        """Limit values to ``[lo, hi]``; the gradient passes where ``lo <= x <= hi``. An integer
        tensor with a float bound computes in float32 (promotion, as in ``torch.clamp``)."""
        if lo is None and hi is None:
            raise ValueError("clip: give lo, hi or both")
        if isinstance(lo, Tensor) or isinstance(hi, Tensor):
            return self._clip_by_tensors(lo, hi)
        x = self
        if x.data.dtype.kind != "f":
            bounds = [bound for bound in (lo, hi) if bound is not None]
            x = cast(x, dtypes.result_type(x, *bounds))
        return ops.elementwise.Clip.apply(x, lo=lo, hi=hi)

    # ------------------------------------------------------------------------ reductions
    # Every axis argument is also accepted in PyTorch's spelling (``dim``, ``keepdim``):
    # :func:`~tinygrad_edu.axes.torch_aliases` handles that for every method that takes one.
    @torch_aliases
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when ``None``); integer and boolean tensors sum in int64."""
        return ops.reductions.Sum.apply(_accumulated(self), axis=axis, keepdims=keepdims)

    @torch_aliases
    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Largest values (not indices: see :meth:`argmax`). Ties as in PyTorch: over one axis
        the gradient goes to the first maximum (``torch.max(x, dim)``), over all axes or a tuple
        the maxima share it equally (``torch.max(x)``, ``torch.amax``; see :meth:`amax`)."""
        return ops.reductions.Max.apply(self, axis=axis, keepdims=keepdims)

    @torch_aliases
    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Smallest values; ties like :meth:`max` (the first minimum over one axis)."""
        return ops.reductions.Min.apply(self, axis=axis, keepdims=keepdims)

    @torch_aliases
    def amax(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Largest values over ``axis``; tied maxima always share the gradient equally
        (``torch.amax``, unlike ``max`` over one axis, which picks the first)."""
        return ops.reductions.Max.apply(self, axis=axis, keepdims=keepdims, ties="split")

    @torch_aliases
    def amin(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Smallest values over ``axis``; tied minima share the gradient equally
        (``torch.amin``)."""
        return ops.reductions.Min.apply(self, axis=axis, keepdims=keepdims, ties="split")

    @torch_aliases
    def prod(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Product; the gradient is exact with zeros (one zero, several zeros)."""
        return ops.reductions.Prod.apply(_accumulated(self), axis=axis, keepdims=keepdims)

    @torch_aliases
    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """``log(sum(exp(x)))`` computed without overflow (the maximum is taken out first)."""
        return ops.reductions.LogSumExp.apply(floating(self), axis=axis, keepdims=keepdims)

    @torch_aliases
    def norm(self, p: float | str = 2, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Vector norm over ``axis`` (all elements by default): ``p = 2`` (also ``"fro"``), 1,
        inf or -inf (``max |x|``, ``min |x|``, ties sharing the gradient). The gradient at 0 is
        0, as in PyTorch."""
        x = floating(self)
        if p in (2, "fro"):
            return ops.reductions.Norm.apply(x, axis=axis, keepdims=keepdims)
        if p == 1:
            return x.abs().sum(axis=axis, keepdims=keepdims)
        if p in (math.inf, -math.inf):  # ties share the gradient, as in torch.linalg.vector_norm
            return (x.abs().amax if p > 0 else x.abs().amin)(axis=axis, keepdims=keepdims)
            reduce = {1: x.sum, math.inf: x.amax, -math.inf: x.amin}[p]
            return reduce.__func__(x.abs(), axis=axis, keepdims=keepdims)
        raise ValueError(f"norm: p must be 1, 2, 'fro', inf or -inf, got {p!r}")

    @torch_aliases
    def cumsum(self, axis: int | None = None) -> Tensor:
        """Running sum along ``axis``."""
        return ops.reductions.Cumsum.apply(_accumulated(self), axis=_one_axis("cumsum", axis))

    @torch_aliases
    def cumprod(self, axis: int | None = None) -> Tensor:
        """Running product along ``axis``; the gradient is exact with zeros."""
        return ops.reductions.Cumprod.apply(_accumulated(self), axis=_one_axis("cumprod", axis))

    @torch_aliases
    def softmax(self, axis: Axis = -1) -> Tensor:
        """``e^x / sum(e^x)`` along ``axis`` (the maximum taken out first: no overflow)."""
        return ops.reductions.Softmax.apply(floating(self), axis=axis)

    @torch_aliases
    def log_softmax(self, axis: Axis = -1) -> Tensor:
        """``x - logsumexp(x)`` along ``axis``, computed without overflow."""
        return ops.reductions.LogSoftmax.apply(floating(self), axis=axis)

    # ------------------------------------------------------------------------ shape
    def sum_to(self, shape: tuple[int, ...]) -> Tensor:
        """Sum over broadcast axes so the result has ``shape`` (undoes NumPy broadcasting)."""
        if self.shape == tuple(shape):
            return self
        return ops.shape.SumTo.apply(self, shape=tuple(shape))

    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        """This tensor repeated along new or size-1 axes to ``shape`` (a read-only view)."""
        if self.shape == tuple(shape):
            return self
        return ops.shape.BroadcastTo.apply(self, shape=tuple(shape))

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same values in a new shape (one size may be -1); ``view`` is the same."""
        return ops.shape.Reshape.apply(self, shape=shape_argument(shape))

    view = reshape

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes (negative ones count from the end); with no arguments, reverse them."""
        perm = shape_argument(axes) if axes else tuple(reversed(range(self.ndim)))
        return ops.shape.Transpose.apply(self, axes=perm)

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        """PyTorch's name for :meth:`transpose` with every axis given."""
        return ops.shape.Transpose.apply(self, axes=shape_argument(dims))

    @property
    def T(self) -> Tensor:
        """The axes reversed (the transpose of a matrix)."""
        return self.transpose()

    @torch_aliases
    def flip(self, axis: Axis = None) -> Tensor:
        """Reverse the order of elements along ``axis`` (all axes when ``None``)."""
        return ops.shape.Flip.apply(self, axes=axis)

    @torch_aliases
    def roll(self, shifts: int | Sequence[int], axis: Axis = None) -> Tensor:
        """Shift cyclically by ``shifts`` along ``axis`` (over the flattened tensor if None)."""
        shifts = shifts if isinstance(shifts, (int, np.integer)) else tuple(shifts)
        return ops.shape.Roll.apply(self, shifts=shifts, axes=axis)

    def scatter_add(self, axis: int, index: ArrayLike, src: ArrayLike) -> Tensor:
        """A copy with ``src[p]`` added at ``self[p with axis-th coordinate index[p]]``, repeats
        accumulating (``torch.Tensor.scatter_add``); only the part of ``src`` of ``index``'s
        shape is used."""
        index = integer_array(index, "scatter_add")
        (axis,) = normalize_axes(axis, self.ndim) or (0,)
        check_index_shape("scatter_add", self, axis, index)
        src = operands(self, src, "scatter_add")[1]
        if src.ndim != index.ndim or any(n > m for n, m in zip(index.shape, src.shape)):
            raise ShapeError(f"scatter_add: src {src.shape} is smaller than index {index.shape}")
        used = src[tuple(slice(n) for n in index.shape)] if src.shape != index.shape else src
        target = along(axis, index, self.shape[axis] if self.ndim else 1, "scatter_add")
        return self + ops.shape.ScatterAdd.apply(used, shape=self.shape, index=target)

    def __getitem__(self, index: Index) -> Tensor:
        """Basic slices, integer and boolean arrays (Tensors too), differentiable."""
        return ops.shape.GetItem.apply(self, index=_plain_index(index))


# ---------------------------------------------------------------------------- the Where op
def where(condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Tensor:
    """``x`` where ``condition`` holds, else ``y`` (``torch.where``).

    ``condition`` is a constant mask (a boolean Tensor or array); the gradient flows to ``x``
    where it holds and to ``y`` elsewhere. ``x`` and ``y`` are promoted like the operands of an
    operator: a Python number beside a Tensor is weak, and two Python numbers follow PyTorch
    (``where(m, 1, 2.5)`` is float32, ``where(m, 1, 2)`` int64).
    """
    mask = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if mask.dtype != bool:
        mask = mask.astype(bool)
    if isinstance(x, Tensor):
        x, y = operands(x, y, "where")
    elif isinstance(y, Tensor):
        y, x = operands(y, x, "where")
    else:
        x, y = operands(Tensor(x), y, "where")
    return ops.elementwise.Where.apply(x, y, condition=mask)


# ---------------------------------------------------------------------------- promotion
def operands(a: Tensor, b: Any, op: str) -> tuple[Tensor, Tensor]:
    """``(a, b)`` as Tensors of the dtype the binary ``op`` computes in (PyTorch's promotion,
    :func:`~tinygrad_edu.dtypes.operation_dtype`); ``b`` may be a Tensor, a Python or NumPy
    number, or array-like data (made a Tensor by the constructor's rules).

    Operands are cast only where NumPy would compute in another dtype, so the common cases --
    two tensors of one floating dtype, a floating tensor and a Python number -- cost no more
    than wrapping the number: this is the hot path of every binary operator.
    """
    da = a.data.dtype
    if isinstance(b, Tensor):
        if b.data.dtype is da and da.kind == "f":
            return a, b
    elif b.__class__ is float or b.__class__ is int:
        kind = da.kind
        if kind == "f":
            return a, Tensor._wrap(np.asarray(b, da))
        if b.__class__ is int and kind in "iu" and op != "div":
            return a, Tensor._wrap(dtypes.number_array(b, da))
    elif dtypes.python_dtype(b) is None:
        b = Tensor(b)
    dtype = dtypes.operation_dtype(op, dtypes.result_type(a, b), a, b)
    if not isinstance(b, Tensor):
        return cast(a, dtype), Tensor._wrap(dtypes.number_array(b, dtype))
    if np.result_type(a.data.dtype, b.data.dtype) == dtype:
        return a, b  # NumPy computes in the promoted dtype by itself
    return cast(a, dtype), cast(b, dtype)


def cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` in ``dtype``; between floating dtypes the gradient flows through the cast (a
    tensor that requires grad is floating, and promotion never casts it to a lower category)."""
    if t.data.dtype == dtype:
        return t
    return t.astype(dtype) if t.requires_grad else Tensor._wrap(t.data.astype(dtype))


def floating(t: Tensor) -> Tensor:
    """``t`` itself if it is floating, else a float32 copy: the input of a floating function
    (``exp``, ``sqrt``, ``sin`` ... of an integer tensor give float32, as in PyTorch)."""
    if t.data.dtype.kind == "f":
        return t
    return Tensor._wrap(t.data.astype(dtypes.DEFAULT_FLOAT))


def _promoted_all(items: Sequence[ArrayLike], op: str) -> list[Tensor]:
    """The tensors to join, in their promoted dtype (``torch.cat`` promotes like an operator)."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in items]
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    dtype = dtypes.promote_all([t.data.dtype for t in tensors])
    return [cast(t, dtype) for t in tensors]


def _accumulated(t: Tensor) -> Tensor:
    """``t`` in the dtype its sums and products accumulate in: floating tensors their own,
    integer and boolean ones int64, as in PyTorch (NumPy would sum uint8 in uint64)."""
    if t.data.dtype.kind == "f" or t.data.dtype == np.int64:
        return t
    return Tensor._wrap(t.data.astype(np.int64))


# ---------------------------------------------------------------------------- helpers
def _plain_index(index: Index) -> Index:
    """Replace Tensors inside an index by their arrays (integer or boolean only)."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, list):
        index = np.asarray(index)
        if index.dtype == object:
            raise IndexError("a nested index list must hold only integers or booleans")
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, np.ndarray) and index.dtype.kind not in "biu":
        raise IndexError(
            f"tensors and arrays used as indices must be integer or boolean, got dtype "
            f"{index.dtype} (convert with .astype(int) if the values are whole numbers)"
        )
    return index


def _one_axis(op: str, axis: int | None) -> int:
    """A required single axis."""
    if axis is None:
        raise TypeError(f"{op}: needs an axis (axis= or dim=)")
    return axis


# The one import cycle of the package, on purpose and only here: the ops are Tensors' methods,
# and every rule module builds on the Tensor class above.
from . import autograd, ops  # noqa: E402


# ---------------------------------------------------------------------------- methods from rules
# The rules of ops/elementwise.py whose row names a Tensor method (``as_method=``, ``as_methods=``)
# give Tensor that method here: ``t.exp()`` is ``Exp.apply(floating(t))``, ``a + b`` is
# ``Add.apply(*operands(a, b, "add"))``. Each method gets a code object of its own, named after it
# (tracebacks, profilers and tg.compile, which tells methods apart by their code, see ``exp``, not
# one shared function), and a docstring made of its rule's maths.
def _unary_method(rule: type[ops.elementwise.Elementwise]) -> Callable[[Tensor], Tensor]:
    if rule.floating_input:

        def method(self: Tensor) -> Tensor:
            return rule.apply(floating(self))

    else:

        def method(self: Tensor) -> Tensor:
            return rule.apply(self)

    value, derivative = rule.math.split(";  ")
    dtype_note = "; an integer or boolean tensor computes in float32" if rule.floating_input else ""
    method.__doc__ = (
        f"``y = {value}`` for every element ``x`` of this tensor.\n\nReturns\n-------\nTensor\n"
        f"    ``y``, of this tensor's shape{dtype_note}.\n\nNotes\n-----\nThe derivative, by "
        f"the rule ``ops.elementwise.{rule.__name__}``: ``{derivative}``.\n"
    )
    return method


def _binary_methods(
    rule: type[ops.elementwise.Elementwise],
) -> tuple[Callable[[Tensor, ArrayLike], Tensor], ...]:
    op = rule.name

    def method(self: Tensor, other: ArrayLike) -> Tensor:
        return rule.apply(*operands(self, other, op))

    def reflected(self: Tensor, other: ArrayLike) -> Tensor:
        return rule.apply(*operands(self, other, op)[::-1])

    value, derivative = rule.math.split(";  ")
    for function, a, b in ((method, "this tensor", "other"), (reflected, "other", "this tensor")):
        function.__doc__ = (
            f"``y = {value}`` elementwise, with ``a`` = {a} and ``b`` = {b}, broadcast against "
            "each other and promoted like PyTorch (see ``tinygrad_edu.dtypes``).\n\n"
            "Parameters\n----------\nother\n    A Tensor, a Python or NumPy number, or "
            "array-like data.\n\nReturns\n-------\nTensor\n    ``y``.\n\nNotes\n-----\nThe "
            f"derivatives, by the rule ``ops.elementwise.{rule.__name__}``: "
            f"``{derivative}``.\n"
        )
    return method, reflected


def _add_methods_from_rules() -> None:
    for rule in vars(ops.elementwise).values():
        if not getattr(rule, "tensor_methods", ()):
            continue
        functions = (_unary_method(rule),) if rule.arity == 1 else _binary_methods(rule)
        for name, function in zip(rule.tensor_methods, functions):
            function.__code__ = function.__code__.replace(
                co_name=name, co_qualname=f"Tensor.{name}"
            )
            function.__name__, function.__qualname__ = name, f"Tensor.{name}"
            setattr(Tensor, name, function)


_add_methods_from_rules()
# NumPy's spellings of the inverse functions (PyTorch accepts both too)
Tensor.arcsin, Tensor.arccos, Tensor.arctan = Tensor.asin, Tensor.acos, Tensor.atan
Tensor.arcsinh, Tensor.arccosh, Tensor.arctanh = Tensor.asinh, Tensor.acosh, Tensor.atanh
Tensor.remainder, Tensor.floor_divide = Tensor.__mod__, Tensor.__floordiv__
