"""The program: two recordings of a step turned into kernel records over registers, and the
replay loop that runs them.

Building a program (:class:`Program`) is where compiling happens: the tapes are paired
(:func:`~tinygrad_edu.compile.tape.paired_leaves`), every leaf the second tape reads gets a
register by what it is (see the table in :class:`Program`), repeats and unneeded ops are
dropped, ops on constants alone run once now (constant folding), and the body becomes
:func:`~tinygrad_edu.compile.records.records`. A replay (:meth:`Program.replay`) checks the
guards and runs the records: the same NumPy kernels in the same order, so the results are those
of eager execution bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from ..graph import Op
from ..tensor import Tensor
from .guards import guard_check, module_state
from .reasons import NotReplayable, StaleGuard
from .recorder import Recorder
from .records import listing, records
from .signature import array_of, equal_arrays
from .tape import needed, paired_leaves, without_repeats
from .watched import unwatched


class Program:
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
        self, first: Recorder, second: Recorder, args: Sequence[Any], loss: Tensor
    ) -> None:
        for recorder in (first, second):
            if recorder.problem is not None:
                raise NotReplayable(recorder.problem)
        if first.modules.keys() != second.modules.keys():
            raise NotReplayable("two calls ran different modules")
        pairs = paired_leaves(first, second)
        self.dynamic = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray))]
        registers: dict[int, int] = {}  # id(tensor) -> its register
        by_array: dict[int, int] = {}  # id(array) -> the register of an argument/state/result
        for register, i in enumerate(self.dynamic):
            registers.setdefault(id(args[i]), register)
            by_array.setdefault(id(array_of(args[i])), register)
        #: arguments passed as the same object (or the same array) to both recordings: the step
        #: may also reach it another way (a closure's ``w`` passed as ``step(w)``,
        #: ``step(w.detach())``), which no tape tells apart, so a replay needs that very object
        self._identities = [
            (i, args[i], None) if first.args[i] is args[i] else (i, None, array_of(args[i]))
            for i in self.dynamic
            if first.args[i] is args[i] or array_of(first.args[i]) is array_of(args[i])
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
            data, earlier_data = unwatched(t.data), unwatched(earlier.data)  # detach()ed
            if id(data) in by_array and data.__class__ is np.ndarray:
                registers[key] = by_array[id(data)]  # an argument's or a result's array
            elif earlier is t:
                registers[key] = by_array[id(data)] = new_register("state")
                state.append((t, registers[key], t.shape, t.dtype, t.requires_grad))
            elif earlier_data is data:
                registers[key] = new_register("array", data)
            else:
                if t.requires_grad:
                    raise NotReplayable(
                        f"a tensor of shape {t.shape} that requires grad is another object in "
                        "each call (a parameter replaced?), so a tape would freeze its values"
                    )
                if not equal_arrays(earlier_data, data):
                    raise NotReplayable(
                        f"a constant of shape {t.shape} changed between two calls (it is "
                        "computed from data outside ops), so a tape would freeze it"
                    )
                if key in second.forward_leaves and not _uniform(data):
                    raise NotReplayable(
                        f"the step builds an array of shape {t.shape} anew on every call, "
                        "which may be computed from data (Tensor(x.data > 0)); a tape would "
                        "freeze it (build fixed arrays outside the step)"
                    )
                registers[key] = new_register("constant", data)
                constants.add(key)
            return registers[key]

        events = without_repeats(second.events)
        outputs = [loss] + [g for _, g in second.leaf_grads.values()]
        kept = [e for e, keep in zip(events, needed(events, outputs)) if keep]
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
        modules = [(m, module_state(m)) for m, _ in second.modules.values()]
        self._check = guard_check(state, modules)
        spare = new_register("spare")  # always None: what records with nothing to free clear
        self._template = template[len(self.dynamic) :]
        self._records = records(body, returned, spare)
        self._outputs = itemgetter(*returned, returned[0])  # always a tuple
        self.listing = listing(
            body, labels, returned, len(self.dynamic), (len(state), len(modules))
        )

    def replay(self, args: Sequence[Any]) -> tuple[np.ndarray, tuple]:
        """Check the guards, then run the kernels: the loss's and the gradients' arrays."""
        for i, same, array in self._identities:
            if args[i] is not same and (array is None or array_of(args[i]) is not array):
                raise StaleGuard  # another object where the recordings saw the same one
        registers = []
        for i in self.dynamic:
            arg = args[i]
            if isinstance(arg, Tensor):
                if arg._hooks:
                    raise StaleGuard  # a hook on an argument: the recording decides
                arg = arg.data
            registers.append(arg)
        registers += self._template
        self._check(registers)
        for kernel, read, write, free, also_free in self._records:  # see records()
            registers[write] = kernel(*read(registers))
            registers[free] = registers[also_free] = None
        outputs = self._outputs(registers)  # the loss, the gradients, the loss again
        return outputs[0], outputs[1:-1]


def _uniform(array: np.ndarray) -> bool:
    """Whether every element is the same (a Python number, a seed, zeros): what a constant
    the step builds anew may be, since only such values can come from code alone."""
    if array.size <= 1:
        return True
    first = array.flat[0]
    return bool(np.all((array == first) | (np.isnan(array) & np.isnan(first))))
