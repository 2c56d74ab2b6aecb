"""The watcher: what the Python around the ops does while a recording runs the forward pass.

A tape holds only what ops did. Whatever else the step does would be silently frozen by a
replay, so while the forward pass is recorded a :class:`PythonWatcher` looks at it:

* a profiler (``sys.setprofile``, only while recording) sees every call: the Tensor methods
  that read values into Python or a mask (``y > 0``, ``argmax``, ``item()``), NumPy methods on a
  tensor's array outside an op (``x.data.max()``), ``np.asarray`` and friends called by the
  step's own code, random number generators drawn from, ``Tensor._bump_version`` (an in-place
  change), and -- by name, from every function the step calls -- the modules, generators and
  arrays it can reach;
* the arrays of the arguments, of the state and of every op result are
  :class:`~tinygrad_edu.compile.watched.Watched` meanwhile, so NumPy inside them reports too;
* after the forward (:meth:`PythonWatcher.forward_side_effects`): did a generator's state
  change, a module rebind an attribute or change its buffers, a tensor's ``requires_grad``?

What it finds is the recording's first ``problem``, the text of the warning.
"""

from __future__ import annotations

import os
import pickle
import random
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import graph
from ..graph import Op
from ..nn.module import Module
from ..tensor import Tensor
from .guards import member, module_state, same_state
from .signature import array_of, equal_arrays, opaque
from .watched import Watched, active

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
#: the random number generators a step may draw from
RANDOM_SOURCES = (
    np.random.Generator,
    np.random.RandomState,
    np.random.BitGenerator,
    random.Random,
)


class PythonWatcher:
    """Watches the Python around the ops of one recorded forward pass for what a tape cannot
    replay (the first ``problem``), and collects the modules the step reaches.

    ``state_read`` are the tensors an earlier recording of the step read: their arrays are
    watched too.
    """

    def __init__(self, state_read: Sequence[Tensor]) -> None:
        self.problem: str | None = None
        #: the modules whose ``__call__`` or ``forward`` ran, by id, with a copy of their buffers
        self.modules: dict[int, tuple[Module, list[tuple[Tensor, np.ndarray]]]] = {}
        #: ids of the arrays that hold data (arguments, state, op results): NumPy methods called
        #: on them outside an op read values the tape would freeze
        self.data_arrays: set[int] = {id(t.data) for t in state_read}
        self._state_read = state_read
        self._depth = 0  # how many Op.apply calls are running (kernels may read values)
        self._watching = False
        #: id -> (tensor, its plain array, the watched view it holds meanwhile)
        self._swapped: dict[int, tuple[Tensor, np.ndarray, np.ndarray]] = {}
        #: the random number generators the step can reach, with their states before it ran
        self._generators: dict[int, tuple[Any, bytes]] = {}
        self.states: list[tuple[Module, tuple]] = []  # the modules' states after recording
        self._before: dict[int, tuple] = {}  # each module's state when the step reached it
        self._flags: list[tuple[Tensor, bool]] = []  # requires_grad of the watched tensors

    def note(self, problem: str) -> None:
        """Keep ``problem`` unless an earlier one was noted: the warning names the first."""
        if self.problem is None:
            self.problem = problem

    def modules_now(self) -> None:
        """Remember the state of the modules the step reached, as the recording left them."""
        self.states = [(m, module_state(m)) for m, _ in self.modules.values()]

    def modules_hold(self) -> bool:
        """Whether those modules are still as the recording left them."""
        return all(same_state(module_state(m), state) for m, state in self.states)

    def watching(self, args: Sequence[Any]) -> Watching:
        """Profile the forward pass (the backward is the engine's: the recorder checks its VJPs
        and hooks), with the arrays of the Tensor arguments, of the state an earlier recording
        read and of every op result :class:`~tinygrad_edu.compile.watched.Watched` meanwhile."""
        self.data_arrays.update(
            id(array_of(a)) for a in args if isinstance(a, (Tensor, np.ndarray))
        )
        for source in (np.random.mtrand._rand, random._inst):  # np.random.rand(), random.random()
            self._saw_generator(source)
        for position, arg in enumerate(args):
            if opaque(arg):
                self.note(
                    f"argument {position} holds a {type(arg).__name__} object, which counts by "
                    "identity: a tape cannot guard what its attributes hold"
                )
        watched = [a for a in args if isinstance(a, Tensor)]
        watched += self._state_read
        self._flags = [(t, t.requires_grad) for t in watched]
        return Watching(self, watched)

    def watch(self, t: Tensor) -> None:
        """Let ``t`` hold a :class:`~tinygrad_edu.compile.watched.Watched` view of its array
        until the forward ends."""
        data = t.data
        if data.__class__ is np.ndarray and id(t) not in self._swapped:
            t.data = data.view(Watched)
            self._swapped[id(t)] = (t, data, t.data)

    def _escaped(self, t: Tensor) -> None:
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
            if isinstance(owner, RANDOM_SOURCES):  # also in an op's kernel: never replayable
                self.note("the step draws random numbers (Dropout in training?)")
            elif self._depth == 0:
                if isinstance(owner, np.ndarray) and (
                    owner.__class__ is Watched or id(owner) in self.data_arrays
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
            if not self._depth and issubclass(type(arg), Tensor) and type(arg.data) is Watched:
                self._escaped(arg)
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
            if isinstance(source, RANDOM_SOURCES):
                self._saw_generator(source)
            elif type(source) is np.ndarray:  # from the enclosing scope: its methods read it
                self.data_arrays.add(id(source))
        while found:
            module = found.pop()
            if id(module) not in self.modules:
                self._saw_module(module)
                found += member(module, "_modules").values()

    def _saw_generator(self, source: Any) -> None:
        if id(source) not in self._generators:
            self._generators[id(source)] = (source, _generator_state(source))

    def _saw_module(self, module: Module) -> None:
        for source in module.__dict__.values():
            if isinstance(source, RANDOM_SOURCES):  # Dropout's own generator
                self._saw_generator(source)
        buffers = member(module, "_buffers").values()
        self.modules[id(module)] = (module, [(t, t.data.copy()) for t in buffers if t is not None])
        self._before[id(module)] = module_state(module)
        for t in (*member(module, "_parameters").values(), *buffers):
            if t is not None:
                self.data_arrays.add(id(t.data))

    def forward_side_effects(self) -> None:
        """After the forward: note a changed ``requires_grad``, a generator drawn from, a module
        that rebound an attribute or changed its buffers in place."""
        if any(t.requires_grad is not flag for t, flag in self._flags):
            self.note("the step changes requires_grad of a tensor it reads (requires_grad_())")
        for source, state in self._generators.values():
            if _generator_state(source) != state:
                self.note("the step draws random numbers (Dropout in training?)")
        for module, buffers in self.modules.values():
            if not same_state(module_state(module), self._before[id(module)]):
                self.note(
                    f"{type(module).__name__} rebinds its attributes while the step runs "
                    "(self.cache = ..., a call counter), which a tape does not replay"
                )
            for t, before in buffers:
                if not equal_arrays(t.data, before):
                    self.note(
                        f"{type(module).__name__} changes its buffers in place (running "
                        "statistics in training), which a tape does not replay"
                    )


def _generator_state(source: Any) -> bytes:
    """A random number generator's state, to tell whether the step drew from it."""
    if isinstance(source, np.random.Generator):
        source = source.bit_generator
    if isinstance(source, random.Random):
        return pickle.dumps(source.getstate())
    if isinstance(source, np.random.RandomState):
        return pickle.dumps(source.get_state(legacy=False))
    return pickle.dumps(source.state)


class Watching:
    """For one forward pass: ``sys.setprofile`` with the watcher's callback, and the step's
    data arrays watched; then the previous profiler and the arrays themselves."""

    def __init__(self, watcher: PythonWatcher, tensors: Sequence[Tensor]) -> None:
        self.watcher, self.tensors = watcher, tensors

    def __enter__(self) -> None:
        self.previous = sys.getprofile()
        if self.previous is not None:
            self.watcher.note("a profiler is running, so the recording cannot watch the step")
            return
        active.watcher = self.watcher
        try:
            for t in self.tensors:
                self.watcher.watch(t)
        except BaseException:  # KeyboardInterrupt: no tensor stays watched
            self.__exit__()
            raise
        self.watcher._watching = True
        sys.setprofile(self.watcher.profile)

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is None:
            sys.setprofile(None)
        self.watcher._watching = False
        self.watcher.unwatch()
        self.watcher._depth = 0
        active.watcher = None
