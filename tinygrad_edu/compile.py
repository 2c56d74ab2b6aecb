"""Compiling a training step: record its NumPy kernels once, replay them without Tensors.

A lesson on what frameworks' JITs (``torch.compile``, ``jax.jit``, CUDA graphs) do, in miniature.

Eager execution pays for flexibility on every step: each op builds a Tensor, a graph node, asks
the grad mode and the observers, and the backward sweep pushes nodes through a heap and checks
every VJP. On a 10 x 5 network that bookkeeping costs more than the arithmetic. Yet a training step
runs the *same* kernels on arrays of the *same* shapes every time. So:

1. **Record.** A call runs the step eagerly under an :class:`~tinygrad_edu.graph.Observer` that
   writes down every op the engine applies -- the forward ops and, because every VJP is written
   in Tensor ops, the backward ops too -- with the tensors each one read and wrote. That list is
   a *tape*: a straight-line program of NumPy kernels (each op's ``forward``) on concrete
   buffers. While recording, a profiler (``sys.setprofile``) also watches the Python around the
   ops: which modules run, and whether the step reads values out of tensors (comparisons,
   ``argmax``, ``item()``, NumPy methods on their arrays), draws random numbers or changes a
   tensor in place; and the arrays of the arguments, the state and every op result are
   :class:`_Watched` meanwhile, so NumPy on them outside a kernel (``x.data[0] > 0``) shows too.
   The first two calls with a new signature are recorded; comparing the two
   tells apart the step's *state* (the same parameter Tensors both times) and its *constants*
   (new but equal both times: Python numbers, the backward's seed).
2. **Compile.** The tape becomes a list of records -- a kernel (a recorded op's ``forward``),
   the registers it reads, the register it writes -- never source text: no name or other string
   of the step ever reaches ``exec``. On the way, ops that compute from constants alone run once
   now (constant folding), ops nothing needs are dropped (dead-code elimination), an op repeated
   on the same inputs runs once (common-subexpression elimination), and each register is freed
   after its last use. :attr:`CompiledStep.code` lists the records for reading.
3. **Replay.** Later calls with arguments of the same shapes and dtypes first check the guards
   (:func:`_guards` below: every piece of state still has its recorded shape, dtype,
   ``requires_grad`` and no hooks; every module that ran is still in the recorded
   ``train``/``eval`` mode with the same parameters, buffers and hooks), then run the records:
   the same NumPy kernels in the same order on the same kinds of arrays, so the results are
   *bit for bit* those of eager execution. A failing guard records again; new shapes or dtypes
   record again too (one program is cached per signature, like a JIT's recompilation).

What a tape cannot replay runs eagerly -- the call warns once (:class:`CompileWarning`) and
every later call with that signature runs the step as it is, correctly:

* **Values decided in Python.** A mask or an index computed from values (``tg.where(y > 0, ..)``,
  ``masked_fill``, ``kl_div``'s ``target > 0``, ``x[x > 0]``), ``argmax``, ``item()``, NumPy on a
  tensor's array outside an op, an array with differing elements built anew in the step: the
  tape would freeze the recorded decision.
* **Derivative rules that look at values.** ``relu``'s VJP multiplies by the mask ``x > 0``,
  computed with NumPy inside the rule; ``max`` and ``max_pool2d`` pick among ties. Only nodes
  whose rule says ``replayable_vjp`` (rules built from ops alone) are replayed.
* **Side effects outside ops.** Random numbers (``Dropout`` in training), in-place changes of
  tensors (``BatchNorm``'s running statistics in training), hooks on tensors. Every call made
  while an observer is registered (``trace()``, anomaly mode) or under ``no_grad`` runs eagerly.

What no recorder can see is Python state the step keeps for itself -- a closure variable or a
global rebound between calls, a list element or an attribute of a plain object changed in
place, a tensor's bytes read through the buffer protocol: docs/compile.md lists it.
Python arguments that are not Tensors or arrays are *static*: their value is part of the
signature, so a new value records again; one that counts by identity (a plain settings object,
whose attributes no hash sees) runs eagerly. Keyword arguments count by name.
"""

from __future__ import annotations

import copy
import enum
import functools
import inspect
import os
import pickle
import random
import sys
import threading
import types
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import getitem, is_, itemgetter
from typing import Any

import numpy as np

from . import graph
from .graph import Observer, Op
from .nn.module import Module
from .optim import Optimizer
from .tensor import Tensor

#: how many signatures (argument shapes and dtypes) keep a recorded program
CACHE_SIZE = 8


class CompileWarning(UserWarning):
    """A step that cannot be replayed from a tape; it runs eagerly (and correctly) instead."""


class _NotReplayable(Exception):
    """Raised while building a program: the reason is the warning's text."""


class _StaleGuard(Exception):
    """Raised by a replay whose guards fail: the state or a module changed since recording."""


def compile(loss_fn: Callable[..., Tensor], optimizer: Optimizer | None = None) -> CompiledStep:
    """Compile ``loss_fn`` and its backward pass (and an optimizer step) into a replayable tape.

    Calling the result with ``*args, **kwargs`` has the effect of the eager step

    .. code-block:: python

        optimizer.zero_grad()  # only with an optimizer
        loss = loss_fn(*args, **kwargs)
        loss.backward()  # gradients accumulate into .grad, as always
        optimizer.step()  # only with an optimizer
        return loss

    bit for bit. The first two calls with a new signature (shapes, dtypes and ``requires_grad`` of
    the Tensor and array arguments, values of the others) run exactly that and record it; later
    calls replay the recorded NumPy kernels after checking the guards. A step the tape cannot
    replay (values decided in Python, random numbers, in-place changes, hooks: see the module
    docstring) warns once with :class:`CompileWarning` and runs eagerly. The optimizer's update is
    plain NumPy already and runs as it is.

    Parameters
    ----------
    loss_fn
        Maps the arguments to a single-element Tensor (the loss).
    optimizer
        Optional: cleared before and stepped after every backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> import tinygrad_edu as tg
    >>> from tinygrad_edu.compile import compile
    >>> w = tg.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    >>> def loss_fn(x):
    ...     e = (x * w).sum() - 1
    ...     return e * e
    >>> step = compile(loss_fn, tg.optim.SGD([w], lr=0.1))
    >>> [round(step(tg.Tensor(np.array([0.5, 0.5]))).item(), 4) for _ in range(3)]
    [2.25, 1.8225, 1.4762]
    >>> step.recordings, step.replays
    (2, 1)
    """
    return CompiledStep(loss_fn, optimizer)


class CompiledStep:
    """A loss function with its backward pass, recorded once per signature and replayed."""

    def __init__(self, loss_fn: Callable[..., Tensor], optimizer: Optimizer | None = None) -> None:
        if not callable(loss_fn):
            raise TypeError(f"compile: expected a function, got {type(loss_fn).__name__}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"compile: optimizer must be a tinygrad_edu.optim.Optimizer, got "
                f"{type(optimizer).__name__}"
            )
        self.loss_fn, self.optimizer = loss_fn, optimizer
        #: per signature: the first recording, then the program (or an ``_Eager`` entry)
        self._programs: dict[Hashable, Any] = {}
        self._latest: _Program | None = None
        self._cache_lock = threading.Lock()
        #: how many calls recorded a tape, how many replayed one, and how many ran eagerly
        #: because the tape could not replay them (a warning said why)
        self.recordings = self.replays = self.eager_calls = 0

    @property
    def code(self) -> str:
        """A listing of the most recently built program's records (empty before any).

        Text for reading only: the program is a list of kernel records, never compiled source.
        """
        return self._latest.listing if self._latest is not None else ""

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        names = tuple(kwargs)  # keyword values follow the positional ones; names in the key
        if names:
            args = (*args, *kwargs.values())
        if not graph.is_grad_enabled() or graph.observers():
            return self._eager(args, names)  # nothing to differentiate, or someone is watching
        key = _signature(args), names
        entry = self._programs.get(key)
        if entry.__class__ is _Program:
            if self.optimizer is not None:
                self.optimizer.zero_grad()  # first, as eager: a kernel may raise
            try:
                loss, grads = entry.replay(args)
            except _StaleGuard:
                entry = None  # the state, a module or a hook changed: record afresh
            else:
                self.replays += 1
                return self._deliver(loss, grads, entry, args)
        if entry.__class__ is _Eager and entry.holds():
            self.eager_calls += 1
            return self._eager(args, names)
        return self._record(key, args, names, entry if entry.__class__ is _Recorder else None)

    # ---------------------------------------------------------------------- the three paths
    def _eager(
        self, args: Sequence[Any], names: tuple[str, ...], recorder: _Recorder | None = None
    ) -> Tensor:
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        if recorder is not None:
            watched = [_watched_argument(a) for a in args]
            with recorder.watching(args):
                loss = self._call(watched, names)
        else:
            loss = self._call(args, names)
        if not isinstance(loss, Tensor) or loss.size != 1:
            what = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
            raise TypeError(
                f"compile: the function must return a single-element Tensor, got {what}"
            )
        if recorder is not None:
            recorder.forward_finished()
        loss.backward()
        if self.optimizer is not None:
            self.optimizer.step()
        return loss

    def _call(self, values: Sequence[Any], names: tuple[str, ...]) -> Any:
        """``loss_fn`` on the call's values, the last ``len(names)`` of them by keyword."""
        if not names:
            return self.loss_fn(*values)
        split = len(values) - len(names)
        return self.loss_fn(*values[:split], **dict(zip(names, values[split:])))

    def _record(
        self,
        key: Hashable,
        args: Sequence[Any],
        names: tuple[str, ...],
        first: _Recorder | None,
    ) -> Tensor:
        """Run the step eagerly and record it; the second recording builds the program."""
        if first is not None and not first.modules_hold():
            first = None  # a module changed since the first recording: this one is the first
        recorder = _Recorder(args, first)
        try:
            with graph.observe(recorder):
                loss = self._eager(args, names, recorder)
        finally:
            recorder.remove_hooks()
        recorder.modules_now()
        self.recordings += 1
        entry: _Program | _Recorder | object = recorder
        try:
            if recorder.problem is not None:
                raise _NotReplayable(recorder.problem)
            if first is not None:
                entry = self._latest = _Program(first, recorder, args, loss)
        except _NotReplayable as reason:
            warnings.warn(
                f"tg.compile: {reason}; calls with this signature run eagerly",
                CompileWarning,
                stacklevel=3,
            )
            entry = _Eager(recorder)
        with self._cache_lock:  # another thread may be recording another signature
            self._programs.pop(key, None)
            if len(self._programs) >= CACHE_SIZE:
                del self._programs[next(iter(self._programs))]  # the oldest signature
            self._programs[key] = entry
        return loss

    def _deliver(self, loss: np.ndarray, grads: tuple, program: _Program, args) -> Tensor:
        """The effects of ``backward()`` and ``step()``: what the eager sweep does with leaves."""
        for (position, leaf, as_it_is), g in zip(program.grad_targets, grads):
            if position is not None:
                leaf = args[position]
            data = g if as_it_is else g.astype(leaf.dtype, copy=True)
            if leaf.grad is not None:
                data += leaf.grad.data
            leaf.grad = Tensor._wrap(data)
        if self.optimizer is not None:
            self.optimizer.step()
        # as eager leaves it: requiring grad, its graph freed by the backward pass
        return Tensor._wrap(loss if program.loss_is_fresh else loss.copy(), graph.RELEASED)


class _Eager:
    """The entry of a signature that cannot be replayed -- as long as the modules that ran are
    as they were (a ``Dropout`` switched to ``eval()`` records again, and may replay)."""

    def __init__(self, recorder: _Recorder) -> None:
        self.holds = recorder.modules_hold


def _array(arg: Any) -> np.ndarray:
    return arg.data if isinstance(arg, Tensor) else arg


def _signature(args: Sequence[Any]) -> Hashable:
    """What a program is specialised to: array shapes/dtypes, static values, argument aliasing."""
    parts: list[Hashable] = []
    for position, arg in enumerate(args):
        if isinstance(arg, Tensor):  # a result of ops outside the step is no leaf: eager
            parts.append((arg.shape, arg.dtype, arg.requires_grad, arg._node is None))
        elif isinstance(arg, np.ndarray):
            parts.append((arg.shape, arg.dtype, None))
        else:
            static = (
                _hashable(arg) if isinstance(arg, (slice, tuple)) or _is_hashable(arg) else None
            )
            if static is None:
                raise TypeError(
                    f"compile: argument {position} is a {type(arg).__name__}, which is neither a "
                    "Tensor nor an array and cannot be hashed as a static value"
                )
            parts.append(("static", static))
    ids = [id(a) for a in args]
    return tuple(parts), tuple(ids.index(i) for i in ids)


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


#: objects that count by identity and hold nothing a step reads as a value that could change
#: unseen (a module's attributes are guarded; a function's closure is like the step's own)
_INERT = (
    type(None),
    type(...),
    enum.Enum,
    type,
    Module,
    types.FunctionType,
    types.BuiltinFunctionType,
    np.ufunc,
    types.ModuleType,
)


def _opaque(value: Any) -> bool:
    """Whether a static argument is (or holds) an object compared by identity whose attributes
    may change between calls (``cfg.scale = 5``): its hash cannot tell, nor can a guard."""
    if isinstance(value, types.MethodType):  # equal by its object's identity
        return _opaque(value.__self__)
    if isinstance(value, (tuple, list, frozenset)):
        return any(map(_opaque, value))
    if isinstance(value, dict):
        return any(map(_opaque, value.values()))
    return type(value).__eq__ is object.__eq__ and not isinstance(value, _INERT)


def _hashable(value: Any) -> Hashable | None:
    """``value`` as a hashable key that equals another's exactly when the values are the same
    (type included: ``1``, ``1.0`` and ``True`` differ); ``None`` if it cannot be told.

    Slices (unhashable before Python 3.12) count by ``(start, stop, step)``, arrays by dtype,
    shape and bytes, tuples, lists and dicts by their items.
    """
    if value is None or isinstance(value, (str, bytes, type, np.dtype)):
        return type(value), value
    if isinstance(value, (bool, int, float, complex, np.generic)):
        return type(value), value, np.asarray(value).tobytes()  # -0.0 is not 0.0, nan is nan
    if isinstance(value, slice):
        parts = tuple(_hashable(v) for v in (value.start, value.stop, value.step))
        return None if None in parts else ("slice", parts)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return None
        return "array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes()
    if isinstance(value, (tuple, list, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, frozenset) else value
        parts = tuple(_hashable(v) for v in items)
        return None if None in parts else (type(value), parts)
    if isinstance(value, dict):
        parts = tuple((_hashable(k), _hashable(v)) for k, v in value.items())
        return None if any(None in p for p in parts) else (dict, parts)
    if not _is_hashable(value):
        return None
    return type(value), "object", value  # hashable objects count by their own equality


# ---------------------------------------------------------------------------------- recording
_Event = tuple[Op, tuple[Tensor, ...], Tensor]  # an op, the tensors it read, the one it wrote

#: Tensor methods that read values into Python or into a new constant tensor outside any op
#: (comparisons, masks, argmax, item ...): a tape would freeze what they returned.
_VALUE_READERS = (
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__eq__",
    "__ne__",
    "isnan",
    "isinf",
    "isfinite",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "__and__",
    "__or__",
    "__xor__",
    "__invert__",
    "argmax",
    "argmin",
    "any",
    "all",
    "item",
    "tolist",
    "numpy",
    "__array__",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
)
_READER_CODES = {
    getattr(getattr(Tensor, name), "__code__", None): name
    for name in _VALUE_READERS
    if hasattr(Tensor, name)
}
_READER_CODES.pop(None, None)
_APPLY_CODE = Op.apply.__func__.__code__
_BUMP_CODE = Tensor._bump_version.__code__
#: NumPy functions that turn a watched array into a plain one (whose values no one then sees)
_CONVERTERS = frozenset({np.asarray, np.array, np.ascontiguousarray, np.asfortranarray})
#: where conversions are the library's or NumPy's own business (``np.full``, ``Tensor(x)``)
_TRUSTED = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (graph, np))
_RANDOM_SOURCES = (
    np.random.Generator,
    np.random.RandomState,
    np.random.BitGenerator,
    random.Random,
)


class _Recorder(Observer):
    """Writes down every op applied (forward and backward) and each leaf's final gradient, and
    watches the Python around the ops for what a tape cannot replay (the first ``problem``)."""

    def __init__(self, args: Sequence[Any], first: _Recorder | None = None) -> None:
        self.args = tuple(args)  # the call's values, by position
        self.events: list[_Event] = []
        self.produced: set[int] = set()
        self.forward_leaves: set[int] = set()  # the forward's inputs no recorded op made
        self.problem: str | None = None
        self.leaf_grads: dict[int, tuple[Tensor, Tensor]] = {}
        #: the modules whose ``__call__`` or ``forward`` ran, by id, with a copy of their buffers
        self.modules: dict[int, tuple[Module, list[tuple[Tensor, np.ndarray]]]] = {}
        #: ids of the arrays that hold data (arguments, state, op results): NumPy methods called
        #: on them outside an op read values the tape would freeze
        self.data_arrays: set[int] = set()
        if first is not None:
            self.data_arrays.update(id(t.data) for _, inputs, _ in first.events for t in inputs)
        self._removers: list[Callable[[], None]] = []
        self._hooked: set[int] = set()
        self._depth = 0  # how many Op.apply calls are running (kernels may read values)
        self._in_backward = False
        self.first = first
        self._watching = False
        #: id -> (tensor, its plain array, the watched view it holds meanwhile)
        self._swapped: dict[int, tuple[Tensor, np.ndarray, np.ndarray]] = {}
        #: the random number generators the step can reach, with their states before it ran
        self._generators: dict[int, tuple[Any, bytes]] = {}
        self.states: list[tuple[Module, tuple]] = []  # the modules' states after recording
        self._before: dict[int, tuple] = {}  # each module's state when the step reached it
        self._flags: list[tuple[Tensor, bool]] = []  # requires_grad of the watched tensors

    def modules_now(self) -> None:
        """Remember the state of the modules the step reached, as the recording left them."""
        self.states = [(m, _module_state(m)) for m, _ in self.modules.values()]

    def modules_hold(self) -> bool:
        """Whether those modules are still as the recording left them."""
        return all(_same_state(_module_state(m), state) for m, state in self.states)

    def note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    # ------------------------------------------------------------------ the profiler
    def watching(self, args: Sequence[Any]) -> _Watching:
        """Profile the forward pass (the backward is the engine's: its VJPs are checked by
        :meth:`vjp_applied`, its hooks by :meth:`forward_finished`), with the arrays of the
        Tensor arguments, of the state the first recording read and of every op result
        :class:`_Watched` meanwhile."""
        self.data_arrays.update(id(_array(a)) for a in args if isinstance(a, (Tensor, np.ndarray)))
        for source in (np.random.mtrand._rand, random._inst):  # np.random.rand(), random.random()
            self._saw_generator(source)
        for position, arg in enumerate(args):
            if _opaque(arg):
                self.note(
                    f"argument {position} holds a {type(arg).__name__} object, which counts by "
                    "identity: a tape cannot guard what its attributes hold"
                )
        watched = [a for a in args if isinstance(a, Tensor)]
        if self.first is not None:
            watched += [t for _, inputs, _ in self.first.events for t in inputs]
        self._flags = [(t, t.requires_grad) for t in watched]
        return _Watching(self, watched)

    def watch(self, t: Tensor) -> None:
        """Let ``t`` hold a :class:`_Watched` view of its array until the forward ends."""
        data = t.data
        if data.__class__ is np.ndarray and id(t) not in self._swapped:
            t.data = data.view(_Watched)
            self._swapped[id(t)] = (t, data, t.data)

    def escaped(self, t: Tensor) -> None:
        """A Tensor a function of the step returned around a watched array (``detach()``):
        it gets the plain array back when the forward ends, as if it had never been watched."""
        if id(t) not in self._swapped:
            plain = {id(w): data for _, data, w in self._swapped.values()}.get(id(t.data))
            self._swapped[id(t)] = (t, t.data.view(np.ndarray) if plain is None else plain, t.data)

    def unwatch(self) -> None:
        """Give every watched Tensor its own array back (unless the step rebound it)."""
        for t, data, watched in self._swapped.values():
            if t.data is watched:
                t.data = data
        self._swapped.clear()

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        """``sys.setprofile``'s callback while the forward pass runs (only while recording)."""
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            if isinstance(owner, _RANDOM_SOURCES):  # also in an op's kernel: never replayable
                self.note("the step draws random numbers (Dropout in training?)")
            elif self._depth == 0:
                if isinstance(owner, np.ndarray) and (
                    owner.__class__ is _Watched or id(owner) in self.data_arrays
                ):
                    self.note(
                        f"the step calls NumPy's {arg.__name__}() on a tensor's array outside "
                        "ops, which reads values a tape would freeze"
                    )
                elif arg in _CONVERTERS and not frame.f_code.co_filename.startswith(_TRUSTED):
                    self.note(
                        f"the step calls np.{arg.__name__}() outside ops, whose plain array "
                        "of a tensor's data reads values unseen (build fixed arrays outside "
                        "the step)"
                    )
            return
        code = frame.f_code
        if code is _APPLY_CODE:
            if event == "call":
                self._depth += 1
            elif event == "return":
                self._depth -= 1
        elif event == "return":
            if not self._depth and issubclass(type(arg), Tensor) and type(arg.data) is _Watched:
                self.escaped(arg)
            return
        elif event != "call" or self._depth:
            return
        elif code in _READER_CODES:
            self.note(
                f"the step reads values outside ops (Tensor.{_READER_CODES[code]}: a comparison, "
                "mask, argmax or Python number), which a tape would freeze"
            )
        elif code is _BUMP_CODE:
            self.note("the step changes a tensor in place outside ops (running statistics?)")
            return
        try:
            self._saw_modules_near(frame)
        except Exception as err:  # an object whose isinstance() or attributes raise
            self.note(f"the recording could not inspect the step's variables ({err!r})")

    def _saw_modules_near(self, frame: Any) -> None:
        """Every module a function the step calls can reach by name -- its arguments and closure
        variables (``self``, a ``model`` captured by a lambda) and the globals it names -- with
        their descendants: their attributes (``model.scale``) are read as Python values."""
        names = frame.f_globals
        near = [*frame.f_locals.values(), *(names.get(n) for n in frame.f_code.co_names)]
        found = [v for v in near if isinstance(v, Module)]
        for source in near:
            if isinstance(source, _RANDOM_SOURCES):
                self._saw_generator(source)
            elif type(source) is np.ndarray:  # from the enclosing scope: its methods read it
                self.data_arrays.add(id(source))
        while found:
            module = found.pop()
            if id(module) not in self.modules:
                self._saw_module(module)
                found += _member(module, "_modules").values()

    def _saw_generator(self, source: Any) -> None:
        if id(source) not in self._generators:
            self._generators[id(source)] = (source, _generator_state(source))

    def _saw_module(self, module: Module) -> None:
        for source in module.__dict__.values():
            if isinstance(source, _RANDOM_SOURCES):  # Dropout's own generator
                self._saw_generator(source)
        buffers = _member(module, "_buffers").values()
        self.modules[id(module)] = (module, [(t, t.data.copy()) for t in buffers if t is not None])
        self._before[id(module)] = _module_state(module)
        for t in (*_member(module, "_parameters").values(), *buffers):
            if t is not None:
                self.data_arrays.add(id(t.data))

    # ------------------------------------------------------------------ the engine's events
    def op_applied(self, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
        if self.problem is None:
            self._check_op(op, inputs)
        if not self._in_backward:
            self.forward_leaves.update(id(t) for t in inputs if id(t) not in self.produced)
        self.events.append((op, tuple(inputs), out))
        self.produced.add(id(out))
        self.data_arrays.add(id(out.data))
        if self._watching:
            self.watch(out)
        self.data_arrays.update(id(t.data) for t in inputs)

    def _check_op(self, op: Op, inputs: Sequence[Tensor]) -> None:
        # forward ops only: the backward's come from the replayable rules (a value
        # reading rule is named by vjp_applied)
        if any(isinstance(v, _RANDOM_SOURCES) for _, v in _parameters(op)):
            self.note(f"{op.name!r} draws random numbers in its kernel")
        if not self._in_backward and _has_array(_given(op)):
            self.note(
                f"{op.name!r} takes an array parameter (a mask or an index array, such as "
                "where's condition or x[x > 0]), which may be computed from values; a tape "
                "would freeze it"
            )
        for t in inputs:
            if id(t) not in self.produced and t._node is not None:
                self.note(
                    f"the step uses a tensor of shape {t.shape} computed outside it (by "
                    f"{t._node.name!r}), whose graph the tape does not hold"
                )

    def forward_finished(self) -> None:
        """Before backward: check the modules' buffers, and watch the final gradient of every
        leaf that requires grad."""
        self._in_backward = True
        if any(t.requires_grad is not flag for t, flag in self._flags):
            self.note("the step changes requires_grad of a tensor it reads (requires_grad_())")
        for source, state in self._generators.values():
            if _generator_state(source) != state:
                self.note("the step draws random numbers (Dropout in training?)")
        for module, buffers in self.modules.values():
            if not _same_state(_module_state(module), self._before[id(module)]):
                self.note(
                    f"{type(module).__name__} rebinds its attributes while the step runs "
                    "(self.cache = ..., a call counter), which a tape does not replay"
                )
            for t, before in buffers:
                if not _equal_arrays(t.data, before):
                    self.note(
                        f"{type(module).__name__} changes its buffers in place (running "
                        "statistics in training), which a tape does not replay"
                    )
        for _, inputs, _ in self.events:
            for t in inputs:
                if t.requires_grad and t._node is None and id(t) not in self._hooked:
                    self._hooked.add(id(t))
                    if t._hooks:
                        self.note(f"a tensor of shape {t.shape} has hooks")
                    self._removers.append(t.register_hook(self._catcher(t)))

    def _catcher(self, leaf: Tensor) -> Callable[[Tensor], None]:
        def catch(g: Tensor) -> None:
            self.leaf_grads[id(leaf)] = (leaf, g)

        return catch

    def vjp_applied(self, node: Op, out: Tensor, g: Tensor, input_grads: tuple) -> None:
        if not type(node).replayable_vjp:
            self.note(
                f"the derivative rule of {node.name!r} reads concrete values outside ops, so a "
                "tape of its backward would freeze them"
            )
        if out._hooks:
            self.note(f"a tensor of shape {out.shape} made by {node.name!r} has hooks")

    def remove_hooks(self) -> None:
        for remove in self._removers:
            remove()
        for _, inputs, _ in self.events:
            for t in inputs:
                if id(t) in self._hooked and t._hooks == []:
                    t._hooks = None  # as it was: no hook list at all


def _generator_state(source: Any) -> bytes:
    """A random number generator's state, to tell whether the step drew from it."""
    if isinstance(source, np.random.Generator):
        source = source.bit_generator
    if isinstance(source, random.Random):
        return pickle.dumps(source.getstate())
    if isinstance(source, np.random.RandomState):
        return pickle.dumps(source.get_state(legacy=False))
    return pickle.dumps(source.state)


class _Watching:
    """For one forward pass: ``sys.setprofile`` with the recorder's callback, and the step's
    data arrays :class:`_Watched`; then the previous profiler and the arrays themselves."""

    def __init__(self, recorder: _Recorder, tensors: Sequence[Tensor]) -> None:
        self.recorder, self.tensors = recorder, tensors

    def __enter__(self) -> None:
        self.previous = sys.getprofile()
        if self.previous is not None:
            self.recorder.note("a profiler is running, so the recording cannot watch the step")
            return
        _active.recorder = self.recorder
        try:
            for t in self.tensors:
                self.recorder.watch(t)
        except BaseException:  # KeyboardInterrupt: no tensor stays watched
            self.__exit__()
            raise
        self.recorder._watching = True
        sys.setprofile(self.recorder.profile)

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is None:
            sys.setprofile(None)
        self.recorder._watching = False
        self.recorder.unwatch()
        self.recorder._depth = 0
        _active.recorder = None


_active = threading.local()  # the recorder watching this thread's forward pass, if any


def _read_outside_ops(what: str) -> None:
    recorder = getattr(_active, "recorder", None)
    if recorder is not None and recorder._depth == 0:
        recorder.note(
            f"the step computes with a tensor's array outside ops ({what}), which reads values "
            "a tape would freeze"
        )


def _watched_argument(arg: Any) -> Any:
    """An array argument as the recorded step sees it: a :class:`_Watched` view (a Tensor
    argument's array is watched in place)."""
    return arg.view(_Watched) if arg.__class__ is np.ndarray else arg


def _unwatched(array: np.ndarray) -> np.ndarray:
    """The array a :class:`_Watched` view shows, also through a plain view of all of it (a
    watched array can escape the recording in a Tensor made from it: ``detach()``,
    ``Tensor(y)`` of an array argument)."""
    if array.__class__ is _Watched:
        return array.base
    base = array.base
    if base.__class__ is _Watched and _same_view(array, base):
        return base.base
    return array


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"] == b.__array_interface__["data"]
    )


def _plain(value: Any) -> Any:
    if value.__class__ is _Watched:
        return value.view(np.ndarray)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Watched(np.ndarray):
    """A view of a step's data array while a recording watches its forward pass: NumPy on it
    outside an op's kernel (``x.data > 0``, ``x.data[0]``, ``float(x.data)``) is a value read
    the tape would freeze. Inside kernels it computes as a plain array (same results, bit for
    bit); results are plain arrays."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _read_outside_ops(f"NumPy's {ufunc.__name__}")
        return getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        _read_outside_ops(f"NumPy's {func.__name__}")
        return func(*_plain(args), **_plain(kwargs))

    def __getitem__(self, index: Any) -> Any:
        _read_outside_ops("indexing")
        return self.view(np.ndarray)[_plain(index)]

    def __setitem__(self, index: Any, value: Any) -> None:
        _read_outside_ops("an assignment into it")
        self.view(np.ndarray)[_plain(index)] = _plain(value)

    def __bool__(self) -> bool:
        _read_outside_ops("bool()")
        return bool(self.view(np.ndarray))

    def __float__(self) -> float:
        _read_outside_ops("float()")
        return float(self.view(np.ndarray))

    def __int__(self) -> int:
        _read_outside_ops("int()")
        return int(self.view(np.ndarray))

    def __index__(self) -> int:
        _read_outside_ops("an index")
        return self.view(np.ndarray).__index__()

    def __iter__(self) -> Any:
        _read_outside_ops("iteration")
        return iter(self.view(np.ndarray))

    @property
    def flat(self) -> Any:  # type: ignore[override]
        _read_outside_ops(".flat")
        return self.view(np.ndarray).flat

    @property
    def data(self) -> memoryview:  # type: ignore[override]
        _read_outside_ops("its buffer")
        return self.view(np.ndarray).data

    @property
    def ctypes(self) -> Any:  # type: ignore[override]
        _read_outside_ops("ctypes")
        return self.view(np.ndarray).ctypes


def _parameters(op: Op, arrays: Callable[[np.ndarray], Hashable] | None = None) -> list:
    """An op's own parameters (axes, shapes, index, condition ...), without its graph links;
    with ``arrays``, each array parameter is replaced by ``arrays(array)``."""
    found = [(n, v) for n, v in sorted(vars(op).items()) if n not in _GRAPH_FIELDS]
    return found if arrays is None else _replace_arrays(found, arrays)


def _given(op: Op) -> list:
    """The parameters ``op`` was constructed with (``Op.apply``'s keywords: a condition, an
    index ...), not what its ``forward`` keeps for its VJP (recomputed on every replay)."""
    names = _constructor_names(type(op))
    return [(n, v) for n, v in _parameters(op) if names is None or n in names]


@functools.cache
def _constructor_names(op_type: type[Op]) -> frozenset[str] | None:
    """The keyword names of an op's constructor; ``None`` (every attribute) if unreadable."""
    try:
        return frozenset(inspect.signature(op_type.__init__).parameters)
    except (TypeError, ValueError):
        return None


def _replace_arrays(value: Any, replace: Callable[[np.ndarray], Hashable]) -> Any:
    if isinstance(value, np.ndarray):
        return replace(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_replace_arrays(v, replace) for v in value)
    if isinstance(value, dict):
        return {k: _replace_arrays(v, replace) for k, v in value.items()}
    return value


def _layout(array: np.ndarray) -> Hashable:
    """An array parameter of a backward op (``like``: whose memory order a gradient takes)
    counts by its layout: forward ops with array parameters never reach a program."""
    return "array", array.dtype.str, array.shape, array.flags.c_contiguous, array.flags.f_contiguous


_GRAPH_FIELDS = frozenset(
    {
        "inputs",
        "_needs_input_grad",
        "sequence",
        "created_at",
        "saved_versions",
        "saved_output_version",
    }
)


def _has_array(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_array(v) for v in value)
    if isinstance(value, dict):
        return any(_has_array(v) for v in value.values())
    return False


# ---------------------------------------------------------------------------------- the guards
def _module_state(module: Module) -> tuple:
    """What a module's forward depends on besides its inputs: the object each attribute holds
    (its ``training`` flag, parameters, buffers, sub-modules, settings such as ``p`` or
    ``momentum``: any rebinding shows), and the contents of its hook containers (every
    attribute named ``*hook*``, which change in place). Objects, not ids: the state keeps them
    alive, so a new object can never pass for a recorded one."""
    hook_names = tuple(name for name in module.__dict__ if "hook" in name)
    held = tuple((name, value) for table in _tables(module) for name, value in table.items())
    return held, hook_names, _hooks_of(module, hook_names)


def _tables(module: Module) -> list[dict]:
    """A module's attributes and its member tables, which a forward may read directly
    (``Sequential`` runs ``_modules.values()``)."""
    return [module.__dict__, *(_member(module, name) for name in _MEMBER_TABLES)]


def _member(module: Module, table: str) -> dict:
    """One of a module's member tables; empty if it has none (``__init__`` without
    ``super().__init__()``)."""
    found = module.__dict__.get(table)
    return found if isinstance(found, dict) else {}


def _hooks_of(module: Module, names: tuple[str, ...]) -> tuple:
    hooks: list[Any] = []
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, dict):
            value = value.values()
        hooks.append(tuple(value) if isinstance(value, Iterable) else value)
    return tuple(hooks)


def _same_state(a: tuple, b: tuple) -> bool:
    """Two :func:`_module_state` results hold the very same objects (``==`` on a Tensor would
    compare values)."""
    (held_a, names_a, hooks_a), (held_b, names_b, hooks_b) = a, b
    return (
        len(held_a) == len(held_b)
        and all(a[0] == b[0] and a[1] is b[1] for a, b in zip(held_a, held_b))
        and names_a == names_b
        and _same_objects(hooks_a, hooks_b)
    )


def _same_objects(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(_same_objects, a, b))
    return a is b


#: a module's member tables: guarded item by item like its attributes
_MEMBER_TABLES = ("_parameters", "_buffers", "_modules")


def _guards(
    state: Sequence[tuple[Tensor, int, tuple, np.dtype, bool]],
    modules: Sequence[tuple[Module, tuple]],
) -> Callable[[list], None]:
    """The check a replay runs first: it fills the state registers, or raises ``_StaleGuard``."""
    namespaces = [table for m, _ in modules for table in _tables(m)]
    sizes = [len(namespace) for namespace in namespaces]  # a new attribute may be a new hook
    # every attribute and member: the namespace it lives in, its name, the object it held
    watched = [
        (namespace, name, value) for namespace in namespaces for name, value in namespace.items()
    ]
    where, keys, held = (list(column) for column in zip(*watched)) if watched else ([], [], [])
    hooked = [(m, names, hooks) for m, (_, names, hooks) in modules if names]

    def check(registers: list) -> None:
        for tensor, register, shape, dtype, requires_grad in state:
            data = tensor.data
            if (
                data.shape != shape
                or (data.dtype is not dtype and data.dtype != dtype)
                or tensor.requires_grad is not requires_grad
                or tensor._hooks
            ):
                raise _StaleGuard
            registers[register] = data
        try:
            same = list(map(len, namespaces)) == sizes and all(
                map(is_, map(getitem, where, keys), held)
            )
        except KeyError:  # an attribute was deleted
            same = False
        if not same:
            raise _StaleGuard
        for module, names, hooks in hooked:
            if not _same_objects(_hooks_of(module, names), hooks):
                raise _StaleGuard

    return check


# ---------------------------------------------------------------------------------- the program
class _Program:
    """Two recordings of a step turned into a list of kernel records over registers.

    Registers ``0 .. k-1`` hold the array arguments; the others hold state (read afresh and
    guarded on every replay), constants and kernel results. The second recording is the tape;
    the first tells what each leaf the tape reads is:

    * the same Tensor both times: **state** (a parameter, a buffer), read afresh on every replay
      and guarded (same shape, dtype, ``requires_grad``, no hooks, or the replay records again);
    * a new Tensor around an array the step also reads as data (an argument's, a state's, a
      kernel's result: ``detach()``): that register;
    * a new Tensor around the same array both times: an array from the enclosing scope, kept by
      reference;
    * a new Tensor and a new array: a **constant** the step computed (a Python number, the
      backward's seed). It must be equal both times -- otherwise it was computed from data
      outside ops and cannot be replayed -- and every op computing from constants alone is
      evaluated now, once (constant folding).
    """

    def __init__(
        self, first: _Recorder, second: _Recorder, args: Sequence[Any], loss: Tensor
    ) -> None:
        for recorder in (first, second):
            if recorder.problem is not None:
                raise _NotReplayable(recorder.problem)
        if first.modules.keys() != second.modules.keys():
            raise _NotReplayable("two calls ran different modules")
        pairs = _paired_leaves(first, second)
        self.dynamic = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray))]
        registers: dict[int, int] = {}  # id(tensor) -> its register
        by_array: dict[int, int] = {}  # id(array) -> the register of an argument/state/result
        for register, i in enumerate(self.dynamic):
            registers.setdefault(id(args[i]), register)
            by_array.setdefault(id(_array(args[i])), register)
        #: arguments passed as the same object (or the same array) to both recordings: the step
        #: may also reach it another way (a closure's ``w`` passed as ``step(w)``,
        #: ``step(w.detach())``), which no tape tells apart, so a replay needs that very object
        self._identities = [
            (i, args[i], None) if first.args[i] is args[i] else (i, None, _array(args[i]))
            for i in self.dynamic
            if first.args[i] is args[i] or _array(first.args[i]) is _array(args[i])
        ]
        template: list[Any] = [None] * len(self.dynamic)  # registers before a replay
        labels: list[str] = [f"a{i}" for i in self.dynamic]  # names in the listing
        state: list[tuple[Tensor, int, tuple, np.dtype, bool]] = []
        constants: set[int] = set()  # ids of tensors whose arrays are baked constants

        def new_register(label: str, value: Any = None) -> int:
            template.append(value)
            labels.append(f"{label}{len(labels)}")
            return len(template) - 1

        def register_of(t: Tensor) -> int:
            key = id(t)
            if key in registers:
                return registers[key]
            earlier = pairs.get(key, t)
            data, earlier_data = _unwatched(t.data), _unwatched(earlier.data)  # detach()ed
            if id(data) in by_array and data.__class__ is np.ndarray:
                registers[key] = by_array[id(data)]  # an argument's or a result's array
            elif earlier is t:
                registers[key] = by_array[id(data)] = new_register("state")
                state.append((t, registers[key], t.shape, t.dtype, t.requires_grad))
            elif earlier_data is data:
                registers[key] = new_register("array", data)
            else:
                if t.requires_grad:
                    raise _NotReplayable(
                        f"a tensor of shape {t.shape} that requires grad is another object in "
                        "each call (a parameter replaced?), so a tape would freeze its values"
                    )
                if not _equal_arrays(earlier_data, data):
                    raise _NotReplayable(
                        f"a constant of shape {t.shape} changed between two calls (it is "
                        "computed from data outside ops), so a tape would freeze it"
                    )
                if key in second.forward_leaves and not _uniform(data):
                    raise _NotReplayable(
                        f"the step builds an array of shape {t.shape} anew on every call, "
                        "which may be computed from data (Tensor(x.data > 0)); a tape would "
                        "freeze it (build fixed arrays outside the step)"
                    )
                registers[key] = new_register("constant", data)
                constants.add(key)
            return registers[key]

        events = _without_repeats(second.events)
        outputs = [loss] + [g for _, g in second.leaf_grads.values()]
        kept = [e for e, keep in zip(events, _needed(events, outputs)) if keep]
        body: list[tuple[Op, list[int], int, Tensor]] = []
        fresh: set[int] = set()  # outputs that are new arrays of their own, not views or inputs
        for op, inputs, out in kept:
            reads = [register_of(t) for t in inputs]
            if all(id(t) in constants for t in inputs):
                registers[id(out)] = new_register("constant", out.data)  # constant folding
                constants.add(id(out))
                continue
            registers[id(out)] = by_array[id(out.data)] = new_register("t")
            body.append((op, reads, registers[id(out)], out))
            if out.data.base is None and all(out.data is not t.data for t in inputs):
                fresh.add(id(out))
        returned = [register_of(t) for t in outputs]
        self.loss_is_fresh = id(loss) in fresh
        positions = {id(args[i]): i for i in reversed(self.dynamic)}
        #: where each gradient goes: (argument position or None, the recorded leaf, whether the
        #: replayed array may become ``.grad`` as it is -- a fresh array of the leaf's dtype that
        #: nothing else returned shares -- instead of a copy, as eager makes)
        self.grad_targets = [
            (
                positions.get(id(leaf)),
                leaf,
                id(g) in fresh and returned.count(register) == 1 and g.dtype == leaf.dtype,
            )
            for (leaf, g), register in zip(second.leaf_grads.values(), returned[1:])
        ]
        modules = [(m, _module_state(m)) for m, _ in second.modules.values()]
        self._check = _guards(state, modules)
        spare = new_register("spare")  # always None: what records with nothing to free clear
        self._template = template[len(self.dynamic) :]
        self._steps = _steps(body, returned, spare)
        self._outputs = itemgetter(*returned, returned[0])  # always a tuple
        self.listing = _listing(
            body, labels, returned, len(self.dynamic), (len(state), len(modules))
        )

    def replay(self, args: Sequence[Any]) -> tuple[np.ndarray, tuple]:
        """Check the guards, then run the kernels: the loss's and the gradients' arrays."""
        for i, same, array in self._identities:
            if args[i] is not same and (array is None or _array(args[i]) is not array):
                raise _StaleGuard  # another object where the recordings saw the same one
        registers = []
        for i in self.dynamic:
            arg = args[i]
            if isinstance(arg, Tensor):
                if arg._hooks:
                    raise _StaleGuard  # a hook on an argument: the recording decides
                arg = arg.data
            registers.append(arg)
        registers += self._template
        self._check(registers)
        for kernel, read, write, free, also_free in self._steps:  # see _steps
            registers[write] = kernel(*read(registers))
            registers[free] = registers[also_free] = None
        outputs = self._outputs(registers)  # the loss, the gradients, the loss again
        return outputs[0], outputs[1:-1]


def _steps(body: Sequence[tuple[Op, list[int], int, Tensor]], returned: Sequence[int], spare: int):
    """The records a replay runs: ``(kernel, read, write, free, also_free)`` for
    ``registers[write] = kernel(*read(registers))``, then ``registers[free]`` and
    ``registers[also_free]`` cleared (``spare``, a register that always holds ``None``, when
    there is nothing to free).

    A kernel is the ``forward`` of a copy of the recorded op; ``read`` is an
    :func:`operator.itemgetter` (of a one-register slice for one input), so the replay loop does
    as little as it can in Python per kernel.
    """
    steps = []
    for (op, reads, write, out), dead in zip(body, _last_uses(body, returned)):
        kernel = _detached(op).forward
        if out.ndim == 0:  # the result may be a NumPy scalar: an array, as Op.apply makes it
            kernel = _as_array(kernel)
        read = itemgetter(slice(reads[0], reads[0] + 1)) if len(reads) == 1 else itemgetter(*reads)
        frees = [*dead, spare, spare]
        steps.append((kernel, read, write, frees[0], frees[1]))
        for position in range(2, len(dead), 2):  # more to free: records that only free
            steps.append((_nothing, _no_inputs, spare, *frees[position : position + 2]))
    return steps


def _as_array(kernel: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def array_kernel(*arrays: np.ndarray) -> np.ndarray:
        return np.asarray(kernel(*arrays))

    return array_kernel


def _nothing() -> None:
    return None


_no_inputs = itemgetter(slice(0, 0))


def _last_uses(
    body: Sequence[tuple[Op, list[int], int, Tensor]], returned: Sequence[int]
) -> list[tuple[int, ...]]:
    """Per record, the kernel results it reads for the last time (freed right after it)."""
    last_use: dict[int, int] = {}
    for position, (_, reads, _, _) in enumerate(body):
        for register in reads:
            last_use[register] = position
    for register in returned:
        last_use[register] = len(body)
    written = {write for _, _, write, _ in body}
    return [
        tuple(sorted({r for r in reads if last_use[r] == position and r in written}))
        for position, (_, reads, _, _) in enumerate(body)
    ]


def _listing(
    body: Sequence[tuple[Op, list[int], int, Tensor]],
    labels: Sequence[str],
    returned: Sequence[int],
    arguments: int,
    guarded: tuple[int, int],
) -> str:
    """A readable listing of a program (text, never executed): one line per kernel record,
    with the results it frees."""

    def names(registers: Iterable[int]) -> str:
        return ", ".join(labels[r] for r in registers)

    lines = [
        f"program({names(range(arguments))})",
        f"  guards: {guarded[0]} state tensors, {guarded[1]} modules",
    ]
    for (op, reads, write, _), dead in zip(body, _last_uses(body, returned)):
        name = op.name if op.name.isidentifier() else repr(op.name)
        lines.append(f"  {labels[write]} = {name}({names(reads)})")
        if dead:
            lines.append(f"  free {names(dead)}")
    lines.append(f"  return {labels[returned[0]]}, ({names(returned[1:])})")
    return "\n".join(lines)


def _paired_leaves(first: _Recorder, second: _Recorder) -> dict[int, Tensor]:
    """Walk both tapes side by side; map each tensor the second one reads but did not produce
    to its counterpart in the first. Raises if the two calls did not run the same ops with the
    same parameters (axes, shapes, slices: compared by value)."""
    changed = _NotReplayable(
        "two calls ran different ops or the same ops with different parameters (control flow "
        "or slices that depend on values), so no single tape replays the step"
    )
    if len(first.events) != len(second.events) or len(first.leaf_grads) != len(second.leaf_grads):
        raise changed
    counterpart: dict[int, Tensor] = {}
    for (op1, inputs1, out1), (op2, inputs2, out2) in zip(first.events, second.events):
        key1 = _hashable(_parameters(op1, _layout))
        key2 = _hashable(_parameters(op2, _layout))
        if type(op1) is not type(op2) or len(inputs1) != len(inputs2) or key1 is None:
            raise changed
        if key1 != key2:
            raise changed
        for a, b in zip(inputs1, inputs2):
            if counterpart.setdefault(id(b), a) is not a or a.shape != b.shape:
                raise changed
        counterpart[id(out2)] = out1
    return counterpart


def _uniform(array: np.ndarray) -> bool:
    """Whether every element is the same (a Python number, a seed, zeros): what a constant
    the step builds anew may be, since only such values can come from code alone."""
    if array.size <= 1:
        return True
    first = array.flat[0]
    return bool(np.all((array == first) | (np.isnan(array) & np.isnan(first))))


def _equal_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _detached(op: Op) -> Op:
    """A copy of a recorded op without its graph links (the tape must not keep the graph)."""
    clone = copy.copy(op)
    clone.inputs = ()
    return clone


def _without_repeats(events: Sequence[_Event]) -> list[_Event]:
    """Common-subexpression elimination: an op applied again to the same inputs with the same
    parameters (``x * x``'s backward computes ``g * x`` twice) is computed once.

    The repeat's output is renamed to the first one's by rewriting later events' inputs.
    """
    first: dict[Hashable, Tensor] = {}
    replaced: dict[int, Tensor] = {}
    kept: list[_Event] = []
    for op, inputs, out in events:
        inputs = tuple(replaced.get(id(t), t) for t in inputs)
        key = _op_key(op, inputs)
        if key is not None and key in first:
            replaced[id(out)] = first[key]
            continue
        if key is not None:
            first[key] = out
        kept.append((op, inputs, out))
    return kept


def _op_key(op: Op, inputs: Iterable[Tensor]) -> Hashable:
    """What makes two applications compute the same array; ``None`` if it cannot be told."""
    parameters = _hashable(_parameters(op, lambda array: ("array", id(array))))
    if parameters is None:
        return None
    return type(op), parameters, tuple(id(t) for t in inputs)


def _needed(events: Sequence[_Event], outputs: Sequence[Tensor]) -> list[bool]:
    """Dead-code elimination: which events an output depends on (a backward walk of the tape)."""
    wanted = {id(t) for t in outputs}
    keep = [False] * len(events)
    for position in range(len(events) - 1, -1, -1):
        _, inputs, out = events[position]
        if id(out) in wanted:
            keep[position] = True
            wanted.update(id(t) for t in inputs)
    return keep
