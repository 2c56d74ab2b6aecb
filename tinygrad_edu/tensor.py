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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ArrayLike = Any  # anything ``numpy.asarray`` accepts, or a Tensor
Index = Any  # what ``ndarray.__getitem__`` accepts, Tensors of integers included

_FLOAT_KINDS = "f"


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    Parameters
    ----------
    data
        Array-like values. A NumPy floating array keeps its dtype and is *not* copied (the tensor
        shares its memory, like ``torch.from_numpy``). Python scalars, lists, integer and boolean
        arrays become ``float32`` unless ``dtype`` says otherwise.
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
    __array_priority__ = 1000  # so that ``ndarray * Tensor`` calls Tensor.__rmul__

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

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

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
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float)) and self.data.dtype.kind in _FLOAT_KINDS:
            return Tensor._wrap(np.asarray(other, dtype=self.data.dtype))
        return Tensor(other, dtype=None if _is_float_array(other) else self.data.dtype)

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

    # Comparisons are not differentiable: they return plain boolean arrays, like a mask.
    def __lt__(self, other: ArrayLike) -> np.ndarray:
        return self.data < np.asarray(other)

    def __le__(self, other: ArrayLike) -> np.ndarray:
        return self.data <= np.asarray(other)

    def __gt__(self, other: ArrayLike) -> np.ndarray:
        return self.data > np.asarray(other)

    def __ge__(self, other: ArrayLike) -> np.ndarray:
        return self.data >= np.asarray(other)

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
        return ops.Clip.apply(self, lo=lo, hi=hi)

    # ------------------------------------------------------------------------ reductions
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Arithmetic mean: ``sum / n`` with ``n`` the number of elements reduced."""
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis)
        count = int(np.prod([self.shape[a] for a in axes]))
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
        """Permute axes; with no arguments, reverse them (like NumPy)."""
        perm = _shape_arg(axes) if axes else tuple(reversed(range(self.ndim)))
        return ops.Transpose.apply(self, axes=perm)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        perm = list(range(self.ndim))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return ops.Transpose.apply(self, axes=tuple(perm))

    def flatten(self, start_axis: int = 0) -> Tensor:
        """Merge the axes from ``start_axis`` to the end into one."""
        start = start_axis % self.ndim if self.ndim else 0
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
    if array.dtype.kind in "biuf":
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
    """Replace Tensors inside an index by their integer arrays."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data.astype(np.intp) if index.dtype.kind == "f" else index.data
    return index


from . import autograd, ops  # noqa: E402  (both build on the Tensor class defined above)
