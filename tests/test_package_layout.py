"""The package's shape is a promise too: imports point one way, and the docs name real files.

Layers, from the top: ``cli`` -> ``vis`` -> ``models`` -> (``nn``, ``optim``, ``data``, ``io``,
``compile``)
-> the engine (``tensor``, ``graph``, ``autograd``, ``ops``, ...) -> ``kernels``. A module may
import from its own layer or below, never above; ``io`` reads files into plain arrays and needs no
engine at all; ``kernels`` are plain NumPy. Every import is checked, including the ones inside
functions. The modules are read from the tree: a new top-level module belongs to the engine
unless :data:`LAYERS` places it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinygrad_edu"

#: top-level name inside the package -> layer (higher may import lower)
LAYERS = {
    "cli": 6,
    "vis": 5,
    "models": 4,
    "nn": 3,
    "optim": 3,
    "data": 3,
    "compile": 3,  # compiles training steps: above the optimizers it drives
    "io": 3,
    "kernels": 1,
    "axes": 0,
    "progress": 0,
}
ENGINE = 2  # every other module: tensor, graph, autograd, ops, gradcheck, observers, ...
#: modules any layer may import: writing a file atomically (checkpoints, pages, figures) needs
#: no engine (``io`` needs none, see below), so importing it pulls no higher layer in
UTILITIES = {"io.atomic"}


def _layer(top: str) -> int:
    return LAYERS.get(top, ENGINE)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, root: Path) -> str:
    """The dotted name of the module in ``path``: ``pkg/__init__.py`` is ``pkg`` itself."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str, root: Path) -> bool:
    """Whether ``dotted`` names a module or package in the tree under ``root``."""
    candidate = root.joinpath(*dotted.split("."))
    return candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file()


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """``(line, absolute module)`` for every import of a package module in ``path``.

    Relative imports resolve against the importing module's package, which for
    ``pkg/__init__.py`` is ``pkg`` itself (``from .x import y`` there means ``pkg.x``). In
    ``from pkg import name`` the target is ``pkg.name`` when the tree has such a module, and
    ``pkg`` when ``name`` is a name defined in ``pkg``.
    """
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                name = submodule if _is_module(submodule, root) else target
                if name.split(".")[0] == PACKAGE.name:
                    found.append((node.lineno, name))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name) for a in node.names if a.name.split(".")[0] == PACKAGE.name
            ]
    return found


def test_relative_imports_resolve_against_the_importing_package(tmp_path: Path):
    """``from .x`` in ``pkg/__init__.py`` is ``pkg.x``; in ``pkg/mod.py`` it is ``pkg.x`` too;
    ``from ..y`` climbs one package from either; ``from pkg import sub`` names the submodule."""
    package = tmp_path / PACKAGE.name
    (package / "nn").mkdir(parents=True)
    for name in ("__init__.py", "graph.py", "nn/layers.py", "nn/losses.py"):
        (package / name).write_text("")
    source = (
        "from .layers import Linear\n"
        "from . import losses\n"
        "from ..graph import Op\n"
        "from .. import Tensor\n"
        f"from {PACKAGE.name} import nn\n"
    )
    expected = [
        f"{PACKAGE.name}.nn.layers",
        f"{PACKAGE.name}.nn.losses",
        f"{PACKAGE.name}.graph",
        PACKAGE.name,
        f"{PACKAGE.name}.nn",
    ]
    (package / "nn" / "__init__.py").write_text(source)
    (package / "nn" / "module.py").write_text(source)
    for path in (package / "nn" / "__init__.py", package / "nn" / "module.py"):
        assert [target for _, target in _imports(path, tmp_path)] == expected


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path):
    own = _top(_module_name(path, ROOT))
    if own == "__init__":
        return  # the package root re-exports the public names of every layer
    wrong = []
    for line, target in _imports(path):
        top = _top(target)
        if target.partition(".")[2] in UTILITIES:
            continue
        if top == own or (top == "__init__" and target == PACKAGE.name):
            if top == "__init__" and own in LAYERS and _layer(own) < ENGINE:
                wrong.append(f"line {line}: {target} (the package root pulls in the engine)")
            continue
        if own == "io" and top not in ("io", "progress", "axes"):
            wrong.append(f"line {line}: io must not need the engine, imports {target}")
        elif _layer(top) > _layer(own):
            wrong.append(
                f"line {line}: {own} (layer {_layer(own)}) imports {target} (layer {_layer(top)})"
            )
    assert not wrong, "\n".join(wrong)


#: paths like ``tinygrad_edu/ops/shape.py`` or ``tinygrad_edu/kernels/`` in prose and tables
PATH_IN_PROSE = re.compile(r"(?<![\w/.])((?:tinygrad_edu|tests|benchmarks|examples|docs)/[\w./-]*)")
#: dotted modules like ``tinygrad_edu.models.vgg``
MODULE_IN_PROSE = re.compile(r"(?<![\w.])(tinygrad_edu(?:\.[a-z_][a-z0-9_]*)+)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def _exists_as_module(dotted: str) -> bool:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):  # the longest prefix that is a module; the rest: names
        candidate = ROOT.joinpath(*parts[:end])
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_files_and_modules_that_exist(page: Path):
    text = page.read_text()
    missing = []
    for match in PATH_IN_PROSE.finditer(text):
        path = match.group(1).rstrip(".")
        if "*" not in path and not (ROOT / path).exists():
            missing.append(path)
    for match in MODULE_IN_PROSE.finditer(text):
        if not _exists_as_module(match.group(1)):
            missing.append(match.group(1))
    assert not missing, f"{page.name} names what does not exist: {sorted(set(missing))}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_stand_alone(page: Path):
    """Users have the project, not the workspace it was built in."""
    assert "../shared" not in page.read_text(), f"{page.name} points outside the project"
