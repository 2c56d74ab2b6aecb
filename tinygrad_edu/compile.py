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
   buffers. The first two calls with a new signature are recorded; comparing the two tells
   apart the step's *state* (the same parameter Tensors both times), its *constants* (new but
   equal both times: Python numbers, the backward's seed) and values computed from data outside
   ops (new and different: not replayable).
2. **Compile.** The tape becomes Python source, one line per kernel (print
   :attr:`CompiledStep.code` to read it): arguments and state come in, the loss and the leaves'
   gradients go out. On the way, ops that compute from constants alone run once now (constant
   folding), ops nothing needs are dropped (dead-code elimination), an op repeated on the same
   inputs runs once (common-subexpression elimination), and each buffer is freed after its last
   use. Guards at the top check that the state still has the recorded shapes and dtypes.
3. **Replay.** Later calls with arguments of the same shapes and dtypes run that function: the
   same NumPy kernels in the same order on the same kinds of arrays, so the results are *bit for
   bit* those of eager execution -- with no Tensor, node, heap or observer in between. New shapes
   or dtypes record again (one program is cached per signature, like a JIT's recompilation);
   a failing guard records again too.

What a tape cannot do -- and why every tracing JIT has the same limits:

* **Data-dependent control flow.** The tape holds the path the recorded calls took. A Python
  ``if`` on a value (``if loss.item() > 1``) or an array computed from ``.data`` outside an op is
  frozen at its recorded value; when the two recordings already differ the step runs eagerly,
  but agreement twice proves nothing. ``torch.jit.trace`` warns about exactly this; ``jax.jit``
  refuses such code at trace time. Tensors and arrays the step reads from the enclosing scope
  are kept by reference: in-place updates are seen, rebinding the Python name is not.
* **Derivative rules that look at values.** ``relu``'s VJP multiplies by the mask ``x > 0``,
  computed with NumPy inside the rule, not by an op; a tape would freeze the recorded mask. Only
  nodes whose VJP is in :data:`REPLAYABLE_VJPS` (rules built from ops alone) are replayed; a step
  through any other node warns once (:class:`CompileWarning`) and runs eagerly, still correct.
* **Side effects outside ops.** Hooks, anomaly mode and tracing are not replayed: a step with
  hooks on its tensors runs eagerly, and so does every call made while an observer is registered
  or under ``no_grad``.

Python arguments that are not Tensors or arrays are *static*: their value is part of the
signature, so a new value records again.
"""

from __future__ import annotations

import builtins
import copy
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from . import graph, ops
from .graph import Observer, Op
from .ops.shape import is_advanced
from .optim import Optimizer
from .tensor import Tensor

#: Ops whose VJP is built from ops alone (no NumPy on concrete values, no value-derived
#: constants), so the backward ops they emit can be recorded and replayed on new values.
REPLAYABLE_VJPS: frozenset[type[Op]] = frozenset(
    {
        ops.Neg,
        ops.Exp,
        ops.Log,
        ops.Sqrt,
        ops.Sigmoid,
        ops.Tanh,
        ops.Add,
        ops.Sub,
        ops.Mul,
        ops.Div,
        ops.SigmoidBackward,
        ops.TanhBackward,
        ops.MatMul,
        ops.Linear,
        ops.Sum,
        ops.Softmax,
        ops.LogSoftmax,
        ops.SumTo,
        ops.BroadcastTo,
        ops.Reshape,
        ops.Transpose,
        ops.GetItem,
        ops.ScatterAdd,
        ops.Stack,
        ops.Concatenate,
        # the table rows whose chain rule is Tensor ops alone
        *(ops.Sin, ops.Cos, ops.Tan, ops.Asin, ops.Acos, ops.Atan, ops.Sinh, ops.Cosh),
        *(ops.Asinh, ops.Acosh, ops.Atanh, ops.Log2, ops.Log10, ops.Log1p, ops.Exp2),
        *(ops.Expm1, ops.Rsqrt, ops.Erf, ops.Square, ops.Reciprocal, ops.SiLU),
        *(ops.LogSigmoid, ops.Softsign),
        # piecewise constant: no gradient at all
        *(ops.Sign, ops.Floor, ops.Ceil, ops.Round, ops.Trunc, ops.FloorDivide),
    }
)

#: how many signatures (argument shapes and dtypes) keep a recorded program
CACHE_SIZE = 8


class CompileWarning(UserWarning):
    """A step that cannot be replayed from a tape; it runs eagerly (and correctly) instead."""


class _NotReplayable(Exception):
    """Raised while building a program: the reason is the warning's text."""


class _StaleGuard(Exception):
    """Raised by a replay whose guards fail: the state changed shape or dtype."""


def compile(loss_fn: Callable[..., Tensor], optimizer: Optimizer | None = None) -> CompiledStep:
    """Compile ``loss_fn`` and its backward pass (and an optimizer step) into a replayable tape.

    Calling the result with ``*args`` has the effect of the eager step

    .. code-block:: python

        optimizer.zero_grad()  # only with an optimizer
        loss = loss_fn(*args)
        loss.backward()  # gradients accumulate into .grad, as always
        optimizer.step()  # only with an optimizer
        return loss

    bit for bit. The first two calls with a new signature (shapes, dtypes and ``requires_grad`` of
    the Tensor and array arguments, values of the others) run exactly that and record it; later
    calls replay the recorded NumPy kernels. The optimizer's update is plain NumPy already and
    runs as it is.

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
        #: per signature: the first recording, then the program (or ``_EAGER``)
        self._programs: dict[Hashable, Any] = {}
        self._latest: _Program | None = None
        #: how many calls recorded a tape, and how many replayed one
        self.recordings = self.replays = 0

    @property
    def code(self) -> str:
        """The Python source of the most recently recorded program (empty before any)."""
        return self._latest.source if self._latest is not None else ""

    def __call__(self, *args: Any) -> Tensor:
        if not graph.is_grad_enabled() or graph.observers():
            return self._eager(args)  # nothing to differentiate, or someone is watching
        key = _signature(args)
        entry = self._programs.get(key)
        if entry.__class__ is _Program:
            try:
                loss, grads = entry.replay(*[_array(args[i]) for i in entry.dynamic])
            except _StaleGuard:
                entry = None  # the state changed shape or dtype: record afresh
            else:
                self.replays += 1
                return self._deliver(loss, grads, entry, args)
        if entry is _EAGER:
            return self._eager(args)
        return self._record(key, args, entry)

    # ---------------------------------------------------------------------- the three paths
    def _eager(self, args: Sequence[Any], recorder: _Recorder | None = None) -> Tensor:
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        loss = self.loss_fn(*args)
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

    def _record(self, key: Hashable, args: Sequence[Any], first: _Recorder | None) -> Tensor:
        """Run the step eagerly and record it; the second recording builds the program."""
        recorder = _Recorder()
        try:
            with graph.observe(recorder):
                loss = self._eager(args, recorder)
        finally:
            recorder.remove_hooks()
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
            entry = _EAGER
        self._programs.pop(key, None)
        if len(self._programs) >= CACHE_SIZE:
            del self._programs[next(iter(self._programs))]  # the oldest signature
        self._programs[key] = entry
        return loss

    def _deliver(self, loss: np.ndarray, grads: tuple, program: _Program, args) -> Tensor:
        """The effects of ``backward()`` and ``step()``: what the eager sweep does with leaves."""
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        for (position, leaf, as_it_is), g in zip(program.grad_targets, grads):
            if position is not None:
                leaf = args[position]
            data = g if as_it_is else g.astype(leaf.dtype, copy=True)
            if leaf.grad is not None:
                data += leaf.grad.data
            leaf.grad = Tensor._wrap(data)
        if self.optimizer is not None:
            self.optimizer.step()
        return Tensor._wrap(loss if program.loss_is_fresh else loss.copy())


_EAGER: Any = object()  # the entry of a signature that cannot be replayed


def _array(arg: Any) -> np.ndarray:
    return arg.data if isinstance(arg, Tensor) else arg


def _signature(args: Sequence[Any]) -> Hashable:
    """What a program is specialised to: array shapes/dtypes, static values, argument aliasing."""
    parts: list[Hashable] = []
    for position, arg in enumerate(args):
        if isinstance(arg, Tensor):
            parts.append((arg.shape, arg.dtype, arg.requires_grad))
        elif isinstance(arg, np.ndarray):
            parts.append((arg.shape, arg.dtype, None))
        else:
            try:
                hash(arg)
            except TypeError:
                raise TypeError(
                    f"compile: argument {position} is a {type(arg).__name__}, which is neither a "
                    "Tensor nor an array and cannot be hashed as a static value"
                ) from None
            parts.append(("static", type(arg), arg))
    ids = [id(a) for a in args]
    return tuple(parts), tuple(ids.index(i) for i in ids)


# ---------------------------------------------------------------------------------- recording
_Event = tuple[Op, tuple[Tensor, ...], Tensor]  # an op, the tensors it read, the one it wrote


class _Recorder(Observer):
    """Writes down every op applied (forward and backward) and each leaf's final gradient."""

    def __init__(self) -> None:
        self.events: list[_Event] = []
        self.produced: set[int] = set()
        self.problem: str | None = None
        self.leaf_grads: dict[int, tuple[Tensor, Tensor]] = {}
        self._removers: list[Callable[[], None]] = []
        self._hooked: set[int] = set()

    def op_applied(self, op: Op, inputs: Sequence[Tensor], out: Tensor) -> None:
        if isinstance(op, (ops.GetItem, ops.ScatterAdd)) and is_advanced(op.index):
            self.problem = self.problem or (
                f"'{op.name}' takes an index array, which may have been computed from values "
                "(x[x > 0]); a tape would freeze it"
            )
        for t in inputs:
            if id(t) not in self.produced and t._node is not None and self.problem is None:
                self.problem = (
                    f"the step uses a tensor of shape {t.shape} computed outside it (by "
                    f"'{t._node.name}'), whose graph the tape does not hold"
                )
        self.events.append((op, tuple(inputs), out))
        self.produced.add(id(out))

    def forward_finished(self) -> None:
        """Before backward: watch the final gradient of every leaf that requires grad."""
        for _, inputs, _ in self.events:
            for t in inputs:
                if t.requires_grad and t._node is None and id(t) not in self._hooked:
                    self._hooked.add(id(t))
                    if t._hooks:
                        self.problem = self.problem or f"a tensor of shape {t.shape} has hooks"
                    self._removers.append(t.register_hook(self._catcher(t)))

    def _catcher(self, leaf: Tensor) -> Callable[[Tensor], None]:
        def catch(g: Tensor) -> None:
            self.leaf_grads[id(leaf)] = (leaf, g)

        return catch

    def vjp_applied(self, node: Op, out: Tensor, g: Tensor, input_grads: tuple) -> None:
        if type(node) not in REPLAYABLE_VJPS and self.problem is None:
            self.problem = (
                f"the derivative rule of '{node.name}' reads concrete values outside ops, so a "
                "tape of its backward would freeze them"
            )
        if out._hooks and self.problem is None:
            self.problem = f"a tensor of shape {out.shape} made by '{node.name}' has hooks"

    def remove_hooks(self) -> None:
        for remove in self._removers:
            remove()
        for _, inputs, _ in self.events:
            for t in inputs:
                if id(t) in self._hooked and t._hooks == []:
                    t._hooks = None  # as it was: no hook list at all


# ---------------------------------------------------------------------------------- the program
class _Program:
    """Two recordings of a step turned into a straight-line Python function of NumPy kernels.

    The second recording is the tape; the first tells what each leaf the tape reads is:

    * the same Tensor both times: **state** (a parameter, a buffer), read afresh on every replay
      and guarded (same shape and dtype, or the replay records again);
    * a new Tensor around the same array: an array from the enclosing scope, kept by reference;
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
        pairs = _paired_leaves(first, second)
        self.dynamic = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray))]
        namespace: dict[str, Any] = {"_StaleGuard": _StaleGuard, "_asarray": np.asarray}
        names: dict[int, str] = {}  # id(tensor) -> the local variable holding its array
        arrays: dict[int, str] = {}  # id(array) of an argument -> its parameter name
        for i in self.dynamic:
            names.setdefault(id(args[i]), f"a{i}")
            arrays.setdefault(id(_array(args[i])), f"a{i}")
        guards: list[str] = []  # lines reading and guarding state
        constants: set[int] = set()  # ids of tensors whose arrays are baked constants

        counts: dict[str, int] = {}

        def bind(prefix: str, value: Any) -> str:
            """Put ``value`` into the program's namespace under a new name ``<prefix><n>``."""
            counts[prefix] = counts.get(prefix, -1) + 1
            name = f"{prefix}{counts[prefix]}"
            namespace[name] = value
            return name

        def name_of(t: Tensor) -> str:
            key = id(t)
            if key in names:
                return names[key]
            earlier = pairs.get(key, t)
            if id(t.data) in arrays and t.data.__class__ is np.ndarray:
                names[key] = arrays[id(t.data)]  # an argument array, wrapped inside loss_fn
            elif earlier is t:
                state = bind("state", t)
                namespace[f"{state}_shape"], namespace[f"{state}_dtype"] = t.shape, t.dtype
                names[key] = f"{state}_data"
                guards.append(
                    f"    {state}_data = {state}.data\n"
                    f"    if {state}_data.shape != {state}_shape or "
                    f"{state}_data.dtype != {state}_dtype:\n"
                    f"        raise _StaleGuard"
                )
            elif earlier.data is t.data:
                names[key] = bind("array", t.data)
            else:
                if not _equal_arrays(earlier.data, t.data):
                    raise _NotReplayable(
                        f"a constant of shape {t.shape} changed between two calls (it is "
                        "computed from data outside ops), so a tape would freeze it"
                    )
                names[key] = bind("constant", t.data)
                constants.add(key)
            return names[key]

        events = _without_repeats(second.events)
        outputs = [loss] + [g for _, g in second.leaf_grads.values()]
        kept = [e for e, keep in zip(events, _needed(events, outputs)) if keep]
        body: list[tuple[int, tuple[Tensor, ...], str]] = []  # (output id, inputs, line)
        fresh: set[int] = set()  # outputs that are new arrays of their own, not views or inputs
        for op, inputs, out in kept:
            arguments = [name_of(t) for t in inputs]
            if all(id(t) in constants for t in inputs):
                names[id(out)] = bind("constant", out.data)  # constant folding
                constants.add(id(out))
                continue
            kernel = bind("k", _detached(op).forward)
            call = f"{kernel}({', '.join(arguments)})"
            if out.ndim == 0:
                call = f"_asarray({call})"  # as Op.apply does: NumPy reductions return scalars
            names[id(out)] = f"t{len(body)}"
            body.append((id(out), inputs, f"    {names[id(out)]} = {call}  # {op.name}"))
            if out.data.base is None and all(out.data is not t.data for t in inputs):
                fresh.add(id(out))
        returned = [name_of(t) for t in outputs]
        self.loss_is_fresh = id(loss) in fresh
        positions = {id(args[i]): i for i in reversed(self.dynamic)}
        #: where each gradient goes: (argument position or None, the recorded leaf, whether the
        #: replayed array may become ``.grad`` as it is -- a fresh array of the leaf's dtype that
        #: nothing else returned shares -- instead of a copy, as eager makes)
        self.grad_targets = [
            (
                positions.get(id(leaf)),
                leaf,
                id(g) in fresh and returned.count(name) == 1 and g.dtype == leaf.dtype,
            )
            for (leaf, g), name in zip(second.leaf_grads.values(), returned[1:])
        ]
        parameters = ", ".join(f"a{i}" for i in self.dynamic)
        self.source = "\n".join(
            [
                f"def replay({parameters}):",
                *guards,
                *_with_frees(body, names, outputs),
                f"    return {returned[0]}, ({''.join(n + ', ' for n in returned[1:])})",
            ]
        )
        exec(builtins.compile(self.source, "<tg.compile replay>", "exec"), namespace)
        self.replay: Callable[..., tuple[np.ndarray, tuple]] = namespace["replay"]


def _paired_leaves(first: _Recorder, second: _Recorder) -> dict[int, Tensor]:
    """Walk both tapes side by side; map each tensor the second one reads but did not produce
    to its counterpart in the first. Raises if the two calls did not run the same ops."""
    changed = _NotReplayable(
        "two calls ran different ops (control flow that depends on values), so no single tape "
        "replays the step"
    )
    if len(first.events) != len(second.events) or len(first.leaf_grads) != len(second.leaf_grads):
        raise changed
    counterpart: dict[int, Tensor] = {}
    for (op1, inputs1, out1), (op2, inputs2, out2) in zip(first.events, second.events):
        if (
            type(op1) is not type(op2)
            or len(inputs1) != len(inputs2)
            or _op_key(op1, (), False) != _op_key(op2, (), False)
        ):
            raise changed
        for a, b in zip(inputs1, inputs2):
            if counterpart.setdefault(id(b), a) is not a or a.shape != b.shape:
                raise changed
        counterpart[id(out2)] = out1
    return counterpart


def _equal_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _detached(op: Op) -> Op:
    """A copy of a recorded op without its graph links (the tape must not keep the graph)."""
    clone = copy.copy(op)
    clone.inputs = ()
    return clone


def _with_frees(
    body: list[tuple[int, tuple[Tensor, ...], str]], names: dict[int, str], outputs
) -> list[str]:
    """The kernel lines, each followed by ``del`` of the temporaries it used for the last time."""
    last_use = {}
    for position, (_, inputs, _) in enumerate(body):
        for t in inputs:
            last_use[id(t)] = position
    for t in outputs:
        last_use[id(t)] = len(body)
    lines = []
    for position, (_, inputs, line) in enumerate(body):
        lines.append(line)
        dead = sorted(
            {n for t in inputs if last_use[id(t)] == position and (n := names[id(t)])[0] == "t"}
        )
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    return lines


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


def _op_key(op: Op, inputs: tuple[Tensor, ...], arrays_by_identity: bool = True) -> Hashable:
    """What makes two applications compute the same array; ``None`` if it cannot be told.

    Array parameters count by identity, or else by shape and dtype only: an index array is
    frozen at its recorded value, like any Python value the step reads.
    """
    parameters = []
    for name, value in sorted(vars(op).items()):
        if name in _GRAPH_FIELDS:
            continue
        if isinstance(value, np.ndarray):
            value = ("array", id(value) if arrays_by_identity else (value.shape, value.dtype))
        elif isinstance(value, dict):
            value = tuple(sorted(value.items()))
        try:
            hash(value)
        except TypeError:
            return None
        parameters.append((name, value))
    return type(op), tuple(parameters), tuple(id(t) for t in inputs)


_GRAPH_FIELDS = frozenset({"inputs", "needs_input_grad", "sequence", "created_at"})


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
