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

from .axes import Axis, normalize_axes
from .graph import is_grad_enabled

ArrayLike = Any  # anything ``numpy.asarray`` accepts, or a Tensor
Index = Any  # what ``ndarray.__getitem__`` accepts, Tensors of integers included

_FLOAT_KINDS = "f"


class Tensor:
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

    Operations promote dtypes like PyTorch (``torch.result_type``, see :mod:`tinygrad_edu.dtypes`):
    ``int64_t + float32_t`` is float32, a Python number takes the tensor's dtype when it fits
    its kind (``int32_t * 2`` stays int32, ``float32_t * 0.5`` float32, ``int32_t * 0.5`` is
    float32) and ``int_t / int_t`` is float32.

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

    # ------------------------------------------------------------------------ in-place changes
    @property
    def _version(self) -> int:
        """How many times ``data`` was changed in place (PyTorch's ``t._version``).

        Every op recorded for backward remembers its inputs' versions, and the backward sweep
        refuses to apply a VJP whose inputs (or output) changed since: the VJP would read the new
        values and silently mix them with the old ones. :meth:`detach` shares the counter, since
        it shares the memory.
        """
        return self._version_counter[0]

    def _bump_version(self) -> None:
        """Record that ``data`` was changed in place (or rebound to a new array).

        Whatever updates a tensor's values in place -- the in-place methods below, optimizers,
        ``load_state_dict``, BatchNorm's running statistics -- calls this.
        """
        self._version_counter[0] += 1

    def copy_(self, src: ArrayLike) -> Tensor:
        """Copy ``src`` into this tensor in place (broadcast to its shape, cast to its dtype).

        Like PyTorch, this is refused on a tensor that takes part in recording -- a leaf that
        requires grad (outside ``no_grad()``) or a recorded result -- since the graph could no
        longer say what was computed from which values. Use it under ``no_grad()`` to set
        parameters. Ops recorded before the copy refuse to go backward afterwards.
        """
        values = src.data if isinstance(src, Tensor) else np.asarray(src)
        self._check_writable("copy_")
        _check_source_graph("copy_", src)
        if values.dtype.kind not in "biuf":
            raise TypeError(f"copy_: cannot copy {values.dtype} values into a {self.dtype} tensor")
        try:
            target_shape = np.broadcast_shapes(values.shape, self.shape)
        except ValueError:
            target_shape = None
        if target_shape != self.shape:
            raise ValueError(
                f"copy_: source of shape {values.shape} does not broadcast to the tensor's shape "
                f"{self.shape}"
            )
        np.copyto(self.data, values, casting="unsafe")
        self._bump_version()
        return self

    def zero_(self) -> Tensor:
        """Set every element to zero in place (see :meth:`copy_` for when this is refused)."""
        return self.fill_(0)

    def fill_(self, value: float | bool) -> Tensor:
        """Set every element to ``value`` in place (see :meth:`copy_` for when this is refused)."""
        if isinstance(value, Tensor):
            if value.size != 1:
                raise ValueError(f"fill_: the value must have one element, got shape {value.shape}")
            _check_source_graph("fill_", value)
            value = value.item()
        if not isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
            raise TypeError(f"fill_: the value must be a number, got {type(value).__name__}")
        self._check_writable("fill_")
        self.data.fill(value)
        self._bump_version()
        return self

    def _check_writable(self, method: str) -> None:
        if self._node is not None and is_grad_enabled():
            raise RuntimeError(
                f"{method}: in-place changes of a recorded result are not supported; compute a "
                "new tensor instead (out-of-place)"
            )
        if self.requires_grad and self._node is None and is_grad_enabled():
            raise RuntimeError(
                f"{method}: a leaf tensor that requires grad cannot be changed in place while "
                "gradients are recorded; wrap the change in tinygrad_edu.no_grad()"
            )
        if not self.data.flags.writeable:
            raise ValueError(f"{method}: the tensor's array is read-only; build a new tensor")

    # ----------------------------------------------------------------- array protocol and info
    @property
    def shape(self) -> tuple[int, ...]:
        """The dimensions, as in NumPy."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of elements."""
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
        """``np.asarray(t)``: a read-only view of the array (a write through it would change a
        value a recorded op may have saved, unseen by the in-place check), ``np.array(t)`` a
        copy; :meth:`numpy` is the writable escape hatch, shared like ``.data``."""
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        if copy:
            return self.data.copy()
        view = self.data.view()
        view.flags.writeable = False
        return view

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

    def __getstate__(self) -> dict[str, Any]:
        """Pickling and deep copies: every slot but ``__weakref__``."""
        return {name: getattr(self, name) for name in Tensor.__slots__ if name != "__weakref__"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

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
        from .dot import graph_to_dot

        return graph_to_dot(self, names)

    # ------------------------------------------------------------------------ constructors
    # The arrays come from :mod:`tinygrad_edu.creation`; default dtypes are PyTorch's.
    @staticmethod
    def zeros(
        *shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """A tensor of zeros (float32 unless ``dtype`` says otherwise); ``Tensor.zeros(2, 3)``
        and ``Tensor.zeros((2, 3))`` both work."""
        data = creation.full(_shape_arg(shape), 0.0, dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def ones(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of ones (float32 unless ``dtype`` says otherwise); ``Tensor.ones(2, 3)``
        and ``Tensor.ones((2, 3))`` both work."""
        data = creation.full(_shape_arg(shape), 1.0, dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def full(
        shape: int | Sequence[int], fill_value: Any, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """A tensor of ``fill_value``: float32 for a float, int64 for an int, bool for a bool,
        unless ``dtype`` says otherwise (``torch.full``)."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return Tensor(creation.full(shape, fill_value, dtype), requires_grad=requires_grad)

    def zeros_like(self, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Zeros of this tensor's shape (and dtype, unless ``dtype`` is given)."""
        return self.full_like(0, dtype=dtype, requires_grad=requires_grad)

    def ones_like(self, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Ones of this tensor's shape (and dtype, unless ``dtype`` is given)."""
        return self.full_like(1, dtype=dtype, requires_grad=requires_grad)

    def full_like(self, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """``fill_value`` in this tensor's shape (and dtype, unless ``dtype`` is given)."""
        data = creation.full_like(self.data, fill_value, dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def arange(
        start: float,
        end: float | None = None,
        step: float = 1,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """``start, start + step, ...`` below ``end`` (``arange(n)`` counts ``0 .. n-1``); int64
        when every argument is an integer, else float32, unless ``dtype`` says otherwise
        (``torch.arange``)."""
        if end is None:
            start, end = 0, start
        return Tensor(creation.arange(start, end, step, dtype), requires_grad=requires_grad)

    @staticmethod
    def linspace(
        start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """``steps`` evenly spaced values from ``start`` to ``end``, both included (float32
        unless ``dtype`` says otherwise)."""
        return Tensor(creation.linspace(start, end, steps, dtype), requires_grad=requires_grad)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """The ``n x m`` identity matrix (ones on the diagonal, ``m`` defaults to ``n``; float32
        unless ``dtype`` says otherwise)."""
        return Tensor(creation.eye(n, m, dtype), requires_grad=requires_grad)

    @staticmethod
    def rand(
        *shape: int | Sequence[int],
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Uniform samples from ``[0, 1)``; ``rng`` is a ``numpy.random.Generator`` or a seed;
        ``dtype`` is a floating dtype (float32 by default)."""
        return Tensor.uniform(*shape, rng=rng, dtype=dtype, requires_grad=requires_grad)

    @staticmethod
    def randn(
        *shape: int | Sequence[int],
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Standard-normal samples; ``rng`` is a ``numpy.random.Generator`` or a seed; ``dtype``
        is a floating dtype (float32 by default)."""
        return Tensor.normal(*shape, rng=rng, dtype=dtype, requires_grad=requires_grad)

    @staticmethod
    def randint(
        low: int,
        high: int | None = None,
        size: Sequence[int] = (),
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
    ) -> Tensor:
        """Integers drawn uniformly from ``[low, high)`` (from 0 when ``high`` is omitted);
        int64 unless ``dtype`` says otherwise."""
        return Tensor(creation.randint(low, high, size, rng, dtype))

    @staticmethod
    def uniform(
        *shape: int | Sequence[int],
        low: float = 0.0,
        high: float = 1.0,
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Samples from the uniform distribution on ``[low, high)`` (an initialiser)."""
        data = creation.uniform(_shape_arg(shape), low, high, rng, dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def normal(
        *shape: int | Sequence[int],
        mean: float = 0.0,
        std: float = 1.0,
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Samples from the normal distribution with ``mean`` and ``std`` (an initialiser)."""
        data = creation.normal(_shape_arg(shape), mean, std, rng, dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def stack(tensors: Sequence[ArrayLike], axis: int = 0, *, dim: int | None = None) -> Tensor:
        """Join tensors of equal shape along a new axis."""
        axis = axis if dim is None else dim
        return ops.Stack.apply(*_as_tensors(tensors, "stack"), axis=axis)

    @staticmethod
    def concatenate(
        tensors: Sequence[ArrayLike], axis: int = 0, *, dim: int | None = None
    ) -> Tensor:
        """Join tensors along an existing axis (``Tensor.cat`` is the same)."""
        axis = axis if dim is None else dim
        return ops.Concatenate.apply(*_as_tensors(tensors, "concatenate"), axis=axis)

    @staticmethod
    def cat(tensors: Sequence[ArrayLike], axis: int = 0, *, dim: int | None = None) -> Tensor:
        """PyTorch's name for :meth:`concatenate`."""
        return Tensor.concatenate(tensors, axis if dim is None else dim)

    @staticmethod
    def hstack(tensors: Sequence[ArrayLike]) -> Tensor:
        """Join along axis 1, or axis 0 for 1-d tensors (``torch.hstack``)."""
        tensors = [t.reshape(1) if t.ndim == 0 else t for t in _as_tensors(tensors, "hstack")]
        return ops.Concatenate.apply(*tensors, axis=0 if tensors[0].ndim == 1 else 1)

    @staticmethod
    def vstack(tensors: Sequence[ArrayLike]) -> Tensor:
        """Join along axis 0 after making 0-d and 1-d tensors rows (``torch.vstack``)."""
        tensors = [t.reshape(1, -1) if t.ndim < 2 else t for t in _as_tensors(tensors, "vstack")]
        return ops.Concatenate.apply(*tensors, axis=0)

    # ------------------------------------------------------------------------ arithmetic
    # ``dtypes.operands`` promotes like PyTorch (``torch.result_type``) and names the operation
    # for the dtype rules that depend on it (true division of integers, booleans).
    def __add__(self, other: ArrayLike) -> Tensor:
        return ops.Add.apply(*operands(self, other, "add"))

    def __radd__(self, other: ArrayLike) -> Tensor:
        return ops.Add.apply(*operands(self, other, "add")[::-1])

    def __sub__(self, other: ArrayLike) -> Tensor:
        return ops.Sub.apply(*operands(self, other, "sub"))

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return ops.Sub.apply(*operands(self, other, "sub")[::-1])

    def __mul__(self, other: ArrayLike) -> Tensor:
        return ops.Mul.apply(*operands(self, other, "mul"))

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return ops.Mul.apply(*operands(self, other, "mul")[::-1])

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return ops.Div.apply(*operands(self, other, "div"))

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return ops.Div.apply(*operands(self, other, "div")[::-1])

    def __pow__(self, other: ArrayLike) -> Tensor:
        return ops.Pow.apply(*operands(self, other, "pow"))

    def __rpow__(self, other: ArrayLike) -> Tensor:
        return ops.Pow.apply(*operands(self, other, "pow")[::-1])

    def __mod__(self, other: ArrayLike) -> Tensor:
        """Remainder with the sign of the divisor (``torch.remainder``, Python's ``%``)."""
        return ops.Remainder.apply(*operands(self, other, "remainder"))

    def __rmod__(self, other: ArrayLike) -> Tensor:
        return ops.Remainder.apply(*operands(self, other, "remainder")[::-1])

    def __floordiv__(self, other: ArrayLike) -> Tensor:
        """``floor(a / b)``; its gradient is 0."""
        return ops.FloorDivide.apply(*operands(self, other, "floor_divide"))

    def __rfloordiv__(self, other: ArrayLike) -> Tensor:
        return ops.FloorDivide.apply(*operands(self, other, "floor_divide")[::-1])

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return ops.MatMul.apply(*operands(self, other, "matmul"))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return ops.MatMul.apply(*operands(self, other, "matmul")[::-1])

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.Abs.apply(self)

    remainder = __mod__
    floor_divide = __floordiv__

    def maximum(self, other: ArrayLike) -> Tensor:
        """Elementwise larger value; at a tie each side gets half the gradient (like PyTorch)."""
        return ops.Maximum.apply(*operands(self, other, "maximum"))

    def minimum(self, other: ArrayLike) -> Tensor:
        """Elementwise smaller value; at a tie each side gets half the gradient."""
        return ops.Minimum.apply(*operands(self, other, "minimum"))

    def lerp(self, end: ArrayLike, weight: ArrayLike) -> Tensor:
        """``self + weight * (end - self)``, differentiable in all three (``torch.lerp``)."""
        start, end = operands(self, end, "lerp")
        return start + (end - start) * weight

    def where(self, condition: ArrayLike, other: ArrayLike) -> Tensor:
        """``self`` where ``condition`` holds, else ``other`` (``torch.Tensor.where``)."""
        return ops.where(condition, self, other)

    # Comparisons are not differentiable: they return boolean tensors (masks) with no graph,
    # comparing in the promoted dtype. ``==`` compares elementwise like NumPy and PyTorch (and,
    # like PyTorch, ``t == None`` is False); graphs key tensors by identity.
    def __lt__(self, other: ArrayLike) -> Tensor:
        return _compare(np.less, self, other)

    def __le__(self, other: ArrayLike) -> Tensor:
        return _compare(np.less_equal, self, other)

    def __gt__(self, other: ArrayLike) -> Tensor:
        return _compare(np.greater, self, other)

    def __ge__(self, other: ArrayLike) -> Tensor:
        return _compare(np.greater_equal, self, other)

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        if not _comparable(other):
            return NotImplemented
        return _compare(np.equal, self, other)

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        if not _comparable(other):
            return NotImplemented
        return _compare(np.not_equal, self, other)

    __hash__ = object.__hash__  # hashing (dicts, sets) stays by identity, as in PyTorch
    lt, le, gt, ge, eq, ne = __lt__, __le__, __gt__, __ge__, __eq__, __ne__

    def isnan(self) -> Tensor:
        return Tensor._wrap(np.isnan(self.data))

    def isinf(self) -> Tensor:
        return Tensor._wrap(np.isinf(self.data))

    def isfinite(self) -> Tensor:
        return Tensor._wrap(np.isfinite(self.data))

    def logical_and(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(np.logical_and(self.data, _plain(other)))

    def logical_or(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(np.logical_or(self.data, _plain(other)))

    def logical_xor(self, other: ArrayLike) -> Tensor:
        return Tensor._wrap(np.logical_xor(self.data, _plain(other)))

    def logical_not(self) -> Tensor:
        return Tensor._wrap(np.logical_not(self.data))

    def __and__(self, other: ArrayLike) -> Tensor:
        return _bitwise(np.bitwise_and, self, other)

    def __or__(self, other: ArrayLike) -> Tensor:
        return _bitwise(np.bitwise_or, self, other)

    def __xor__(self, other: ArrayLike) -> Tensor:
        return _bitwise(np.bitwise_xor, self, other)

    def __invert__(self) -> Tensor:
        return _bitwise(np.invert, self)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def astype(self, dtype: Any) -> Tensor:
        """This tensor in the numeric ``dtype`` (``TypeError`` for others). Between floating
        dtypes the gradient flows (cast back); to an integer or boolean dtype the result is a
        constant. The same dtype returns ``self``."""
        dtype = dtypes.as_dtype(dtype, "astype")
        if dtype == self.dtype:
            return self
        if dtype.kind in _FLOAT_KINDS and self.data.dtype.kind in _FLOAT_KINDS:
            return ops.Cast.apply(self, dtype=dtype)
        return Tensor._wrap(self.data.astype(dtype))

    # ------------------------------------------------------------------------ elementwise maths
    # Floating functions of an integer or boolean tensor compute in float32 (``floating``).
    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def exp(self) -> Tensor:
        return ops.Exp.apply(floating(self))

    def log(self) -> Tensor:
        return ops.Log.apply(floating(self))

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(floating(self))

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(floating(self))

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(floating(self))

    def relu(self) -> Tensor:
        return ops.ReLU.apply(self)

    def sin(self) -> Tensor:
        return ops.Sin.apply(floating(self))

    def cos(self) -> Tensor:
        return ops.Cos.apply(floating(self))

    def tan(self) -> Tensor:
        return ops.Tan.apply(floating(self))

    def asin(self) -> Tensor:
        return ops.Asin.apply(floating(self))

    def acos(self) -> Tensor:
        return ops.Acos.apply(floating(self))

    def atan(self) -> Tensor:
        return ops.Atan.apply(floating(self))

    def sinh(self) -> Tensor:
        return ops.Sinh.apply(floating(self))

    def cosh(self) -> Tensor:
        return ops.Cosh.apply(floating(self))

    def asinh(self) -> Tensor:
        return ops.Asinh.apply(floating(self))

    def acosh(self) -> Tensor:
        return ops.Acosh.apply(floating(self))

    def atanh(self) -> Tensor:
        return ops.Atanh.apply(floating(self))

    # NumPy's spellings of the inverse functions (PyTorch accepts both too)
    arcsin, arccos, arctan = asin, acos, atan
    arcsinh, arccosh, arctanh = asinh, acosh, atanh

    def log2(self) -> Tensor:
        return ops.Log2.apply(floating(self))

    def log10(self) -> Tensor:
        return ops.Log10.apply(floating(self))

    def log1p(self) -> Tensor:
        return ops.Log1p.apply(floating(self))

    def exp2(self) -> Tensor:
        return ops.Exp2.apply(floating(self))

    def expm1(self) -> Tensor:
        return ops.Expm1.apply(floating(self))

    def rsqrt(self) -> Tensor:
        return ops.Rsqrt.apply(floating(self))

    def erf(self) -> Tensor:
        return ops.Erf.apply(floating(self))

    def square(self) -> Tensor:
        """``x * x``; of a boolean tensor int64, as in PyTorch (NumPy says int8)."""
        return ops.Square.apply(_accumulated(self) if self.data.dtype.kind == "b" else self)

    def reciprocal(self) -> Tensor:
        return ops.Reciprocal.apply(floating(self))

    def sign(self) -> Tensor:
        """-1, 0 or 1 (zero gradient, as for floor/ceil/round/trunc); a boolean tensor is its
        own sign."""
        if self.data.dtype.kind == "b":
            return Tensor._wrap(self.data.copy())
        return ops.Sign.apply(self)

    def floor(self) -> Tensor:
        return ops.Floor.apply(self)

    def ceil(self) -> Tensor:
        return ops.Ceil.apply(self)

    def round(self) -> Tensor:
        """Round half to even, like NumPy and PyTorch; a boolean tensor stays boolean (as with
        floor, ceil and trunc)."""
        if self.data.dtype.kind == "b":
            return Tensor._wrap(self.data.copy())
        return ops.Round.apply(self)

    def trunc(self) -> Tensor:
        return ops.Trunc.apply(self)

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
            x = dtypes.cast(x, dtypes.result_type(x, *bounds))
        return ops.Clip.apply(x, lo=lo, hi=hi)

    def _clip_by_tensors(self, lo: ArrayLike | None, hi: ArrayLike | None) -> Tensor:
        """``clip`` with tensor bounds, differentiable in the bounds too, with the gradient
        routed exactly as ``torch.clamp(x, min, max)`` routes it: to ``x`` where
        ``lo <= x <= hi``, to ``lo`` where ``x < lo < hi``, to ``hi`` where ``x > hi`` or
        ``hi < lo`` (then every value is ``hi``), and to nobody where ``x < lo == hi``."""
        bounds = [b for b in (lo, hi) if b is not None]
        dtype = dtypes.result_type(self, *bounds)
        x = self.data
        low, high = (
            None if b is None else np.asarray(b.data if isinstance(b, Tensor) else b)
            for b in (lo, hi)
        )
        with np.errstate(invalid="ignore"):
            inside = np.ones(
                np.broadcast_shapes(x.shape, *(b.shape for b in (low, high) if b is not None)), bool
            )
            to_lo = to_hi = None
            if low is not None:
                inside &= x >= low
                to_lo = x < low if high is None else (x < low) & (low < high)
            if high is not None:
                inside &= x <= high
                to_hi = x > high if low is None else (x > high) | (high < low)
            values = np.clip(x, low, high)  # min(max(x, lo), hi): hi where lo > hi
        y = Tensor._wrap(np.broadcast_to(values, inside.shape).astype(dtype))  # no gradient
        if to_hi is not None:
            y = ops.where(to_hi, hi, y)
        if to_lo is not None:
            y = ops.where(to_lo, lo, y)
        return ops.where(inside, self, y)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """PyTorch's name for :meth:`clip`."""
        return self.clip(min, max)

    # ------------------------------------------------------------------------ reductions
    # Every axis argument is also accepted as ``dim`` (and ``keepdims`` as ``keepdim``), the
    # spellings PyTorch users type; the aliases cost one ``is None`` test on the hot path.
    def sum(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("sum", axis, keepdims, dim, keepdim)
        return ops.Sum.apply(_accumulated(self), axis=axis, keepdims=keepdims)

    def mean(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Arithmetic mean: ``sum / n`` with ``n`` the number of elements reduced."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("mean", axis, keepdims, dim, keepdim)
        count = int(np.prod([self.shape[a] for a in normalize_axes(axis, self.ndim)]))
        return self.sum(axis=axis, keepdims=keepdims) / count

    def max(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Largest values (not indices: see :meth:`argmax`). Ties as in PyTorch: over one axis
        the gradient goes to the first maximum (``torch.max(x, dim)``), over all axes or a tuple
        the maxima share it equally (``torch.max(x)``, ``torch.amax``; see :meth:`amax`)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("max", axis, keepdims, dim, keepdim)
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Smallest values; ties like :meth:`max` (the first minimum over one axis)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("min", axis, keepdims, dim, keepdim)
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def prod(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Product; the gradient is exact with zeros (one zero, several zeros)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("prod", axis, keepdims, dim, keepdim)
        return ops.Prod.apply(_accumulated(self), axis=axis, keepdims=keepdims)

    def var(
        self,
        axis: Axis = None,
        correction: float = 1,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Variance with ``correction`` (1: unbiased, PyTorch's default; 0: population)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("var", axis, keepdims, dim, keepdim)
        return ops.var(self, axis=axis, correction=correction, keepdims=keepdims)

    def std(
        self,
        axis: Axis = None,
        correction: float = 1,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Standard deviation, the square root of :meth:`var`."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("std", axis, keepdims, dim, keepdim)
        return ops.std(self, axis=axis, correction=correction, keepdims=keepdims)

    def logsumexp(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """``log(sum(exp(x)))`` computed without overflow (the maximum is taken out first)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("logsumexp", axis, keepdims, dim, keepdim)
        return ops.LogSumExp.apply(floating(self), axis=axis, keepdims=keepdims)

    def norm(
        self,
        p: float | str = 2,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Vector norm (``p`` = 2 by default, 1, inf, -inf); the gradient at 0 is 0."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("norm", axis, keepdims, dim, keepdim)
        return ops.norm(floating(self), p=p, axis=axis, keepdims=keepdims)

    def argmax(
        self,
        axis: int | None = None,
        keepdims: bool = False,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Index of the first largest value (int64, no gradient; flat index when no axis)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("argmax", axis, keepdims, dim, keepdim)
        return Tensor._wrap(np.asarray(np.argmax(self.data, axis=axis, keepdims=keepdims)))

    def argmin(
        self,
        axis: int | None = None,
        keepdims: bool = False,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Index of the first smallest value (int64, no gradient; flat index when no axis)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("argmin", axis, keepdims, dim, keepdim)
        return Tensor._wrap(np.asarray(np.argmin(self.data, axis=axis, keepdims=keepdims)))

    def any(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Whether any element is nonzero (a boolean tensor, no gradient)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("any", axis, keepdims, dim, keepdim)
        axes = normalize_axes(axis, self.ndim)
        return Tensor._wrap(np.asarray(np.any(self.data, axis=axes, keepdims=keepdims)))

    def all(
        self,
        axis: Axis = None,
        keepdims: bool = False,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Whether every element is nonzero (a boolean tensor, no gradient)."""
        if dim is not None or keepdim is not None:
            axis, keepdims = _torch_axes("all", axis, keepdims, dim, keepdim)
        axes = normalize_axes(axis, self.ndim)
        return Tensor._wrap(np.asarray(np.all(self.data, axis=axes, keepdims=keepdims)))

    def cumsum(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        """Running sum along ``axis``."""
        return ops.Cumsum.apply(_accumulated(self), axis=_one_axis("cumsum", axis, dim))

    def cumprod(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        """Running product along ``axis``; the gradient is exact with zeros."""
        return ops.Cumprod.apply(_accumulated(self), axis=_one_axis("cumprod", axis, dim))

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        return ops.Softmax.apply(floating(self), axis=axis if dim is None else dim)

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        return ops.LogSoftmax.apply(floating(self), axis=axis if dim is None else dim)

    def sum_to(self, shape: tuple[int, ...]) -> Tensor:
        """Sum over broadcast axes so the result has ``shape`` (undoes NumPy broadcasting)."""
        if self.shape == tuple(shape):
            return self
        return ops.SumTo.apply(self, shape=tuple(shape))

    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        if self.shape == tuple(shape):
            return self
        return ops.BroadcastTo.apply(self, shape=tuple(shape))

    def expand(self, *sizes: int | Sequence[int]) -> Tensor:
        """``broadcast_to`` where -1 keeps a size (``torch.Tensor.expand``)."""
        return ops.expand(self, _shape_arg(sizes))

    # ------------------------------------------------------------------------ shape
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return ops.Reshape.apply(self, shape=_shape_arg(shape))

    view = reshape

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes (negative ones count from the end); with no arguments, reverse them."""
        perm = _shape_arg(axes) if axes else tuple(reversed(range(self.ndim)))
        return ops.Transpose.apply(self, axes=perm)

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        """PyTorch's name for :meth:`transpose` with every axis given."""
        return ops.Transpose.apply(self, axes=_shape_arg(dims))

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axis1, axis2 = normalize_axes((axis1,), self.ndim) + normalize_axes((axis2,), self.ndim)
        perm = list(range(self.ndim))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return ops.Transpose.apply(self, axes=tuple(perm))

    def moveaxis(self, source: Axis, destination: Axis) -> Tensor:
        """Move axes to new positions, the others keeping their order (``movedim`` too)."""
        return ops.moveaxis(self, source, destination)

    movedim = moveaxis

    def flatten(
        self,
        start_axis: int = 0,
        end_axis: int = -1,
        *,
        start_dim: int | None = None,
        end_dim: int | None = None,
    ) -> Tensor:
        """Merge the axes from ``start_axis`` to ``end_axis`` (both included) into one."""
        start = start_axis if start_dim is None else start_dim
        return ops.flatten(self, start, end_axis if end_dim is None else end_dim)

    def unflatten(self, axis: int, sizes: Sequence[int]) -> Tensor:
        """Split axis ``axis`` into ``sizes`` (one may be -1): the inverse of :meth:`flatten`."""
        return ops.unflatten(self, axis, tuple(sizes))

    def squeeze(self, axis: Axis = None, *, dim: Axis = None) -> Tensor:
        """Drop axes of size 1 (all, or those in ``axis`` that have size 1)."""
        return ops.squeeze(self, axis if dim is None else dim)

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        """Insert an axis of size 1 at ``axis`` (``expand_dims`` is the same)."""
        return ops.unsqueeze(self, _one_axis("unsqueeze", axis, dim))

    expand_dims = unsqueeze

    def flip(self, axis: Axis = None, *, dims: Axis = None) -> Tensor:
        """Reverse the order of elements along ``axis`` (all axes when ``None``)."""
        return ops.Flip.apply(self, axes=axis if dims is None else dims)

    def roll(self, shifts: int | Sequence[int], axis: Axis = None, *, dims: Axis = None):
        """Shift cyclically by ``shifts`` along ``axis`` (over the flattened tensor if None)."""
        shifts = shifts if isinstance(shifts, (int, np.integer)) else tuple(shifts)
        return ops.Roll.apply(self, shifts=shifts, axes=axis if dims is None else dims)

    def tile(self, *reps: int | Sequence[int]) -> Tensor:
        """Repeat the whole tensor ``reps[i]`` times along axis ``i`` (``torch.tile``)."""
        return ops.tile(self, _shape_arg(reps))

    def repeat(self, *sizes: int | Sequence[int]) -> Tensor:
        """PyTorch's ``repeat`` (= :meth:`tile`; needs a size for every axis)."""
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: {len(sizes)} sizes for a {self.ndim}-d tensor")
        return ops.tile(self, sizes)

    def repeat_interleave(self, repeats: int, axis: int | None = None, *, dim: int | None = None):
        """Repeat each element ``repeats`` times along ``axis`` (flattened when ``None``)."""
        return ops.repeat_interleave(self, repeats, axis if dim is None else dim)

    def split(
        self, split_size_or_sections: int | Sequence[int], axis: int = 0, *, dim: int | None = None
    ) -> list[Tensor]:
        """Pieces of ``split_size`` (or of the listed sizes) along ``axis`` (``torch.split``)."""
        return ops.split(self, split_size_or_sections, axis if dim is None else dim)

    def chunk(self, chunks: int, axis: int = 0, *, dim: int | None = None) -> list[Tensor]:
        """At most ``chunks`` equal pieces along ``axis`` (the last may be smaller)."""
        return ops.chunk(self, chunks, axis if dim is None else dim)

    def gather(self, axis: int, index: ArrayLike) -> Tensor:
        """``out[p] = self[p with coordinate axis replaced by index[p]]`` (``torch.gather``)."""
        return ops.gather(self, axis, index)

    def scatter_add(self, axis: int, index: ArrayLike, src: ArrayLike) -> Tensor:
        """A copy with ``src`` added at the positions ``index`` names along ``axis``."""
        return ops.scatter_add(self, axis, index, src)

    def masked_fill(self, mask: ArrayLike, value: ArrayLike) -> Tensor:
        """``value`` where the boolean ``mask`` holds; the gradient flows elsewhere only."""
        return ops.masked_fill(self, mask, value)

    def tril(self, diagonal: int = 0) -> Tensor:
        """Lower triangle of the last two axes (``j - i <= diagonal``), zeros above."""
        return ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        """Upper triangle of the last two axes (``j - i >= diagonal``), zeros below."""
        return ops.triu(self, diagonal)

    def diagonal(
        self,
        offset: int = 0,
        axis1: int = 0,
        axis2: int = 1,
        *,
        dim1: int | None = None,
        dim2: int | None = None,
    ) -> Tensor:
        """The diagonal ``[i, i + offset]`` of the (``axis1``, ``axis2``) planes, as a last axis."""
        axis1, axis2 = axis1 if dim1 is None else dim1, axis2 if dim2 is None else dim2
        return ops.diagonal(self, offset, axis1, axis2)

    def __getitem__(self, index: Index) -> Tensor:
        return ops.GetItem.apply(self, index=_plain_index(index))


# ---------------------------------------------------------------------------- helpers
def _shape_arg(shape: tuple) -> tuple[int, ...]:
    """Accept both ``f(2, 3)`` and ``f((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _as_tensors(items: Sequence[ArrayLike], op: str) -> list[Tensor]:
    """The tensors to join, in their promoted dtype (``torch.cat`` promotes like an operator)."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in items]
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    dtype = dtypes.promote_all([t.data.dtype for t in tensors])
    return [t if t.data.dtype == dtype else dtypes.cast(t, dtype) for t in tensors]


def _comparable(value: object) -> bool:
    """Whether ``==`` compares elementwise (numbers and array-likes; ``t == None`` is False)."""
    return isinstance(value, (Tensor, np.ndarray, np.generic, bool, int, float, list, tuple))


def _compare(fn: np.ufunc, a: Tensor, other: ArrayLike) -> Tensor:
    """A comparison in the promoted dtype: a boolean tensor, no graph."""
    x, y = dtypes.arrays(a, other)
    return Tensor._wrap(np.asarray(fn(x, y)))


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


def _torch_axes(
    op: str, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None
) -> tuple[Any, bool]:
    """Merge PyTorch's ``dim``/``keepdim`` spellings into ``axis``/``keepdims``."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give axis or its alias dim, not both")
        axis = dim
    if keepdim is not None:
        if keepdims:
            raise TypeError(f"{op}: give keepdims or its alias keepdim, not both")
        keepdims = keepdim
    return axis, bool(keepdims)


def _one_axis(op: str, axis: int | None, dim: int | None) -> int:
    """A required single axis, spelled ``axis`` or ``dim``."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give axis or its alias dim, not both")
        return dim
    if axis is None:
        raise TypeError(f"{op}: needs an axis (axis= or dim=)")
    return axis


def _check_source_graph(method: str, source: Any) -> None:
    """Refuse to copy a value that requires grad while recording: PyTorch records the copy
    (the target then depends on the source), this library cannot, and the gradient through it
    would silently be missing."""
    if isinstance(source, Tensor) and source.requires_grad and is_grad_enabled():
        raise RuntimeError(
            f"{method}: the source requires grad, and an in-place copy is not recorded, so its "
            "gradient would be lost; compute the new tensor out of place, or copy "
            "source.detach() (or under no_grad()) if no gradient should flow"
        )


def _accumulated(t: Tensor) -> Tensor:
    """``t`` in the dtype its sums and products accumulate in: floating tensors their own,
    integer and boolean ones int64, as in PyTorch (NumPy would sum uint8 in uint64)."""
    kind = t.data.dtype.kind
    if kind == "f" or t.data.dtype == np.int64:
        return t
    return Tensor._wrap(t.data.astype(np.int64))


def _bitwise(fn: np.ufunc, *values: Any) -> Tensor:
    """``& | ^ ~`` on boolean or integer tensors (masks); a constant result."""
    arrays = [_plain(x) for x in values]
    if any(np.asarray(a).dtype.kind not in "biu" for a in arrays):
        raise TypeError(f"{fn.__name__} needs boolean or integer tensors (masks), not floats")
    return Tensor._wrap(np.asarray(fn(*arrays)))


# The one import cycle of the package, on purpose and only here: the ops are Tensors' methods,
# and every op module (and the dtype rules and constructors) builds on the Tensor class above.
from . import autograd, creation, dtypes, numpy_interop, ops  # noqa: E402
from .dtypes import floating, operands  # noqa: E402

Tensor.amax, Tensor.amin = ops.amax, ops.amin  # ties always shared, as torch.amax
