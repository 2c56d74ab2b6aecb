"""Compiling a training step: record its NumPy kernels once, replay them without Tensors.

A lesson on what frameworks' JITs (``torch.compile``, ``jax.jit``, CUDA graphs) do, in miniature.

Eager execution pays for flexibility on every step: each op builds a Tensor, a graph node, asks
the grad mode and the observers, and the backward sweep pushes nodes through a heap and checks
every VJP. On a 10 x 5 network that bookkeeping costs more than the arithmetic. Yet a training step
runs the *same* kernels on arrays of the *same* shapes every time. So, module by module:

1. **Record** (:mod:`~tinygrad_edu.compile.recorder`). A call runs the step eagerly under an
   :class:`~tinygrad_edu.graph.Observer` that writes down every op the engine applies -- the
   forward ops and, because every VJP is written in Tensor ops, the backward ops too -- with the
   tensors each one read and wrote. That list is a *tape*: a straight-line program of NumPy
   kernels (each op's ``forward``) on concrete buffers. Meanwhile the
   :mod:`~tinygrad_edu.compile.watcher` watches the Python around the ops with a profiler
   (``sys.setprofile``): which modules run, and whether the step reads values out of tensors
   (comparisons, ``argmax``, ``item()``, NumPy methods on their arrays), draws random numbers or
   changes a tensor in place; and the arrays of the arguments, the state and every op result are
   :mod:`~tinygrad_edu.compile.watched` views, so NumPy on them outside a kernel
   (``x.data[0] > 0``) shows too. The first two calls with a new
   :mod:`~tinygrad_edu.compile.signature` are recorded; comparing the two tells apart the step's
   *state* (the same parameter Tensors both times) and its *constants* (new but equal both
   times: Python numbers, the backward's seed).
2. **Compile** (:mod:`~tinygrad_edu.compile.program`). The tape becomes a list of
   :mod:`~tinygrad_edu.compile.records` -- a kernel (a recorded op's ``forward``), the registers
   it reads, the register it writes -- never source text: no name or other string of the step
   ever reaches ``exec``. On the way (:mod:`~tinygrad_edu.compile.tape`), ops that compute from
   constants alone run once now (constant folding), ops nothing needs are dropped (dead-code
   elimination), an op repeated on the same inputs with the same
   :mod:`~tinygrad_edu.compile.op_parameters` runs once (common-subexpression elimination), and
   each register is freed after its last use. :attr:`CompiledStep.code` lists the records.
3. **Replay**. Later calls with arguments of the same shapes and dtypes first check the
   :mod:`~tinygrad_edu.compile.guards` (every piece of state still has its recorded shape,
   dtype, ``requires_grad`` and no hooks; every module that ran is still in the recorded
   ``train``/``eval`` mode with the same parameters, buffers and hooks), then run the records:
   the same NumPy kernels in the same order on the same kinds of arrays, so the results are
   *bit for bit* those of eager execution. A failing guard records again; new shapes or dtypes
   record again too (one program is cached per signature, like a JIT's recompilation).

What a tape cannot replay runs eagerly -- the call warns once (:class:`CompileWarning`, see
:mod:`~tinygrad_edu.compile.reasons`) and every later call with that signature runs the step as
it is, correctly:

* **Values decided in Python.** A mask or an index computed from values (``tg.where(y > 0, ..)``,
  ``masked_fill``, ``kl_div``'s ``target > 0``, ``x[x > 0]``), ``argmax``, ``item()``, NumPy on a
  tensor's array outside an op, an array with differing elements built anew in the step: the
  tape would freeze the recorded decision.
* **Derivative rules that look at values.** ``relu``'s VJP multiplies by the mask ``x > 0``,
  computed with NumPy inside the rule; ``max`` and ``max_pool2d`` pick among ties. Only nodes
  whose rule says :attr:`~tinygrad_edu.graph.Op.replayable_vjp` (rules built from ops alone)
  are replayed.
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

import threading
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from .. import graph
from ..optim import Optimizer
from ..tensor import Tensor
from .program import Program
from .reasons import NotReplayable, StaleGuard
from .recorder import Recorder
from .signature import signature
from .watched import watched_argument

__all__ = ["CACHE_SIZE", "CompileWarning", "CompiledStep", "compile"]

#: how many signatures (argument shapes and dtypes) keep a recorded program
CACHE_SIZE = 8


class CompileWarning(UserWarning):
    """A step that cannot be replayed from a tape; it runs eagerly (and correctly) instead."""


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
        self._latest: Program | None = None
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
        key = signature(args), names
        entry = self._programs.get(key)
        if entry.__class__ is Program:
            if self.optimizer is not None:
                self.optimizer.zero_grad()  # first, as eager: a kernel may raise
            try:
                loss, grads = entry.replay(args)
            except StaleGuard:
                entry = None  # the state, a module or a hook changed: record afresh
            else:
                self.replays += 1
                return self._deliver(loss, grads, entry, args)
        if entry.__class__ is _Eager and entry.holds():
            self.eager_calls += 1
            return self._eager(args, names)
        return self._record(key, args, names, entry if entry.__class__ is Recorder else None)

    # ---------------------------------------------------------------------- the three paths
    def _eager(
        self, args: Sequence[Any], names: tuple[str, ...], recorder: Recorder | None = None
    ) -> Tensor:
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        if recorder is not None:
            watched = [watched_argument(a) for a in args]
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
        first: Recorder | None,
    ) -> Tensor:
        """Run the step eagerly and record it; the second recording builds the program."""
        if first is not None and not first.modules_hold():
            first = None  # a module changed since the first recording: this one is the first
        recorder = Recorder(args, first)
        try:
            with graph.observe(recorder):
                loss = self._eager(args, names, recorder)
        finally:
            recorder.remove_hooks()
        recorder.modules_now()
        self.recordings += 1
        entry: Program | Recorder | _Eager = recorder
        try:
            if recorder.problem is not None:
                raise NotReplayable(recorder.problem)
            if first is not None:
                entry = self._latest = Program(first, recorder, args, loss)
        except NotReplayable as reason:
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

    def _deliver(
        self, loss: np.ndarray, grads: tuple, program: Program, args: Sequence[Any]
    ) -> Tensor:
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

    def __init__(self, recorder: Recorder) -> None:
        self.holds = recorder.modules_hold
