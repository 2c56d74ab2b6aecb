"""Drawing a computation graph with Graphviz.

:func:`graph_to_dot` turns the graph behind a tensor into DOT text: a box per tensor (name, shape,
and the norm of ``.grad`` once backward has run), an ellipse per op, arrows in the direction of the
forward computation. Every string in it -- names, op names, labels -- goes through :func:`quote`,
so no name can add attributes or break the graph. :func:`render` turns that text into PNG or SVG
when Graphviz's ``dot`` program is installed, and otherwise writes the ``.dot`` file and says how
to render it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import unicodedata
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class GraphNode(Protocol):
    """What a drawing reads of a tensor: its value, gradient, and the op that computed it
    (``_node``, whose ``inputs`` are tensors again). Any :class:`~tinygrad_edu.tensor.Tensor` is
    one; this module needs nothing else of it."""

    requires_grad: bool
    grad: Any
    _node: Any

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ndim(self) -> int: ...

    def item(self) -> float: ...


def quote(text: object) -> str:
    """``text`` as a double-quoted DOT string that Graphviz shows literally, character by character.

    This is the one way any string reaches DOT output. Quotes and backslashes are escaped (so no
    text can end the string and add attributes such as ``URL`` or ``image``, and none of
    Graphviz's ``\\N``/``\\G``/``\\l`` escapes fire), and so is ``&`` (Graphviz reads ``&lt;`` in
    a label as ``<``); a line break becomes Graphviz's ``\\n``;
    other control characters and lone surrogates are shown as their Python escapes (``\\x00``).
    """
    return '"' + "".join(_ESCAPES.get(c) or _visible(c) for c in str(text)) + '"'


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "&": "&amp;"}


def _visible(character: str) -> str:
    if unicodedata.category(character) in ("Cc", "Cs"):
        return character.encode("unicode_escape").decode("ascii").replace("\\", "\\\\")
    return character


def _tensor_label(t: GraphNode, name: str | None) -> str:
    parts = [name] if name else []
    if t.ndim:
        parts.append(f"{t.shape}")
    elif not t.requires_grad and not name:  # a constant such as the 0.5 in 0.5 * x
        parts.append(f"{t.item():.4g}")
    else:
        parts.append("scalar")
    if t.grad is not None:
        parts.append(f"|grad| = {float(np.linalg.norm(t.grad.data)):.3g}")
    return "\n".join(parts)


def graph_to_dot(root: GraphNode, names: dict[int, str] | None = None) -> str:
    """DOT text for the graph that computed ``root``.

    Parameters
    ----------
    root
        The tensor to start from (usually a loss).
    names
        Optional labels for tensors, keyed by ``id(tensor)``; e.g.
        ``{id(p): n for n, p in model.named_parameters()}``.
    """
    names = names or {}
    lines = ["digraph computation {", "  rankdir=BT;", '  node [fontname="monospace"];']
    seen: set[int] = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        style = "filled" if t.requires_grad else "solid"
        label = _tensor_label(t, names.get(id(t)))
        lines.append(
            f'  t{id(t)} [shape=box, style={style}, fillcolor="#e8f0fe", label={quote(label)}];'
        )
        node = t._node
        if node is None or not node.inputs:
            continue
        lines.append(f"  op{id(t)} [shape=ellipse, label={quote(node.name)}];")
        lines.append(f"  op{id(t)} -> t{id(t)};")
        for parent in node.inputs:
            lines.append(f"  t{id(parent)} -> op{id(t)};")
            stack.append(parent)
    lines.append("}")
    return "\n".join(lines)


def render(dot_text: str, path: str | os.PathLike) -> tuple[Path, str | None]:
    """Write ``dot_text`` as an image at ``path`` (``.png``, ``.svg`` or ``.pdf``) using Graphviz.

    Returns ``(written_path, hint)``: when the ``dot`` program is missing, the DOT text is written
    next to ``path`` with the suffix ``.dot`` and ``hint`` says how to render it; otherwise
    ``hint`` is ``None``. Another suffix, or a path that is a directory, FIFO or device, raises
    ``ValueError`` before anything is written; DOT text Graphviz rejects raises ``RuntimeError``
    with its message.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise ValueError(
            f"render: cannot draw {path} as {fmt!r}; give a path ending in "
            f"{', '.join('.' + f for f in FORMATS)}"
        )
    _check_destination(path)
    executable = shutil.which("dot")
    if executable is None:
        dot_path = path.with_suffix(".dot")
        _check_destination(dot_path)
        dot_path.write_text(dot_text, encoding="utf-8")
        hint = (
            f"Graphviz 'dot' was not found, so the graph was written as DOT text to {dot_path}; "
            f"install Graphviz (e.g. apt-get install graphviz) and run: dot -T{fmt} {dot_path} "
            f"-o {path}"
        )
        return dot_path, hint
    done = subprocess.run(
        [executable, f"-T{fmt}", "-o", str(path)],
        input=dot_text.encode("utf-8"),
        capture_output=True,
    )
    if done.returncode:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"render: Graphviz could not draw {path}: {message}")
    return path, None


#: the image formats :func:`render` draws (Graphviz's -T names)
FORMATS = ("png", "svg", "pdf")


def _check_destination(path: Path) -> None:
    """``ValueError`` when ``path`` (followed through symlinks, as a writer opens it) is not a
    regular file: Graphviz would write into a device, or wait forever on a FIFO nobody reads."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise ValueError(f"render: {path} exists and is not a regular file; cannot draw into it")
