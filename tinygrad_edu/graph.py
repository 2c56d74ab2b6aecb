"""Recording the graph: the ``Op`` protocol, grad mode and ``no_grad``.

Each differentiable operation is a subclass of :class:`Op` with two methods:

``forward(self, *arrays) -> ndarray``
    plain NumPy on the input arrays; may keep on ``self`` whatever the VJP needs.
``vjp(self, g, out, *inputs) -> Tensor | tuple[Tensor | None, ...]``
    the vector-Jacobian product: given ``g = dL/d(out)`` return ``dL/d(input_i)`` for each input,
    written with **Tensor** operations so that the backward pass can itself be differentiated.
    A returned gradient may still carry broadcast axes: the engine sums it back to the input's
    shape in one place (:meth:`Tensor.sum_to`), so no VJP has to think about broadcasting.

:meth:`Op.apply` runs ``forward`` and, when some input requires grad and grad mode is on, stores the
op instance as the output's ``_node`` together with its inputs. The op instance is the "context" of
minitorch's Function/Context split: the node of the graph and the memory of its forward pass.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from . import anomaly

if TYPE_CHECKING:
    from .tensor import Tensor

F = TypeVar("F", bound=Callable[..., Any])

_grad_enabled = True
_sequence = itertools.count(1)


class ShapeError(ValueError):
    """Inputs whose shapes do not fit the operation; the message names the op and the shapes."""


def is_grad_enabled() -> bool:
    """Whether new operations are currently recorded for backward."""
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for its block."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc_info: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def no_grad() -> _GradMode:
    """Nothing computed inside ``with no_grad():`` (or a function decorated with it) is recorded.

    Use it for inference and for parameter updates, which must not become part of the graph.
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Switch recording back on inside a ``no_grad`` block."""
    return _GradMode(True)


class Op:
    """Base class of every differentiable operation (see the module docstring)."""

    name: ClassVar[str] = "op"
    inputs: tuple[Tensor, ...] = ()
    needs_input_grad: tuple[bool, ...] = ()
    #: creation counter: a node is always created after its inputs' nodes, so sorting nodes by
    #: decreasing sequence number is a topological order for the backward sweep
    sequence: int = 0
    #: where user code created this node (file:line), recorded only in anomaly mode
    created_at: str | None = None

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, g: Tensor, out: Tensor, *inputs: Tensor) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **attrs: Any) -> Tensor:
        """Run the op on Tensors and record it when gradients are wanted."""
        op = cls(**attrs) if attrs else cls.__new__(cls)
        try:
            data = op.forward(*[t.data for t in inputs])
        except ValueError as err:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ShapeError(f"{cls.name}: input shapes {shapes} do not fit: {err}") from None
        if data.__class__ is not np.ndarray:
            data = np.asarray(data)
        tensor_class = type(inputs[0])  # every op has a Tensor input: graph.py needs no import
        node = None
        if _grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    op.inputs = inputs
                    op.needs_input_grad = tuple([t.requires_grad for t in inputs])
                    op.sequence = next(_sequence)
                    node = op
                    break
        out = tensor_class._wrap(data, node)
        if anomaly.enabled:
            anomaly.check_forward(op, inputs, data)
        return out

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Released(Op):
    """Stands in for a node whose graph was freed by a previous ``backward()``."""

    name = "released"

    def vjp(self, g: Tensor, out: Tensor, *inputs: Tensor) -> Any:
        raise RuntimeError(
            "trying to backward through a graph a second time: its nodes were freed by the first "
            "backward(); pass retain_graph=True to the first call if you need to go back twice"
        )


RELEASED = Released()
