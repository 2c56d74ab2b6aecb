"""Griffe extension: public methods a class is given when its module runs appear on the site too.

The API reference is read from the source (static analysis), which cannot see a method added
by a loop: ``Tensor.exp``, ``Tensor.maximum`` ... come from the rule table of
``tinygrad_edu/ops/elementwise.py`` (see the end of ``tinygrad_edu/tensor.py``). Once the package
is loaded, this extension imports each module (from the tree the site is built from) and adds
to each class the public functions its live version has and its source does not show, with the
signature and docstring they have at run time.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import griffe
from griffe import Class, Extension, Module


class RuntimeMethods(Extension):
    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        import_paths = [str(Path(pkg.filepath).parent.parent), *sys.path]
        for cls in _classes(pkg):
            _add_runtime_methods(cls, import_paths)


def _classes(module: Module) -> Iterator[Class]:
    for member in list(module.members.values()):
        if member.is_alias:
            continue
        if member.is_module:
            yield from _classes(member)
        elif member.is_class:
            yield member


def _add_runtime_methods(cls: Class, import_paths: list[str]) -> None:
    module = griffe.dynamic_import(cls.module.path, import_paths=import_paths)
    if Path(inspect.getfile(module)).resolve() != Path(cls.module.filepath).resolve():
        raise RuntimeError(
            f"the site is built from {cls.module.filepath}, but Python imports "
            f"{inspect.getfile(module)}: build it from the tree's root"
        )
    live = getattr(module, cls.name, None)
    if not inspect.isclass(live):
        return
    missing = [
        name
        for name, value in vars(live).items()
        if inspect.isfunction(value) and not name.startswith("_") and name not in cls.members
    ]
    if missing:
        inspected = griffe.inspect(cls.module.path, import_paths=import_paths)[cls.name]
        for name in missing:
            cls.set_member(name, inspected.members[name])
