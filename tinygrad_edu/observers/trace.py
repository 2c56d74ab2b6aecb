"""Watching backward work: a record of every VJP the engine applies.

``print(t)`` shows the steps as a table (op, input and output shapes, gradient norms, where the
op was created when anomaly mode recorded it); ``t.to_dot()`` draws them as a Graphviz graph and
``t.to_html(path)`` writes the backward explorer, one HTML page that replays the sweep step by step
(see :mod:`tinygrad_edu.observers.explorer`).

What a trace keeps is plain data (:mod:`tinygrad_edu.observers.records`): the steps, and for the
explorer each sweep's graph (:attr:`Trace.graphs`, taken when the sweep starts) and the gradients
themselves as bounded summaries.

Examples
--------
>>> import tinygrad_edu as tg
>>> x = tg.Tensor([1.0, 2.0], requires_grad=True)
>>> with tg.trace() as t:
...     (x.exp() * 3).sum().backward()
>>> [step.op for step in t.steps]
['sum', 'mul', 'exp']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..graph import Observer, Op, observe
from ..ops.shape import SumTo
from .dot import quote
from .explorer import write_html
from .records import TOTAL_LIMIT, Delivery, NodeRecord, Recording, Step, Summary

if TYPE_CHECKING:
    from ..tensor import Tensor


def _norm(t: Tensor | None) -> float | None:
    return None if t is None else float(np.linalg.norm(np.asarray(t.data, dtype=np.float64)))


def graph_records(outputs: Sequence[Tensor]) -> dict[int, NodeRecord]:
    """Every tensor the ``outputs`` were computed from, by id (an iterative walk)."""
    records: dict[int, NodeRecord] = {}
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if id(t) in records:
            continue
        node = t._node
        inputs = tuple(node.inputs) if node is not None else ()
        records[id(t)] = NodeRecord(
            id=id(t),
            op=None if node is None else node.name,
            shape=t.shape,
            requires_grad=t.requires_grad,
            value=Summary.of(t.data) if t.dtype.kind in "biuf" else None,
            inputs=tuple(id(x) for x in inputs),
            sequence=0 if node is None else node.sequence,
        )
        stack.extend(x for x in inputs if id(x) not in records)
    return records


def _sum_to(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The engine's own rule for undoing broadcasting, run on a plain array."""
    return SumTo(shape).forward(array)


@dataclass
class Trace(Recording, Observer):
    """The observer that fills a :class:`Recording` with the VJPs applied inside a ``trace()``
    block, in the order the engine applied them, and shows it as a table, DOT or a web page."""

    _open: list[tuple[int, dict[int, np.ndarray | None]]] = field(default_factory=list, repr=False)

    def backward_started(self, outputs: Sequence[Tensor], seeds: Sequence[Tensor]) -> None:
        self.graphs.append(graph_records(outputs))
        totals: dict[int, np.ndarray | None] = {}
        for output, seed in zip(outputs, seeds):
            self._receive(totals, id(output), seed.data)
        self._open.append((len(self.graphs) - 1, totals))

    def backward_finished(self) -> None:
        self._open.pop()

    @staticmethod
    def _receive(totals: dict, key: int, grad: np.ndarray) -> tuple[bool, Summary | None]:
        """Add ``grad`` to the running total of tensor ``key``: (was it accumulated, total)."""
        accumulated = key in totals
        previous = totals.get(key)
        if grad.size > TOTAL_LIMIT or (accumulated and previous is None):
            totals[key] = None
            return accumulated, None
        total = grad.astype(np.float64) if previous is None else previous + grad
        totals[key] = total
        return accumulated, Summary.of(total)

    def vjp_applied(
        self, node: Op, out: Tensor, g: Tensor, input_grads: Sequence[Tensor | None]
    ) -> None:
        sweep, totals = self._open[-1] if self._open else (-1, {})
        deliveries = []
        for x, gx, wanted in zip(node.inputs, input_grads, node.needs_input_grad):
            if gx is None or not wanted:
                deliveries.append(Delivery(id(x), None, None, False, None))
                continue
            reduced = gx.data if gx.shape == x.shape else _sum_to(gx.data, x.shape)
            accumulated, total = self._receive(totals, id(x), reduced)
            deliveries.append(
                Delivery(
                    input_id=id(x),
                    grad=Summary.of(gx.data),
                    reduced=None if reduced is gx.data else Summary.of(reduced),
                    accumulated=accumulated,
                    total=total,
                )
            )
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
                sweep=sweep,
                grad_output=Summary.of(g.data),
                deliveries=tuple(deliveries),
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
            op = s.op if s.op.isprintable() else repr(s.op)  # a newline must not add a row
            rows.append((str(s.index), op, ins, str(s.output_shape), out_norm, grads_in))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The traced steps as Graphviz DOT: one box per VJP, edges along the gradient flow.

        Op names are quoted by :func:`tinygrad_edu.observers.dot.quote`, so no name can change
        the graph.
        """
        producer = {s.output_id: s.index for s in self.steps}
        lines = ["digraph backward {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
        for s in self.steps:
            norm = "" if s.grad_output_norm is None else f"\n|grad out| = {s.grad_output_norm:.3g}"
            label = quote(f"{s.index}: {s.op} -> {s.output_shape}{norm}")
            lines.append(f"  s{s.index} [label={label}];")
            for position, input_id in enumerate(s.input_ids):
                if input_id in producer:
                    n = s.grad_input_norms[position]
                    edge = "" if n is None else f" [label={quote(f'{n:.3g}')}]"
                    lines.append(f"  s{s.index} -> s{producer[input_id]}{edge};")
        lines.append("}")
        return "\n".join(lines)

    def to_html(
        self,
        path: str | os.PathLike,
        sweep: int = 0,
        title: str | None = None,
        names: dict[int, str] | None = None,
    ) -> Path:
        """Write the backward explorer for sweep ``sweep`` (the first by default) to ``path``.

        One self-contained HTML file (inline script and style, no network) that draws the graph
        and replays the sweep step by step; see :mod:`tinygrad_edu.observers.explorer`.
        ``names`` labels tensors by ``id``, e.g. ``{id(p): n for n, p in
        model.named_parameters()}``. Returns the path written.
        """
        return write_html(self, path, sweep=sweep, title=title, names=names)


@contextlib.contextmanager
def trace() -> Iterator[Trace]:
    """Record every VJP applied by backward passes inside the block."""
    with observe(Trace()) as recorder:
        yield recorder
