"""The engine core's import circle is tensor/graph/autograd/ops: the modules Tensor builds on
import none of them (composites and masks reach the Tensor only through ``self``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tinygrad_edu

PACKAGE = Path(tinygrad_edu.__file__).parent
CORE = {"tensor", "graph", "autograd", "ops"}


def _imported(path: Path) -> set[str]:
    """The package modules ``path`` imports (anywhere in the file), as top-level names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            module = (node.module or "").split(".")[0]
            names |= {module} if module else {alias.name for alias in node.names}
    return names


@pytest.mark.parametrize(
    "module", ["axes", "dtypes", "creation", "composites", "masks", "numpy_like"]
)
def test_what_tensor_builds_on_imports_no_core_module(module):
    assert not _imported(PACKAGE / f"{module}.py") & CORE
