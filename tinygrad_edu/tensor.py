"""The Tensor: a NumPy array plus the links reverse mode needs.

A ``Tensor`` holds

* ``data`` -- the ``numpy.ndarray`` with the values,
* ``requires_grad`` -- whether gradients should flow back to it,
* ``grad`` -- the accumulated gradient (a ``Tensor`` of the same shape) after ``backward``,
* ``_node`` -- the :class:`~tinygrad_edu.graph.Op` that produced it, or ``None`` for a leaf.

Every operator here is a one-line delegation to the op table in :mod:`tinygrad_edu.ops`, where each
op's forward computation sits beside its vector-Jacobian product. Nothing in this file knows any
derivative.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .axes import normalize_axes

ArrayLike = Any  # anything ``numpy.asarray`` accepts, or a Tensor
Index = Any  # what ``ndarray.__getitem__`` accepts, Tensors of integers included

_FLOAT_KINDS = "f"


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    Parameters
    ----------
    data
        Array-like values. A NumPy floating array keeps its dtype and is *not* copied (the tensor
        shares its memory, like ``torch.from_numpy``). Python scalars, lists and integer arrays
        become ``float32`` unless ``dtype`` says otherwise; boolean data stays boolean (masks).
    requires_grad
        Whether :meth:`backward` should compute a gradient for this tensor. Only floating-point
        tensors can require gradients.
    dtype
        Optional NumPy dtype to convert the data to.

    Examples
    --------
    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    Tensor([2., 4., 6.], dtype=float32)
    """

    __slots__ = ("__weakref__", "_hooks", "_node", "data", "grad", "requires_grad")

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = _as_array(data, dtype)
        self.grad: Tensor | None = None
        self._node = None
        self._hooks: list[Callable[[Tensor], Tensor | None]] | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: np.ndarray, node: Any = None) -> Tensor:
        """Fast constructor for op results: no conversion, ``requires_grad`` iff it has a node."""
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t._node = node
        t._hooks = None
        t.requires_grad = node is not None
        return t

    # ----------------------------------------------------------------- array protocol and info
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user created (no recorded op produced them)."""
        return self._node is None

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The rows along the first axis, each a differentiable ``self[i]``."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy ufuncs on Tensors: ``np.exp(t)`` and ``ndarray * t`` run our differentiable ops.

        A ufunc the op table does not have computes on plain arrays when nothing needs a
        gradient (or its result is boolean/integer, like ``np.isnan``); otherwise it raises
        instead of silently dropping the graph.
        """
        return numpy_interop.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """NumPy functions on Tensors: ``np.sum(t)``, ``np.mean``, ``np.stack`` ... dispatch to
        the Tensor methods; others compute on plain arrays unless that would drop a graph."""
        return numpy_interop.function(func, args, kwargs)

    def numpy(self) -> np.ndarray:
        """The underlying ``numpy.ndarray`` (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a single-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a single-element tensor, got shape {self.shape}")
        return self.data.item()

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}"
        if self._node is not None:
            extra += f", op={self._node.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    # ------------------------------------------------------------------------ autograd surface
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
        """A new leaf sharing this tensor's data, cut off from the graph."""
        return Tensor._wrap(self.data)

    def zero_grad(self) -> None:
        """Clear the accumulated gradient (sets ``.grad`` to ``None``)."""
        self.grad = None

    def to_dot(self, names: dict[int, str] | None = None) -> str:
        """The graph behind this tensor as Graphviz DOT text (see :mod:`tinygrad_edu.dot`).

        ``names`` optionally labels tensors by ``id``, e.g.
        ``{id(p): n for n, p in model.named_parameters()}``.
        """
        from .dot import graph_to_dot

        return graph_to_dot(self, names)

    # ------------------------------------------------------------------------ constructors
    @staticmethod
    def zeros(*shape: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False):
        """A tensor of zeros; ``Tensor.zeros(2, 3)`` and ``Tensor.zeros((2, 3))`` both work."""
        return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def ones(*shape: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False):
        """A tensor of ones; ``Tensor.ones(2, 3)`` and ``Tensor.ones((2, 3))`` both work."""
        return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def randn(
        *shape: int | Sequence[int],
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        requires_grad: bool = False,
    ) -> Tensor:
        """Standard-normal samples; ``rng`` is a ``numpy.random.Generator`` or a seed."""
        generator = np.random.default_rng(rng)
        data = generator.standard_normal(_shape_arg(shape)).astype(dtype, copy=False)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
        """Join tensors of equal shape along a new axis."""
        return ops.Stack.apply(*_as_tensors(tensors, "stack"), axis=axis)

    @staticmethod
    def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
        """Join tensors along an existing axis."""
        return ops.Concatenate.apply(*_as_tensors(tensors, "concatenate"), axis=axis)

    # ------------------------------------------------------------------------ arithmetic
    def _other(self, other: ArrayLike) -> Tensor:
        """``other`` as a Tensor for a binary op with ``self``, promoted like NumPy/PyTorch.

        Python numbers are *weak*: they take the tensor's dtype when that can hold them
        (``float32_t * 0.5`` stays float32), and a float meeting an integer or boolean tensor
        becomes float32 (``int_t * 0.5`` is a float32 result, never a truncated zero).
        """
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (bool, int, float)):
            return Tensor._wrap(np.asarray(other, dtype=_weak_scalar_dtype(self.dtype, other)))
        if _is_float_array(other) or self.data.dtype.kind not in _FLOAT_KINDS:
            return Tensor(np.asarray(other))
        return Tensor(other, dtype=self.data.dtype)

    def __add__(self, other: ArrayLike) -> Tensor:
        return ops.Add.apply(self, self._other(other))

    def __radd__(self, other: ArrayLike) -> Tensor:
        return ops.Add.apply(self._other(other), self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return ops.Sub.apply(self, self._other(other))

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return ops.Sub.apply(self._other(other), self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return ops.Mul.apply(self, self._other(other))

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return ops.Mul.apply(self._other(other), self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return ops.Div.apply(self, self._other(other))

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return ops.Div.apply(self._other(other), self)

    def __pow__(self, other: ArrayLike) -> Tensor:
        return ops.Pow.apply(self, self._other(other))

    def __rpow__(self, other: ArrayLike) -> Tensor:
        return ops.Pow.apply(self._other(other), self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return ops.MatMul.apply(self, self._other(other))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return ops.MatMul.apply(self._other(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.Abs.apply(self)

    # Comparisons are not differentiable: they return boolean tensors (masks) with no graph.
    def __lt__(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(self.data < _plain(other))

    def __le__(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(self.data <= _plain(other))

    def __gt__(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(self.data > _plain(other))

    def __ge__(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(self.data >= _plain(other))

    __hash__ = object.__hash__  # tensors are used as graph nodes; == is not overloaded

    # ------------------------------------------------------------------------ elementwise maths
    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def relu(self) -> Tensor:
        return ops.ReLU.apply(self)

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        """Limit values to ``[lo, hi]``; the gradient passes where ``lo <= x <= hi``."""
        if lo is None and hi is None:
            raise ValueError("clip: give lo, hi or both")
        return ops.Clip.apply(self, lo=lo, hi=hi)

    # ------------------------------------------------------------------------ reductions
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Arithmetic mean: ``sum / n`` with ``n`` the number of elements reduced."""
        count = int(np.prod([self.shape[a] for a in normalize_axes(axis, self.ndim)]))
        return self.sum(axis=axis, keepdims=keepdims) / count

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Largest value; ties share the gradient equally (like ``torch.amax``)."""
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        return ops.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return ops.LogSoftmax.apply(self, axis=axis)

    def sum_to(self, shape: tuple[int, ...]) -> Tensor:
        """Sum over broadcast axes so the result has ``shape`` (undoes NumPy broadcasting)."""
        if self.shape == tuple(shape):
            return self
        return ops.SumTo.apply(self, shape=tuple(shape))

    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        if self.shape == tuple(shape):
            return self
        return ops.BroadcastTo.apply(self, shape=tuple(shape))

    # ------------------------------------------------------------------------ shape
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return ops.Reshape.apply(self, shape=_shape_arg(shape))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes (negative ones count from the end); with no arguments, reverse them."""
        perm = _shape_arg(axes) if axes else tuple(reversed(range(self.ndim)))
        return ops.Transpose.apply(self, axes=perm)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axis1, axis2 = normalize_axes((axis1,), self.ndim) + normalize_axes((axis2,), self.ndim)
        perm = list(range(self.ndim))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return ops.Transpose.apply(self, axes=tuple(perm))

    def flatten(self, start_axis: int = 0) -> Tensor:
        """Merge the axes from ``start_axis`` to the end into one."""
        start = normalize_axes(start_axis, self.ndim)[0] if self.ndim else 0
        return self.reshape(*self.shape[:start], -1)

    def __getitem__(self, index: Index) -> Tensor:
        return ops.GetItem.apply(self, index=_plain_index(index))


# ---------------------------------------------------------------------------- helpers
def _is_float_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind in _FLOAT_KINDS


def _as_array(data: ArrayLike, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if _is_float_array(data):
        return data
    if isinstance(data, np.generic) and data.dtype.kind in _FLOAT_KINDS:
        return np.asarray(data)
    array = np.asarray(data)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iuf":
        return array.astype(np.float32)
    raise TypeError(f"cannot make a Tensor from data of dtype {array.dtype}")


def _shape_arg(shape: tuple) -> tuple[int, ...]:
    """Accept both ``f(2, 3)`` and ``f((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _as_tensors(items: Sequence[ArrayLike], op: str) -> list[Tensor]:
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in items]
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    return tensors


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


def _plain(value: ArrayLike) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _weak_scalar_dtype(tensor_dtype: np.dtype, scalar: bool | int | float) -> np.dtype:
    """The dtype a Python number takes beside a tensor (see :meth:`Tensor._other`)."""
    kind = tensor_dtype.kind
    if kind in _FLOAT_KINDS:
        return tensor_dtype
    if isinstance(scalar, float):
        return np.dtype(np.float32)
    if kind in "iu" or isinstance(scalar, bool):
        return tensor_dtype
    return np.dtype(np.int64)  # an int meeting a boolean tensor


# The one import cycle of the package, on purpose and only here: the ops are Tensors' methods,
# and every op module builds on the Tensor class defined above.
from . import autograd, numpy_interop, ops  # noqa: E402
