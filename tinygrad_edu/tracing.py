"""Watching backward work: a record of every VJP the engine applies.

>>> import tinygrad_edu as tg
>>> x = tg.Tensor([1.0, 2.0], requires_grad=True)
>>> with tg.trace() as t:
...     (x.exp() * 3).sum().backward()
>>> [step.op for step in t.steps]
['sum', 'mul', 'exp']

``print(t)`` shows the steps as a table (op, input and output shapes, gradient norms, where the
op was created when anomaly mode recorded it); ``t.to_dot()`` draws them as a Graphviz graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .graph import Observer, Op, observe

if TYPE_CHECKING:
    from .tensor import Tensor


def _norm(t: Tensor | None) -> float | None:
    return None if t is None else float(np.linalg.norm(np.asarray(t.data, dtype=np.float64)))


@dataclass(frozen=True)
class Step:
    """One VJP application: ``op`` turned the gradient of its output into its inputs' gradients."""

    index: int
    op: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    grad_output_norm: float | None
    grad_input_norms: tuple[float | None, ...]
    output_id: int
    input_ids: tuple[int, ...]
    created_at: str | None = None


@dataclass
class Trace(Observer):
    """The VJPs applied inside a ``trace()`` block, in the order the engine applied them."""

    steps: list[Step] = field(default_factory=list)

    def vjp_applied(
        self, node: Op, out: Tensor, g: Tensor, input_grads: Sequence[Tensor | None]
    ) -> None:
        self.steps.append(
            Step(
                index=len(self.steps),
                op=node.name,
                input_shapes=tuple(t.shape for t in node.inputs),
                output_shape=out.shape,
                grad_output_norm=_norm(g),
                grad_input_norms=tuple(_norm(gi) for gi in input_grads),
                output_id=id(out),
                input_ids=tuple(id(t) for t in node.inputs),
                created_at=node.created_at,
            )
        )

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        header = ("#", "op", "input shapes", "output", "|grad out|", "|grad in|")
        rows = [header]
        for s in self.steps:
            ins = ", ".join(str(shape) for shape in s.input_shapes)
            grads_in = ", ".join("-" if n is None else f"{n:.3g}" for n in s.grad_input_norms)
            out_norm = "-" if s.grad_output_norm is None else f"{s.grad_output_norm:.3g}"
            rows.append((str(s.index), s.op, ins, str(s.output_shape), out_norm, grads_in))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The traced steps as Graphviz DOT: one box per VJP, edges along the gradient flow."""
        producer = {s.output_id: s.index for s in self.steps}
        lines = ["digraph backward {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
        for s in self.steps:
            norm = "" if s.grad_output_norm is None else f"\\n|grad out| = {s.grad_output_norm:.3g}"
            lines.append(f'  s{s.index} [label="{s.index}: {s.op} -> {s.output_shape}{norm}"];')
            for position, input_id in enumerate(s.input_ids):
                if input_id in producer:
                    n = s.grad_input_norms[position]
                    label = "" if n is None else f' [label="{n:.3g}"]'
                    lines.append(f"  s{s.index} -> s{producer[input_id]}{label};")
        lines.append("}")
        return "\n".join(lines)


@contextlib.contextmanager
def trace() -> Iterator[Trace]:
    """Record every VJP applied by backward passes inside the block."""
    with observe(Trace()) as recorder:
        yield recorder
