"""Griffe extension: the docstrings' Sphinx roles read as code on the site.

The docstrings are written for ``help()`` and editors, with Sphinx's roles (``:func:`grad```,
``:math:`g / \\sqrt{v}```). mkdocstrings renders Markdown, where a role would show its markup, so
each role becomes inline code: a ``~``-prefixed path shows its last part and ``title <target>``
its title, as Sphinx would show them.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|math):`(~?)([^`]+)`")
TITLED = re.compile(r"(.+?)\s*<[^<>]+>")


def as_code(match: re.Match[str]) -> str:
    short, text = match.groups()
    titled = TITLED.fullmatch(text)
    if titled:
        text = titled.group(1)
    elif short:
        text = text.rsplit(".", 1)[-1]
    return f"`{text}`"


class SphinxRoles(Extension):
    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(as_code, obj.docstring.value)
