"""The backward explorer: one self-contained HTML page that replays a traced backward sweep.

:meth:`Trace.to_html <tinygrad_edu.observers.trace.Trace.to_html>` calls :func:`write_html`,
which draws the trace's :class:`~tinygrad_edu.observers.records.Recording` in two steps:

1. turns the recording into plain data (:func:`payload`): the graph's tensors with a layered layout
   computed here (leaves sit just left of their first consumer; each column is ordered by the
   mean position of its inputs), and one record per VJP step -- the node popped, the upstream
   gradient it received, the VJP's shapes, and what each input receives (broadcasting undone,
   accumulation at tensors with several consumers);
2. inlines that data with ``explorer.css`` and ``explorer.js`` (a small hand-written SVG
   renderer) into ``template.html``: no network, no CDN, opens from disk in any browser.

Graphs with more than ``max_nodes`` tensors collapse into one box per layer (column), so the page
stays responsive; the steps then highlight the layer that holds the popped tensor.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...io.atomic import atomic_write
from ..records import NodeRecord, Recording, Summary

ASSETS = Path(__file__).resolve().parent
#: above this many tensors the graph is drawn as one box per layer
MAX_NODES = 2000
COLUMN_WIDTH, ROW_HEIGHT = 180, 70


def _summary(summary: Summary | None) -> dict | None:
    return None if summary is None else asdict(summary)


def layers(graph: dict[int, NodeRecord]) -> dict[int, int]:
    """Column of each tensor: ops one right of their deepest input, leaves one left of their
    first consumer (so a weight sits beside the layer that uses it)."""
    column: dict[int, int] = {}
    ops = sorted((r for r in graph.values() if r.op is not None), key=lambda r: r.sequence)
    for record in ops:
        column[record.id] = 1 + max(
            (column.get(i, 0) for i in record.inputs if graph[i].op is not None), default=0
        )
    consumers: dict[int, list[int]] = {}
    for record in ops:
        for i in record.inputs:
            consumers.setdefault(i, []).append(column[record.id])
    for record in graph.values():
        if record.op is None:
            column[record.id] = min(consumers.get(record.id, [1])) - 1
    return column


def _ordered_columns(graph: dict[int, NodeRecord], column: dict[int, int]) -> list[list[int]]:
    """Tensors per column, each column sorted by the mean row of the tensors it is linked to."""
    count = max(column.values(), default=-1) + 1
    columns: list[list[int]] = [[] for _ in range(count)]
    for key in sorted(graph, key=lambda k: (graph[k].sequence, column[k])):
        columns[column[key]].append(key)
    row: dict[int, float] = {}
    neighbours: dict[int, list[int]] = {key: list(graph[key].inputs) for key in graph}
    for key in graph:
        for i in graph[key].inputs:
            neighbours[i].append(key)
    for _ in range(2):  # two sweeps of the barycenter heuristic are plenty for readable graphs
        for members in columns:
            placed = {k: i for i, k in enumerate(members)}

            def centre(key: int, placed: dict[int, int] = placed) -> float:
                known = [row[n] for n in neighbours[key] if n in row]
                return sum(known) / len(known) if known else placed[key]

            members.sort(key=centre)
            for i, key in enumerate(members):
                row[key] = i
    return columns


def _label(record: NodeRecord, names: dict[int, str]) -> str:
    if record.id in names:
        return names[record.id]
    if record.op is not None:
        return record.op
    return "input" if record.requires_grad else "constant"


def payload(
    trace: Recording,
    sweep: int = 0,
    title: str | None = None,
    names: dict[int, str] | None = None,
    max_nodes: int = MAX_NODES,
) -> dict[str, Any]:
    """The data the page draws: ``nodes`` (laid out), ``steps`` and whether layers collapsed."""
    if not trace.graphs:
        raise ValueError("to_html: the trace recorded no backward pass (call backward() inside it)")
    if not -len(trace.graphs) <= sweep < len(trace.graphs):
        raise ValueError(
            f"to_html: sweep {sweep} does not exist; the trace recorded {len(trace.graphs)}"
        )
    sweep %= len(trace.graphs)
    graph, names = trace.graphs[sweep], names or {}
    column = layers(graph)
    columns = _ordered_columns(graph, column)
    collapsed = len(graph) > max_nodes
    drawn: dict[int, int] = {}  # tensor id -> index of the box that shows it
    nodes: list[dict[str, Any]] = []
    tallest = max((len(c) for c in columns), default=1)
    for c, members in enumerate(columns):
        if collapsed:
            ops = Counter(graph[k].op or "leaf" for k in members)
            for key in members:
                drawn[key] = len(nodes)
            nodes.append(
                {
                    "label": f"layer {c}",
                    "op": ", ".join(f"{n} x{k}" for n, k in ops.most_common(4)),
                    "shape": None,
                    "members": len(members),
                    "leaf": all(graph[k].op is None for k in members),
                    "value": None,
                    "x": c * COLUMN_WIDTH,
                    "y": 0,
                }
            )
            continue
        offset = (tallest - len(members)) * ROW_HEIGHT / 2
        for r, key in enumerate(members):
            record = graph[key]
            drawn[key] = len(nodes)
            nodes.append(
                {
                    "label": _label(record, names),
                    "op": record.op,
                    "shape": list(record.shape),
                    "members": 1,
                    "leaf": record.op is None,
                    "value": _summary(record.value),
                    "x": c * COLUMN_WIDTH,
                    "y": offset + r * ROW_HEIGHT,
                }
            )
    edges = sorted(
        {(drawn[i], drawn[k]) for k in graph for i in graph[k].inputs if drawn[i] != drawn[k]}
    )
    steps = []
    for step in trace.steps:
        if step.sweep != sweep:
            continue
        steps.append(
            {
                "node": drawn[step.output_id],
                "op": step.op,
                "out_shape": list(step.output_shape),
                "g": _summary(step.grad_output),
                "created_at": step.created_at,
                "inputs": [
                    {
                        "node": drawn.get(d.input_id),
                        "shape": list(shape),
                        "grad": _summary(d.grad),
                        "reduced": _summary(d.reduced),
                        "accumulated": d.accumulated,
                        "total": _summary(d.total),
                    }
                    for d, shape in zip(step.deliveries, step.input_shapes)
                ],
            }
        )
    return {
        "title": title or "backward explorer",
        "collapsed": collapsed,
        "tensors": len(graph),
        "nodes": nodes,
        "edges": [list(e) for e in edges],
        "steps": steps,
        "width": max(len(columns), 1) * COLUMN_WIDTH,
        "height": (1 if collapsed else tallest) * ROW_HEIGHT,
    }


def render(data: dict[str, Any]) -> str:
    """The page's HTML text with ``data``, the script and the style inlined.

    Names, op names and the title are data, never markup: in the script they are JSON with
    ``<``, ``>`` and ``&`` as ``\\u`` escapes, in the page's text HTML-escaped, and the script
    puts them on the page only as ``textContent`` and attribute values. Lone surrogates
    (from file names that are not UTF-8) are shown as Python's escapes (``\\udcff``).
    """
    text = json.dumps(data, separators=(",", ":"))  # NaN/Infinity stay valid JavaScript
    for character in "<>&":  # no name can close the script or open a comment: \u003c etc.
        text = text.replace(character, f"\\u{ord(character):04x}")
    template = (ASSETS / "template.html").read_text(encoding="utf-8")
    # a lone surrogate (a file name that is not UTF-8) is shown as its escape, like dot.quote
    shown = data["title"].encode("utf-8", "backslashreplace").decode("utf-8")
    title = html.escape(shown, quote=True)
    return (
        template.replace("/*STYLE*/", (ASSETS / "explorer.css").read_text(encoding="utf-8"))
        .replace("/*SCRIPT*/", (ASSETS / "explorer.js").read_text(encoding="utf-8"))
        .replace("/*DATA*/", text)
        .replace("<!--TITLE-->", title)
    )


def write_html(
    trace: Recording,
    path: str | os.PathLike,
    sweep: int = 0,
    title: str | None = None,
    names: dict[int, str] | None = None,
    max_nodes: int = MAX_NODES,
) -> Path:
    """Write the explorer page for ``trace`` to ``path`` (atomically); returns the path."""
    page = render(payload(trace, sweep, title, names, max_nodes))
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(page.encode("utf-8"))
    return path
