"""Kernel records: the list a replay runs, and the listing people read.

A program's body is a list of ``(op, reads, write, out)``: the recorded op, the registers it
reads, the register it writes and the recorded result. :func:`records` turns it into what the
replay loop runs -- ``(kernel, read, write, free, also_free)`` for

.. code-block:: python

    registers[write] = kernel(*read(registers))
    registers[free] = registers[also_free] = None

where the kernel is the op's own ``forward`` (on a copy without graph links), so the replay runs
exactly the kernels eager execution runs. Registers are cleared after their last use
(:func:`_last_uses`). Nothing is ever turned into source text: :func:`listing` is for reading.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from ..graph import Op
from ..tensor import Tensor

#: one kernel of a program's body: the op, the registers it reads, the one it writes, and the
#: recorded result
Body = Sequence[tuple[Op, list[int], int, Tensor]]
#: what the replay loop runs: ``(kernel, read, write, free, also_free)``
Record = tuple[Callable[..., Any], Callable[[list], Sequence[Any]], int, int, int]


def records(body: Body, returned: Sequence[int], spare: int) -> list[Record]:
    """The records a replay runs: ``(kernel, read, write, free, also_free)`` for
    ``registers[write] = kernel(*read(registers))``, then ``registers[free]`` and
    ``registers[also_free]`` cleared (``spare``, a register that always holds ``None``, when
    there is nothing to free).

    A kernel is the ``forward`` of a copy of the recorded op; ``read`` is an
    :func:`operator.itemgetter` (of a one-register slice for one input), so the replay loop does
    as little as it can in Python per kernel.
    """
    steps: list[Record] = []
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


def _detached(op: Op) -> Op:
    """A copy of a recorded op without its graph links (the tape must not keep the graph)."""
    clone = copy.copy(op)
    clone.inputs = ()
    return clone


def _as_array(kernel: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def array_kernel(*arrays: np.ndarray) -> np.ndarray:
        return np.asarray(kernel(*arrays))

    return array_kernel


def _nothing() -> None:
    return None


_no_inputs = itemgetter(slice(0, 0))


def _last_uses(body: Body, returned: Sequence[int]) -> list[tuple[int, ...]]:
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


def listing(
    body: Body,
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
