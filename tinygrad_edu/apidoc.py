"""The API reference, generated from the code: ``python -m tinygrad_edu.apidoc > docs/api.md``.

For each public namespace in :data:`NAMESPACES` the generator lists every public name (the
module's ``__all__`` where it has one, otherwise the functions, classes and constants its own
source defines at top level, in source order), with its signature and the first paragraph of its
docstring. Classes also list their own public methods, properties and attributes (in declaration
order) and the operators and protocols they implement. Everything comes from ``inspect`` and the
docstrings, so the reference cannot say what the code does not; ``tests/test_api_reference.py``
checks that ``docs/api.md`` is exactly what this module prints.

The output is deterministic: no memory addresses, defaults rendered with ``repr``, annotations
as written in the source, and a fixed order.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: ``(module, names or None)``: the namespaces users program against, in reading order. ``None``
#: means every public name of the module; a tuple picks the names users meet through another
#: namespace (the object ``with tg.trace() as t`` binds, the thread controls of the kernels).
NAMESPACES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("tinygrad_edu", None),
    ("tinygrad_edu.tracing", ("Trace",)),
    ("tinygrad_edu.nn", None),
    ("tinygrad_edu.nn.functional", None),
    ("tinygrad_edu.nn.init", None),
    ("tinygrad_edu.nn.utils", None),
    ("tinygrad_edu.optim", None),
    ("tinygrad_edu.optim.lr_scheduler", None),
    ("tinygrad_edu.data", None),
    ("tinygrad_edu.models.text_color", None),
    ("tinygrad_edu.models.text_color.handderived", None),
    ("tinygrad_edu.models.vgg", None),
    ("tinygrad_edu.vis", None),
    ("tinygrad_edu.io", None),
    ("tinygrad_edu.io.weights", None),
    ("tinygrad_edu.testing", None),
    ("tinygrad_edu.kernels.fast.threads", ("workers", "set_workers", "map_chunks")),
)

REGENERATE = "python -m tinygrad_edu.apidoc > docs/api.md"

HEADER = f"""\
# API reference

This page is generated from the code by `{REGENERATE}`: every public name of
the namespaces below, with its signature and the first paragraph of its docstring. Do not edit it
by hand; change the docstring and regenerate (`tests/test_api_reference.py` fails when the two
differ). The guides in [the course](README.md) show how the pieces fit together.
"""

#: operators and protocols, as users spell them (``a`` is the object, ``b`` another operand)
PROTOCOLS: dict[str, str] = {
    "__call__": "obj(...)",
    "__add__": "a + b",
    "__radd__": "b + a",
    "__sub__": "a - b",
    "__rsub__": "b - a",
    "__mul__": "a * b",
    "__rmul__": "b * a",
    "__truediv__": "a / b",
    "__rtruediv__": "b / a",
    "__floordiv__": "a // b",
    "__rfloordiv__": "b // a",
    "__mod__": "a % b",
    "__rmod__": "b % a",
    "__pow__": "a ** b",
    "__rpow__": "b ** a",
    "__matmul__": "a @ b",
    "__rmatmul__": "b @ a",
    "__neg__": "-a",
    "__pos__": "+a",
    "__abs__": "abs(a)",
    "__invert__": "~a",
    "__and__": "a & b",
    "__or__": "a | b",
    "__xor__": "a ^ b",
    "__lt__": "a < b",
    "__le__": "a <= b",
    "__gt__": "a > b",
    "__ge__": "a >= b",
    "__eq__": "a == b",
    "__ne__": "a != b",
    "__getitem__": "a[index]",
    "__setitem__": "a[index] = value",
    "__contains__": "value in a",
    "__len__": "len(a)",
    "__iter__": "iter(a)",
    "__bool__": "bool(a)",
    "__float__": "float(a)",
    "__array__": "numpy.asarray(a)",
    "__array_ufunc__": "numpy ufuncs, e.g. numpy.exp(a)",
    "__array_function__": "numpy functions, e.g. numpy.sum(a)",
    "__enter__": "with a: ...",
    "__str__": "str(a)",
}

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
_ROLE = re.compile(r":([a-z]+):`(~?)([^`]+)`")
_LONG_VALUE = 100  # characters of a constant's repr shown before it is cut


@dataclass(frozen=True)
class Entry:
    """One documented name: its dotted path, what kind of thing it is, and its rendered text."""

    path: str
    kind: str  # "class", "function", "method", "property", "attribute", "constant", ...
    signature: str
    doc: str  # the first paragraph of the object's own docstring
    note: str = ""  # "alias of `Tensor.zeros`" for a second name of a function

    @property
    def summary(self) -> str:
        """The note and the docstring's first paragraph, as the page shows them."""
        return ". ".join(part for part in (self.note, self.doc) if part)


# ----------------------------------------------------------------------------- text helpers
def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, with reST roles and literals as Markdown.

    >>> first_paragraph('''Sum over ``axis``.
    ...
    ...     More detail.''')
    'Sum over `axis`.'
    >>> first_paragraph(None)
    ''
    """
    if not doc:
        return ""
    paragraph = inspect.cleandoc(doc).split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in paragraph.splitlines())
    text = _ROLE.sub(_role_as_code, text)
    return text.replace("``", "`").strip()


def _role_as_code(match: re.Match) -> str:
    """``:func:`~a.b.f``` -> ```f```, ``:mod:`a.b``` -> ```a.b```, maths verbatim (as Sphinx)."""
    role, tilde, target = match.groups()
    if tilde and role != "math":
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _value_repr(value: object) -> str:
    """A deterministic one-line ``repr``: classes and functions by name, no memory addresses."""
    if isinstance(value, type):
        module = value.__module__
        return value.__qualname__ if module == "builtins" else f"{module}.{value.__qualname__}"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"{value.__module__}.{value.__qualname__}"
    if type(value) in (tuple, list) and any(isinstance(v, type) for v in value):
        items = ", ".join(_value_repr(v) for v in value)
        if type(value) is list:
            text = f"[{items}]"
        else:
            text = f"({items},)" if len(value) == 1 else f"({items})"
    else:
        text = " ".join(_ADDRESS.sub("", repr(value)).split())
    return text if len(text) <= _LONG_VALUE else text[: _LONG_VALUE - 3] + "..."


def _annotation(annotation: object) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, typing.ForwardRef):
        return annotation.__forward_arg__
    return inspect.formatannotation(annotation)


def render_signature(obj: Callable, drop_first: bool = False, returns: bool = True) -> str:
    """``(a: int, b=1.0, *args, c=None) -> T`` for ``obj``; ``(...)`` when it has none."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    parameters = list(signature.parameters.values())
    if drop_first and parameters:
        parameters = parameters[1:]
    parts: list[str] = []
    star_written = False
    for index, p in enumerate(parameters):
        if p.kind is p.KEYWORD_ONLY and not star_written:
            parts.append("*")
            star_written = True
        name = p.name
        if p.kind is p.VAR_POSITIONAL:
            name, star_written = f"*{name}", True
        elif p.kind is p.VAR_KEYWORD:
            name = f"**{name}"
        if p.annotation is not p.empty:
            name += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            equals = " = " if p.annotation is not p.empty else "="
            name += f"{equals}{_value_repr(p.default)}"
        parts.append(name)
        following = parameters[index + 1] if index + 1 < len(parameters) else None
        if p.kind is p.POSITIONAL_ONLY and (
            following is None or following.kind is not p.POSITIONAL_ONLY
        ):
            parts.append("/")
    text = f"({', '.join(parts)})"
    if returns and signature.return_annotation is not signature.empty:
        text += f" -> {_annotation(signature.return_annotation)}"
    return text


# ----------------------------------------------------------------------------- which names
def _is_type_helper(value: object) -> bool:
    """Type aliases and type variables: annotation vocabulary, not API."""
    if isinstance(value, (typing.TypeVar, types.GenericAlias, types.UnionType)):
        return True
    return getattr(value, "__module__", None) == "typing" and not callable(value)


def public_names(module: types.ModuleType) -> list[str]:
    """``__all__`` in its own order, else the public top-level names the module's source defines."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    names: list[str] = []
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            targets = [node.name]
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        for name in targets:
            if name.startswith("_") or name in names:
                continue
            if not _is_type_helper(getattr(module, name)):
                names.append(name)
    return names


def _kind(value: object) -> str:
    if isinstance(value, types.ModuleType):
        return "module"
    if inspect.isclass(value):
        return "exception" if issubclass(value, BaseException) else "class"
    if callable(value):
        return "function"
    return "constant"


def _alias_note(value: object, expected: str) -> str:
    """``alias of `Tensor.zeros``` when ``value`` was defined under another name than ``expected``
    (its qualified name where the entry documents it)."""
    qualname = getattr(value, "__qualname__", expected)
    if qualname != expected and "<" not in qualname:
        return f"alias of `{qualname}`"
    return ""


def module_entries(module: types.ModuleType, names: tuple[str, ...] | None) -> Iterator[Entry]:
    """The entries of one namespace: each public name, then each class's members."""
    chosen = names if names is not None else public_names(module)
    submodules = [n for n in chosen if isinstance(getattr(module, n), types.ModuleType)]
    for name in [*submodules, *(n for n in chosen if n not in submodules)]:
        value = getattr(module, name)
        path = f"{module.__name__}.{name}"
        kind = _kind(value)
        if kind == "module":
            yield Entry(path, kind, "", first_paragraph(value.__doc__))
        elif kind in ("class", "exception"):
            yield Entry(path, kind, _class_signature(value), first_paragraph(value.__doc__))
            yield from class_entries(value, path)
        elif kind == "function":
            doc, note = first_paragraph(value.__doc__), _alias_note(value, name)
            yield Entry(path, kind, render_signature(value), doc, note)
        else:
            yield Entry(path, kind, f" = {_value_repr(value)}", "")


def _class_signature(cls: type) -> str:
    """``(init parameters); bases: Base`` for a class (its constructor's signature, no return)."""
    signature = render_signature(cls, returns=False)
    bases = [b for b in cls.__bases__ if b is not object]
    names = ", ".join(_value_repr(b) for b in bases)
    return f"{signature}; bases: {names}" if bases else signature


def class_entries(cls: type, path: str) -> Iterator[Entry]:
    """A class's own public members, in declaration order, then its operators and protocols."""
    members = cls.__dict__
    slots = members.get("__slots__", ())
    slots = (slots,) if isinstance(slots, str) else tuple(slots)
    order = [*(n for n in slots if n in members), *(n for n in members if n not in slots)]
    for name in order:
        raw = members[name]
        if name.startswith("_"):
            continue
        expected = f"{cls.__qualname__}.{name}"
        member_path = f"{path}.{name}"
        if isinstance(raw, property):
            returns = ""
            if raw.fget is not None:
                annotation = inspect.signature(raw.fget).return_annotation
                if annotation is not inspect.Signature.empty:
                    returns = f": {_annotation(annotation)}"
            yield Entry(member_path, "property", returns, _member_doc(cls, name))
        elif isinstance(raw, (staticmethod, classmethod)):
            function = raw.__func__
            kind = "staticmethod" if isinstance(raw, staticmethod) else "classmethod"
            signature = render_signature(function, drop_first=kind == "classmethod")
            doc, note = _member_doc(cls, name), _alias_note(function, expected)
            yield Entry(member_path, kind, signature, doc, note)
        elif inspect.isfunction(raw):
            doc, note = _member_doc(cls, name), _alias_note(raw, expected)
            yield Entry(member_path, "method", render_signature(raw, True), doc, note)
        elif inspect.isclass(raw):
            yield Entry(member_path, "class", _class_signature(raw), first_paragraph(raw.__doc__))
        elif inspect.isdatadescriptor(raw) or inspect.ismemberdescriptor(raw):
            yield Entry(member_path, "attribute", "", _attribute_doc(cls, name))
        else:
            yield Entry(member_path, "attribute", f" = {_value_repr(raw)}", "")
    protocols = [n for n in PROTOCOLS if inspect.isfunction(members.get(n))]
    for name in protocols:
        summary = first_paragraph(members[name].__doc__)
        yield Entry(f"{path}.{name}", "protocol", f"`{PROTOCOLS[name]}`", summary)


def _member_doc(cls: type, name: str) -> str:
    """The docstring of method or property ``name``, or of the one it overrides if it has none
    (an override of a documented method keeps its meaning, as in Sphinx's autodoc)."""
    for klass in cls.__mro__:
        raw = klass.__dict__.get(name)
        raw = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        doc = first_paragraph(getattr(raw, "__doc__", None)) if raw is not None else ""
        if doc:
            return doc
    return ""


def _attribute_doc(cls: type, name: str) -> str:
    """The line about ``name`` in the class docstring's ``Attributes`` section, if there is one."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    section = re.search(r"^Attributes\n-+\n(.*?)(?:\n\n[A-Z][a-z ]+\n-+\n|\Z)", doc, re.M | re.S)
    if section is None:
        return ""
    match = re.search(
        rf"^{re.escape(name)}\b[^\n]*\n((?:[ \t]+[^\n]*\n?)+)", section.group(1), re.M
    )
    return first_paragraph(match.group(1)) if match else ""


# ----------------------------------------------------------------------------- the page
def entries() -> list[Entry]:
    """Every entry of the reference, in page order."""
    found: list[Entry] = []
    for module_name, names in NAMESPACES:
        found.extend(module_entries(importlib.import_module(module_name), names))
    return found


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


#: entries shown as bullet lists under a lead-in line rather than as headings
_LISTED = {"module": "Submodules:", "protocol": "Operators and protocols:"}


def _entry_lines(entry: Entry, depth: int, sections: set[str]) -> list[str]:
    short = entry.path.rsplit(".", 1)[-1]
    if entry.kind == "protocol":
        line = f"- {entry.signature} (`{short}`)"
    elif entry.kind == "module":
        title = f"`{entry.path}`"
        line = f"- [{title}](#{_anchor(title)})" if entry.path in sections else f"- {title}"
    else:
        lines = [f"{'#' * depth} `{entry.path}`", "", f"*{entry.kind}*"]
        if entry.signature or entry.kind not in ("constant", "attribute", "property"):
            lines[-1] += f" `{short}{entry.signature}`"
        return [*lines, *(["", entry.summary] if entry.summary else []), ""]
    return [f"{line}: {entry.summary}" if entry.summary else line]


def render() -> str:
    """The whole Markdown page."""
    sections = {module_name for module_name, _ in NAMESPACES}
    lines = [HEADER, "## Contents", ""]
    for module_name, _ in NAMESPACES:
        title = f"`{module_name}`"
        lines.append(f"- [{title}](#{_anchor(title)})")
    lines.append("")
    for module_name, names in NAMESPACES:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", ""]
        summary = first_paragraph(module.__doc__)
        if summary:
            lines += [summary, ""]
        listing = None  # the kind of bullet list being written, if any
        for entry in module_entries(module, names):
            kind = entry.kind if entry.kind in _LISTED else None
            if kind != listing:
                lines += [""] if listing else []
                lines += [_LISTED[kind], ""] if kind else []
                listing = kind
            depth = 4 if entry.path.count(".") > module_name.count(".") + 1 else 3
            lines += _entry_lines(entry, depth, sections)
        lines += [""] if listing else []
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    """Print the reference to standard output."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
