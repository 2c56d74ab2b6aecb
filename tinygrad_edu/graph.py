"""Recording the graph: the ``Op`` protocol, grad mode, ``no_grad`` and the engine's observers.

Each differentiable operation is a subclass of :class:`Op` with up to three methods:

``forward(self, *arrays) -> ndarray``
    plain NumPy on the input arrays; may keep on ``self`` whatever the derivatives need.
``vjp(self, g, out, *inputs) -> Tensor | tuple[Tensor | None, ...]``
    reverse mode, the vector-Jacobian product: given ``g = dL/d(out)`` return ``dL/d(input_i)``
    for each input (``None`` where an input needs no gradient), written with **Tensor**
    operations so that the backward pass can itself be differentiated. A returned gradient may
    still carry broadcast axes: the engine sums it back to the input's shape in one place
    (:meth:`Tensor.sum_to`), so no VJP has to think about broadcasting.
``jvp(self, tangents, out, *inputs) -> Tensor | None``
    forward mode, the Jacobian-vector product: given one tangent per input (``None`` for a
    zero tangent) return the output's tangent ``J @ tangents`` (``None`` if it is zero), also
    in Tensor operations. It may have a broadcast-smaller shape; forward mode broadcasts it to
    the output's shape in one place, the dual of ``sum_to``.

:meth:`Op.apply` runs ``forward`` and, when some input requires grad and grad mode is on, stores
the op instance as the output's ``_node`` together with its inputs. The op instance is the
"context" of minitorch's Function/Context split: the node of the graph and the memory of its
forward pass.

**Observers** watch the engine without the engine knowing them: anomaly mode, tracing, the VJP
contract checks and forward mode are each an :class:`Observer` registered with :func:`observe`.
There are exactly two hook points: :meth:`Op.apply` tells observers about every op it ran, and
the backward sweep tells them about every VJP it applied.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from .axes import ShapeError

if TYPE_CHECKING:
    from .tensor import Tensor

F = TypeVar("F", bound=Callable[..., Any])

_sequence = itertools.count(1)


class _EngineState(threading.local):
    """The engine's switches, one set per thread (as in PyTorch): a ``no_grad()`` block or a
    ``trace()`` in one thread never changes what another thread records or reports.

    ``grad_enabled`` -- whether :meth:`Op.apply` records; ``observers`` -- the registered
    observers, outermost first; ``forward_observers`` -- those of them that override
    ``op_applied``, kept as a tuple so ``apply`` tests one attribute; ``narrowed`` -- while a
    ``grad()`` sweep runs in this thread, the ``needs_input_grad`` masks it narrowed to the paths
    to its targets (by node id: a weak reference to the node and its mask).
    """

    def __init__(self) -> None:
        self.grad_enabled = True
        self.observers: list[Observer] = []
        self.forward_observers: tuple[Observer, ...] = ()
        self.narrowed: dict[int, tuple[weakref.ref, tuple[bool, ...]]] = {}


_state = _EngineState()


class VJPError(TypeError):
    """An op's VJP broke the contract (wrong count, type or shape of gradients); names the op."""


def is_grad_enabled() -> bool:
    """Whether new operations are currently recorded for backward (in this thread)."""
    return _state.grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for its block, in the calling thread.

    The mode to restore is kept per thread too, so one instance may be entered by several
    threads at once (a decorated function called from a thread pool).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous = threading.local()

    def __enter__(self) -> None:
        stack = self._previous.__dict__.setdefault("stack", [])
        stack.append(_state.grad_enabled)
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc_info: object) -> None:
        _state.grad_enabled = self._previous.stack.pop()

    def __call__(self, fn: F) -> F:
        if inspect.isgeneratorfunction(fn):
            return self._wrap_generator(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _wrap_generator(self, fn: F) -> F:
        """A decorated generator function runs its body in the mode each time it is resumed
        (as PyTorch's decorators do); the caller's mode holds between its ``yield`` statements."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            generator = fn(*args, **kwargs)
            resume: Callable[[Any], Any] = generator.send
            argument: Any = None
            while True:
                try:
                    with _GradMode(self.enabled):
                        value = resume(argument)
                except StopIteration as stop:
                    return stop.value
                try:
                    argument = yield value
                    resume = generator.send
                except GeneratorExit:
                    generator.close()
                    raise
                except BaseException as err:  # thrown in by the caller: the body sees it
                    resume, argument = generator.throw, err

        return wrapper  # type: ignore[return-value]


def no_grad() -> _GradMode:
    """Nothing computed inside ``with no_grad():`` (or a function decorated with it) is recorded.

    Use it for inference and for parameter updates, which must not become part of the graph.
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Switch recording back on inside a ``no_grad`` block."""
    return _GradMode(True)


# ---------------------------------------------------------------------------------- observers
class Observer:
    """Something that watches the engine work. Override only the events you need.

    ``op_applied`` runs after every op (recorded or not); ``backward_started`` and
    ``backward_finished`` bracket every sweep; ``vjp_applied`` runs after each VJP, before its
    gradients are accumulated, so an observer that raises stops the sweep at the culprit.
    """

    def op_applied(self, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
        """``op`` turned ``inputs`` into ``out`` (``out._node`` is ``op`` only when recorded)."""

    def backward_started(self, outputs: Sequence[Tensor], seeds: Sequence[Tensor]) -> None:
        """A sweep starts from ``outputs`` with upstream gradients ``seeds``."""

    def vjp_applied(
        self, node: Op, out: Tensor, g: Tensor, input_grads: tuple[Tensor | None, ...]
    ) -> None:
        """``node.vjp`` turned the gradient ``g`` of ``out`` into ``input_grads``."""

    def backward_finished(self) -> None:
        """The sweep ended (normally or by an exception)."""

    def keeps(self, tensor: Tensor) -> bool:
        """Whether this observer keeps something for ``tensor`` that a computation on its plain
        array would lose (forward mode: a tangent)."""
        return False


def _overrides(observer: Observer, method: str) -> bool:
    return getattr(type(observer), method) is not getattr(Observer, method)


def observers() -> tuple[Observer, ...]:
    """The observers registered in this thread, outermost first."""
    return tuple(_state.observers)


def kept_by_observer(tensor: Tensor) -> bool:
    """Whether an observer of this thread keeps something for ``tensor`` (see
    :meth:`Observer.keeps`)."""
    return any(observer.keeps(tensor) for observer in _state.observers)


@contextlib.contextmanager
def observe(observer: Observer) -> Iterator[Observer]:
    """Register ``observer`` for the duration of the block; it watches this thread only."""
    state = _state
    state.observers.append(observer)
    state.forward_observers = tuple(o for o in state.observers if _overrides(o, "op_applied"))
    try:
        yield observer
    finally:
        state.observers.remove(observer)
        state.forward_observers = tuple(o for o in state.observers if _overrides(o, "op_applied"))


# ---------------------------------------------------------------------------------- the Op
def _is_shape_problem(err: ValueError) -> bool:
    """NumPy's own shape complaints (broadcasting, matmul's core dimensions, reshape)."""
    text = str(err)
    return isinstance(err, ShapeError) or any(
        word in text for word in ("broadcast", "shape", "dimension", "mismatch")
    )


class Op:
    """Base class of every differentiable operation (see the module docstring).

    Subclasses take their non-Tensor parameters (axes, strides, ...) as constructor keywords;
    :meth:`apply` passes its keyword arguments to the constructor.
    """

    name: ClassVar[str] = "op"
    #: True when the VJP is built from Tensor ops alone (no NumPy on concrete values, no
    #: value-derived constants): the backward ops it emits can then be recorded and replayed on
    #: new values by :func:`tinygrad_edu.compile`
    replayable_vjp: ClassVar[bool] = False
    inputs: tuple[Tensor, ...] = ()
    #: the inputs' ``_version`` counters when the op was recorded; backward refuses to apply the
    #: VJP if any input was changed in place since (its VJP would read the new values)
    saved_versions: tuple[int, ...] = ()
    #: the output's ``_version`` when recorded: 0, unless it is a view sharing an input's counter
    saved_output_version: int = 0
    #: creation counter: a node is always created after its inputs' nodes, so sorting nodes by
    #: decreasing sequence number is a topological order for the backward sweep
    sequence: int = 0
    #: where user code created this node (file:line), recorded only in anomaly mode
    created_at: str | None = None

    #: which inputs required grad when the op was recorded (read ``needs_input_grad``)
    _needs_input_grad: tuple[bool, ...] = ()

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        """Which inputs want a gradient: those that required grad when the op was recorded --
        narrowed, while a ``grad()`` sweep runs in this thread, to the inputs on a path to its
        targets (another thread's sweep over the same graph never sees that narrowing)."""
        narrowed = _state.narrowed
        if narrowed:
            entry = narrowed.get(id(self))
            if entry is not None and entry[0]() is self:
                return entry[1]
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, mask: tuple[bool, ...]) -> None:
        self._needs_input_grad = mask

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, g: Tensor, out: Tensor, *inputs: Tensor) -> Any:
        raise NotImplementedError(f"op '{self.name}' has no VJP (reverse mode)")

    def jvp(self, tangents: tuple[Tensor | None, ...], out: Tensor, *inputs: Tensor) -> Any:
        raise NotImplementedError(f"op '{self.name}' has no JVP (forward mode)")

    @classmethod
    def apply(cls, *inputs: Tensor, **attrs: Any) -> Tensor:
        """Run the op on Tensors and record it when gradients are wanted."""
        op = cls(**attrs)
        try:
            data = op.forward(*[t.data for t in inputs])
        except ValueError as err:
            if not _is_shape_problem(err):
                raise
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ShapeError(f"{cls.name}: input shapes {shapes} do not fit: {err}") from err
        if data.__class__ is not np.ndarray:
            data = np.asarray(data)
        node = None
        state = _state
        if state.grad_enabled:
            needs_input_grad = tuple([t.requires_grad for t in inputs])
            if any(needs_input_grad):
                op.inputs = inputs
                op._needs_input_grad = needs_input_grad
                op.saved_versions = tuple([t._version_counter[0] for t in inputs])
                op.sequence = next(_sequence)
                node = op
        # every op has a Tensor input, whose class makes the result: graph.py needs no import
        out = inputs[0].__class__._wrap(data, node)
        if data.base is not None:
            _share_version_with_viewed_input(op, inputs, out)
        else:
            for t in inputs:
                if t.data is data:  # the input's very array (a flip over no axes)
                    _share_version_with_viewed_input(op, inputs, out)
                    break
        for observer in state.forward_observers:
            observer.op_applied(op, inputs, out)
        return out

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _share_version_with_viewed_input(op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
    """A result that is a NumPy view of an input's memory (reshape, transpose, basic indexing)
    -- or that input's very array (a flip over no axes) -- shares that input's version counter,
    as PyTorch's views do: a later in-place change through either one is then seen by every op
    that saved the other."""
    data = out.data
    base = data if data.base is None else data.base
    for t in inputs:
        if t.data is base or t.data.base is base:
            out._version_counter = t._version_counter
            op.saved_output_version = t._version_counter[0]
            return


class Released(Op):
    """Stands in for a node whose graph was freed by a previous ``backward()``."""

    name = "released"

    def vjp(self, g: Tensor, out: Tensor, *inputs: Tensor) -> Any:
        raise RuntimeError(
            "trying to backward through a graph a second time: its nodes were freed by the first "
            "backward(); pass retain_graph=True to the first call if you need to go back twice"
        )


RELEASED = Released()
