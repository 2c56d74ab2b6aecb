"""Reading tapes: pairing two recordings, and the passes that shorten a tape.

* :func:`paired_leaves` walks two recordings of a step side by side. They must have run the
  same ops with the same parameters; each tensor the second tape reads but did not produce is
  paired with its counterpart in the first, which tells a program what it is (state, a
  constant, an argument's array ...).
* :func:`without_repeats` is *common-subexpression elimination*: an op applied again to the same
  inputs with the same parameters is computed once.
* :func:`needed` is *dead-code elimination*: only ops whose results reach an output are kept.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

from ..graph import Op
from ..tensor import Tensor
from .op_parameters import layout, parameters
from .reasons import NotReplayable
from .recorder import Event, Recorder
from .signature import hashable


def paired_leaves(first: Recorder, second: Recorder) -> dict[int, Tensor]:
    """Walk both tapes side by side; map each tensor the second one reads but did not produce
    to its counterpart in the first. Raises if the two calls did not run the same ops with the
    same parameters (axes, shapes, slices: compared by value)."""
    changed = NotReplayable(
        "two calls ran different ops or the same ops with different parameters (control flow "
        "or slices that depend on values), so no single tape replays the step"
    )
    if len(first.events) != len(second.events) or len(first.leaf_grads) != len(second.leaf_grads):
        raise changed
    counterpart: dict[int, Tensor] = {}
    for (op1, inputs1, out1), (op2, inputs2, out2) in zip(first.events, second.events):
        key1 = hashable(parameters(op1, layout))
        key2 = hashable(parameters(op2, layout))
        if type(op1) is not type(op2) or len(inputs1) != len(inputs2) or key1 is None:
            raise changed
        if key1 != key2:
            raise changed
        for a, b in zip(inputs1, inputs2):
            if counterpart.setdefault(id(b), a) is not a or a.shape != b.shape:
                raise changed
        counterpart[id(out2)] = out1
    return counterpart


def without_repeats(events: Sequence[Event]) -> list[Event]:
    """Common-subexpression elimination: an op applied again to the same inputs with the same
    parameters (``x * x``'s backward computes ``g * x`` twice) is computed once.

    The repeat's output is renamed to the first one's by rewriting later events' inputs.
    """
    first: dict[Hashable, Tensor] = {}
    replaced: dict[int, Tensor] = {}
    kept: list[Event] = []
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
    key = hashable(parameters(op, lambda array: ("array", id(array))))
    if key is None:
        return None
    return type(op), key, tuple(id(t) for t in inputs)


def needed(events: Sequence[Event], outputs: Sequence[Tensor]) -> list[bool]:
    """Dead-code elimination: which events an output depends on (a backward walk of the tape)."""
    wanted = {id(t) for t in outputs}
    keep = [False] * len(events)
    for position in range(len(events) - 1, -1, -1):
        _, inputs, out = events[position]
        if id(out) in wanted:
            keep[position] = True
            wanted.update(id(t) for t in inputs)
    return keep
